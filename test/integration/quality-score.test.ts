/**
 * The batch quality score (src/contract/batch.ts) is computed once, over the rows the batch stored, and
 * the same number reaches progress.jsonl and stream_batches. Rows PostgreSQL refuses (a CHECK constraint
 * this test adds to its own database) and rows already stored by an earlier batch count in neither the
 * sum nor the number; empty optional fields give the stored rows different weights.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import path from 'node:path';
import { loadConfig } from '../../src/config.js';
import { StreamEngine } from '../../src/engine/stream.js';
import { silentLogger } from '../../src/log.js';
import { query, startTestDb, type TestDb } from '../support/pg.js';
import { csv, publish, readProgress, row, tempDir } from '../support/files.js';

let db: TestDb;
before(async () => {
  db = await startTestDb();
});
after(async () => {
  await (db as TestDb | undefined)?.close(); // undefined when before() failed
});

test('rows refused by PostgreSQL and stored duplicates count in neither the sum nor the number: one score in progress.jsonl and stream_batches', async () => {
  const url = await db.freshDatabase();
  await query(url, "ALTER TABLE user_events ADD CONSTRAINT no_refused_products CHECK (product_name <> 'refuse me')");
  const dir = await tempDir();
  const input = path.join(dir, 'in');
  const full = (): string => row(); // weight 1.0
  const oneEmpty = (): string => row({ session_id: '' }); // 0.9
  const twoEmpty = (o: { event_id?: string } = {}): string => row({ session_id: '', price: '', ...o }); // 0.8
  const refused = (): string => row({ product_name: 'refuse me' }); // 1.0, refused by the CHECK
  const stored = crypto.randomUUID();
  // Batch 0 stores 3 x 1.0 + 2 x 0.9 + 0.8 (the last one `stored`) = 5.6 over 6 rows; two 1.0 rows are refused.
  await publish(input, 'events_1.csv', csv(full(), refused(), full(), oneEmpty(), full(), refused(), oneEmpty(), twoEmpty({ event_id: stored })));
  // Batch 1 stores 1.0 + 0.9 over 2 rows; a repeat of `stored` (0.8) and a refused row (1.0) are rejected.
  await publish(input, 'events_2.csv', csv(full(), twoEmpty({ event_id: stored }), refused(), oneEmpty()));
  const config = loadConfig({
    engine: {
      inputDir: input,
      checkpointDir: path.join(dir, 'ck'),
      progressFile: path.join(dir, 'progress.jsonl'),
      trigger: { kind: 'available-now' },
      maxFilesPerTrigger: 1,
      fileSettleMillis: 0,
    },
  });
  await new StreamEngine({ engine: config.engine, databaseUrl: url, log: silentLogger }).run();

  const want = [0.933, 0.95]; // round(5.6 / 6, 3), round(1.9 / 2, 3)
  const progress = await readProgress(path.join(dir, 'progress.jsonl'));
  assert.deepEqual(
    progress.map((p) => [p.insertedRows, p.duplicateRows, p.rejectedRows, p.qualityScore]),
    [
      [6, 0, 2, want[0]],
      [2, 1, 1, want[1]],
    ],
  );
  const batches = await query<{ q: number }>(url, 'SELECT quality_score::float AS q FROM stream_batches ORDER BY batch_id');
  assert.deepEqual(
    batches.map((b) => b.q),
    want,
  );
});
