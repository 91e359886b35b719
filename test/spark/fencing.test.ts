/**
 * One writer per stream for the Spark job (issue 18): Spark keeps no lock on its checkpoint, so two runs
 * of the job on one checkpoint are possible; the database's epoch (src/db/epoch.ts, run by the job's
 * sink.Fence) makes sure only the newest commits. Run A stops itself (SIGSTOP) in batch 1 after Spark
 * planned it; run B on the same checkpoint claims a newer epoch, replays batch 1 and commits it; A,
 * resumed, is refused in its batch transaction: one line, exit 1, and it never writes commits/1.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startTestDb } from '../support/pg.js';
import { HEADER, row } from '../support/files.js';
import { describeRun, query, runSpark, sparkMissing } from './support.js';

const missing = sparkMissing();

function procState(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2];
  } catch {
    return undefined; // gone
  }
}

test(
  'two runs of the job on one checkpoint: the superseded run is fenced in its batch, one line, rows exactly once',
  { skip: missing, timeout: 900_000 },
  async () => {
    const db = await startTestDb();
    const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'ecomstream-spark-fence-'));
    let zombiePid: number | undefined;
    try {
      const input = path.join(work, 'input');
      const checkpoint = path.join(work, 'checkpoint');
      await fsp.mkdir(input, { recursive: true });
      const ids = new Set<string>();
      for (let f = 1; f <= 2; f++) {
        const lines = Array.from({ length: 5 }, () => row());
        lines.forEach((l) => ids.add(l.slice(0, 36)));
        const file = path.join(input, `events_fence_${f}.csv`);
        await fsp.writeFile(file, `${HEADER}\n${lines.join('\n')}\n`);
        const t = new Date(Date.now() - 600_000 + f * 1000);
        await fsp.utimes(file, t, t);
      }
      const opts = { input, checkpoint, progressFile: path.join(work, 'progress.jsonl'), databaseUrl: db.url, maxFilesPerTrigger: 1 };

      const zombie = runSpark({ ...opts, env: { ECOMSTREAM_FAILPOINT: 'after-offsets:1:stop' }, onSpawn: (pid) => (zombiePid = pid) });
      const t0 = Date.now();
      while (zombiePid === undefined || procState(zombiePid) !== 'T') {
        if (Date.now() - t0 > 600_000 || (zombiePid !== undefined && procState(zombiePid) === undefined)) throw new Error(describeRun('run A', await zombie));
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.deepEqual(await query(db.url, 'SELECT batch_id::int AS b FROM stream_batches'), [{ b: 0 }]);

      let successorPid = 0;
      const successor = await runSpark({ ...opts, onSpawn: (pid) => (successorPid = pid) });
      assert.equal(successor.code, 0, describeRun('run B', successor));
      assert.deepEqual(await query(db.url, 'SELECT batch_id::int AS b FROM stream_batches ORDER BY 1'), [{ b: 0 }, { b: 1 }]);
      assert.deepEqual(await query(db.url, 'SELECT epoch::int AS e, engine FROM stream_epochs'), [{ e: 2, engine: 'spark' }]);

      process.kill(zombiePid, 'SIGCONT');
      const fenced = await zombie;
      assert.equal(fenced.code, 1, describeRun('run A', fenced));
      const reason = fenced.stderr.split('\n').filter((l) => l.startsWith('ecomstream-spark: batch'));
      assert.equal(reason.length, 1, describeRun('run A', fenced));
      assert.match(
        reason[0]!,
        new RegExp(
          `^ecomstream-spark: batch 1: fenced: another engine took over stream [0-9a-f-]+ \\(epoch 2: the spark engine pid ${successorPid} on host .+, started .+\\); this engine \\(epoch 1\\) stops without committing$`,
        ),
      );
      assert.doesNotMatch(fenced.stderr, /Traceback|Concurrent update/, describeRun('run A', fenced));

      assert.deepEqual((await fsp.readdir(path.join(checkpoint, 'commits'))).filter((n) => /^\d+$/.test(n)).sort(), ['0', '1']);
      const stored = await query<{ event_id: string }>(db.url, 'SELECT event_id FROM user_events');
      assert.equal(stored.length, ids.size, 'no row lost, none doubled');
      assert.deepEqual(new Set(stored.map((r) => r.event_id)), ids);
      assert.deepEqual(await query(db.url, 'SELECT 1 FROM rejected_events'), []);
    } finally {
      if (zombiePid !== undefined && procState(zombiePid) !== undefined) process.kill(-zombiePid, 'SIGKILL');
      await db.close();
      if (!process.env.KEEP_TEST_OUTPUT) await fsp.rm(work, { recursive: true, force: true });
    }
  },
);
