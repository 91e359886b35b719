/**
 * Both engines' batch quality score is the mean over the rows the batch stored (src/contract/batch.ts):
 * rows PostgreSQL refuses and duplicates count in neither the sum nor the number, and the progress record
 * carries the same score as stream_batches. The same files go to the Spark job and to the TypeScript
 * engine, each with its own database. Fixture and hand-computed scores: test/spark/quality.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { startTestDb } from '../support/pg.js';
import { publish, tempDir } from '../support/files.js';
import { REFUSE_ROWS_SQL, qualityBatches } from './quality.js';
import { describeRun, query, readProgress, runSpark, runTypeScriptEngine, sparkMissing, type RunResult, type SparkRunOptions } from './support.js';

const ENGINES: [string, (o: SparkRunOptions) => Promise<RunResult>][] = [
  ['the Spark job', runSpark],
  ['the TypeScript engine', runTypeScriptEngine],
];

test(
  'the quality score is the mean over the stored rows, in stream_batches and the progress record, in both engines',
  { skip: sparkMissing(), timeout: 900_000 },
  async () => {
    for (const [engine, runEngine] of ENGINES) await scoreRun(engine, runEngine);
  },
);

async function scoreRun(engine: string, runEngine: (o: SparkRunOptions) => Promise<RunResult>): Promise<void> {
  const db = await startTestDb();
  const work = await tempDir('ecomstream-spark-quality-');
  try {
    await db.query(REFUSE_ROWS_SQL);
    const input = path.join(work, 'input');
    const batches = qualityBatches();
    for (const b of batches) await publish(input, b.name, b.content);
    const progressFile = path.join(work, 'progress.jsonl');
    const r = await runEngine({ input, checkpoint: path.join(work, 'checkpoint'), progressFile, databaseUrl: db.url, maxFilesPerTrigger: 1 });
    assert.equal(r.code, 0, describeRun(engine, r));

    const recorded = await query<Record<string, string | number | null>>(
      db.url,
      `SELECT batch_id::int AS batch, input_rows AS input, inserted_rows AS inserted, duplicate_rows AS duplicates,
              rejected_rows AS rejected, quality_score::float8 AS quality FROM stream_batches ORDER BY batch_id`,
    );
    const expected = batches.map((b, i) => ({
      batch: i,
      input: b.input,
      inserted: b.inserted,
      duplicates: b.duplicates,
      rejected: b.rejected,
      quality: b.quality,
    }));
    assert.deepEqual(recorded, expected, `${engine}: stream_batches`);
    const progress = readProgress(progressFile).map((p) => ({
      batch: p.batchId,
      input: p.numInputRows,
      inserted: p.insertedRows,
      duplicates: p.duplicateRows,
      rejected: p.rejectedRows,
      quality: p.qualityScore,
    }));
    assert.deepEqual(progress, expected, `${engine}: progress records`);
    const stored = await query<{ event_id: string }>(db.url, 'SELECT event_id FROM user_events ORDER BY event_id');
    assert.deepEqual(
      stored.map((s) => s.event_id),
      batches.flatMap((b) => b.stored).sort(),
      `${engine}: stored rows`,
    );
  } finally {
    await db.close();
    if (!process.env.KEEP_TEST_OUTPUT) await fsp.rm(work, { recursive: true, force: true });
  }
}
