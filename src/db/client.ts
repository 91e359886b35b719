/**
 * The one place ecomstream opens a PostgreSQL connection. Every pool and client comes from here, with the
 * settings of its purpose (CONNECTIONS below) and always with an 'error' listener: pg emits 'error' on a
 * client whose connection breaks (besides failing the query in flight), and on a pool whose idle client
 * dies with the server; with no listener that event kills the process with a stack trace. The failing
 * query carries the error to its caller, so the event itself is only passed to `onError` when given.
 */
import pg from 'pg';
import { ConnectionLostError, isConnectionError } from './errors.js';

/** What a connection is for; each purpose has one row of settings in CONNECTIONS. */
export type ConnectionPurpose = 'batch' | 'probe' | 'dashboard' | 'listen' | 'command';

export interface ConnectionSettings {
  /** As pg_stat_activity shows the connection; unset = pg's default. */
  applicationName?: string;
  /** Connections a pool holds at most (pools only). */
  max?: number;
  /** How long connecting may take; 0 = no limit. */
  connectTimeoutMillis: number;
  /** How long an idle pooled connection is kept (pools only). */
  idleTimeoutMillis?: number;
  /** How long one query may take; unset = no limit. */
  queryTimeoutMillis?: number;
  /** TCP keep-alive, for a connection that mostly waits (LISTEN). */
  keepAlive?: boolean;
}

/** The connection settings of every purpose, in one table. */
export const CONNECTIONS = {
  /** The engine's batch writes (the sink): one batch at a time, plus one for start-up's guard. */
  batch: { max: 2, connectTimeoutMillis: 10_000, idleTimeoutMillis: 30_000 },
  /** The health monitor's `SELECT 1` (src/ops/health.ts): a slow answer counts as unreachable. */
  probe: { applicationName: 'ecomstream-health', max: 1, connectTimeoutMillis: 2000, queryTimeoutMillis: 2000, idleTimeoutMillis: 10_000 },
  /** The dashboard's snapshot reads, through the read-only role. */
  dashboard: { applicationName: 'ecomstream-dashboard', max: 2, connectTimeoutMillis: 3000, idleTimeoutMillis: 10_000 },
  /** The dashboard's LISTEN connection (src/dashboard/live.ts), which doubles as its health signal. */
  listen: { applicationName: 'ecomstream-dashboard-listen', connectTimeoutMillis: 3000, keepAlive: true },
  /** A one-shot command (migrate, query, checkpoint verify, creating the database): waits as pg does. */
  command: { connectTimeoutMillis: 0 },
} as const satisfies Record<ConnectionPurpose, ConnectionSettings>;

export interface OpenOptions {
  /** Told of the 'error' event (a lost connection), e.g. to log it. Default: ignored. */
  onError?: (err: Error) => void;
  /** Type parsers for this connection's results. */
  types?: pg.CustomTypesConfig;
}

function clientConfig(url: string, s: ConnectionSettings, types: pg.CustomTypesConfig | undefined): pg.ClientConfig {
  return {
    connectionString: url,
    ...(s.applicationName === undefined ? {} : { application_name: s.applicationName }),
    ...(s.connectTimeoutMillis ? { connectionTimeoutMillis: s.connectTimeoutMillis } : {}),
    ...(s.queryTimeoutMillis === undefined ? {} : { query_timeout: s.queryTimeoutMillis }),
    ...(s.keepAlive ? { keepAlive: true } : {}),
    ...(types ? { types } : {}),
  };
}

/** A pool for `purpose`; a dead idle client is reported to `onError`, never thrown. */
export function openPool(url: string, purpose: ConnectionPurpose, opts: OpenOptions = {}): pg.Pool {
  const s: ConnectionSettings = CONNECTIONS[purpose];
  const pool = new pg.Pool({
    ...clientConfig(url, s, opts.types),
    ...(s.max === undefined ? {} : { max: s.max }),
    ...(s.idleTimeoutMillis === undefined ? {} : { idleTimeoutMillis: s.idleTimeoutMillis }),
  });
  pool.on('error', opts.onError ?? (() => undefined));
  return pool;
}

/** A client for `purpose`, not yet connected. */
export function newClient(url: string, purpose: ConnectionPurpose, opts: OpenOptions = {}): pg.Client {
  const client = new pg.Client(clientConfig(url, CONNECTIONS[purpose], opts.types));
  client.on('error', opts.onError ?? (() => undefined));
  return client;
}

/**
 * `newClient` + connect. A failure to connect that the server did not explain with a SQLSTATE (the
 * socket closed during start-up, say) is a ConnectionLostError, so start-up retries it.
 */
export async function connectClient(url: string, purpose: ConnectionPurpose, opts: OpenOptions = {}): Promise<pg.Client> {
  const client = newClient(url, purpose, opts);
  try {
    await client.connect();
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && !isConnectionError(err)) throw err;
    throw new ConnectionLostError(`cannot connect to PostgreSQL: ${(err as Error).message}`, { cause: err });
  }
  return client;
}

/** Runs `use` on a connected client for `purpose`, and closes it afterwards whatever happens. */
export async function withConnection<T>(url: string, purpose: ConnectionPurpose, use: (client: pg.Client) => Promise<T>, opts: OpenOptions = {}): Promise<T> {
  const client = await connectClient(url, purpose, opts);
  try {
    return await use(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}
