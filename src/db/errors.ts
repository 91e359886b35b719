/**
 * Which database errors are worth retrying. Only connection-level failures are: the server is down,
 * restarting or unreachable. Anything else (a constraint, a bad value) would fail the same way again.
 */
const RETRYABLE_SQLSTATE_PREFIXES = ['08']; // connection_exception class
const RETRYABLE_SQLSTATES = new Set([
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up / shutting down)
  '53300', // too_many_connections
]);
const RETRYABLE_NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'EAI_AGAIN']);
const RETRYABLE_MESSAGES = [/Connection terminated/i, /connection ended/i, /Client has encountered a connection error/i, /not queryable/i];

export function isConnectionError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') {
      if (RETRYABLE_SQLSTATES.has(code) || RETRYABLE_NODE_CODES.has(code)) return true;
      if (code.length === 5 && RETRYABLE_SQLSTATE_PREFIXES.some((p) => code.startsWith(p))) return true;
    }
    const message = (e as { message?: unknown }).message;
    if (typeof message === 'string' && RETRYABLE_MESSAGES.some((r) => r.test(message))) return true;
  }
  return false;
}

/** Keeps the server's code, detail and constraint on the error, as pg-protocol reports them. */
export function describePgError(err: unknown): string {
  const e = err as { message?: string; code?: string; detail?: string; constraint?: string };
  const parts = [e.message ?? String(err)];
  if (e.code) parts.push(`code ${e.code}`);
  if (e.constraint) parts.push(`constraint ${e.constraint}`);
  if (e.detail) parts.push(e.detail);
  return parts.join('; ');
}

/** The SQLSTATE or Node error code of an error or of its first cause that has one; `unknown` if none. */
export function errorCode(err: unknown): string {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code) return code;
  }
  return 'unknown';
}
