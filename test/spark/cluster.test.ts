/**
 * The job on a real standalone Spark cluster (master, workers and executors in their own JVMs, started by
 * cluster.ts), submitted with `spark-submit --master spark://…` as spark/README.md tells a user:
 *   - one worker of 2 cores (the spec's): the conformance check; an executor JVM SIGKILLed in the middle
 *     of a batch (the task is retried, the batch commits, every row once); the driver SIGKILLed between
 *     the database commit and Spark's commits/N, then the same spark-submit again (replay, every row once);
 *   - two workers of 1 core each: the batch's tasks run on executors of both, and the result is the
 *     TypeScript engine's.
 * Spark missing is a skip on a developer's machine and a failure in CI (support.ts sparkMissing).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startTestDb } from '../support/pg.js';
import { HEADER, row } from '../support/files.js';
import { appIdOf, masterArgs, startCluster, submitArgs, submitSpark, taskExecutors, workerArgs, type SparkCluster } from './cluster.js';
import { checkConformance } from './conformance-check.js';
import { ROOT, describeRun, query, readProgress, runTypeScriptEngine, sparkMissing, storedEvents, storedRejects } from './support.js';

const missing = sparkMissing() ?? (fs.existsSync(path.join(ROOT, 'dist', 'cli', 'main.js')) ? undefined : 'dist/ not built: run npx tsc -p .');
const STALL_FILE = 'events_stall_2.csv';

function ids(file: number, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `00000000-0000-4000-8000-${String(file).padStart(4, '0')}${String(i).padStart(8, '0')}`);
}

/** Writes `files` event files of `rows` valid rows each (oldest first), named events_<tag>_<k>.csv. */
async function writeFiles(input: string, tag: string, files: number, rows: number, extra: (k: number) => string[] = () => []): Promise<Set<string>> {
  await fsp.mkdir(input, { recursive: true });
  const expected = new Set<string>();
  const base = Date.now() - 600_000;
  for (let k = 1; k <= files; k++) {
    const lines = ids(k, rows).map((id) => row({ event_id: id, user_id: `U${k}` }));
    ids(k, rows).forEach((id) => expected.add(id));
    lines.push(...extra(k));
    const file = path.join(input, `events_${tag}_${k}.csv`);
    await fsp.writeFile(file, `${HEADER}\n${lines.join('\n')}\n`);
    const t = new Date(base + k * 1000);
    await fsp.utimes(file, t, t);
  }
  return expected;
}

async function assertStoredOnce(url: string, expected: Set<string>): Promise<void> {
  const stored = await query<{ event_id: string }>(url, 'SELECT event_id FROM user_events');
  assert.equal(stored.length, expected.size, 'every row stored exactly once');
  assert.deepEqual(new Set(stored.map((r) => r.event_id)), expected, 'no row lost, none invented');
  const [stage] = await query<{ n: string }>(url, "SELECT count(*)::text AS n FROM pg_tables WHERE tablename LIKE 'ecomstream_stage_%'");
  assert.equal(stage!.n, '0', 'no staging table left behind');
}

/** The pid of the executor JVM (CoarseGrainedExecutorBackend) among the ancestors of `pid`. */
function executorJvmOf(pid: number): number {
  for (let p = pid, i = 0; p > 1 && i < 10; i++) {
    const cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8');
    if (cmd.includes('CoarseGrainedExecutorBackend')) return p;
    const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
    p = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]); // field 4: ppid
  }
  throw new Error(`no executor JVM above pid ${pid}`);
}

async function waitFor(file: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!fs.existsSync(file) || fs.statSync(file).size === 0) {
    if (Date.now() > deadline) throw new Error(`${file} did not appear within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test("spark/README.md's cluster commands are the ones these tests run", () => {
  const readme = fs.readFileSync(path.join(ROOT, 'spark', 'README.md'), 'utf8');
  // Shell lines with their `\` continuations joined.
  const lines = readme
    .replace(/\s*\\\n\s*/g, ' ')
    .split('\n')
    .map((l) => l.trim());
  const master = 'spark://127.0.0.1:7077';
  assert.ok(lines.includes(`spark/.venv/bin/spark-class ${masterArgs(7077, 8080).join(' ')} &`), 'master command');
  assert.ok(lines.includes(`spark/.venv/bin/spark-class ${workerArgs(master, 8081, 2, '2G').join(' ')} &`), 'worker command');
  const submit = submitArgs(master, { input: '/shared/input', checkpoint: '/shared/checkpoints/spark', progressFile: '', databaseUrl: '' });
  const readmeArgs = submit.slice(0, submit.indexOf('--progress-file'));
  assert.ok(
    lines.some((l) => l.endsWith(`spark/.venv/bin/spark-submit ${readmeArgs.join(' ')}`)),
    `spark/README.md runs: spark-submit ${readmeArgs.join(' ')}`,
  );
});

test('standalone cluster, one worker of 2 cores', { skip: missing, timeout: 1_800_000 }, async (t) => {
  const scratch = await fsp.mkdtemp(path.join(os.tmpdir(), 'ecomstream-spark-cluster-test-'));
  const marker = path.join(scratch, 'stalled');
  let cluster: SparkCluster | undefined;
  try {
    cluster = await startCluster({ workers: 1, cores: 2, memory: '2G', workerEnv: { ECOMSTREAM_EXECUTOR_FAILPOINT: `stall:${STALL_FILE}:${marker}` } });
    const c = cluster;

    await t.test('spark-submit stores and rejects exactly what the TypeScript engine does', async () => {
      await checkConformance((o) => submitSpark(c, o));
    });

    await t.test('an executor JVM killed with SIGKILL mid-batch: the task is retried, the batch commits, every row once', async () => {
      const db = await startTestDb();
      try {
        const input = path.join(scratch, 'executor-input');
        const expected = await writeFiles(input, 'stall', 3, 200);
        const opts = { input, checkpoint: path.join(scratch, 'executor-ck'), progressFile: path.join(scratch, 'executor-progress.jsonl'), databaseUrl: db.url };
        const job = submitSpark(c, opts);
        // The first task to read STALL_FILE writes its pid and stalls: the batch is in flight.
        await waitFor(marker, 240_000);
        const jvm = executorJvmOf(Number(fs.readFileSync(marker, 'utf8')));
        process.kill(jvm, 'SIGKILL');
        const r = await job;
        assert.equal(r.code, 0, describeRun('spark-submit', r));
        await assertStoredOnce(db.url, expected);
        const batches = await query<{ batch_id: string; inserted_rows: string }>(db.url, 'SELECT batch_id::text, inserted_rows::text FROM stream_batches');
        assert.deepEqual(batches, [{ batch_id: '0', inserted_rows: '600' }], 'one batch, committed once');
        // The killed executor is gone and the worker started another one for the retried task.
        const appId = appIdOf(r);
        const worker = await c.workerJson(0);
        const executors = [...worker.executors, ...worker.finishedexecutors].filter((e) => e.appid === appId);
        assert.ok(executors.length >= 2, `the worker ran ${executors.length} executors for ${appId}, expected a replacement`);
        const ran = taskExecutors(c.eventLog(appId));
        assert.ok(ran.size >= 2, `tasks succeeded on executors ${[...ran].join(', ')}: the retry ran on the replacement`);
      } finally {
        await db.close();
      }
    });

    await t.test('the driver killed between the database commit and commits/N, then the same spark-submit: replay, every row once', async () => {
      const db = await startTestDb();
      try {
        const input = path.join(scratch, 'driver-input');
        const expected = await writeFiles(input, 'driver', 3, 50);
        const checkpoint = path.join(scratch, 'driver-ck');
        const opts = { input, checkpoint, progressFile: path.join(scratch, 'driver-progress.jsonl'), databaseUrl: db.url, maxFilesPerTrigger: 1 };
        const r1 = await submitSpark(c, { ...opts, env: { ECOMSTREAM_FAILPOINT: 'after-db-commit:1' } });
        assert.equal(r1.code, 128 + 9, describeRun('spark-submit 1 (the driver SIGKILLs itself)', r1));
        const batchIds = async (): Promise<string[]> =>
          (await query<{ b: string }>(db.url, 'SELECT batch_id::text AS b FROM stream_batches ORDER BY batch_id')).map((x) => x.b);
        assert.deepEqual(await batchIds(), ['0', '1'], 'batch 1 is committed in PostgreSQL');
        assert.ok(fs.existsSync(path.join(checkpoint, 'offsets', '1')) && !fs.existsSync(path.join(checkpoint, 'commits', '1')), 'but not in the checkpoint');

        const r2 = await submitSpark(c, opts);
        assert.equal(r2.code, 0, describeRun('spark-submit 2', r2));
        assert.deepEqual(await batchIds(), ['0', '1', '2']);
        assert.ok(fs.existsSync(path.join(checkpoint, 'commits', '1')));
        await assertStoredOnce(db.url, expected);
        const progress = readProgress(opts.progressFile);
        assert.ok(
          progress.some((p) => p.batchId === 1 && p.replay === true && p.alreadyCommitted === true),
          'batch 1 was replayed and found committed',
        );
      } finally {
        await db.close();
      }
    });
  } finally {
    await cluster?.stop();
    if (!process.env.KEEP_TEST_OUTPUT) await fsp.rm(scratch, { recursive: true, force: true });
  }
});

test('standalone cluster, two workers of 1 core: the batch runs on both, same result', { skip: missing, timeout: 900_000 }, async () => {
  const scratch = await fsp.mkdtemp(path.join(os.tmpdir(), 'ecomstream-spark-cluster2-test-'));
  let cluster: SparkCluster | undefined;
  const db = await startTestDb();
  try {
    cluster = await startCluster({ workers: 2, cores: 1, memory: '1G' });
    const c = cluster;
    const input = path.join(scratch, 'input');
    // Eight files (Spark packs small files into partitions of two cores' share), with a duplicate
    // inside the batch and a bad row, so the result is more than a row count.
    await writeFiles(input, 'two', 8, 100, (k) => (k === 5 ? [row({ event_id: ids(2, 100)[7]! }), row({ event_type: 'refund' })] : []));
    const urlTs = await db.freshDatabase();
    const ts = await runTypeScriptEngine({
      input,
      checkpoint: path.join(scratch, 'ck-ts'),
      progressFile: path.join(scratch, 'p-ts.jsonl'),
      databaseUrl: urlTs,
    });
    assert.equal(ts.code, 0, describeRun('TypeScript engine', ts));

    // While the job runs, the master's /json shows which workers give it an executor (a core in use).
    const busy = new Set<string>();
    let polling = true;
    const poll = (async () => {
      // Cleared once the job's run is over, while this loop awaits; TypeScript's narrowing does not see that.
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
      while (polling) {
        try {
          const m = await c.masterJson();
          if (m.activeapps.length) for (const w of m.workers) if (w.coresused > 0) busy.add(w.id);
        } catch {
          /* the master answers next time */
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
    const opts = { input, checkpoint: path.join(scratch, 'ck-spark'), progressFile: path.join(scratch, 'p-spark.jsonl'), databaseUrl: db.url };
    const r = await submitSpark(c, opts);
    polling = false;
    await poll;
    assert.equal(r.code, 0, describeRun('spark-submit', r));

    const master = await c.masterJson();
    assert.equal(master.aliveworkers, 2);
    assert.deepEqual(busy, new Set(master.workers.map((w) => w.id)), 'both workers ran an executor of the job (master /json)');
    const appId = appIdOf(r);
    const byWorker = await Promise.all(
      [0, 1].map(async (i) => {
        const w = await c.workerJson(i);
        return new Set([...w.executors, ...w.finishedexecutors].filter((e) => e.appid === appId).map((e) => String(e.id)));
      }),
    );
    const ran = taskExecutors(c.eventLog(appId));
    for (const [i, execs] of byWorker.entries()) {
      assert.ok(
        [...execs].some((e) => ran.has(e)),
        `tasks ran on worker ${i} (its executors ${[...execs].join(', ')}; tasks on ${[...ran].join(', ')})`,
      );
    }
    const [batch] = await query<{ n: string }>(db.url, 'SELECT count(*)::text AS n FROM stream_batches');
    assert.equal(batch!.n, '1', 'all eight files in one batch');

    assert.deepEqual(await storedEvents(db.url), await storedEvents(urlTs), 'user_events differ from the TypeScript engine');
    assert.deepEqual(await storedRejects(db.url), await storedRejects(urlTs), 'rejected_events differ from the TypeScript engine');
    assert.equal((await storedEvents(db.url)).length, 800);
  } finally {
    await db.close();
    await cluster?.stop();
    if (!process.env.KEEP_TEST_OUTPUT) await fsp.rm(scratch, { recursive: true, force: true });
  }
});
