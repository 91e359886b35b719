/**
 * One writer per stream (issue 18, item 1), with engines run as the CLI in their own processes against a
 * real PostgreSQL: the checkpoint's flock (src/checkpoint/lock.ts) refuses a second engine wherever its
 * pid lives, and the database's epoch fencing (src/db/epoch.ts) stops an engine that lost the lock
 * without anyone seeing — a frozen zombie whose lock file was deleted by hand. Each case: the second
 * writer never commits, the loser says why in one line, every row is stored exactly once.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { inspectCheckpoint } from '../../src/checkpoint/inspect.js';
import { engineState } from '../../src/dashboard/surroundings.js';
import { count, query as q, startTestDb, type TestDb } from '../support/pg.js';
import { BIN, cli, type Run } from '../support/cli.js';
import { csv, publish, row, tempDir } from '../support/files.js';

let db: TestDb;
before(async () => {
  db = await startTestDb();
});
after(async () => {
  await (db as TestDb | undefined)?.close(); // undefined when before() failed
});

interface Engine {
  pid: number;
  stderr(): string;
  exited: Promise<Run>;
}

/** `ecomstream process` in the background, optionally under a wrapper command (`unshare …`). */
function startEngine(args: string[], env: Record<string, string>, wrapper: string[] = []): Engine {
  const argv = [...wrapper, process.execPath, BIN, 'process', ...args];
  const child = spawn(argv[0]!, argv.slice(1), { env: { ...process.env, ECOMSTREAM_METRICS_PORT: '0', ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<Run>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { pid: child.pid!, stderr: () => stderr, exited };
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The state letter of /proc/PID/stat: `T` once the process is stopped. */
function procState(pid: number): string {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
}

/** `files` files of 50 rows, published in order; returns every event id. */
async function publishFiles(input: string, first: number, files: number): Promise<Set<string>> {
  const ids = new Set<string>();
  for (let f = first; f < first + files; f++) {
    const rows = Array.from({ length: 50 }, () => row());
    for (const r of rows) ids.add(r.slice(0, 36));
    await publish(input, `events_${f}.csv`, csv(...rows));
  }
  return ids;
}

/** Every event of `ids` stored exactly once, nothing else stored or rejected. */
async function assertExactlyOnce(url: string, ids: Set<string>): Promise<void> {
  const stored = await q<{ event_id: string }>(url, 'SELECT event_id FROM user_events');
  assert.equal(stored.length, ids.size, 'no row lost, none doubled');
  assert.deepEqual(new Set(stored.map((r) => r.event_id)), ids);
  assert.equal(await count(url, 'SELECT count(*) n FROM rejected_events'), 0, 'no spurious duplicate rejects');
}

/**
 * Exit 1 and one line on stderr saying why, matching `why`. `afterRetries`: it may follow the warnings of
 * connection retries (a fenced zombie's transaction was ended under it), and nothing else.
 */
function assertOneLine(r: Run, why: RegExp, afterRetries = false): void {
  assert.equal(r.code, 1, `exit code (stderr: ${r.stderr})`);
  const lines = r.stderr.trim().split('\n');
  const retries = afterRetries ? lines.slice(0, -1).filter((l) => / WARN batch \d+ \(stays uncommitted\): database unavailable /.test(l)) : [];
  assert.equal(lines.length, retries.length + 1, `one line, got: ${r.stderr}`);
  assert.match(lines[lines.length - 1]!, why);
}

function setup(dir: string, extra: string[] = []): string[] {
  return ['--input', path.join(dir, 'in'), '--checkpoint', path.join(dir, 'ck'), '--file-settle', '0', '--progress-file', path.join(dir, 'p.jsonl'), ...extra];
}

const canUnshare = ((): string | false => {
  if (process.getuid?.() !== 0) return 'separate PID namespaces need root (CI runs as root)';
  try {
    execFileSync('unshare', ['--pid', '--fork', '--mount-proc', 'true'], { stdio: 'ignore' });
    return false;
  } catch {
    return 'util-linux unshare is missing or not permitted here';
  }
})();

describe('two engines on one checkpoint', () => {
  test('in separate PID namespaces with one host name: the second is refused in one line; the dashboard sees the first', { skip: canUnshare }, async () => {
    const url = await db.freshDatabase();
    const dir = await tempDir();
    const ids = await publishFiles(path.join(dir, 'in'), 0, 2);
    // Both are pid 1 in their own namespace, on the same host: a pid says nothing about the other engine.
    const unshare = ['unshare', '--pid', '--fork', '--mount-proc', '--kill-child'];
    const first = startEngine(setup(dir, ['--trigger', 'on-arrival']), { DATABASE_URL: url }, unshare);
    try {
      await until('the first engine committed both files', async () => (await count(url, 'SELECT count(*) n FROM user_events')) === 100);
      // The dashboard sees a holder in another PID namespace (idle once commits/N follows the database commit).
      await until('the dashboard to see the engine idle', async () => (await engineState(path.join(dir, 'ck'), null)).state === 'idle');
      const report = await inspectCheckpoint(path.join(dir, 'ck'));
      assert.deepEqual({ ...report.lock, startedAt: undefined, host: undefined }, { state: 'held', pid: 1, startedAt: undefined, host: undefined });

      const second = await new Promise<Run>((resolve) => {
        const e = startEngine(setup(dir, ['--trigger', 'available-now']), { DATABASE_URL: url }, unshare);
        void e.exited.then(resolve);
      });
      assertOneLine(second, /^ecomstream: the checkpoint .* is in use by another engine \(pid 1 on host .* started .*\)/);
      for (const id of await publishFiles(path.join(dir, 'in'), 2, 1)) ids.add(id);
      await until(
        'the first engine, still the only writer, committed the new file',
        async () => (await count(url, 'SELECT count(*) n FROM user_events')) === 150,
      );
      assert.equal(await count(url, 'SELECT epoch n FROM stream_epochs'), 1, 'the refused engine never claimed the stream');
    } finally {
      // The engine is the child of `unshare`: stop it gracefully there.
      const children = fs.readFileSync(`/proc/${first.pid}/task/${first.pid}/children`, 'utf8').trim();
      for (const pid of children.split(/\s+/).filter(Boolean)) process.kill(Number(pid), 'SIGTERM');
    }
    const done = await first.exited;
    assert.equal(done.code, 0, done.stderr);
    await assertExactlyOnce(url, ids);
    assert.equal((await engineState(path.join(dir, 'ck'), null)).state, 'stopped');
  });

  test('from another PID namespace (a container beside the engine), inspect sees the holder', { skip: canUnshare }, async () => {
    const url = await db.freshDatabase();
    const dir = await tempDir();
    await publishFiles(path.join(dir, 'in'), 0, 1);
    const engine = startEngine(setup(dir, ['--trigger', 'on-arrival']), { DATABASE_URL: url });
    try {
      await until('the engine committed the file', async () => (await count(url, 'SELECT count(*) n FROM user_events')) === 50);
      // /proc/locks there lists no lock taken by a pid it cannot see: the reader must ask otherwise.
      const unshare = ['unshare', '--pid', '--fork', '--mount-proc'];
      const out = execFileSync(
        unshare[0]!,
        [...unshare.slice(1), process.execPath, BIN, 'checkpoint', 'inspect', '--checkpoint', path.join(dir, 'ck'), '--json'],
        {
          encoding: 'utf8',
        },
      );
      const report = JSON.parse(out) as { lock: { state: string; pid?: number } };
      assert.deepEqual([report.lock.state, report.lock.pid], ['held', engine.pid]);
    } finally {
      process.kill(engine.pid, 'SIGTERM');
    }
    assert.equal((await engine.exited).code, 0);
  });

  test('a holder stopped with SIGSTOP keeps its lock: the second engine is refused, the first goes on after SIGCONT', async () => {
    const url = await db.freshDatabase();
    const dir = await tempDir();
    const ids = await publishFiles(path.join(dir, 'in'), 0, 1);
    const first = startEngine(setup(dir, ['--trigger', 'on-arrival']), { DATABASE_URL: url });
    try {
      await until('batch 0 committed', async () => (await count(url, 'SELECT count(*) n FROM stream_batches')) === 1);
      process.kill(first.pid, 'SIGSTOP');
      await until('the first engine stopped', () => procState(first.pid) === 'T');
      for (const id of await publishFiles(path.join(dir, 'in'), 1, 1)) ids.add(id);
      // Longer than the claim's lock timeout (src/db/epoch.ts) and the second engine's start-up timeout.
      await new Promise((r) => setTimeout(r, 3000));
      const second = await cli(['process', ...setup(dir, ['--trigger', 'available-now', '--startup-timeout', '1'])], { DATABASE_URL: url });
      assertOneLine(second, new RegExp(`^ecomstream: the checkpoint .* is in use by another engine \\(pid ${first.pid} on host `));
      assert.equal(await count(url, 'SELECT count(*) n FROM stream_batches'), 1, 'the second engine committed nothing');
      process.kill(first.pid, 'SIGCONT');
      await until(
        'the first engine committed the file published while it was stopped',
        async () => (await count(url, 'SELECT count(*) n FROM stream_batches')) === 2,
      );
    } finally {
      process.kill(first.pid, 'SIGCONT');
      process.kill(first.pid, 'SIGTERM');
    }
    const done = await first.exited;
    assert.equal(done.code, 0, done.stderr);
    await assertExactlyOnce(url, ids);
  });

  for (const [point, where] of [
    ['after-offsets', 'between planning batch 1 and its transaction'],
    ['during-copy', 'inside the transaction of batch 1, mid-COPY'],
  ] as const) {
    test(`a zombie frozen ${where}, its lock file deleted by hand: the new engine takes over, the zombie is fenced when it resumes`, async () => {
      const url = await db.freshDatabase();
      const dir = await tempDir();
      const ids = await publishFiles(path.join(dir, 'in'), 0, 4);
      const zombie = startEngine(setup(dir, ['--trigger', 'on-arrival', '--max-files-per-trigger', '2']), {
        DATABASE_URL: url,
        ECOMSTREAM_FAILPOINT: `${point}:1:stop`,
      });
      try {
        await until('the zombie stopped itself in batch 1', () => procState(zombie.pid) === 'T');
        assert.equal(await count(url, 'SELECT count(*) n FROM stream_batches'), 1);
        await fsp.rm(path.join(dir, 'ck', 'lock')); // by hand: the one thing the file lock cannot see

        // The new engine replays batch 1; mid-COPY, the zombie's open transaction would block it for
        // ever: its claim ends that transaction after the lock timeout.
        const successor = startEngine(setup(dir, ['--trigger', 'available-now']), { DATABASE_URL: url });
        const took = await successor.exited;
        assert.equal(took.code, 0, took.stderr);
        assert.equal(await count(url, 'SELECT count(*) n FROM stream_batches'), 2);
        assert.equal(await count(url, 'SELECT epoch n FROM stream_epochs'), 2);

        process.kill(zombie.pid, 'SIGCONT');
        const fenced = await zombie.exited;
        assertOneLine(
          fenced,
          new RegExp(
            `^ecomstream: batch 1: fenced: another engine took over stream [0-9a-f-]+ \\(epoch 2: the typescript engine pid ${successor.pid} on host .+, started .+\\); this engine \\(epoch 1\\) stops without committing$`,
          ),
          point === 'during-copy',
        );
      } finally {
        try {
          process.kill(zombie.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      assert.deepEqual((await fsp.readdir(path.join(dir, 'ck', 'commits'))).sort(), ['0', '1']);
      assert.deepEqual(
        (await q<{ batch_id: string }>(url, 'SELECT batch_id FROM stream_batches ORDER BY 1')).map((r) => Number(r.batch_id)),
        [0, 1],
      );
      await assertExactlyOnce(url, ids);
    });
  }
});
