/**
 * The one typed configuration of ecomstream.
 *
 * Layering, lowest first: `defaults()` below -> environment variables (`ECOMSTREAM_*`, `DATABASE_URL`)
 * -> command-line flags (applied by the CLI through `withOverrides`). The result is deeply frozen, so
 * nothing downstream can change a setting behind another module's back.
 *
 * Every field documents its default here and nowhere else; the diagram generator and the dashboard read
 * their facts (ports, paths, trigger) from this module too, so they cannot drift from the running system.
 */
import path from 'node:path';
import { ConfigError } from './errors.js';

export type TriggerSpec = { kind: 'interval'; seconds: number } | { kind: 'on-arrival' } | { kind: 'once' } | { kind: 'available-now' };

export type CleanSource = 'off' | 'archive' | 'delete';

export interface GeneratorConfig {
  /** Events per CSV file. Default 10 (spec section 2). */
  eventsPerFile: number;
  /** Seconds between files. Default 5 (spec section 2). */
  intervalSeconds: number;
  /** Number of files to write; 0 = unlimited. Default 20 (spec section 2). */
  files: number;
  /** Seed for reproducible content; undefined = random. Default undefined. */
  seed: number | undefined;
  /** Fraction of rows replaced by bad rows of every kind the engine rejects. Default 0. */
  invalidRate: number;
  /** Pace by events per second instead of intervalSeconds; 0 = not paced. Default 0. */
  rate: number;
  /** Share of purchases among events. Default 0.15 (spec: view 85 %, purchase 15 %). */
  purchaseShare: number;
}

export interface EngineConfig {
  /** Landing folder watched for published `*.csv` files. Default `data/input`. */
  inputDir: string;
  /** Checkpoint folder (metadata, offsets/, commits/, sources/). Default `data/checkpoints`. */
  checkpointDir: string;
  /** Where `--clean-source archive` moves processed files. Default `data/archive`. */
  archiveDir: string;
  /** Progress records, one JSON line per batch. Default `data/logs/progress.jsonl`. */
  progressFile: string;
  /**
   * Trigger. Default `on-arrival`: the spec's 10 s interval with 1 file per trigger falls behind its
   * own generator (one file every 5 s), so the default wakes on each published file instead.
   */
  trigger: TriggerSpec;
  /** Files per batch at most; 0 = no limit. Default 1000 (spec: 1, which falls behind; see docs/architecture.md, "Triggers"). */
  maxFilesPerTrigger: number;
  /** What happens to a file after its batch committed. Default `off`. */
  cleanSource: CleanSource;
  /** Poll period backing up fs.watch for `on-arrival` (watch events can be lost). Default 1000 ms. */
  pollMillis: number;
  /** Warn when this many published files wait after planning a batch. Default 20. */
  backlogWarnFiles: number;
  /**
   * Every this many batches, offsets/ and commits/ older than `minBatchesToRetain` are purged (Spark's
   * compact interval: 10). The seen-files log is not compacted on a schedule (src/checkpoint/seen-log.ts).
   * Default 10.
   */
  compactInterval: number;
  /** Offsets/commits files kept for inspection (Spark: 100). Default 100. */
  minBatchesToRetain: number;
  /** Retry backoff for lost database connections: first delay, cap (ms). Default 250 ms, 5000 ms. */
  retryInitialMillis: number;
  retryMaxMillis: number;
  /** How long start-up keeps retrying a PostgreSQL that does not answer yet. Default 60 s. */
  startupRetrySeconds: number;
  /**
   * How long a bounded run (`available-now`, `once`, `reprocess`) retries a batch the database cannot
   * take (unreachable, out of connections, out of disk) before it exits 1. A stream that runs on
   * (`on-arrival`, an interval, `up`) retries for as long as it runs. Default 300 s.
   */
  batchRetrySeconds: number;
  /**
   * A file is planned only when its size and mtime have not changed for this long, so a file still being
   * written is not read half-way. Default 1000 ms; 0 for producers that publish atomically (`up` uses 0
   * for its own generator, which links complete files into place).
   */
  fileSettleMillis: number;
  /** Read a processed file again as a new version when it changed under the same name. Default false. */
  rereadModified: boolean;
  /** Start a new stream although the database holds batches of this folder's files. Default false. */
  newStream: boolean;
  /**
   * Memory for the in-batch duplicate check's key set, also while it grows. Default 48 MiB: 1,048,576
   * UUID keys. Past it, repeats of the keys it could not hold are found by PostgreSQL (src/sink/postgres.ts),
   * so peak memory does not grow with the rows of a batch.
   */
  keySetBytes: number;
}

export interface DatabaseConfig {
  /** Use this PostgreSQL and start nothing. Default: unset (embedded server). Env `DATABASE_URL`. */
  url: string | undefined;
  /** Embedded server data folder. Default `data/postgres`. */
  embeddedDir: string;
  /** Preferred embedded port; the next free port is taken if busy. Default 5432 (spec section 5). */
  port: number;
  /** Database, user and password (spec section 5 development values). */
  database: string;
  user: string;
  password: string;
  /** Read-only role the dashboard connects with. Default `dashboard_reader`. */
  readonlyUser: string;
  readonlyPassword: string;
}

export interface DashboardConfig {
  /** Default 127.0.0.1: the dashboard is not exposed unless asked. */
  host: string;
  /** Default 3000. */
  port: number;
}

export type LogFormat = 'text' | 'json';

/**
 * What one client can hold of an HTTP server (the metrics port and the dashboard port): a Slowloris
 * client that never finishes its headers is closed, and past the cap new connections are refused at
 * once rather than queued.
 */
export interface HttpLimitsConfig {
  /** Open connections per server at most. Default 2048: a thousand idle or slow ones cost little. */
  maxConnections: number;
  /** A request's headers must have arrived within this long. Default 5000 ms. */
  headersTimeoutMillis: number;
  /** A whole request must have arrived within this long. Default 10000 ms. */
  requestTimeoutMillis: number;
}

/** Running it as a service: metrics, health endpoints, stall alarm, log format. */
export interface OpsConfig {
  /** Where `/metrics`, `/livez` and `/readyz` listen. Default 127.0.0.1: not exposed unless asked. */
  metricsHost: string;
  /** Default 9464 (the port registered for Prometheus exporters of OpenTelemetry); 0 = off. Env `ECOMSTREAM_METRICS_PORT`. */
  metricsPort: number;
  /** Files waiting and no batch committed for this long = stalled. Default 60 s. */
  stallAfterSeconds: number;
  /** Console log lines: `text` (readable) or `json` (one object per line). Default `text`. Env `ECOMSTREAM_LOG_FORMAT`. */
  logFormat: LogFormat;
  /** The registry is rendered at most this often; scrapes in between get the last rendering. Default 1000 ms. */
  metricsMinIntervalMillis: number;
  /**
   * `/metrics` answers per second at most; more scrapes wait their turn, in order, so a flood of them
   * costs little CPU and never delays `/livez` or `/readyz`. Default 50 (Prometheus scrapes every 15 s).
   */
  maxScrapesPerSecond: number;
}

/** Facts of the Docker Compose deployment (spec sections 1-6), shared with the diagram generator. */
export interface DeploymentConfig {
  sparkTriggerSeconds: number;
  sparkMaxFilesPerTrigger: number;
  shufflePartitions: number;
}

export interface Config {
  generator: GeneratorConfig;
  engine: EngineConfig;
  db: DatabaseConfig;
  dashboard: DashboardConfig;
  ops: OpsConfig;
  http: HttpLimitsConfig;
  deployment: DeploymentConfig;
}

export type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

/** All defaults, in one place. `root` is the project folder that `data/` lives in. */
export function defaults(root: string = process.cwd()): Config {
  const data = path.join(root, 'data');
  return {
    generator: {
      eventsPerFile: 10,
      intervalSeconds: 5,
      files: 20,
      seed: undefined,
      invalidRate: 0,
      rate: 0,
      purchaseShare: 0.15,
    },
    engine: {
      inputDir: path.join(data, 'input'),
      checkpointDir: path.join(data, 'checkpoints'),
      archiveDir: path.join(data, 'archive'),
      progressFile: path.join(data, 'logs', 'progress.jsonl'),
      trigger: { kind: 'on-arrival' },
      maxFilesPerTrigger: 1000,
      cleanSource: 'off',
      pollMillis: 1000,
      backlogWarnFiles: 20,
      compactInterval: 10,
      minBatchesToRetain: 100,
      retryInitialMillis: 250,
      retryMaxMillis: 5000,
      startupRetrySeconds: 60,
      batchRetrySeconds: 300,
      fileSettleMillis: 1000,
      rereadModified: false,
      newStream: false,
      keySetBytes: 48 * 2 ** 20,
    },
    db: {
      url: undefined,
      embeddedDir: path.join(data, 'postgres'),
      port: 5432,
      database: 'ecommerce_events',
      user: 'sparkuser',
      password: 'sparkpass123',
      readonlyUser: 'dashboard_reader',
      readonlyPassword: 'dashboard_reader',
    },
    dashboard: { host: '127.0.0.1', port: 3000 },
    ops: { metricsHost: '127.0.0.1', metricsPort: 9464, stallAfterSeconds: 60, logFormat: 'text', metricsMinIntervalMillis: 1000, maxScrapesPerSecond: 50 },
    http: { maxConnections: 2048, headersTimeoutMillis: 5000, requestTimeoutMillis: 10_000 },
    deployment: {
      sparkTriggerSeconds: 10,
      sparkMaxFilesPerTrigger: 1000,
      shufflePartitions: 8,
    },
  };
}

/** Environment layer: only variables that are set override anything. */
export function fromEnv(env: NodeJS.ProcessEnv = process.env): DeepPartial<Config> {
  const out: DeepPartial<Config> = {};
  if (env.DATABASE_URL) out.db = { url: checkDatabaseUrl(env.DATABASE_URL) };
  if (env.ECOMSTREAM_DASHBOARD_PORT) {
    out.dashboard = { port: parsePort(env.ECOMSTREAM_DASHBOARD_PORT, 'ECOMSTREAM_DASHBOARD_PORT') };
  }
  if (env.ECOMSTREAM_DASHBOARD_HOST) out.dashboard = { ...out.dashboard, host: env.ECOMSTREAM_DASHBOARD_HOST };
  if (env.ECOMSTREAM_LOG_FORMAT) out.ops = { logFormat: parseLogFormat(env.ECOMSTREAM_LOG_FORMAT, 'ECOMSTREAM_LOG_FORMAT') };
  if (env.ECOMSTREAM_METRICS_PORT) out.ops = { ...out.ops, metricsPort: parsePort(env.ECOMSTREAM_METRICS_PORT, 'ECOMSTREAM_METRICS_PORT', 0) };
  if (env.ECOMSTREAM_PG_PORT) out.db = { ...out.db, port: parsePort(env.ECOMSTREAM_PG_PORT, 'ECOMSTREAM_PG_PORT') };
  return out;
}

export const LOG_FORMATS: readonly LogFormat[] = ['text', 'json'];

function parseLogFormat(value: string, name: string): LogFormat {
  if (!(LOG_FORMATS as readonly string[]).includes(value)) {
    throw new ConfigError(`${name}=${JSON.stringify(value)}: allowed are ${LOG_FORMATS.join(', ')}`, { option: name, code: 'BAD_ENV' });
  }
  return value as LogFormat;
}

function parsePort(value: string, name: string, min = 1): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isInteger(n) || n < min || n > 65535) {
    throw new ConfigError(`${name}=${JSON.stringify(value)} is not a port (an integer from ${min} to 65535)`, { option: name, code: 'BAD_ENV' });
  }
  return n;
}

/** A DATABASE_URL that pg can use: postgres:// or postgresql:// with a host, else one line naming the part. */
export function checkDatabaseUrl(value: string, name = 'DATABASE_URL'): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new ConfigError(`${name} is not a URL (expected postgresql://USER:PASSWORD@HOST:PORT/DATABASE)`, { option: name, code: 'BAD_ENV' });
  }
  if (u.protocol !== 'postgresql:' && u.protocol !== 'postgres:') {
    throw new ConfigError(`${name} has the scheme ${JSON.stringify(u.protocol.slice(0, -1))}; expected postgresql:// (or postgres://)`, {
      option: name,
      code: 'BAD_ENV',
    });
  }
  if (!u.hostname && !u.searchParams.get('host'))
    throw new ConfigError(`${name} names no host (expected postgresql://USER:PASSWORD@HOST:PORT/DATABASE)`, { option: name, code: 'BAD_ENV' });
  if (u.port && !(Number(u.port) >= 1 && Number(u.port) <= 65535))
    throw new ConfigError(`${name} has the port ${JSON.stringify(u.port)}, not 1-65535`, { option: name, code: 'BAD_ENV' });
  return value;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function merge<T>(base: T, over: DeepPartial<T> | undefined): T {
  if (!over) return base;
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    const cur = out[k];
    // A trigger is a tagged union: replace it whole rather than merging fields of two variants.
    out[k] = isPlainObject(cur) && isPlainObject(v) && k !== 'trigger' ? merge(cur, v as never) : v;
  }
  return out as T;
}

function deepFreeze<T>(o: T): T {
  if (isPlainObject(o)) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/** defaults -> env -> overrides (flags), frozen. */
export function loadConfig(overrides: DeepPartial<Config> = {}, root?: string, env = process.env): Readonly<Config> {
  return deepFreeze(merge(merge(defaults(root), fromEnv(env)), overrides));
}

/** Layer further overrides onto an already loaded config (returns a new frozen config). */
export function withOverrides(config: Readonly<Config>, overrides: DeepPartial<Config>): Readonly<Config> {
  return deepFreeze(merge(structuredClone(config) as Config, overrides));
}

/** `10s` -> interval, or one of the named triggers. Throws a message naming the flag. */
export function parseTrigger(value: string): TriggerSpec {
  if (value === 'on-arrival' || value === 'once' || value === 'available-now') return { kind: value };
  const m = /^(\d+(?:\.\d+)?)s$/.exec(value);
  if (m && Number(m[1]) > 0) return { kind: 'interval', seconds: Number(m[1]) };
  throw new ConfigError(`--trigger ${JSON.stringify(value)}: allowed are available-now, once, on-arrival or <N>s (e.g. 10s)`);
}

export function formatTrigger(t: TriggerSpec): string {
  return t.kind === 'interval' ? `${t.seconds}s` : t.kind;
}
