/**
 * Operating the engine as a service, over real sockets and real PostgreSQL: /metrics agrees with the
 * tables, /readyz follows the database, and a batch blocked by a table lock raises the stall alarm.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fsp from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import pg from 'pg';
import { defaults, loadConfig, type OpsConfig } from '../../src/config.js';
import { freePort, startEmbedded } from '../../src/db/embedded.js';
import { StreamEngine } from '../../src/engine/stream.js';
import { REASONS } from '../../src/contract/event.js';
import { startOps } from '../../src/ops/index.js';
import { DashboardError, startDashboard } from '../../src/dashboard/server.js';
import { OpsServerError } from '../../src/ops/server.js';
import { BIN } from '../support/cli.js';
import { until } from '../support/until.js';
import { recordingLog } from '../support/log.js';
import { runStream } from '../support/stream.js';
import { count, startTestDb, type TestDb } from '../support/pg.js';
import { csv, iso, publish, row, tempDir } from '../support/files.js';
import { sample, scrape } from '../support/prometheus.js';

let db: TestDb;
before(async () => {
  db = await startTestDb();
});
after(async () => {
  await (db as TestDb | undefined)?.close(); // undefined when before() failed
});

async function opsConfig(stallAfterSeconds = 60): Promise<OpsConfig> {
  return { ...defaults().ops, metricsHost: '127.0.0.1', metricsPort: await freePort(19464 + Math.floor(Math.random() * 500)), stallAfterSeconds };
}

async function readyz(base: string): Promise<{ status: number; body: { status: string; reason?: string } }> {
  const res = await fetch(`${base}/readyz`);
  const text = await res.text();
  assert.equal(text.trim().split('\n').length, 1, 'one line of JSON');
  return { status: res.status, body: JSON.parse(text) as { status: string; reason?: string } };
}

describe('/metrics', () => {
  test('after a run, the counters equal what the tables hold (parsed with a Prometheus parser)', async () => {
    const url = await db.freshDatabase();
    const dir = await tempDir();
    const input = path.join(dir, 'in');
    const dupId = crypto.randomUUID();
    await publish(input, 'events_0.csv', csv(row({ event_id: dupId }), row(), row({ event_type: 'click' }), row({ price: '-1.00' }), row({ event_id: dupId })));
    // An event the database already holds: the ON CONFLICT path, a stored duplicate.
    await publish(input, 'events_1.csv', csv(row({ event_id: dupId }), row(), row({ event_timestamp: iso(48 * 3600_000) })));
    await publish(input, 'events_2.csv', csv());
    const ops = await startOps({ ops: await opsConfig(), databaseUrl: url, log: recordingLog(), strict: true });
    try {
      const config = loadConfig({
        engine: {
          inputDir: input,
          checkpointDir: path.join(dir, 'ck'),
          progressFile: path.join(dir, 'p.jsonl'),
          trigger: { kind: 'available-now' },
          maxFilesPerTrigger: 1,
        },
      });
      const summary = await new StreamEngine({ engine: config.engine, databaseUrl: url, log: recordingLog(), observer: ops.observer }).run();
      assert.equal(summary.batches, 3);
      const m = await scrape(ops.server!.url);

      const inserted = await count(url, 'SELECT COUNT(*) n FROM user_events');
      const duplicates = await count(url, "SELECT COUNT(*) n FROM rejected_events WHERE reason = 'duplicate_event_id'");
      const rejected = await count(url, 'SELECT SUM(rejected_rows) n FROM stream_batches');
      assert.deepEqual([inserted, duplicates, rejected], [3, 2, 3], 'the fixture exercises every outcome');
      assert.equal(sample(m, 'ecomstream_rows_total', { outcome: 'inserted' }), inserted);
      assert.equal(sample(m, 'ecomstream_rows_total', { outcome: 'duplicate' }), duplicates);
      assert.equal(sample(m, 'ecomstream_rows_total', { outcome: 'rejected' }), rejected);

      const c = new pg.Client({ connectionString: url });
      await c.connect();
      const byReason = new Map(
        (await c.query<{ reason: string; n: number }>('SELECT reason, COUNT(*)::int n FROM rejected_events GROUP BY reason')).rows.map((r) => [r.reason, r.n]),
      );
      await c.end();
      assert.ok(byReason.has('empty_file'), 'file notices are counted too');
      for (const reason of Object.keys(REASONS)) {
        assert.equal(sample(m, 'ecomstream_rejected_rows_total', { reason }), byReason.get(reason) ?? 0, `reason ${reason} (exported also at zero)`);
      }
      assert.equal(sample(m, 'ecomstream_batches_total'), await count(url, 'SELECT COUNT(*) n FROM stream_batches'));
      assert.equal(sample(m, 'ecomstream_replays_total'), 0);
      assert.equal(sample(m, 'ecomstream_backlog_files'), 0);
      assert.equal(sample(m, 'ecomstream_stalled'), 0);
      const lastCommit = await count(url, 'SELECT EXTRACT(EPOCH FROM MAX(committed_at)) n FROM stream_batches');
      assert.ok(Math.abs(sample(m, 'ecomstream_last_commit_timestamp_seconds') - lastCommit) < 1, 'last commit time matches stream_batches');
      // parse-prometheus-text-format folds a histogram with labels into one sample (it keeps only `le`),
      // so the per-phase counts are read from prom-client's own structured view of the same registry.
      assert.equal(m.get('ecomstream_batch_duration_seconds')!.type, 'HISTOGRAM');
      const phases = (await ops.metrics.registry.getSingleMetric('ecomstream_batch_duration_seconds')!.get()).values.filter(
        (v) => (v as { metricName?: string }).metricName === 'ecomstream_batch_duration_seconds_count',
      );
      assert.deepEqual(
        new Map(phases.map((v) => [v.labels.phase, v.value])),
        new Map(['plan', 'read', 'write', 'commit'].map((p) => [p, 3])),
        'one observation per phase and batch',
      );
      assert.equal(sample(m, 'ecomstream_publish_to_commit_seconds'), 3, 'one observation per file');
      assert.equal(m.get('ecomstream_publish_to_commit_seconds')!.type, 'HISTOGRAM');
      assert.ok(m.has('process_resident_memory_bytes') && m.has('nodejs_eventloop_lag_seconds'), 'default process metrics');
      const live = await fetch(`${ops.server!.url}/livez`);
      assert.equal(live.status, 503, 'the batch loop has ended (available-now)');
    } finally {
      await ops.close();
    }
  });
});

describe('/readyz and /livez', () => {
  test('503 database_unreachable within seconds of stopping PostgreSQL, 200 again after it returns', async (t) => {
    const own = await startTestDb();
    const server = own.server;
    if (!server) return t.skip('TEST_DATABASE_URL: this test cannot stop that server');
    const dir = await tempDir();
    const input = path.join(dir, 'in');
    await publish(input, 'events_0.csv', csv(row()));
    const ops = await startOps({ ops: await opsConfig(), databaseUrl: own.url, log: recordingLog(), strict: true });
    const base = ops.server!.url;
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
    const stream = runStream({ engine: config.engine, databaseUrl: own.url, log: recordingLog(), observer: ops.observer });
    let again: Awaited<ReturnType<typeof startEmbedded>> | undefined;
    try {
      await until('the first commit', () => stream.committed() === 1);
      assert.deepEqual(await readyz(base), { status: 200, body: { status: 'ready' } });
      assert.equal((await fetch(`${base}/livez`)).status, 200);

      await server.stop();
      const t0 = Date.now();
      await until('/readyz 503', async () => (await readyz(base)).status === 503, 10_000);
      const down = await readyz(base);
      assert.equal(down.body.reason, 'database_unreachable');
      const downMs = Date.now() - t0;
      assert.ok(downMs < 5000, `503 after ${downMs} ms`);
      t.diagnostic(`/readyz said database_unreachable ${downMs} ms after PostgreSQL stopped`);
      assert.equal((await fetch(`${base}/livez`)).status, 200, 'alive while the database is away');

      again = await startEmbedded({ dataDir: server.dataDir, port: server.port, user: 'sparkuser', password: 'sparkpass123', database: 'ecommerce_events' });
      const t1 = Date.now();
      await until('/readyz 200 again', async () => (await readyz(base)).status === 200, 10_000);
      t.diagnostic(`/readyz 200 again ${Date.now() - t1} ms after PostgreSQL was back`);
      await publish(input, 'events_1.csv', csv(row()));
      await until('a commit after the outage', () => stream.committed() === 2);
    } finally {
      await stream.stop();
      await ops.close();
      await again?.stop();
      await own.close();
    }
  });
});

describe('stall alarm', () => {
  test('a batch blocked by LOCK TABLE user_events raises it once, and the commit ends it', async () => {
    const url = await db.freshDatabase();
    const dir = await tempDir();
    const input = path.join(dir, 'in');
    const log = recordingLog();
    const ops = await startOps({ ops: await opsConfig(1), databaseUrl: url, log, strict: true });
    const base = ops.server!.url;
    const config = loadConfig({
      engine: {
        inputDir: input,
        checkpointDir: path.join(dir, 'ck'),
        progressFile: path.join(dir, 'p.jsonl'),
        trigger: { kind: 'on-arrival' },
        pollMillis: 100,
      },
    });
    const stream = runStream({ engine: config.engine, databaseUrl: url, log, observer: ops.observer });
    const locker = new pg.Client({ connectionString: url });
    await locker.connect();
    try {
      await until('ready', async () => (await readyz(base)).status === 200);
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE user_events');
      await publish(input, 'events_0.csv', csv(row(), row()));
      await until('/readyz stalled', async () => (await readyz(base)).body.reason === 'stalled', 10_000);
      assert.equal((await readyz(base)).status, 503);
      assert.equal(sample(await scrape(base), 'ecomstream_stalled'), 1);
      assert.equal(stream.committed(), 0, 'the batch is blocked');
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(log.lines.filter((l) => l.startsWith('WARN stalled')).length, 1, 'one warning when the stall begins');
      assert.match(
        log.lines.find((l) => l.startsWith('WARN stalled'))!,
        /batch 0 in flight/,
      );

      await locker.query('COMMIT');
      await until('the blocked batch commits', () => stream.committed() === 1);
      assert.equal((await readyz(base)).status, 200);
      assert.equal(sample(await scrape(base), 'ecomstream_stalled'), 0);
      assert.equal(log.lines.filter((l) => l.startsWith('INFO stall over')).length, 1, 'one line when it ends');
      assert.match(
        log.lines.find((l) => l.startsWith('INFO stall over'))!,
        /^INFO stall over after \d+ s: a batch committed$/,
      );
    } finally {
      await locker.end();
      await stream.stop();
      await ops.close();
    }
  });
});

describe('the CLI as a service', () => {
  test('process --metrics-port --log-format json: JSON lines, /metrics and /readyz over HTTP, SIGTERM stops cleanly', async () => {
    const url = await db.freshDatabase();
    const dir = await tempDir();
    const input = path.join(dir, 'in');
    await publish(input, 'events_0.csv', csv(row(), row({ event_type: 'click' })));
    const port = (await opsConfig()).metricsPort;
    const child = spawn(
      process.execPath,
      [
        BIN,
        'process',
        '--input',
        input,
        '--checkpoint',
        path.join(dir, 'ck'),
        '--progress-file',
        path.join(dir, 'p.jsonl'),
        '--metrics-port',
        String(port),
        '--log-format',
        'json',
      ],
      {
        env: { ...process.env, DATABASE_URL: url },
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    try {
      await until('the batch line', () => stdout.includes('batch_committed'));
      const base = `http://127.0.0.1:${port}`;
      assert.deepEqual(await readyz(base), { status: 200, body: { status: 'ready' } });
      const m = await scrape(base);
      assert.equal(sample(m, 'ecomstream_rows_total', { outcome: 'inserted' }), 1);
      assert.equal(sample(m, 'ecomstream_rejected_rows_total', { reason: 'invalid_event_type' }), 1);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, stderr);
    const lines = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const l of lines) {
      assert.equal(typeof l.time, 'string');
      assert.equal(l.level, 'info');
      assert.equal(typeof l.message, 'string');
    }
    const batch = lines.find((l) => l.event === 'batch_committed')!;
    assert.deepEqual([batch.batch, batch.files, batch.rows, batch.inserted, batch.rejected], [0, ['events_0.csv'], 2, 1, 1]);
    assert.match(batch.message as string, /^batch 0: events_0\.csv: 2 rows -> 1 inserted, 0 duplicate, 1 rejected/);
  });
});

describe('the dashboard and the stall alarm', () => {
  test("the dashboard's status carries the engine's stall (its red banner) and clears it", async () => {
    const url = await db.freshDatabase();
    const opsCfg = await opsConfig(0.2);
    const ops = await startOps({ ops: opsCfg, databaseUrl: url, log: recordingLog(), strict: true });
    const dash = await startDashboard({
      config: loadConfig({ dashboard: { port: 0, host: '127.0.0.1' }, ops: opsCfg }, undefined, {}),
      databaseUrl: url,
      log: recordingLog(),
    });
    const stream = async (): Promise<{ stalled: boolean; detail: string | null }> =>
      ((await (await fetch(`${dash.url}api/health`)).json()) as { stream: { stalled: boolean; detail: string | null } }).stream;
    try {
      ops.observer.started?.({ streamId: 's', checkpointDir: '/nonexistent' });
      ops.observer.running?.();
      assert.equal((await stream()).stalled, false);
      ops.observer.backlog?.(2); // files wait, and nothing commits them
      await until('the dashboard sees the stall', async () => (await stream()).stalled, 10_000);
      assert.match((await stream()).detail ?? '', /2 files wait/);
      ops.observer.backlog?.(0);
      await until('the dashboard sees it end', async () => !(await stream()).stalled, 10_000);
    } finally {
      await dash.close();
      await ops.close();
    }
  });
});

describe('a port already taken', () => {
  test('the metrics endpoint and the dashboard each fail with their error class, the option to change and the code', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const ops = { ...(await opsConfig()), metricsPort: port };
      await assert.rejects(startOps({ ops, databaseUrl: db.url, log: recordingLog(), strict: true }), (err: unknown) => {
        assert.ok(err instanceof OpsServerError, String(err));
        assert.deepEqual([err.code, err.option], ['EADDRINUSE', '--metrics-port']);
        return true;
      });
      const config = loadConfig({ dashboard: { port, host: '127.0.0.1' } }, undefined, {});
      await assert.rejects(startDashboard({ config, databaseUrl: db.url, log: recordingLog() }), (err: unknown) => {
        assert.ok(err instanceof DashboardError, String(err));
        assert.deepEqual([err.code, err.option], ['EADDRINUSE', '--port']);
        return true;
      });
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });
});

describe('up as a service', () => {
  test('up serves /metrics and /readyz; the counters follow its batches; Ctrl-C stops it cleanly', async () => {
    const cwd = await tempDir('ecomstream-up-ops-');
    await fsp.chmod(cwd, 0o755); // the embedded server runs as the postgres user when we are root
    const port = (await opsConfig()).metricsPort;
    const child = spawn(process.execPath, [BIN, 'up', '--files', '2', '--interval', '0.2', '--no-dashboard', '--metrics-port', String(port)], {
      cwd,
      env: { ...process.env, DATABASE_URL: undefined, ECOMSTREAM_PG_PORT: String(28000 + Math.floor(Math.random() * 1000)) },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    try {
      const inserted = (): number => [...stdout.matchAll(/^\S+ batch \d+: .* -> (\d+) inserted/gm)].reduce((n, x) => n + Number(x[1]), 0);
      await until('both files committed', () => inserted() === 20, 60_000);
      const base = `http://127.0.0.1:${port}`;
      assert.match(stdout, new RegExp(`metrics: ${base}/metrics`));
      assert.deepEqual(await readyz(base), { status: 200, body: { status: 'ready' } });
      const m = await scrape(base);
      assert.equal(sample(m, 'ecomstream_rows_total', { outcome: 'inserted' }), 20, 'two files of 10 events');
      assert.equal(sample(m, 'ecomstream_batches_total'), (stdout.match(/^\S+ batch \d+: /gm) ?? []).length);
    } finally {
      child.kill('SIGINT');
    }
    assert.equal(await exited, 0, stderr);
  });
});
