/**
 * The conformance check of the Spark suite, shared by the local-mode test (conformance.test.ts) and the
 * standalone-cluster test (cluster.test.ts): the same files through the TypeScript engine (database A) and
 * the Spark job (database B) must store the same user_events (without id and inserted_at) and the same
 * rejected_events (file, line, reason, raw line). Detail texts may differ, and so may batching: the
 * TypeScript engine takes every file in one batch, the Spark job three files per batch — the outcome must
 * not depend on it.
 *
 * Phase 1 is every kind of input (test/fixtures/conformance/phase1); phase 2 adds files later, as a new
 * batch, whose duplicates hit rows that phase 1 stored (the ON CONFLICT path of both sinks).
 */
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startTestDb } from '../support/pg.js';
import {
  FIXTURES,
  batchTotals,
  describeRun,
  readProgress,
  renderFixtures,
  runTypeScriptEngine,
  storedEvents,
  storedRejects,
  type RunResult,
  type SparkRunOptions,
} from './support.js';

/** What phase 1 + phase 2 must produce (derived by hand from the fixtures), so both engines cannot agree on a wrong answer. */
const EXPECTED_REASONS: Record<string, number> = {
  duplicate_event_id: 7,
  invalid_event_type: 4,
  missing_required: 2,
  invalid_device_type: 1,
  invalid_price: 3,
  negative_price: 1,
  invalid_timestamp: 3,
  stale_timestamp: 2,
  future_timestamp: 1,
  field_too_long: 2,
  wrong_column_count: 2,
  malformed_csv: 3,
  invalid_encoding: 2,
  missing_header: 1,
  bad_header: 3,
  empty_file: 2,
};
const EXPECTED_EVENTS = 21;

function reasonCounts(rows: readonly Record<string, unknown>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of rows) out[String(r.reason)] = (out[String(r.reason)] ?? 0) + 1;
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

/** Runs both phases through both engines (`spark` runs the Spark job) and compares what they stored. */
export async function checkConformance(spark: (o: SparkRunOptions) => Promise<RunResult>): Promise<void> {
  const db = await startTestDb();
  const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'ecomstream-conformance-'));
  try {
    const urlTs = db.url;
    const urlSpark = await db.freshDatabase();
    const input = path.join(work, 'input');
    const common = (engine: string, url: string) => ({
      input,
      checkpoint: path.join(work, `checkpoint-${engine}`),
      progressFile: path.join(work, `progress-${engine}.jsonl`),
      databaseUrl: url,
    });

    for (const phase of ['phase1', 'phase2']) {
      const now = Date.now();
      await renderFixtures(path.join(FIXTURES, phase), input, now, now - 120_000);
      const ts = await runTypeScriptEngine({ ...common('ts', urlTs) });
      assert.equal(ts.code, 0, describeRun(`TypeScript engine (${phase})`, ts));
      const sparkRun = await spark({ ...common('spark', urlSpark), maxFilesPerTrigger: 3 });
      assert.equal(sparkRun.code, 0, describeRun(`Spark job (${phase})`, sparkRun));
    }

    const [eventsTs, eventsSpark] = [await storedEvents(urlTs), await storedEvents(urlSpark)];
    const [rejectsTs, rejectsSpark] = [await storedRejects(urlTs), await storedRejects(urlSpark)];

    // The Spark side against the hand-derived expectation (a readable failure before the big diff).
    assert.equal(eventsSpark.length, EXPECTED_EVENTS, 'Spark: number of stored events');
    assert.deepEqual(
      reasonCounts(rejectsSpark),
      reasonCounts(Object.entries(EXPECTED_REASONS).flatMap(([reason, n]) => Array<{ reason: string }>(n).fill({ reason }))),
      'Spark: reasons',
    );

    // The two engines against each other.
    assert.deepEqual(eventsSpark, eventsTs, 'user_events differ between the engines (left: Spark, right: TypeScript)');
    assert.deepEqual(reasonCounts(rejectsSpark), reasonCounts(rejectsTs), 'reason counts differ between the engines');
    assert.deepEqual(rejectsSpark, rejectsTs, 'rejected_events (file, line, reason, raw line) differ between the engines');

    // Batch records: different batching, same totals.
    const [totalsTs, totalsSpark] = [await batchTotals(urlTs), await batchTotals(urlSpark)];
    const { batches: batchesSpark, ...restSpark } = totalsSpark;
    const { batches: _batchesTs, ...restTs } = totalsTs;
    assert.deepEqual(restSpark, restTs, 'stream_batches totals differ');
    assert.ok(Number(batchesSpark) >= 4, `Spark ran ${batchesSpark} batches, expected several (3 files per batch)`);

    // Progress records of the same shape.
    const pTs = readProgress(path.join(work, 'progress-ts.jsonl'));
    const pSpark = readProgress(path.join(work, 'progress-spark.jsonl'));
    assert.equal(pSpark.length, Number(batchesSpark));
    assert.deepEqual(Object.keys(pSpark[0]!).sort(), Object.keys(pTs[0]!).sort(), 'progress record fields differ');
    assert.equal(pSpark[0]!.engine, 'spark');
  } finally {
    await db.close();
    if (!process.env.KEEP_TEST_OUTPUT) await fsp.rm(work, { recursive: true, force: true });
  }
}
