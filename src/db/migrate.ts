/** Applies `postgres/init.sql` (idempotent) — the same script Docker Compose mounts. */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { connectClient, newClient } from './client.js';
import { isConnectionError } from './errors.js';
import { EcomstreamError } from '../errors.js';

/** The project folder: two levels above this module in both src/ (tsx) and dist/ (compiled). */
export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const INIT_SQL = path.join(PACKAGE_ROOT, 'postgres', 'init.sql');

export async function migrate(url: string, file: string = INIT_SQL): Promise<void> {
  const sql = await fsp.readFile(file, 'utf8');
  const client = await connectClient({ connectionString: url });
  try {
    // One advisory lock so two processes starting at once do not race on CREATE ... IF NOT EXISTS.
    await client.query('SELECT pg_advisory_lock(727274)');
    await client.query(sql);
  } catch (cause) {
    if (isConnectionError(cause)) throw cause;
    throw new EcomstreamError(`applying ${file} failed: ${(cause as Error).message}`, { cause, file, code: (cause as { code?: string }).code });
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Creates database `name` on the server of `adminUrl` (dropping it first if it exists) and applies the
 * schema; returns its URL. For tests and benchmarks that want a fresh database per case.
 */
export async function createMigratedDatabase(adminUrl: string, name: string): Promise<string> {
  const client = newClient({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS "${name}"`);
    await client.query(`CREATE DATABASE "${name}"`);
  } finally {
    await client.end();
  }
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  await migrate(u.href);
  return u.href;
}
