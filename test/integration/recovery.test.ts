/**
 * Exactly-once under failure, with the CLI run as a subprocess: SIGKILL at each point of the batch
 * protocol, PostgreSQL stopped mid-run, two engines on one checkpoint, and the CLI's error handling.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { loadConfig } from '../../src/config.js';
import { startEmbedded } from '../../src/db/embedded.js';
import { StreamEngine } from '../../src/engine/stream.js';
import { silentLogger } from '../../src/log.js';
import { query as q, startTestDb, type TestDb } from '../support/pg.js';
import { BIN, cli, type Run } from '../support/cli.js';
import { csv, publish, readProgress, row, tempDir } from '../support/files.js';
import { until } from '../support/until.js';

let db: TestDb;
before(async () => {
  db = await startTestDb();
});
after(async () => {
  await (db as TestDb | undefined)?.close(); // undefined when before() failed
});

async function sixFiles(input: string): Promise<Set<string>> {
  const ids = new Set<string>();
  for (let f = 0; f < 6; f++) {
    const rows = Array.from({ length: 50 }, () => row());
    for (const r of rows) ids.add(r.slice(0, 36));
    await publish(input, `events_${f}.csv`, csv(...rows));
  }
  return ids;
}

describe('exactly-once after SIGKILL', () => {
  for (const [point, expectReplayTag] of [
    ['after-offsets', 'replay'],
    ['during-copy', 'replay'],
    ['after-db-commit', 'alreadyCommitted'],
  ] as const) {
    test(`killed ${point} of batch 1, then restarted: every row exactly once`, async () => {
      const url = await db.freshDatabase();
      const dir = await tempDir();
      const input = path.join(dir, 'in');
      const ids = await sixFiles(input);
      const args = [
        'process',
        '--input',
        input,
        '--checkpoint',
        path.join(dir, 'ck'),
        '--trigger',
        'available-now',
        '--max-files-per-trigger',
        '2',
        '--progress-file',
        path.join(dir, 'progress.jsonl'),
      ];
      const crashed = await cli(args, { DATABASE_URL: url, ECOMSTREAM_FAILPOINT: `${point}:1` });
      assert.equal(crashed.signal, 'SIGKILL', `the failpoint killed the engine (stderr: ${crashed.stderr})`);
      const mid = await q(url, 'SELECT COUNT(*)::int n FROM user_events');
      assert.equal(mid[0]!.n, point === 'after-db-commit' ? 200 : 100);

      const resumed = await cli(args, { DATABASE_URL: url });
      assert.equal(resumed.code, 0, resumed.stderr);
      const rows = await q<{ event_id: string }>(url, 'SELECT event_id FROM user_events');
      assert.equal(rows.length, 300);
      assert.deepEqual(new Set(rows.map((r) => r.event_id)), ids);
      const batches = await q(url, 'SELECT batch_id FROM stream_batches ORDER BY batch_id');
      assert.deepEqual(
        batches.map((b) => Number(b.batch_id)),
        [0, 1, 2],
      );
      assert.equal((await q(url, 'SELECT COUNT(*)::int n FROM rejected_events'))[0]!.n, 0);
      assert.deepEqual((await fsp.readdir(path.join(dir, 'ck', 'commits'))).sort(), ['0', '1', '2']);
      const progress = await readProgress(path.join(dir, 'progress.jsonl'));
      const replayed = progress.find((p) => p.batchId === 1 && p.replay);
      assert.ok(replayed, 'batch 1 was replayed from the offsets log');
      if (expectReplayTag === 'alreadyCommitted') assert.equal(replayed.alreadyCommitted, true);
      else assert.equal(replayed.insertedRows, 100);
    });
  }
});

describe('PostgreSQL stopped during a run', () => {
  test('the engine retries, keeps the batch uncommitted, and resumes when the server is back', async (t) => {
    const own = await startTestDb();
    const server = own.server;
    if (!server) return t.skip('TEST_DATABASE_URL: this test cannot stop that server');
    const dir = await tempDir();
    const input = path.join(dir, 'in');
    await publish(input, 'events_0.csv', csv(row()));
    const config = loadConfig({
      engine: {
        inputDir: input,
        checkpointDir: path.join(dir, 'ck'),
        progressFile: path.join(dir, 'p.jsonl'),
        trigger: { kind: 'on-arrival' },
        pollMillis: 100,
        retryInitialMillis: 100,
        retryMaxMillis: 400,
      },
    });
    const warnings: string[] = [];
    const stop = new AbortController();
    const committed: number[] = [];
    const engine = new StreamEngine({
      engine: config.engine,
      databaseUrl: own.url,
      log: { ...silentLogger, warn: (m) => warnings.push(m) },
      signal: stop.signal,
      onProgress: (p) => committed.push(p.batchId),
    });
    const running = engine.run();
    await until('batch 0 committed', () => committed.length === 1, 20_000);
    await server.stop();
    await publish(input, 'events_1.csv', csv(row(), row()));
    await until('a retry warning', () => warnings.some((w) => /database unavailable.*retry/.test(w)), 20_000);
    assert.equal(committed.length, 1, 'nothing commits while the server is down');
    const again = await startEmbedded({
      dataDir: server.dataDir,
      port: server.port,
      user: 'sparkuser',
      password: 'sparkpass123',
      database: 'ecommerce_events',
    });
    assert.equal(again.port, server.port);
    await until('batch 1 committed after the restart', () => committed.length === 2, 20_000);
    stop.abort();
    await running;
    assert.equal((await q(own.url, 'SELECT COUNT(*)::int n FROM user_events'))[0]!.n, 3);
    await again.stop();
    await own.close();
  });
});

describe('the CLI', () => {
  test('a second engine on the same checkpoint refuses to start with a clear message', async () => {
    const url = await db.freshDatabase();
    const dir = await tempDir();
    const input = path.join(dir, 'in');
    await fsp.mkdir(input, { recursive: true });
    const config = loadConfig({
      engine: { inputDir: input, checkpointDir: path.join(dir, 'ck'), progressFile: path.join(dir, 'p.jsonl'), trigger: { kind: 'on-arrival' } },
    });
    const stop = new AbortController();
    const first = new StreamEngine({ engine: config.engine, databaseUrl: url, log: silentLogger, signal: stop.signal }).run();
    await new Promise((r) => setTimeout(r, 300));
    const second = await cli(['process', '--input', input, '--checkpoint', path.join(dir, 'ck'), '--trigger', 'available-now'], { DATABASE_URL: url });
    stop.abort();
    await first;
    assert.equal(second.code, 1);
    assert.match(second.stderr, /is in use by another engine \(pid \d+ on host /);
    assert.equal(second.stderr.trim().split('\n').length, 1, 'one line');
  });

  test('output into a pipe its reader closed (`ecomstream up --help | head -1`) ends with exit 0, no EPIPE trace', async () => {
    const child = spawn(process.execPath, [BIN, 'up', '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // The reader takes nothing and closes its end at once, as `head` does after its lines.
    child.stdout.destroy();
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    assert.equal(stderr, '');
    assert.equal(code, 0);
  });

  test('--help exits 0 on every command; wrong values name the flag and what is allowed', async () => {
    for (const cmd of [[], ['up'], ['process'], ['generate'], ['query'], ['contract']]) {
      const r = await cli([...cmd, '--help']);
      assert.equal(r.code, 0, `${cmd.join(' ')} --help`);
      assert.match(r.stdout, /Usage: ecomstream/);
    }
    const badTrigger = await cli(['process', '--trigger', 'sometimes']);
    assert.notEqual(badTrigger.code, 0);
    assert.match(badTrigger.stderr, /--trigger "sometimes": allowed are available-now, once, on-arrival or <N>s/);
    const badMax = await cli(['process', '--max-files-per-trigger', '-1']);
    assert.notEqual(badMax.code, 0);
    assert.match(badMax.stderr, /--max-files-per-trigger takes an integer from 0/);
    const badClean = await cli(['process', '--clean-source', 'shred']);
    assert.match(badClean.stderr, /--clean-source must be one of off, archive, delete/);
    const badQuery = await cli(['query', 'everything']);
    assert.notEqual(badQuery.code, 0);
    assert.match(badQuery.stderr, /events-by-type, revenue-by-category, latency, summary/);
    const unknown = await cli(['process', '--frobnicate']);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /unknown option '--frobnicate'/);
  });

  test('process then query, as a user would, against DATABASE_URL', async () => {
    const url = await db.freshDatabase();
    const dir = await tempDir();
    const input = path.join(dir, 'in');
    await publish(
      input,
      'events_1.csv',
      csv(
        row({ event_type: 'purchase', product_category: 'Books', price: '10.00' }),
        row({ event_type: 'purchase', product_category: 'Books', price: '5.50' }),
        row(),
      ),
    );
    const p = await cli(
      ['process', '--input', input, '--checkpoint', path.join(dir, 'ck'), '--trigger', 'available-now', '--progress-file', path.join(dir, 'p.jsonl')],
      { DATABASE_URL: url },
    );
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, /batch 0: events_1\.csv: 3 rows -> 3 inserted, 0 duplicate, 0 rejected/);
    const byType = await cli(['query', 'events-by-type', '--json'], { DATABASE_URL: url });
    assert.equal(byType.code, 0, byType.stderr);
    assert.deepEqual(JSON.parse(byType.stdout), [
      { event_type: 'purchase', count: 2 },
      { event_type: 'view', count: 1 },
    ]);
    const revenue = await cli(['query', 'revenue-by-category'], { DATABASE_URL: url });
    assert.match(revenue.stdout, /Books\s+15\.50/);
    for (const name of ['latency', 'summary']) {
      const r = await cli(['query', name], { DATABASE_URL: url });
      assert.equal(r.code, 0, r.stderr);
    }
  });

  test('a database that cannot be reached is a one-line error, not a stack trace', async () => {
    const r = await cli(['query', 'summary'], { DATABASE_URL: 'postgresql://nobody:x@127.0.0.1:1/none' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^ecomstream: /);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });

  test('up: embedded server + generator + engine; Ctrl-C commits and stops cleanly; a second run resumes', async () => {
    const cwd = await tempDir('ecomstream-up-');
    await fsp.chmod(cwd, 0o755);
    const env = { ...process.env, DATABASE_URL: undefined, ECOMSTREAM_PG_PORT: String(26000 + Math.floor(Math.random() * 1000)), ECOMSTREAM_METRICS_PORT: '0' };
    const upOnce = (waitFor: RegExp) =>
      new Promise<Run>((resolve) => {
        const child = spawn(process.execPath, [BIN, 'up', '--files', '3', '--interval', '0.2', '--no-dashboard'], { cwd, env });
        let stdout = '';
        let stderr = '';
        let sent = false;
        child.stdout.on('data', (d: Buffer) => {
          stdout += d.toString();
          if (!sent && waitFor.test(stdout)) {
            sent = true;
            child.kill('SIGINT');
          }
        });
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
        setTimeout(() => child.kill('SIGKILL'), 60_000);
      });
    const first = await upOnce(/generator finished: 3 files/);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /connect with: psql "postgresql:\/\/sparkuser:sparkpass123@127\.0\.0\.1:\d+\/ecommerce_events"/);
    assert.match(first.stdout, /first batch committed \d+ ms after start/);
    assert.match(first.stdout, /embedded PostgreSQL stopped/);
    const second = await upOnce(/watching /);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /[1-9]\d* files already seen/, 'the second run resumes from the checkpoint');
    const progress = await readProgress(path.join(cwd, 'data', 'logs', 'progress.jsonl'));
    const ids = progress.map((p) => p.batchId);
    assert.deepEqual(
      ids,
      [...new Set(ids)].sort((a, b) => a - b),
      'batch ids are never reused',
    );
    await fsp.rm(cwd, { recursive: true, force: true });
  });
});
