/**
 * A short-lived client for one command (migrate, query, create database). pg emits 'error' on a client
 * whose connection breaks, besides failing the query in flight; with no listener that event kills the
 * process with a stack trace. Here the failing query carries the error, so the event is only recorded.
 */
import pg from 'pg';
import { ConnectionLostError, isConnectionError } from './errors.js';

export function newClient(config: pg.ClientConfig): pg.Client {
  const client = new pg.Client(config);
  client.on('error', () => undefined);
  return client;
}

/**
 * `newClient` + connect. A failure to connect that the server did not explain with a SQLSTATE (the
 * socket closed during start-up, say) is a ConnectionLostError, so start-up retries it.
 */
export async function connectClient(config: pg.ClientConfig): Promise<pg.Client> {
  const client = newClient(config);
  try {
    await client.connect();
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && !isConnectionError(err)) throw err;
    throw new ConnectionLostError(`cannot connect to PostgreSQL: ${(err as Error).message}`, { cause: err });
  }
  return client;
}
