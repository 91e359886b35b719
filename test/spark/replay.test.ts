/**
 * Exactly-once of the Spark job across crashes: the driver is killed with SIGKILL (ECOMSTREAM_FAILPOINT)
 *   run 1: in batch 1 after its rows reached the staging tables, before the batch transaction;
 *   run 2: replays batch 1 from Spark's offsets log, then dies in batch 2 after the PostgreSQL commit and
 *          before Spark wrote commits/2;
 *   run 3: replays batch 2 (the sink finds it recorded and skips it), then runs batch 3 to the end.
 * Afterwards every row is stored once, nothing is lost, every batch is recorded once, and a replayed
 * batch kept the batch timestamp of its offsets file. Also: an executor task failing while the batch
 * transaction is open, PostgreSQL cutting every connection of the job mid-batch (a retry, no crash), and
 * PostgreSQL not up yet when the job starts (start-up retries for --startup-timeout, then one line), and
 * PostgreSQL out of disk space in an available-now run (retried for --retry-timeout, then one line).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startTestDb } from '../support/pg.js';
import { freePort, startEmbedded, type EmbeddedServer } from '../../src/db/embedded.js';
import { createMigratedDatabase } from '../../src/db/migrate.js';
import { HEADER, row } from '../support/files.js';
import { tinyDisk, userEventsOn } from '../support/tiny-disk.js';
import { describeRun, query, readProgress, runSpark, sparkMissing } from './support.js';
import { inspectCheckpoint } from '../../src/checkpoint/inspect.js';
import { verifyAgainstDatabase } from '../../src/cli/checkpoint.js';

const missing = sparkMissing();

function ids(file: number): string[] {
  return Array.from({ length: 5 }, (_, i) => `00000000-0000-4000-9000-0000000${String(file).padStart(2, '0')}${String(i).padStart(3, '0')}`);
}

test('a Spark driver killed before and after its database commit replays without duplicates or losses', { skip: missing, timeout: 900_000 }, async () => {
  const db = await startTestDb();
  const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'ecomstream-spark-replay-'));
  try {
    const input = path.join(work, 'input');
    const checkpoint = path.join(work, 'checkpoint');
    const progressFile = path.join(work, 'progress.jsonl');
    await fsp.mkdir(input, { recursive: true });
    // Four files, one per batch; file 3 repeats an event of file 1 (stored by an earlier batch).
    const expected = new Set<string>();
    const base = Date.now() - 600_000;
    for (let f = 1; f <= 4; f++) {
      const lines = ids(f).map((id) => row({ event_id: id, user_id: `U${f}` }));
      ids(f).forEach((id) => expected.add(id));
      if (f === 3) lines.push(row({ event_id: ids(1)[0]!, user_id: 'U-dup' }));
      const file = path.join(input, `events_replay_${f}.csv`);
      await fsp.writeFile(file, `${HEADER}\n${lines.join('\n')}\n`);
      const t = new Date(base + f * 1000);
      await fsp.utimes(file, t, t);
    }
    const opts = { input, checkpoint, progressFile, databaseUrl: db.url, maxFilesPerTrigger: 1 };
    const batches = async (): Promise<number[]> =>
      (await query<{ batch_id: string }>(db.url, 'SELECT batch_id FROM stream_batches ORDER BY batch_id')).map((r) => Number(r.batch_id));
    const stageTables = async (): Promise<number> =>
      Number((await query<{ n: string }>(db.url, "SELECT count(*) AS n FROM pg_tables WHERE tablename LIKE 'ecomstream_stage_%'"))[0]!.n);

    // Run 1: killed in batch 1 with its rows staged, the transaction not begun.
    const r1 = await runSpark({ ...opts, env: { ECOMSTREAM_FAILPOINT: 'during-copy:1' } });
    assert.equal(r1.signal ?? r1.code, 'SIGKILL', describeRun('run 1', r1));
    assert.deepEqual(await batches(), [0]);
    assert.equal((await query(db.url, 'SELECT 1 FROM user_events')).length, 5, 'only batch 0 is stored');
    assert.ok((await stageTables()) > 0, 'the killed attempt left its staging tables');
    assert.ok(fs.existsSync(path.join(checkpoint, 'offsets', '1')) && !fs.existsSync(path.join(checkpoint, 'commits', '1')));
    // `checkpoint inspect` reads Spark's own logs: batch 1 is pending, with its file from the source log.
    const seen1 = await inspectCheckpoint(checkpoint);
    assert.equal(seen1.engine, 'spark');
    assert.deepEqual([seen1.lastPlannedBatch, seen1.lastCommittedBatch, seen1.filesSeen], [1, 0, 2]);
    assert.deepEqual(seen1.pendingReplay?.files, ['events_replay_2.csv']);
    assert.deepEqual(seen1.lock, { state: 'not-kept' });
    assert.equal(
      (await query<{ stream_id: string }>(db.url, 'SELECT stream_id FROM stream_batches'))[0]!.stream_id,
      seen1.streamId,
      'the stream id Spark recorded',
    );
    const offsets1 = JSON.parse(fs.readFileSync(path.join(checkpoint, 'offsets', '1'), 'utf8').split('\n')[1]!) as { batchTimestampMs: number };

    // Run 2: replays batch 1, commits batch 2 in PostgreSQL, killed before Spark's commits/2.
    const r2 = await runSpark({ ...opts, env: { ECOMSTREAM_FAILPOINT: 'after-db-commit:2' } });
    assert.equal(r2.signal ?? r2.code, 'SIGKILL', describeRun('run 2', r2));
    assert.deepEqual(await batches(), [0, 1, 2]);
    assert.ok(!fs.existsSync(path.join(checkpoint, 'commits', '2')), 'Spark must not have committed batch 2');
    const [b1] = await query<{ ms: string }>(
      db.url,
      'SELECT (extract(epoch FROM batch_timestamp) * 1000)::bigint::text AS ms FROM stream_batches WHERE batch_id = 1',
    );
    assert.equal(Number(b1!.ms), offsets1.batchTimestampMs, 'the replayed batch 1 used the batch timestamp of offsets/1');

    // Run 3: batch 2 is found committed and skipped, batch 3 runs.
    const r3 = await runSpark(opts);
    assert.equal(r3.code, 0, describeRun('run 3', r3));
    assert.deepEqual(await batches(), [0, 1, 2, 3]);
    assert.ok(fs.existsSync(path.join(checkpoint, 'commits', '3')));
    const verified = await verifyAgainstDatabase(checkpoint, db.url);
    assert.deepEqual(verified.mismatches, [], '`checkpoint verify` agrees with a Spark checkpoint');
    assert.equal(verified.checked, 4);

    const stored = await query<{ event_id: string; user_id: string }>(db.url, 'SELECT event_id, user_id FROM user_events ORDER BY event_id');
    assert.deepEqual(new Set(stored.map((r) => r.event_id)), expected, 'every event stored, none lost');
    assert.equal(stored.length, expected.size, 'no event stored twice');
    assert.equal(stored.find((r) => r.event_id === ids(1)[0])!.user_id, 'U1', 'the first occurrence won');
    const rejects = await query<{ reason: string; n: string }>(db.url, 'SELECT reason, count(*)::text AS n FROM rejected_events GROUP BY reason');
    assert.deepEqual(rejects, [{ reason: 'duplicate_event_id', n: '1' }], 'only the planted duplicate is rejected, once');
    const [totals] = await query<Record<string, string>>(
      db.url,
      'SELECT sum(input_rows)::text AS input, sum(inserted_rows)::text AS inserted, sum(duplicate_rows)::text AS dups FROM stream_batches',
    );
    assert.deepEqual(totals, { input: '21', inserted: '20', dups: '1' });
    assert.equal(await stageTables(), 0, 'staging tables of killed attempts are dropped');

    const progress = readProgress(progressFile);
    const skipped = progress.find((p) => p.batchId === 2 && p.alreadyCommitted === true);
    assert.ok(skipped, 'run 3 reports batch 2 as already committed');
    assert.equal(skipped.replay, true);
    assert.ok(
      progress.some((p) => p.batchId === 1 && p.replay === true && p.alreadyCommitted === false),
      'run 2 reports batch 1 as a replay',
    );
  } finally {
    await db.close();
    if (!process.env.KEEP_TEST_OUTPUT) await fsp.rm(work, { recursive: true, force: true });
  }
});

test(
  'a batch whose database transaction fails is not marked done: the job fails, and the next run replays it',
  { skip: missing, timeout: 600_000 },
  async () => {
    const db = await startTestDb();
    const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'ecomstream-spark-fail-'));
    try {
      const input = path.join(work, 'input');
      const checkpoint = path.join(work, 'checkpoint');
      await fsp.mkdir(input, { recursive: true });
      await fsp.writeFile(
        path.join(input, 'events_fail_1.csv'),
        `${HEADER}\n${ids(9)
          .map((id) => row({ event_id: id }))
          .join('\n')}\n`,
      );
      // The batch record insert fails (after the rows were inserted in the same transaction).
      await db.query(`CREATE FUNCTION refuse_batch() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN RAISE EXCEPTION 'refused by the test'; END $$`);
      await db.query('CREATE TRIGGER refuse_batch BEFORE INSERT ON stream_batches FOR EACH ROW EXECUTE FUNCTION refuse_batch()');
      const opts = { input, checkpoint, progressFile: path.join(work, 'progress.jsonl'), databaseUrl: db.url };

      const r1 = await runSpark(opts);
      assert.equal(r1.code, 1, describeRun('run 1', r1));
      assert.match(r1.stderr, /refused by the test/, 'the failure names its cause');
      assert.ok(!fs.existsSync(path.join(checkpoint, 'commits', '0')), 'Spark did not commit the failed batch');
      assert.equal((await query(db.url, 'SELECT 1 FROM user_events')).length, 0, 'the rows were rolled back with the batch');

      await db.query('DROP TRIGGER refuse_batch ON stream_batches');
      const r2 = await runSpark(opts);
      assert.equal(r2.code, 0, describeRun('run 2', r2));
      assert.equal((await query(db.url, 'SELECT 1 FROM user_events')).length, 5);
      assert.deepEqual(await query(db.url, 'SELECT batch_id::int AS b FROM stream_batches'), [{ b: 0 }]);
      assert.ok(
        readProgress(opts.progressFile).some((p) => p.batchId === 0 && p.replay === true),
        'run 2 replayed batch 0',
      );
    } finally {
      await db.close();
      if (!process.env.KEEP_TEST_OUTPUT) await fsp.rm(work, { recursive: true, force: true });
    }
  },
);

/** Files `events_<stem>_<f>.csv` in `input`, each with the five rows of `ids(f)`. */
async function writeIdFiles(input: string, stem: string, files: number[]): Promise<void> {
  await fsp.mkdir(input, { recursive: true });
  for (const f of files) {
    const lines = ids(f).map((id) => row({ event_id: id }));
    await fsp.writeFile(path.join(input, `events_${stem}_${f}.csv`), `${HEADER}\n${lines.join('\n')}\n`);
  }
}

test(
  'a batch whose executor task fails after other partitions were inserted commits none of them; the next run stores every row once',
  { skip: missing, timeout: 600_000 },
  async () => {
    const db = await startTestDb();
    const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'ecomstream-spark-taskfail-'));
    try {
      const input = path.join(work, 'input');
      // Two files, two partitions: the first is staged and inserted into the open batch transaction
      // while the task of the second waits, then fails (local mode does not retry a task).
      await writeIdFiles(input, 'task', [11, 12]);
      const opts = { input, checkpoint: path.join(work, 'checkpoint'), progressFile: path.join(work, 'progress.jsonl'), databaseUrl: db.url };
      const r1 = await runSpark({ ...opts, env: { ECOMSTREAM_EXECUTOR_FAILPOINT: 'fail:events_task_12.csv:6' } });
      assert.equal(r1.code, 1, describeRun('run 1', r1));
      assert.match(r1.stderr, /executor failpoint: reading events_task_12\.csv fails/);
      assert.equal((await query(db.url, 'SELECT 1 FROM user_events')).length, 0, 'no partition of the failed batch was committed');
      assert.equal((await query(db.url, 'SELECT 1 FROM stream_batches')).length, 0);

      const r2 = await runSpark(opts);
      assert.equal(r2.code, 0, describeRun('run 2', r2));
      assert.equal((await query(db.url, 'SELECT DISTINCT event_id FROM user_events')).length, 10);
      assert.equal((await query(db.url, 'SELECT 1 FROM user_events')).length, 10, 'every row once');
      assert.equal((await query(db.url, 'SELECT 1 FROM rejected_events')).length, 0, 'no spurious duplicate rejects');
    } finally {
      await db.close();
      if (!process.env.KEEP_TEST_OUTPUT) await fsp.rm(work, { recursive: true, force: true });
    }
  },
);

// Which connections PostgreSQL cuts mid-batch, and the retry that follows in the job's log: an
// executor's staging COPY (its task reports the database unavailable to the driver), or every
// connection, the driver's batch transaction included (the driver's own query fails first).
const OUTAGES = [
  { what: "an executor's staging COPY", which: "query LIKE 'COPY %'", retry: /could not be staged/ },
  { what: 'every connection of the job', which: 'true', retry: /batch 0: database unavailable/ },
];

for (const outage of OUTAGES) {
  test(
    `PostgreSQL cuts ${outage.what} in the middle of a batch: the batch is retried, the job does not crash, every row is stored once`,
    { skip: missing, timeout: 600_000 },
    async () => {
      const db = await startTestDb();
      const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'ecomstream-spark-outage-'));
      try {
        const input = path.join(work, 'input');
        await writeIdFiles(input, 'outage', [21, 22]);
        // The task reading file 22 pauses inside its staging COPY (its connection open, the driver's
        // batch transaction open too) until the marker says "go".
        const marker = path.join(work, 'paused');
        const opts = { input, checkpoint: path.join(work, 'checkpoint'), progressFile: path.join(work, 'progress.jsonl'), databaseUrl: db.url };
        const running = runSpark({ ...opts, env: { ECOMSTREAM_EXECUTOR_FAILPOINT: `pause:events_outage_22.csv:${marker}` } });
        const deadline = Date.now() + 240_000;
        while (!fs.existsSync(marker) || fs.readFileSync(marker, 'utf8') === '') {
          assert.ok(Date.now() < deadline, 'the task never reached file 22');
          await new Promise((r) => setTimeout(r, 200));
        }
        // In the select list, so it runs only for the rows the WHERE kept (not for this test's own backend).
        const cut = (
          await query<{ cut: boolean }>(
            db.url,
            `SELECT pg_terminate_backend(pid) AS cut FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND ${outage.which}`,
          )
        ).filter((c) => c.cut);
        assert.ok(cut.length >= 1, 'a connection was cut');
        await fsp.writeFile(marker, 'go');

        const r = await running;
        assert.equal(r.code, 0, describeRun('run', r));
        assert.match(r.stderr, outage.retry, 'the batch was retried');
        assert.equal((await query(db.url, 'SELECT DISTINCT event_id FROM user_events')).length, 10);
        assert.equal((await query(db.url, 'SELECT 1 FROM user_events')).length, 10, 'every row once');
        assert.equal((await query(db.url, 'SELECT 1 FROM rejected_events')).length, 0, 'no spurious duplicate rejects');
        assert.equal((await query(db.url, 'SELECT 1 FROM stream_batches')).length, 1);
      } finally {
        await db.close();
        if (!process.env.KEEP_TEST_OUTPUT) await fsp.rm(work, { recursive: true, force: true });
      }
    },
  );
}

test('PostgreSQL not up when the job starts: start-up retries until it answers, then the batch commits', { skip: missing, timeout: 600_000 }, async () => {
  const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'ecomstream-spark-late-db-'));
  await fsp.chmod(work, 0o755); // the embedded server runs as another user when started by root
  let server: EmbeddedServer | undefined;
  try {
    const input = path.join(work, 'input');
    await writeIdFiles(input, 'late', [31]);
    const port = await freePort(20000 + Math.floor(Math.random() * 2000));
    // Until the job has knocked: a listener on the port that drops every connection (the JDBC
    // driver's "connection attempt failed"), then nothing (refused), then the server.
    let knocks = 0;
    const listener = net.createServer((socket) => {
      knocks++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => listener.listen(port, '127.0.0.1', resolve));
    const opts = {
      input,
      checkpoint: path.join(work, 'checkpoint'),
      progressFile: path.join(work, 'progress.jsonl'),
      databaseUrl: `postgresql://u:p@127.0.0.1:${port}/late`,
    };
    const running = runSpark(opts);
    const deadline = Date.now() + 240_000;
    while (knocks === 0) {
      assert.ok(Date.now() < deadline, 'the job never tried to connect');
      await new Promise((r) => setTimeout(r, 100));
    }
    // The database is made ready on another port first: a server that answers on the job's port before
    // its database exists would refuse the job with 3D000, which no engine retries.
    const pg = { dataDir: path.join(work, 'pg'), user: 'u', password: 'p', database: 'postgres' };
    const preparing = await startEmbedded({ ...pg, port: await freePort(port + 1) });
    await createMigratedDatabase(preparing.url, 'late');
    await preparing.stop();
    await new Promise<void>((resolve) => listener.close(() => resolve()));
    server = await startEmbedded({ ...pg, port });
    assert.equal(server.port, port);
    const url = server.url.replace(/\/postgres$/, '/late');

    const r = await running;
    assert.equal(r.code, 0, describeRun('run', r));
    assert.match(r.stderr, /start-up: database unavailable .*; retry 1 in 250 ms/, 'start-up retried, with the batches’ backoff');
    assert.equal((await query(url, 'SELECT 1 FROM user_events')).length, 5, 'the batch committed once the database answered');
  } finally {
    await server?.stop();
    if (!process.env.KEEP_TEST_OUTPUT) await fsp.rm(work, { recursive: true, force: true });
  }
});

test('PostgreSQL never answers: after --startup-timeout the job says so in one line and exits 1', { skip: missing, timeout: 600_000 }, async () => {
  const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'ecomstream-spark-no-db-'));
  try {
    const input = path.join(work, 'input');
    await writeIdFiles(input, 'nodb', [41]);
    const port = await freePort(22000 + Math.floor(Math.random() * 2000));
    const r = await runSpark({
      input,
      checkpoint: path.join(work, 'checkpoint'),
      progressFile: path.join(work, 'progress.jsonl'),
      databaseUrl: `postgresql://u:p@127.0.0.1:${port}/none`,
      args: ['--startup-timeout', '2'],
    });
    assert.equal(r.code, 1, describeRun('run', r));
    assert.match(r.stderr, /start-up: database unavailable/, 'it retried first');
    assert.match(
      r.stderr,
      new RegExp(`ecomstream-spark: cannot connect to PostgreSQL at jdbc:postgresql://127\\.0\\.0\\.1:${port}/none within --startup-timeout 2 s`),
    );
    assert.doesNotMatch(r.stderr, /Traceback/, 'one line, not a stack trace');
  } finally {
    if (!process.env.KEEP_TEST_OUTPUT) await fsp.rm(work, { recursive: true, force: true });
  }
});

test(
  'PostgreSQL out of disk space (53100): available-now retries for --retry-timeout, says so in one line and exits 1; with room, every row once',
  { skip: missing, timeout: 900_000 },
  async (t) => {
    const db = await startTestDb();
    const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'ecomstream-spark-disk-full-'));
    try {
      const disk = tinyDisk(t, db.server);
      if (typeof disk === 'string') return t.skip(disk);
      await userEventsOn(disk, db.url);
      const input = path.join(work, 'input');
      await fsp.mkdir(input, { recursive: true });
      await fsp.writeFile(path.join(input, 'events_full_1.csv'), `${HEADER}\n${Array.from({ length: 20_000 }, () => row()).join('\n')}\n`);
      const opts = { input, checkpoint: path.join(work, 'checkpoint'), progressFile: path.join(work, 'progress.jsonl'), databaseUrl: db.url };
      // Long enough for the first attempt (20,000 rows staged, then the insert that fills the disk) on a loaded machine.
      const r = await runSpark({ ...opts, args: ['--retry-timeout', '8'] });
      assert.equal(r.code, 1, describeRun('run on a full disk', r));
      assert.match(r.stderr, /batch 0: database unavailable \(.*No space left on device.*\); retry 1 in 250 ms, the batch stays uncommitted/, 'retried first');
      // Spark logs the failed query's stack itself; the job's own last line says why.
      assert.match(
        r.stderr.trim().split('\n').pop()!,
        /WARN the streaming query failed: batch 0 \(stays uncommitted\): gave up after --retry-timeout 8 s of retries: .*No space left on device/,
      );
      assert.equal((await query(db.url, 'SELECT 1 FROM user_events')).length, 0);

      disk.grow();
      const again = await runSpark(opts);
      assert.equal(again.code, 0, describeRun('run with room', again));
      assert.equal((await query(db.url, 'SELECT DISTINCT event_id FROM user_events')).length, 20_000);
      assert.equal((await query(db.url, 'SELECT 1 FROM user_events')).length, 20_000);
    } finally {
      await db.close();
      if (!process.env.KEEP_TEST_OUTPUT) await fsp.rm(work, { recursive: true, force: true });
    }
  },
);
