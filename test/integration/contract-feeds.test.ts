/**
 * The contract is executable: the migrations' user_events is the event contract's table, and a second
 * feed (test/fixtures/contract/orders.json, its own columns, rules and table) goes through
 * `ecomstream process --contract FILE` with no code change, including the ON CONFLICT fallback.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { EVENT_CONTRACT } from '../../src/contract/event.js';
import { tableDdl } from '../../src/contract/ddl.js';
import { loadContractFile } from '../../src/contract/schema.js';
import { PACKAGE_ROOT } from '../../src/db/migrate.js';
import { startTestDb, withClient, type TestDb } from '../support/pg.js';
import { publish, tempDir } from '../support/files.js';

const ORDERS = path.join(PACKAGE_ROOT, 'test', 'fixtures', 'contract', 'orders.json');
const BIN = path.join(PACKAGE_ROOT, 'bin', 'ecomstream.js');

let db: TestDb;
before(async () => {
  db = await startTestDb();
});
after(async () => {
  await (db as TestDb | undefined)?.close(); // undefined when before() failed
});

const COLUMNS_SQL = `SELECT column_name, data_type, character_maximum_length AS len, numeric_precision AS p, numeric_scale AS s, is_nullable
  FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`;

test("the migrated user_events has the event contract's columns, types, nullability and unique conflict key", async () => {
  const url = await db.freshDatabase();
  await withClient(url, async (c) => {
    await c.query('CREATE SCHEMA from_contract');
    await c.query(`SET search_path TO from_contract; ${tableDdl(EVENT_CONTRACT)}`);
    const strip = (rows: { column_name: string }[]) => rows.filter((r) => r.column_name !== 'id' && r.column_name !== 'inserted_at');
    const initSql = strip((await c.query<{ column_name: string }>(COLUMNS_SQL, ['public', 'user_events'])).rows);
    const generated = strip((await c.query<{ column_name: string }>(COLUMNS_SQL, ['from_contract', 'user_events'])).rows);
    assert.deepEqual(
      initSql.map((r) => r.column_name),
      EVENT_CONTRACT.columns.map((col) => col.name),
    );
    assert.deepEqual(initSql, generated);
    const unique = await c.query(
      `SELECT 1 FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = i.indkey[0]
       WHERE t.relname = 'user_events' AND t.relnamespace = 'public'::regnamespace AND i.indisunique AND i.indnatts = 1 AND a.attname = $1`,
      [EVENT_CONTRACT.conflictKey],
    );
    assert.equal(unique.rowCount, 1, 'a unique index on the conflict key alone');
  });
});

function run(args: string[], url: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, DATABASE_URL: url } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => resolve({ code, out }));
  });
}

test('a second feed: `ecomstream process --contract orders.json` stores and rejects by that contract, into its own table', async () => {
  const url = await db.freshDatabase();
  const spec = loadContractFile(ORDERS);
  await withClient(url, (c) => c.query(tableDdl(spec)));
  const dir = await tempDir();
  const input = path.join(dir, 'in');
  const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
  const upper = 'ABCDEF00-0000-4000-8000-000000000004';
  const now = new Date(Date.now() - 60_000).toISOString();
  await publish(
    input,
    'orders_1.csv',
    [
      'order_id,customer_id,amount,currency,status,created_at,note',
      `${id(1)},C1,10.00,EUR,paid,${now},first`,
      `${id(2)},C2,0.005,USD,placed,${now},`,
      `${id(3)},C3,12.50,JPY,paid,${now},`,
      `${id(1)},C1,10.00,EUR,paid,${now},again`,
      `${upper},C4,1,EUR,paid,${now},`,
      '',
    ].join('\n'),
  );
  const args = [
    'process',
    '--contract',
    ORDERS,
    '--input',
    input,
    '--checkpoint',
    path.join(dir, 'ck'),
    '--trigger',
    'available-now',
    '--progress-file',
    path.join(dir, 'p.jsonl'),
  ];
  const first = await run(args, url);
  assert.equal(first.code, 0, first.out);
  // A later batch with an order stored by the first: the sink's ON CONFLICT fallback, by this contract's key.
  await publish(
    input,
    'orders_2.csv',
    [
      'order_id,customer_id,amount,currency,status,created_at,note',
      `${id(5)},C5,99.99,GBP,shipped,${now},`,
      `${id(1)},C9,1.00,EUR,paid,${now},late copy`,
      '',
    ].join('\n'),
  );
  const second = await run(args, url);
  assert.equal(second.code, 0, second.out);

  await withClient(url, async (c) => {
    const stored = (await c.query('SELECT order_id, customer_id, amount::text, currency, note FROM orders ORDER BY id')).rows;
    assert.deepEqual(stored, [
      { order_id: id(1), customer_id: 'C1', amount: '10.00', currency: 'EUR', note: 'first' },
      { order_id: id(5), customer_id: 'C5', amount: '99.99', currency: 'GBP', note: null },
    ]);
    const rejects = (await c.query('SELECT source_file, line_number, reason, detail FROM rejected_events ORDER BY source_file, line_number')).rows;
    assert.deepEqual(rejects, [
      { source_file: 'orders_1.csv', line_number: 3, reason: 'amount_too_small', detail: 'amount 0.005 is below 0.01' },
      { source_file: 'orders_1.csv', line_number: 4, reason: 'unknown_currency', detail: 'currency "JPY" is not one of EUR, USD, GBP' },
      { source_file: 'orders_1.csv', line_number: 5, reason: 'duplicate_order', detail: `order ${id(1)} appears earlier in this batch` },
      { source_file: 'orders_1.csv', line_number: 6, reason: 'invalid_order_id', detail: `order_id "${upper}" is not a lower-case UUID` },
      { source_file: 'orders_2.csv', line_number: 3, reason: 'duplicate_order', detail: `order ${id(1)} is already stored` },
    ]);
    assert.equal(Number((await c.query<{ n: string }>('SELECT count(*) n FROM user_events')).rows[0]!.n), 0, 'the event table is untouched');
  });
});
