/**
 * Which database errors are worth retrying, and which mean "this data cannot be stored".
 *
 * Retryable: the server is down, restarting or unreachable, the connection broke under us, or the
 * server is in a state that ends without us (no connection slot free, out of disk space): the list of
 * src/db/sqlstates.ts. They are recognised by SQLSTATE or Node error code, or by the sink having seen
 * its client emit a connection error (`ConnectionLostError`); never by message text.
 * Data errors (SQLSTATE classes 22 and 23): the server refused a value or a row. Retrying the same row
 * fails the same way, so the sink isolates the rows at fault instead (see src/sink/postgres.ts).
 */
import { EcomstreamError, type ErrorContext } from '../errors.js';
import { DISK_FULL, RETRYABLE_CAUSES, RETRYABLE_SQLSTATES as RETRYABLE } from './sqlstates.js';

const RETRYABLE_SQLSTATES = new Set(RETRYABLE.codes);
const RETRYABLE_NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
const DATA_SQLSTATE_CLASSES = ['22', '23']; // data_exception, integrity_constraint_violation

/** The connection of a client in use broke (its 'error' event fired): the operation may be retried. */
export class ConnectionLostError extends EcomstreamError {
  constructor(message: string, context: ErrorContext = {}) {
    super(message, { code: 'CONNECTION_LOST', ...context });
  }
}

function* chain(err: unknown): Generator {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) yield e;
}

function isSqlState(code: unknown): code is string {
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code);
}

function isRetryableCode(code: unknown): code is string {
  if (typeof code !== 'string') return false;
  return RETRYABLE_SQLSTATES.has(code) || RETRYABLE_NODE_CODES.has(code) || (isSqlState(code) && RETRYABLE.classes.some((p) => code.startsWith(p)));
}

/** The code in the cause chain that makes `err` retryable (a SQLSTATE or Node code), if any. */
function retryableCode(err: unknown): string | undefined {
  for (const e of chain(err)) {
    const code = (e as { code?: unknown }).code;
    if (isRetryableCode(code)) return code;
  }
  return undefined;
}

/** Worth a retry: a lost or refused connection, or a server state of the shared list (src/db/sqlstates.ts). */
export function isConnectionError(err: unknown): boolean {
  for (const e of chain(err)) if (e instanceof ConnectionLostError) return true;
  return retryableCode(err) !== undefined;
}

/** The server ran out of disk space (SQLSTATE 53100): reachable, but it cannot store anything. */
export function isDiskFull(err: unknown): boolean {
  return retryableCode(err) === DISK_FULL;
}

/**
 * One line for a retryable failure: its cause in words (`the database server is out of disk space`),
 * or `database unavailable`, then the server's or the socket's own message and code.
 */
export function describeUnavailable(err: unknown): string {
  const code = retryableCode(err);
  return `${unavailableCause(err) ?? 'database unavailable'} (${(err as Error).message}${code ? `; code ${code}` : ''})`;
}

/** The cause of a retryable failure in words when its code has one (src/db/sqlstates.ts), else undefined. */
export function unavailableCause(err: unknown): string | undefined {
  const code = retryableCode(err);
  return code === undefined ? undefined : RETRYABLE_CAUSES[code];
}

/** The server refused a value or a row (SQLSTATE class 22 or 23). */
export function isDataError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return isSqlState(code) && DATA_SQLSTATE_CLASSES.some((p) => code.startsWith(p));
}

/** Keeps the server's code, detail and constraint on the error, as pg-protocol reports them. */
export function describePgError(err: unknown): string {
  const e = err as { message?: string; code?: string; detail?: string; constraint?: string; where?: string };
  const parts = [e.message ?? String(err)];
  if (e.code) parts.push(`code ${e.code}`);
  if (e.constraint) parts.push(`constraint ${e.constraint}`);
  if (e.detail) parts.push(e.detail);
  return parts.join('; ');
}

/**
 * Runs `use` on a client checked out of `pool`, with its 'error' event handled: a connection that
 * breaks while in use (server crash, pg_terminate_backend) becomes a `ConnectionLostError` for the
 * caller to retry, not an unhandled 'error' event that kills the process. A broken client is discarded,
 * never returned to the pool.
 */
export async function withClient<T>(pool: import('pg').Pool, use: (client: import('pg').PoolClient) => Promise<T>): Promise<T> {
  let client: import('pg').PoolClient;
  try {
    client = await pool.connect();
  } catch (err) {
    // Failing to connect is a connection failure unless the server said otherwise (auth, no such db).
    if (isSqlState((err as { code?: unknown }).code) && !isConnectionError(err)) throw err;
    throw new ConnectionLostError(`cannot connect to PostgreSQL: ${(err as Error).message}`, { cause: err });
  }
  let lost: Error | undefined;
  const onError = (err: Error): void => {
    lost = err;
  };
  client.on('error', onError);
  try {
    return await use(client);
  } catch (err) {
    if (lost && !isConnectionError(err)) throw new ConnectionLostError(`the database connection broke: ${lost.message}`, { cause: err });
    throw err;
  } finally {
    client.off('error', onError);
    // A client whose connection broke cannot be reused; one that still works goes back to the pool.
    if (lost) {
      client.on('error', () => undefined); // late errors of a dead socket must not crash the process
      client.release(lost);
    } else client.release();
  }
}
