/**
 * Conformance in Spark local mode (local[2]): see conformance-check.ts for what is compared; the same
 * check runs against a standalone cluster in cluster.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { checkConformance } from './conformance-check.js';
import { startTestDb } from '../support/pg.js';
import { tableDdl } from '../../src/contract/ddl.js';
import { loadContractFile } from '../../src/contract/schema.js';
import { ROOT, describeRun, query, runSpark, runTypeScriptEngine, sparkMissing } from './support.js';

const missing = sparkMissing() ?? (fs.existsSync(path.join(ROOT, 'dist', 'cli', 'main.js')) ? undefined : 'dist/ not built: run npx tsc -p .');

test('the TypeScript engine and the Spark job store the same rows and rejects', { skip: missing, timeout: 900_000 }, async () => {
  await checkConformance(runSpark);
});

test(
  'a second feed (orders.json) through both engines with --contract: the same rows and rejects, in its own table',
  { skip: missing, timeout: 900_000 },
  async () => {
    const contractFile = path.join(ROOT, 'test', 'fixtures', 'contract', 'orders.json');
    const spec = loadContractFile(contractFile);
    const db = await startTestDb();
    const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'ecomstream-orders-'));
    try {
      const urls = { ts: db.url, spark: await db.freshDatabase() };
      for (const url of Object.values(urls)) await query(url, tableDdl(spec));
      const input = path.join(work, 'input');
      await fsp.mkdir(input, { recursive: true });
      const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
      const at = new Date(Date.now() - 60_000).toISOString();
      const header = spec.columns.map((c) => c.name).join(',');
      const files: [string, string[]][] = [
        [
          'orders_1.csv',
          [
            `${id(1)},C1,10.00,EUR,paid,${at},first`,
            `${id(2)},C2,0.005,USD,placed,${at},`,
            `${id(3)},C3,12.50,JPY,paid,${at},`,
            `${id(1)},C1,10.00,EUR,paid,${at},again`,
          ],
        ],
        [
          'orders_2.csv',
          [
            `${id(4)},C4,9999999999.995,EUR,paid,${at},`,
            `${id(5)},C5,1e2,GBP,shipped,${at.replace('Z', '+00:00')},"a, b"`,
            `ABCDEF00-0000-4000-8000-000000000006,C6,1,EUR,paid,${at},`,
          ],
        ],
        ['orders_3.csv', [`${id(1)},C9,1.00,EUR,paid,${at},late copy`, `${id(7)},C7,5,EUR,lost,${at},`, `${id(8)},C8,5,EUR,paid,2999-01-01T00:00:00Z,`]],
      ];
      for (const [i, [name, lines]] of files.entries()) {
        const file = path.join(input, name);
        await fsp.writeFile(file, [header, ...lines, ''].join('\n'));
        const t = new Date(Date.now() - 60_000 + i * 1000);
        await fsp.utimes(file, t, t);
      }
      const common = (engine: string, url: string) => ({
        input,
        contract: contractFile,
        checkpoint: path.join(work, `ck-${engine}`),
        progressFile: path.join(work, `p-${engine}.jsonl`),
        databaseUrl: url,
      });
      const ts = await runTypeScriptEngine({ ...common('ts', urls.ts), maxFilesPerTrigger: 1 });
      assert.equal(ts.code, 0, describeRun('TypeScript engine (orders)', ts));
      const spark = await runSpark({ ...common('spark', urls.spark), maxFilesPerTrigger: 1 });
      assert.equal(spark.code, 0, describeRun('Spark job (orders)', spark));

      const rows = (url: string) => query(url, `SELECT order_id, customer_id, amount::text AS amount, currency, status, note FROM orders ORDER BY order_id`);
      // Details name the batch timestamp, which differs between the two runs.
      const rejects = async (url: string) =>
        (
          await query<{ source_file: string; line_number: number; reason: string; detail: string; raw_line: string }>(
            url,
            'SELECT source_file, line_number, reason, detail, raw_line FROM rejected_events ORDER BY source_file, line_number',
          )
        ).map((r) => ({
          ...r,
          detail: r.detail.replace(/\d{4}-\d\d-\d\dT[\d:.]+Z$/, '<batch timestamp>'),
        }));
      const [rowsTs, rowsSpark, rejTs, rejSpark] = [await rows(urls.ts), await rows(urls.spark), await rejects(urls.ts), await rejects(urls.spark)];
      assert.deepEqual(
        rowsSpark.map((r) => `${r.order_id} ${r.amount} ${r.note}`),
        [`${id(1)} 10.00 first`, `${id(5)} 100.00 a, b`],
        'Spark: stored orders',
      );
      assert.deepEqual(
        rejSpark.map((r) => `${r.source_file}:${r.line_number}:${r.reason}`),
        [
          'orders_1.csv:3:amount_too_small',
          'orders_1.csv:4:unknown_currency',
          'orders_1.csv:5:duplicate_order',
          'orders_2.csv:2:invalid_amount',
          'orders_2.csv:4:invalid_order_id',
          'orders_3.csv:2:duplicate_order',
          'orders_3.csv:3:unknown_status',
          'orders_3.csv:4:created_in_future',
        ],
        'Spark: rejects',
      );
      assert.deepEqual(rowsSpark, rowsTs, 'orders differ between the engines (left: Spark, right: TypeScript)');
      assert.deepEqual(rejSpark, rejTs, 'rejected_events (with details) differ between the engines');
      assert.equal((await query(urls.spark, 'SELECT count(*)::int AS n FROM user_events'))[0]!.n, 0, 'the event table is untouched');
    } finally {
      await db.close();
      if (!process.env.KEEP_TEST_OUTPUT) await fsp.rm(work, { recursive: true, force: true });
    }
  },
);
