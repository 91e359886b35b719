/**
 * Numbered migrations: a database created by the init script that preceded them (now
 * postgres/migrations/0002_initial.sql) upgrades without losing a row; applied files are immutable; a
 * file that does not record itself is refused.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { listMigrations, migrate, MigrationError, MIGRATIONS_DIR } from '../../src/db/migrate.js';
import { startTestDb, withClient, type TestDb } from '../support/pg.js';
import { tempDir } from '../support/files.js';

let db: TestDb;
before(async () => {
  db = await startTestDb();
});
after(async () => {
  await (db as TestDb | undefined)?.close(); // undefined when before() failed
});

/** A database with nothing applied, on the test server. */
async function emptyDatabase(): Promise<string> {
  const name = `m_${process.pid}_${Date.now()}_${Math.floor(Math.random() * 1e6)}`;
  await db.query(`CREATE DATABASE "${name}"`);
  const u = new URL(db.url);
  u.pathname = `/${name}`;
  return u.href;
}

/** The init script as it was before migrations: 0002 without the header it gained and its self-record. */
function legacyInitSql(): string {
  const sql = listMigrations().find((m) => m.name === 'initial')!.sql;
  const end = sql.indexOf('-- schema_migrations: this migration records itself');
  assert.ok(end > 0);
  return sql.slice(0, end);
}

test('a database created by the pre-migration init.sql upgrades without losing a row, and a second run applies nothing', async () => {
  const url = await emptyDatabase();
  const counts = async (c: pg.Client) =>
    (
      await c.query<{
        events: number;
        rejects: number;
        batches: number;
        dash: number;
      }>(`SELECT (SELECT count(*) FROM user_events)::int AS events, (SELECT count(*) FROM rejected_events)::int AS rejects,
                           (SELECT count(*) FROM stream_batches)::int AS batches, (SELECT events FROM dash_event_types WHERE event_type = 'view')::int AS dash`)
    ).rows[0];
  const before = await withClient(url, async (c) => {
    await c.query(legacyInitSql());
    await c.query('BEGIN');
    await c.query(`INSERT INTO user_events (event_id, user_id, event_type, product_id, price, event_timestamp)
                   SELECT 'e' || g, 'U1', 'view', 'P1', 1.5, now() FROM generate_series(1, 250) g`);
    await c.query(`INSERT INTO rejected_events (stream_id, batch_id, source_file, line_number, reason) VALUES ('s', 0, 'f.csv', 3, 'stale_timestamp')`);
    await c.query(`INSERT INTO stream_batches (stream_id, batch_id, engine, files, batch_timestamp, input_rows, inserted_rows, duplicate_rows, rejected_rows)
                   VALUES ('s', 0, 'typescript', '[]', now(), 251, 250, 0, 1)`);
    await c.query('COMMIT');
    assert.equal((await c.query<{ t: string | null }>(`SELECT to_regclass('schema_migrations') AS t`)).rows[0]!.t, null);
    return counts(c);
  });
  assert.deepEqual(before, { events: 250, rejects: 1, batches: 1, dash: 250 });

  const applied = await migrate(url);
  assert.deepEqual(
    applied.map((m) => m.version),
    listMigrations().map((m) => m.version),
  );
  await withClient(url, async (c) => {
    assert.deepEqual(await counts(c), before, 'every row and aggregate survives the upgrade');
    const recorded = (await c.query('SELECT version, name, checksum FROM schema_migrations ORDER BY version')).rows;
    assert.deepEqual(
      recorded,
      listMigrations().map((m) => ({ version: m.version, name: m.name, checksum: m.checksum })),
    );
  });
  assert.deepEqual(await migrate(url), [], 'nothing pending the second time');
});

test('files applied outside `ecomstream migrate` (as Docker initdb does) are recorded, and the runner adds their checksums', async () => {
  const url = await emptyDatabase();
  await withClient(url, async (c) => {
    for (const m of listMigrations()) await c.query(m.sql);
    assert.deepEqual(
      (await c.query<{ version: number }>('SELECT version FROM schema_migrations WHERE checksum IS NULL ORDER BY version')).rows.map((r) => r.version),
      listMigrations().map((m) => m.version),
    );
  });
  assert.deepEqual(await migrate(url), []);
  await withClient(url, async (c) =>
    assert.equal((await c.query<{ n: number }>('SELECT count(*)::int AS n FROM schema_migrations WHERE checksum IS NULL')).rows[0]!.n, 0),
  );
});

test('an applied migration that changed is refused; so is a file that does not record itself', async () => {
  const dir = await tempDir('migrations-');
  for (const m of listMigrations()) await fsp.copyFile(m.file, path.join(dir, path.basename(m.file)));
  const url = await emptyDatabase();
  await migrate(url, { dir });
  const first = path.join(dir, path.basename(listMigrations()[0]!.file));
  await fsp.appendFile(first, '\n-- edited\n');
  await assert.rejects(migrate(url, { dir }), (e: unknown) => e instanceof MigrationError && e.code === 'MIGRATION_CHANGED' && e.file === first);
  await fsp.copyFile(listMigrations()[0]!.file, first);
  const next = String(listMigrations().length + 1).padStart(4, '0');
  await fsp.writeFile(path.join(dir, `${next}_forgets_itself.sql`), 'CREATE TABLE forgotten (x INT);\n');
  await assert.rejects(migrate(url, { dir }), (e: unknown) => e instanceof MigrationError && e.code === 'MIGRATION_NOT_RECORDED');
  await withClient(url, async (c) =>
    assert.equal((await c.query<{ t: string | null }>(`SELECT to_regclass('forgotten') AS t`)).rows[0]!.t, null, 'rolled back'),
  );
  assert.ok(MIGRATIONS_DIR.endsWith(path.join('postgres', 'migrations')));
});
