/**
 * Reading the facts the architecture diagram shows, from the project's own files: the Compose file
 * (containers, images, ports, environment, volumes, network), the schema (tables, indexes, views), the
 * generator's Dockerfile (its base image) and the benchmark results (the TypeScript engine's, and both
 * engines side by side).
 *
 * Each reader has a pure half (`parse*`, text in, facts out, used by tests with in-memory text) and a
 * file half (`load*`) that only adds the file name to errors. Nothing here knows how the diagram looks.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { EcomstreamError } from '../errors.js';

export class DiagramInputError extends EcomstreamError {
  declare readonly file: string;
  constructor(message: string, file: string, options?: { cause?: unknown }) {
    super(`${file}: ${message}`, { ...options, file });
  }
}

// ---------------------------------------------------------------------------------------------------
// docker-compose.yml

export interface PortMapping {
  /** The port on the host: what a user opens in a browser or connects to. */
  host: number;
  /** The port inside the container: what identifies the service (80 is pgAdmin's HTTP). */
  container: number;
}

export interface VolumeMount {
  /** `./data/input`, or a named volume such as `postgres_data`. */
  source: string;
  target: string;
  readOnly: boolean;
}

export interface ServiceFacts {
  key: string;
  containerName: string;
  /** `image:`; undefined for a service that is only built. */
  image: string | undefined;
  /** `build.dockerfile` (or `Dockerfile` when `build:` is a bare context). */
  dockerfile: string | undefined;
  ports: PortMapping[];
  /** Environment with `${VAR:-default}` resolved to its default, as `docker compose` does with no .env. */
  environment: Record<string, string>;
  volumes: VolumeMount[];
  networks: string[];
  replicas: number;
  /** `network_mode:`, e.g. `service:spark-master` for a container sharing another's network. */
  networkMode: string | undefined;
  /**
   * What the container runs, as a list of arguments with `${VAR:-default}` resolved: `entrypoint:`, when
   * the service sets one, followed by `command:` (Docker appends the command to the entrypoint).
   */
  command: string[];
  /** `profiles:`; a service with any is not started by a plain `docker compose up`. */
  profiles: string[];
}

export interface ComposeFacts {
  file: string;
  services: ServiceFacts[];
  /** The network every service shares (the spec's `spark_network`). */
  network: { name: string; driver: string };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `${VAR:-default}` / `${VAR-default}` -> default; `${VAR}` -> empty; `$$` -> `$` (Compose rules). */
export function interpolateDefaults(value: string): string {
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}/g, (_m, _name: string, def: string | undefined) => def ?? '').replace(/\$\$/g, '$');
}

function parsePort(entry: unknown, where: string, file: string): PortMapping {
  if (isRecord(entry)) {
    const container = Number(entry.target);
    const host = entry.published === undefined ? container : Number(entry.published);
    if (Number.isInteger(container) && Number.isInteger(host)) return { host, container };
  } else if (typeof entry === 'string' || typeof entry === 'number') {
    // "HOST:CONTAINER", "IP:HOST:CONTAINER", "CONTAINER", optionally with "/tcp".
    const parts = String(entry)
      .replace(/\/(tcp|udp)$/, '')
      .split(':');
    const container = Number(parts[parts.length - 1]);
    const host = parts.length >= 2 ? Number(parts[parts.length - 2]) : container;
    if (Number.isInteger(container) && Number.isInteger(host)) return { host, container };
  }
  throw new DiagramInputError(`${where}: cannot read port ${JSON.stringify(entry)} (expected "HOST:CONTAINER")`, file);
}

function parseVolume(entry: unknown, where: string, file: string): VolumeMount {
  if (typeof entry === 'string') {
    const [source, target, mode] = entry.split(':');
    if (source && target) return { source, target, readOnly: mode === 'ro' };
  } else if (isRecord(entry) && typeof entry.source === 'string' && typeof entry.target === 'string') {
    return { source: entry.source, target: entry.target, readOnly: entry.read_only === true };
  }
  throw new DiagramInputError(`${where}: cannot read volume ${JSON.stringify(entry)} (expected "SOURCE:TARGET")`, file);
}

function stringMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (Array.isArray(v)) {
    for (const item of v) {
      const [k, ...rest] = String(item).split('=');
      if (k) out[k] = interpolateDefaults(rest.join('='));
    }
  } else if (isRecord(v)) {
    // YAML scalars (strings, numbers, booleans) as Compose reads them: String() is their text.
    // eslint-disable-next-line @typescript-eslint/no-base-to-string
    for (const [k, val] of Object.entries(v)) out[k] = interpolateDefaults(val === null ? '' : String(val));
  }
  return out;
}

/** `command:` or `entrypoint:` as Compose reads it: a list, or a string split on white space. */
function argList(v: unknown): string[] {
  return Array.isArray(v) ? v.map(String) : typeof v === 'string' ? v.split(/\s+/).filter(Boolean) : [];
}

/** Parse the text of a Compose file into the facts the diagram needs. `file` names it in errors. */
export function parseCompose(text: string, file = 'docker-compose.yml'): ComposeFacts {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new DiagramInputError(`not valid YAML: ${(err as Error).message}`, file, { cause: err });
  }
  if (!isRecord(doc) || !isRecord(doc.services)) throw new DiagramInputError('no "services:" mapping', file);

  const services: ServiceFacts[] = [];
  for (const [key, raw] of Object.entries(doc.services)) {
    if (!isRecord(raw)) throw new DiagramInputError(`services.${key} is not a mapping`, file);
    const where = `services.${key}`;
    const build = raw.build;
    // eslint-disable-next-line @typescript-eslint/no-base-to-string -- a YAML scalar, as in stringMap()
    const dockerfile = isRecord(build) ? String(build.dockerfile ?? 'Dockerfile') : typeof build === 'string' ? 'Dockerfile' : undefined;
    const networks = Array.isArray(raw.networks) ? raw.networks.map(String) : isRecord(raw.networks) ? Object.keys(raw.networks) : [];
    const replicas = isRecord(raw.deploy) && Number.isInteger(raw.deploy.replicas) ? Number(raw.deploy.replicas) : 1;
    services.push({
      key,
      containerName: typeof raw.container_name === 'string' ? raw.container_name : key,
      image: typeof raw.image === 'string' ? interpolateDefaults(raw.image) : undefined,
      dockerfile,
      ports: (Array.isArray(raw.ports) ? raw.ports : []).map((p, i) => parsePort(p, `${where}.ports[${i}]`, file)),
      environment: stringMap(raw.environment),
      volumes: (Array.isArray(raw.volumes) ? raw.volumes : []).map((v, i) => parseVolume(v, `${where}.volumes[${i}]`, file)),
      networks,
      replicas,
      networkMode: typeof raw.network_mode === 'string' ? raw.network_mode : undefined,
      command: [...argList(raw.entrypoint), ...argList(raw.command)].map(interpolateDefaults),
      profiles: Array.isArray(raw.profiles) ? raw.profiles.map(String) : [],
    });
  }

  const nets = isRecord(doc.networks) ? Object.entries(doc.networks) : [];
  const first = nets[0];
  if (!first) throw new DiagramInputError('no "networks:" entry (the diagram shows the shared network)', file);
  const [netName, netDef] = first;
  const driver = isRecord(netDef) && typeof netDef.driver === 'string' ? netDef.driver : 'bridge';
  return { file, services, network: { name: netName, driver } };
}

/** Compose roles by service key; a Compose file that renames a service must rename it here too. */
export const SERVICE_KEYS = {
  generator: 'generator',
  master: 'spark-master',
  worker: 'spark-worker',
  postgres: 'postgres',
  pgadmin: 'pgadmin',
} as const;

/**
 * Helper containers shown inside the box they serve rather than as boxes of their own: the streaming
 * job's driver runs in the master's network (its UI is the master's :4040), the one-shot init
 * container only prepares the data folders, the one-shot settings check runs before the job, and the
 * optional extra workers are what the worker box's "Horizontally scalable" line stands for.
 */
export const HELPER_KEYS = { submit: 'spark-submit', init: 'data-init', settings: 'spark-job-settings', moreWorkers: 'spark-worker-more' } as const;

/** The value after `--flag` (or in `--flag=value`) in a command line. */
export function flagValue(command: readonly string[], flag: string): string | undefined {
  for (let i = 0; i < command.length; i++) {
    const arg = command[i]!;
    if (arg === flag) return command[i + 1];
    if (arg.startsWith(`${flag}=`)) return arg.slice(flag.length + 1);
  }
  return undefined;
}

/** The value of a Spark setting passed as `--conf key=value`. */
export function sparkConf(command: readonly string[], key: string): string | undefined {
  for (let i = 0; i < command.length - 1; i++) {
    if (command[i] === '--conf' && command[i + 1]!.startsWith(`${key}=`)) return command[i + 1]!.slice(key.length + 1);
  }
  return undefined;
}

export function loadCompose(file: string): ComposeFacts {
  return parseCompose(readText(file), path.basename(file));
}

// ---------------------------------------------------------------------------------------------------
// postgres/migrations/ (read as one schema)

export interface SchemaFacts {
  tables: string[];
  views: string[];
  /** Indexed columns of each table, in file order (a composite index reads "a+b"). */
  indexedColumns: Record<string, string[]>;
}

/** The schema's tables, views and indexed columns; enough for the PostgreSQL box, not a SQL parser. */
export function parseSchema(sql: string): SchemaFacts {
  const noComments = sql.replace(/--[^\n]*/g, '');
  const tables = [...noComments.matchAll(/CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?("?[\w.]+"?)/gi)].map((m) => unquote(m[1]!));
  const views = [...noComments.matchAll(/CREATE\s+(?:OR\s+REPLACE\s+)?VIEW\s+("?[\w.]+"?)/gi)].map((m) => unquote(m[1]!));
  const indexedColumns: Record<string, string[]> = {};
  for (const m of noComments.matchAll(/CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?\S+\s+ON\s+("?[\w.]+"?)\s*\(([^)]*)\)/gi)) {
    const table = unquote(m[1]!);
    const cols = m[2]!.split(',').map((c) => unquote(c.trim().split(/\s+/)[0]!));
    (indexedColumns[table] ??= []).push(cols.join('+'));
  }
  return { tables, views, indexedColumns };
}

function unquote(s: string): string {
  return s.replace(/"/g, '');
}

// ---------------------------------------------------------------------------------------------------
// generator.Dockerfile

/** The base image of a Dockerfile's final stage, following `FROM <earlier stage>` back to its image. */
export function parseDockerfileBase(text: string): string | undefined {
  const stages = new Map<string, string>();
  let last: string | undefined;
  for (const line of text.split('\n')) {
    const m = /^\s*FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
    if (!m) continue;
    const image = stages.get(m[1]!.toLowerCase()) ?? m[1]!;
    if (m[2]) stages.set(m[2].toLowerCase(), image);
    last = image;
  }
  return last;
}

// ---------------------------------------------------------------------------------------------------
// bench/results/latest.json

/** Written by the benchmark (`npm run bench`); every field optional, unknown fields ignored. */
export interface BenchResults {
  measuredAt?: string;
  machine?: string;
  engine?: {
    rowsPerSecond?: number;
    copyBoundRowsPerSecond?: number;
    ratio?: number;
    firstBatchMs?: number;
    latencyP50Ms?: number;
    latencyP99Ms?: number;
    peakRssMb?: number;
  };
}

/** A results file's JSON object; errors name the file. */
function resultsDocument(text: string, file: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new DiagramInputError(`not valid JSON: ${(err as Error).message}`, file, { cause: err });
  }
  if (!isRecord(doc)) throw new DiagramInputError('expected a JSON object', file);
  return doc;
}

/** When and where a results file was measured, as far as it says. */
function measurement(doc: Record<string, unknown>): { measuredAt?: string; machine?: string } {
  const out: { measuredAt?: string; machine?: string } = {};
  if (typeof doc.measuredAt === 'string') out.measuredAt = doc.measuredAt;
  if (typeof doc.machine === 'string') out.machine = doc.machine;
  return out;
}

const ENGINE_FIELDS = ['rowsPerSecond', 'copyBoundRowsPerSecond', 'ratio', 'firstBatchMs', 'latencyP50Ms', 'latencyP99Ms', 'peakRssMb'] as const;

/** Keep only well-typed fields, so a half-written or older results file cannot put "NaN" in a legend. */
export function parseBench(text: string, file = 'bench/results/latest.json'): BenchResults {
  const doc = resultsDocument(text, file);
  const out: BenchResults = measurement(doc);
  if (isRecord(doc.engine)) {
    const engine: NonNullable<BenchResults['engine']> = {};
    for (const k of ENGINE_FIELDS) {
      const v = doc.engine[k];
      if (typeof v === 'number' && Number.isFinite(v)) engine[k] = v;
    }
    out.engine = engine;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// bench/results/engines.json

/** One engine's figures in `npm run bench:engines` (bench/engines.ts); every field optional. */
export interface EngineRun {
  rows?: number;
  batches?: number;
  rowsPerSecond?: number;
  processingMs?: number;
  firstBatchCommittedAfterStartMs?: number;
  firstBatchDurationMs?: number;
  peakRssMb?: number;
  latencyP50Ms?: number;
  latencyP99Ms?: number;
  /** Spark's master URL, e.g. `local[2]`. */
  master?: string;
}

/** Written by `npm run bench:engines`: the Spark job and the TypeScript engine side by side. */
export interface EnginesResults {
  measuredAt?: string;
  machine?: string;
  spark?: EngineRun;
  typescript?: EngineRun;
}

const RUN_NUMBERS = [
  'rows',
  'batches',
  'rowsPerSecond',
  'processingMs',
  'firstBatchCommittedAfterStartMs',
  'firstBatchDurationMs',
  'peakRssMb',
  'latencyP50Ms',
  'latencyP99Ms',
] as const;

function parseRun(v: unknown): EngineRun | undefined {
  if (!isRecord(v)) return undefined;
  const run: EngineRun = {};
  for (const k of RUN_NUMBERS) {
    const n = v[k];
    if (typeof n === 'number' && Number.isFinite(n)) run[k] = n;
  }
  if (typeof v.master === 'string') run.master = v.master;
  return run;
}

/** Like parseBench: well-typed fields only, so an older or half-written file cannot show "NaN". */
export function parseEngines(text: string, file = 'bench/results/engines.json'): EnginesResults {
  const doc = resultsDocument(text, file);
  const out: EnginesResults = measurement(doc);
  const spark = parseRun(doc.spark);
  if (spark) out.spark = spark;
  const ts = parseRun(doc.typescript);
  if (ts) out.typescript = ts;
  return out;
}

// ---------------------------------------------------------------------------------------------------

export function readText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new DiagramInputError(`cannot read: ${(err as Error).message}`, file, { cause: err });
  }
}

export function readOptionalText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new DiagramInputError(`cannot read: ${(err as Error).message}`, file, { cause: err });
  }
}
