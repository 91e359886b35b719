/**
 * Numbered, immutable migrations (postgres/migrations/NNNN_name.sql), the same files Docker Compose mounts
 * into /docker-entrypoint-initdb.d. `migrate` applies the pending ones in number order, one transaction
 * each; every file records itself in schema_migrations, and the runner adds the file's checksum.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectClient, newClient } from './client.js';
import { isConnectionError } from './errors.js';
import { EcomstreamError } from '../errors.js';

/** The project folder: two levels above this module in both src/ (tsx) and dist/ (compiled). */
export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const MIGRATIONS_DIR = path.join(PACKAGE_ROOT, 'postgres', 'migrations');

export type MigrationErrorCode = 'MIGRATION_FAILED' | 'MIGRATION_CHANGED' | 'MIGRATION_NOT_RECORDED' | 'MIGRATIONS_INVALID';

export class MigrationError extends EcomstreamError {
  constructor(code: MigrationErrorCode, message: string, options: { file?: string; cause?: unknown } = {}) {
    super(message, { ...options, code });
  }
}

export interface Migration {
  version: number;
  name: string;
  file: string;
  sql: string;
  checksum: string;
}

const FILE_NAME = /^(\d{4})_([a-z0-9_]+)\.sql$/;

/** The migrations of `dir`, numbered 1, 2, 3, … without gaps. */
export function listMigrations(dir: string = MIGRATIONS_DIR): Migration[] {
  const out: Migration[] = [];
  for (const name of fs.readdirSync(dir).sort()) {
    const m = FILE_NAME.exec(name);
    if (!m) throw new MigrationError('MIGRATIONS_INVALID', `${path.join(dir, name)}: migration files are named NNNN_name.sql`, { file: path.join(dir, name) });
    const file = path.join(dir, name);
    const sql = fs.readFileSync(file, 'utf8');
    out.push({ version: Number(m[1]), name: m[2]!, file, sql, checksum: createHash('sha256').update(sql).digest('hex') });
  }
  out.forEach((mig, i) => {
    if (mig.version !== i + 1) throw new MigrationError('MIGRATIONS_INVALID', `${mig.file}: expected migration number ${i + 1}`, { file: mig.file });
  });
  return out;
}

/** Applies the pending migrations; returns the files applied. */
export async function migrate(url: string, opts: { dir?: string; onApply?: (m: Migration) => void } = {}): Promise<Migration[]> {
  const migrations = listMigrations(opts.dir);
  const client = await connectClient(url, 'command');
  const applied: Migration[] = [];
  try {
    // One advisory lock so two processes starting at once do not apply the same file twice.
    await client.query('SELECT pg_advisory_lock(727274)');
    const table = await client.query<{ t: string | null }>(`SELECT to_regclass('schema_migrations')::text AS t`);
    const done = new Map<number, string | null>();
    if (table.rows[0]!.t) {
      for (const r of (await client.query<{ version: number; checksum: string | null }>('SELECT version, checksum FROM schema_migrations')).rows)
        done.set(r.version, r.checksum);
    }
    for (const m of migrations) {
      const sum = done.get(m.version);
      if (sum) {
        if (sum !== m.checksum)
          throw new MigrationError('MIGRATION_CHANGED', `${m.file} changed after it was applied (migrations are immutable: add a new numbered file)`, {
            file: m.file,
          });
        continue;
      }
      try {
        await client.query('BEGIN');
        if (!done.has(m.version)) await client.query(m.sql);
        const rec = await client.query('UPDATE schema_migrations SET checksum = $2 WHERE version = $1', [m.version, m.checksum]);
        if (rec.rowCount !== 1)
          throw new MigrationError('MIGRATION_NOT_RECORDED', `${m.file} does not insert its version ${m.version} into schema_migrations`, { file: m.file });
        await client.query('COMMIT');
      } catch (cause) {
        await client.query('ROLLBACK').catch(() => undefined);
        // A lost connection is retried by the caller (start-up waits for the server); anything else is this file's fault.
        if (cause instanceof MigrationError || isConnectionError(cause)) throw cause;
        throw new MigrationError('MIGRATION_FAILED', `applying ${m.file} failed: ${(cause as Error).message}`, { file: m.file, cause });
      }
      if (!done.has(m.version)) {
        applied.push(m);
        opts.onApply?.(m);
      }
    }
  } finally {
    await client.end().catch(() => undefined);
  }
  return applied;
}

/**
 * Creates database `name` on the server of `adminUrl` (dropping it first if it exists) and applies the
 * migrations; returns its URL. For tests and benchmarks that want a fresh database per case.
 */
export async function createMigratedDatabase(adminUrl: string, name: string): Promise<string> {
  const client = newClient(adminUrl, 'command');
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
