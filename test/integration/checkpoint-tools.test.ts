/**
 * `ecomstream checkpoint inspect` and `verify`, run as a user runs them, on checkpoints the engine wrote:
 * a clean run, a crash between the database commit and commits/N, and a database that disagrees.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import pg from 'pg';
import type { CheckpointReport } from '../../src/checkpoint/inspect.js';
import { query, startTestDb, type TestDb } from '../support/pg.js';
import { cli } from '../support/cli.js';
import { csv, publish, row, tempDir } from '../support/files.js';

let db: TestDb;
before(async () => {
  db = await startTestDb();
});
after(async () => {
  await (db as TestDb | undefined)?.close(); // undefined when before() failed
});

async function threeBatches(env: Record<string, string> = {}): Promise<{ url: string; ck: string }> {
  const url = await db.freshDatabase();
  const dir = await tempDir();
  const input = path.join(dir, 'in');
  for (let f = 0; f < 3; f++) await publish(input, `events_${f}.csv`, csv(row(), row()));
  const ck = path.join(dir, 'ck');
  const r = await cli(
    [
      'process',
      '--input',
      input,
      '--checkpoint',
      ck,
      '--trigger',
      'available-now',
      '--max-files-per-trigger',
      '1',
      '--progress-file',
      path.join(dir, 'p.jsonl'),
    ],
    { DATABASE_URL: url, ...env },
  );
  if (!env.ECOMSTREAM_FAILPOINT) assert.equal(r.code, 0, r.stderr);
  return { url, ck };
}

describe('checkpoint inspect', () => {
  test('--json after a clean run: ids, batches, seen files, log sizes, no lock', async () => {
    const { url, ck } = await threeBatches();
    const r = await cli(['checkpoint', 'inspect', '--checkpoint', ck, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as CheckpointReport;
    assert.equal(report.engine, 'typescript');
    assert.deepEqual([report.lastPlannedBatch, report.lastCommittedBatch, report.pendingReplay, report.filesSeen], [2, 2, null, 3]);
    assert.deepEqual(report.lock, { state: 'none' });
    assert.equal(report.logs.offsets.entries, 3);
    assert.ok(report.logs.offsets.bytes > 0 && report.logs.commits.bytes > 0);
    const text = await cli(['checkpoint', 'inspect', '--checkpoint', ck]);
    assert.match(text.stdout, /last committed\s+2/);
    assert.match(text.stdout, new RegExp(`stream id\\s+${String(report.streamId)}`));
    const stored = (await query<{ stream_id: string }>(url, 'SELECT DISTINCT stream_id FROM stream_batches')).map((x) => x.stream_id);
    assert.deepEqual(stored, [report.streamId]);
  });

  test('a crash between the database commit and commits/1: replay pending, verify notes it and passes', async () => {
    const { url, ck } = await threeBatches({ ECOMSTREAM_FAILPOINT: 'after-db-commit:1' });
    const report = JSON.parse((await cli(['checkpoint', 'inspect', '--checkpoint', ck, '--json'])).stdout) as CheckpointReport;
    assert.deepEqual(report.pendingReplay?.batchId, 1);
    assert.deepEqual(report.pendingReplay.files, ['events_1.csv']);
    const v = await cli(['checkpoint', 'verify', '--checkpoint', ck], { DATABASE_URL: url });
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stdout, /note: batch 1: committed in the database, commits\/1 not yet written/);
    assert.match(v.stdout, /ok: .* agrees with stream_batches/);
  });
});

describe('checkpoint verify', () => {
  test('exits non-zero and names each mismatch', async () => {
    const { url, ck } = await threeBatches();
    const ok = await cli(['checkpoint', 'verify', '--checkpoint', ck], { DATABASE_URL: url });
    assert.equal(ok.code, 0, ok.stderr);
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    const streamId = (await c.query<{ stream_id: string }>('SELECT stream_id FROM stream_batches LIMIT 1')).rows[0]!.stream_id;
    await c.query('DELETE FROM stream_batches WHERE batch_id = 0');
    await c.query('UPDATE stream_batches SET files = \'[{"name":"other.csv","size":1,"mtimeMs":1}]\' WHERE batch_id = 1');
    await c.query(
      `INSERT INTO stream_batches (stream_id, batch_id, engine, files, batch_timestamp, input_rows, inserted_rows, duplicate_rows, rejected_rows)
                   VALUES ($1, 9, 'typescript', '[]', now(), 0, 0, 0, 0)`,
      [streamId],
    );
    await c.end();
    const bad = await cli(['checkpoint', 'verify', '--checkpoint', ck], { DATABASE_URL: url });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /mismatch: batch 0: commits\/0 exists, but stream_batches has no row for it/);
    assert.match(bad.stderr, /mismatch: batch 1: offsets\/1 planned events_1\.csv, stream_batches lists other\.csv/);
    assert.match(bad.stderr, /mismatch: batch 9: recorded in stream_batches, but the checkpoint never planned it/);
    assert.match(bad.stderr, /3 mismatches between/);

    const other = await db.freshDatabase();
    const wrongDb = await cli(['checkpoint', 'verify', '--checkpoint', ck], { DATABASE_URL: other });
    assert.equal(wrongDb.code, 1);
    assert.match(wrongDb.stderr, /knows no batch of this stream \(wrong database\?\)/);
  });
});
