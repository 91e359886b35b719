/**
 * Real PostgreSQL for tests: one embedded server per test file (each `node --test` file is its own
 * process), in a temporary folder, removed afterwards unless the test failed and KEEP_TEST_DB=1.
 * With TEST_DATABASE_URL set, that server is used instead and each call gets a fresh database.
 */
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startEmbedded, type EmbeddedServer } from '../../src/db/embedded.js';
import { createMigratedDatabase } from '../../src/db/migrate.js';

export interface TestDb {
  /** URL of a freshly migrated database. */
  url: string;
  server: EmbeddedServer | undefined;
  /** Run a query on a short-lived client. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<pg.QueryResult<R>>;
  /** Another freshly migrated database on the same server. */
  freshDatabase(): Promise<string>;
  close(): Promise<void>;
}

let counter = 0;

export async function startTestDb(): Promise<TestDb> {
  let server: EmbeddedServer | undefined;
  let adminUrl: string;
  let dir: string | undefined;
  if (process.env.TEST_DATABASE_URL) {
    adminUrl = process.env.TEST_DATABASE_URL;
  } else {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ecomstream-test-pg-'));
    await fsp.chmod(dir, 0o755);
    server = await startEmbedded({
      dataDir: path.join(dir, 'data'),
      port: 15432 + Math.floor(Math.random() * 2000),
      user: 'sparkuser',
      password: 'sparkpass123',
      database: 'ecommerce_events',
    });
    adminUrl = server.url;
  }
  const freshDatabase = (): Promise<string> => createMigratedDatabase(adminUrl, `t_${process.pid}_${Date.now()}_${counter++}`);
  const url = await freshDatabase();
  return {
    url,
    server,
    freshDatabase,
    async query(sql, params) {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        return await c.query(sql, params as never);
      } finally {
        await c.end();
      }
    },
    async close() {
      await server?.stop();
      if (dir) await fsp.rm(dir, { recursive: true, force: true });
    },
  };
}

/** Runs `f` with a short-lived client of `url`. */
export async function withClient<T>(url: string, f: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await f(c);
  } finally {
    await c.end();
  }
}

/** The rows of one query, on a short-lived client. */
export async function query<R extends pg.QueryResultRow = pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []): Promise<R[]> {
  return withClient(url, async (c) => (await c.query<R>(sql, params)).rows);
}

/** The column `n` of the first row of `sql`, as a number: `SELECT count(*) AS n ...`. */
export async function count(url: string, sql: string): Promise<number> {
  return Number((await query<{ n: string | number }>(url, sql))[0]!.n);
}
