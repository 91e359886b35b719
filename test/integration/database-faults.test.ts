/**
 * Issue 18, item 5: readiness and retries that tell the truth, against a real PostgreSQL that really
 * refuses: a role out of connection slots (53300 too_many_connections) and a tablespace on a full
 * filesystem (53100 disk_full). Readiness follows the batch path, not the probe's own connection; a
 * full disk is named, retried while a stream runs, and bounded by --retry-timeout in a bounded run.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { defaults, loadConfig, type DeepPartial, type EngineConfig } from '../../src/config.js';
import { freePort } from '../../src/db/embedded.js';
import type { Logger } from '../../src/log.js';
import { PROBE_APPLICATION_NAME } from '../../src/ops/health.js';
import { startOps, type Ops } from '../../src/ops/index.js';
import { cli } from '../support/cli.js';
import { until } from '../support/until.js';
import { recordingLog } from '../support/log.js';
import { runStream, type RunningStream } from '../support/stream.js';
import { tinyDisk, userEventsOn } from '../support/tiny-disk.js';
import { count, query, startTestDb, type TestDb } from '../support/pg.js';
import { csv, publish, row, tempDir } from '../support/files.js';

let db: TestDb;
before(async () => {
  db = await startTestDb();
});
after(async () => {
  await (db as TestDb | undefined)?.close();
});

async function readyz(ops: Ops): Promise<{ status: number; body: { status: string; reason?: string; detail?: string } }> {
  const res = await fetch(`${ops.server!.url}/readyz`);
  return { status: res.status, body: (await res.json()) as { status: string; reason?: string; detail?: string } };
}

function rows(n: number): string[] {
  return Array.from({ length: n }, () => row());
}

/** A stream that runs on (on-arrival) with its ops endpoint, as `process` runs it. */
async function runningStream(url: string, dir: string, log: Logger): Promise<RunningStream & { ops: Ops }> {
  const ops = await startOps({
    ops: { ...defaults().ops, metricsPort: await freePort(21000 + Math.floor(Math.random() * 2000)) },
    databaseUrl: url,
    log,
    strict: true,
  });
  const stream = runStream({ engine: loadConfig({ engine: engineConfig(dir) }).engine, databaseUrl: url, log, observer: ops.observer });
  return {
    ops,
    committed: () => stream.committed(),
    async stop() {
      try {
        await stream.stop();
      } finally {
        await ops.close();
      }
    },
  };
}

function engineConfig(dir: string): DeepPartial<EngineConfig> {
  return {
    inputDir: path.join(dir, 'in'),
    checkpointDir: path.join(dir, 'ck'),
    progressFile: path.join(dir, 'progress.jsonl'),
    pollMillis: 100,
    trigger: { kind: 'on-arrival' },
    fileSettleMillis: 0,
    retryInitialMillis: 100,
    retryMaxMillis: 400,
  };
}

describe('5a. readiness follows the batch path', () => {
  test('every batch connection refused with 53300 while the probe keeps its own: /readyz says database_unreachable until a batch commits', async () => {
    const adminUrl = await db.freshDatabase();
    const role = `limited_${process.pid}`;
    const admin = new URL(adminUrl);
    const dbName = admin.pathname.slice(1);
    await query(adminUrl, `CREATE ROLE ${role} LOGIN PASSWORD 'limited' NOSUPERUSER`);
    await query(adminUrl, `GRANT pg_read_all_data, pg_write_all_data TO ${role}`);
    const u = new URL(adminUrl);
    u.username = role;
    u.password = 'limited';
    const url = u.href;
    const dir = await tempDir();
    const log = recordingLog();
    const stream = await runningStream(url, dir, log);
    try {
      await publish(path.join(dir, 'in'), 'events_0.csv', csv(...rows(5)));
      await until('the first commit', () => stream.committed() === 1);
      await until('ready', async () => (await readyz(stream.ops)).status === 200);

      // No new connection for the role from now on; then close every one but the probe's.
      await query(adminUrl, `ALTER ROLE ${role} CONNECTION LIMIT 1`);
      await query(adminUrl, 'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND datname = $2 AND application_name <> $3', [
        role,
        dbName,
        PROBE_APPLICATION_NAME,
      ]);
      await publish(path.join(dir, 'in'), 'events_1.csv', csv(...rows(5)));
      await until('/readyz 503', async () => (await readyz(stream.ops)).status === 503);
      const down = await readyz(stream.ops);
      assert.equal(down.body.reason, 'database_unreachable');
      assert.match(down.body.detail ?? '', /^batch 1: the database server has no connection slot free \(.*code 53300\)$/);
      assert.equal(
        await count(adminUrl, `SELECT COUNT(*) n FROM pg_stat_activity WHERE usename = '${role}' AND application_name = '${PROBE_APPLICATION_NAME}'`),
        1,
        'the probe still has its connection: this is the case it could not see',
      );
      assert.ok(log.lines.some((l) => /^WARN batch 1 \(stays uncommitted\): the database server has no connection slot free .*retry \d+ in \d+ ms$/.test(l)));
      assert.equal(stream.committed(), 1);

      await query(adminUrl, `ALTER ROLE ${role} CONNECTION LIMIT -1`);
      await until('the batch commits', () => stream.committed() === 2);
      assert.deepEqual((await readyz(stream.ops)).body, { status: 'ready' });
      assert.equal(await count(adminUrl, 'SELECT COUNT(*) n FROM user_events'), 10);
    } finally {
      // A graceful stop lets the batch in flight commit: give it its connections back first.
      await query(adminUrl, `ALTER ROLE ${role} CONNECTION LIMIT -1`);
      await stream.stop();
      await query(adminUrl, `DROP OWNED BY ${role}`).catch(() => undefined);
    }
  });
});

describe('5b. PostgreSQL out of disk space', () => {
  test('a stream that runs on names the cause, says database_full, retries, and commits once there is room', async (t) => {
    const tiny = tinyDisk(t, db.server);
    if (typeof tiny === 'string') return t.skip(tiny);
    const url = await db.freshDatabase();
    await userEventsOn(tiny, url);
    const dir = await tempDir();
    const log = recordingLog();
    const stream = await runningStream(url, dir, log);
    try {
      await until('ready', async () => (await readyz(stream.ops)).status === 200);
      await publish(path.join(dir, 'in'), 'events_0.csv', csv(...rows(20_000)));
      await until('/readyz database_full', async () => (await readyz(stream.ops)).body.reason === 'database_full');
      assert.match((await readyz(stream.ops)).body.detail ?? '', /^batch 0: the database server is out of disk space \(.*code 53100\)$/);
      await until('two retries', () => log.lines.filter((l) => l.startsWith('WARN batch 0')).length >= 2);
      for (const l of log.lines.filter((x) => x.startsWith('WARN batch 0')))
        assert.match(l, /^WARN batch 0 \(stays uncommitted\): the database server is out of disk space \(.*code 53100\); retry \d+ in \d+ ms$/);
      assert.equal(stream.committed(), 0);

      tiny.grow();
      await until('the batch commits', () => stream.committed() === 1);
      assert.deepEqual((await readyz(stream.ops)).body, { status: 'ready' });
      assert.equal(await count(url, 'SELECT COUNT(DISTINCT event_id) n FROM user_events'), 20_000);
      assert.equal(await count(url, 'SELECT COUNT(*) n FROM user_events'), 20_000);
    } finally {
      tiny.grow(); // a graceful stop lets the batch in flight commit
      await stream.stop();
    }
  });

  test('available-now and reprocess retry for --retry-timeout, then exit 1 with one line; with room, the run commits once', async (t) => {
    const tiny = tinyDisk(t, db.server);
    if (typeof tiny === 'string') return t.skip(tiny);
    const url = await db.freshDatabase();
    await userEventsOn(tiny, url);
    const dir = await tempDir();
    const input = path.join(dir, 'in');
    await publish(input, 'events_0.csv', csv(...rows(20_000)));
    const args = ['--input', input, '--checkpoint', path.join(dir, 'ck'), '--progress-file', path.join(dir, 'p.jsonl'), '--retry-timeout', '2'];
    for (const command of [
      ['process', '--trigger', 'available-now', '--file-settle', '0'],
      ['reprocess', '--file', 'events_0.csv'],
    ]) {
      const t0 = Date.now();
      const r = await cli([...command, ...args], { DATABASE_URL: url });
      const last = r.stderr.trim().split('\n').pop()!;
      t.diagnostic(`${command[0]}: ${last}`);
      assert.equal(r.code, 1, `${command[0]} exits 1: ${r.stderr}`);
      assert.match(
        last,
        /^ecomstream: batch 0 \(stays uncommitted\): the database server is out of disk space; gave up after 2 s of retries \(--retry-timeout\) \(cause: could not extend file .*: No space left on device\)$/,
      );
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      assert.doesNotMatch(r.stderr, /connection broke/);
      assert.ok(Date.now() - t0 >= 2000, `${command[0]} retried for the 2 s first`);
    }
    assert.equal(await count(url, 'SELECT COUNT(*) n FROM user_events'), 0);

    tiny.grow();
    const ok = await cli(['process', '--trigger', 'available-now', '--file-settle', '0', ...args], { DATABASE_URL: url });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(await count(url, 'SELECT COUNT(DISTINCT event_id) n FROM user_events'), 20_000);
    assert.equal(await count(url, 'SELECT COUNT(*) n FROM user_events'), 20_000);
  });
});
