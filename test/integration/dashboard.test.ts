/**
 * The dashboard against real PostgreSQL (the embedded server): the trigger-maintained aggregates equal a
 * full GROUP BY after batches with duplicates and rejects (and after deletes, updates, a rolled-back batch
 * and a truncate); the backfill; the read-only role; the API; SSE within a second of a commit; and the
 * database going away and coming back.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fsp from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { loadConfig, type Config } from '../../src/config.js';
import { startDashboard, readonlyUrl } from '../../src/dashboard/server.js';
import type { Snapshot } from '../../src/dashboard/queries.js';
import { histogramQuantile, latencyIndex } from '../../src/dashboard/latency.js';
import { startEmbedded } from '../../src/db/embedded.js';
import { listMigrations, migrate } from '../../src/db/migrate.js';
import { silentLogger } from '../../src/log.js';
import { startTestDb, type TestDb } from '../support/pg.js';
import { commitBatch, makeEvents, openSse, prng, tempDir, type RejectRow, type TestBatch } from '../e2e/helpers.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

let db: TestDb;
before(async () => {
  db = await startTestDb();
});
after(async () => {
  await (db as TestDb | undefined)?.close(); // undefined when before() failed
});

function config(over: { inputDir?: string; checkpointDir?: string } = {}): Readonly<Config> {
  return loadConfig(
    {
      dashboard: { port: 0, host: '127.0.0.1' },
      engine: { inputDir: over.inputDir ?? '/nonexistent/input', checkpointDir: over.checkpointDir ?? '/nonexistent/cp' },
    },
    ROOT,
    {},
  );
}

const asRows = (r: pg.QueryResult): string => JSON.stringify(r.rows);

/** Every aggregate table next to the full GROUP BY it stands for; they must be equal row for row. */
async function assertAggregatesMatch(url: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const pairs: [string, string, string][] = [
      [
        'events by type',
        `SELECT event_type, events, priced_events, price_sum, round(latency_sum_s::numeric, 3) AS l, latency_n FROM dash_event_types ORDER BY 1`,
        `SELECT event_type, count(*) AS events, count(price) AS priced_events, coalesce(sum(price), 0) AS price_sum,
                round(coalesce(sum(extract(epoch FROM inserted_at - event_timestamp)), 0)::float8::numeric, 3) AS l, count(inserted_at) AS latency_n
         FROM user_events GROUP BY 1 ORDER BY 1`,
      ],
      [
        'revenue by category',
        `SELECT product_category, events, purchases, revenue FROM dash_categories ORDER BY 1`,
        `SELECT coalesce(product_category, '') AS product_category, count(*) AS events, count(*) FILTER (WHERE event_type = 'purchase') AS purchases,
                coalesce(sum(price) FILTER (WHERE event_type = 'purchase'), 0) AS revenue
         FROM user_events GROUP BY 1 ORDER BY 1`,
      ],
      [
        'devices',
        `SELECT device_type, events, purchases, revenue FROM dash_devices ORDER BY 1`,
        `SELECT coalesce(device_type, '') AS device_type, count(*) AS events, count(*) FILTER (WHERE event_type = 'purchase') AS purchases,
                coalesce(sum(price) FILTER (WHERE event_type = 'purchase'), 0) AS revenue
         FROM user_events GROUP BY 1 ORDER BY 1`,
      ],
      [
        'products',
        `SELECT product_id, events, purchases, revenue FROM dash_products ORDER BY 1`,
        `SELECT product_id, count(*) AS events, count(*) FILTER (WHERE event_type = 'purchase') AS purchases,
                coalesce(sum(price) FILTER (WHERE event_type = 'purchase'), 0) AS revenue
         FROM user_events GROUP BY 1 ORDER BY 1`,
      ],
      [
        'rejects by reason',
        `SELECT reason, rows, (SELECT jsonb_agg(e->>'raw') FROM jsonb_array_elements(examples) e) AS raw FROM dash_rejects ORDER BY 1`,
        `SELECT reason, count(*) AS rows, (SELECT jsonb_agg(raw_line ORDER BY id DESC) FROM (SELECT raw_line, id FROM rejected_events x
                 WHERE x.reason = r.reason ORDER BY id DESC LIMIT 3) t) AS raw
         FROM rejected_events r GROUP BY 1 ORDER BY 1`,
      ],
      [
        'streams',
        `SELECT stream_id, batches, files, input_rows, inserted_rows, duplicate_rows, rejected_rows, last_batch_id FROM dash_streams ORDER BY 1`,
        `SELECT stream_id, count(*) AS batches, sum(jsonb_array_length(files)) AS files, sum(input_rows) AS input_rows, sum(inserted_rows) AS inserted_rows,
                sum(duplicate_rows) AS duplicate_rows, sum(rejected_rows) AS rejected_rows, max(batch_id) AS last_batch_id
         FROM stream_batches GROUP BY 1 ORDER BY 1`,
      ],
      [
        'timeline',
        `SELECT res_s, bucket, batches, files, input_rows, inserted_rows, duplicate_rows, rejected_rows FROM dash_timeline ORDER BY 1, 2`,
        `SELECT res_s, date_bin(make_interval(secs => res_s), committed_at, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket, count(*) AS batches,
                sum(jsonb_array_length(files)) AS files, sum(input_rows) AS input_rows, sum(inserted_rows) AS inserted_rows,
                sum(duplicate_rows) AS duplicate_rows, sum(rejected_rows) AS rejected_rows
         FROM stream_batches CROSS JOIN (VALUES (5::smallint), (60::smallint)) AS r(res_s) GROUP BY 1, 2 ORDER BY 1, 2`,
      ],
      [
        'latency histogram',
        `SELECT res_s, bucket, idx, files FROM dash_latency ORDER BY 1, 2, 3`,
        `SELECT res_s, date_bin(make_interval(secs => res_s), b.committed_at, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
                least(79, CASE WHEN ms < 1 THEN 0 ELSE floor(ln(ms) / ln(1.25::float8)) + 1 END)::smallint AS idx, count(*) AS files
         FROM stream_batches b, LATERAL (SELECT extract(epoch FROM b.committed_at) * 1000 - (f->>'mtimeMs')::float8 AS ms
                                         FROM jsonb_array_elements(b.files) f) AS l,
              (VALUES (5::smallint), (60::smallint)) AS r(res_s)
         GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
      ],
    ];
    for (const [what, incremental, full] of pairs) {
      assert.equal(asRows(await c.query(incremental)), asRows(await c.query(full)), `${what}: incremental aggregate differs from the full GROUP BY`);
    }
  } finally {
    await c.end();
  }
}

let batchSeq = 0;
function batch(streamId: string, events: TestBatch['events'], rejects: RejectRow[] = [], fileCount = 1): TestBatch {
  const id = batchSeq++;
  const now = Date.now();
  return {
    streamId,
    batchId: id,
    events,
    rejects,
    files: Array.from({ length: fileCount }, (_, i) => ({ name: `events_${id}_${i}.csv`, size: 100, mtimeMs: now - 200 - i * 50 })),
  };
}

describe('incremental aggregates', () => {
  test('equal a full GROUP BY after batches with duplicates, rejects, deletes, updates and a rollback', async () => {
    const url = await db.freshDatabase();
    const rand = prng(42);
    const stream = crypto.randomUUID();
    const first = makeEvents(400, rand);
    await commitBatch(url, batch(stream, first, [{ file: 'events_a.csv', line: 7, raw: 'x,y', reason: 'wrong_column_count', detail: '2 fields' }], 2));
    // In-batch duplicate (the engine rejects the second copy itself) and rule violations.
    const second = makeEvents(300, rand);
    await commitBatch(
      url,
      batch(stream, second, [
        { file: 'events_b.csv', line: 3, raw: `${second[0]!.event_id},U1,view`, reason: 'duplicate_event_id', detail: 'appears earlier in this batch' },
        { file: 'events_b.csv', line: 9, raw: 'id,U1,refund,P1,,,1,2024-01-01T00:00:00Z,,mobile', reason: 'invalid_event_type', detail: 'refund' },
        { file: 'events_b.csv', line: 0, raw: null, reason: 'missing_header', detail: 'no header row' },
      ]),
    );
    // Events already stored by an earlier batch: the COPY fails and the batch goes through ON CONFLICT.
    const replayed = [...first.slice(0, 50), ...makeEvents(100, rand)];
    const res = await commitBatch(url, batch(stream, replayed));
    assert.equal(res.inserted, 100);
    assert.equal(res.duplicates, 50);
    // A second stream (say the Spark job) writing the same tables.
    await commitBatch(
      url,
      batch(crypto.randomUUID(), makeEvents(250, rand), [{ file: 'e.csv', line: 2, raw: 'bad', reason: 'negative_price', detail: '-1' }], 3),
    );
    await assertAggregatesMatch(url);

    // A batch that rolls back leaves the aggregates as they were.
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query('BEGIN');
    await c.query(`INSERT INTO user_events (event_id, user_id, event_type, product_id, event_timestamp) VALUES ('rolled-back', 'u', 'purchase', 'P1', now())`);
    await c.query('ROLLBACK');
    await assertAggregatesMatch(url);

    // Deletes and updates (retention jobs, fixes) keep them right too.
    await c.query(`DELETE FROM user_events WHERE id % 7 = 0`);
    await c.query(`UPDATE user_events SET price = price + 1, device_type = 'tablet' WHERE id % 5 = 0`);
    await c.query(`DELETE FROM rejected_events WHERE reason = 'negative_price'`);
    await assertAggregatesMatch(url);

    // dash_rebuild() (the backfill) agrees with the triggers.
    const before = asRows(await c.query('SELECT * FROM dash_categories ORDER BY 1'));
    await c.query('SELECT dash_rebuild()');
    assert.equal(asRows(await c.query('SELECT * FROM dash_categories ORDER BY 1')), before);

    await c.query('TRUNCATE user_events, rejected_events, stream_batches');
    for (const t of ['dash_event_types', 'dash_categories', 'dash_products', 'dash_rejects', 'dash_streams', 'dash_timeline', 'dash_latency']) {
      assert.equal((await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${t}`)).rows[0]!.n, 0, `${t} is empty after TRUNCATE`);
    }
    await c.end();
  });

  test('are backfilled when the dashboard section meets existing data', async () => {
    const url = await db.freshDatabase();
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      // As if the schema had been created without its dashboard section: no aggregate tables, no triggers.
      await c.query(`DROP TABLE dash_event_types, dash_categories, dash_devices, dash_products, dash_rejects, dash_streams,
                       dash_timeline, dash_latency, dash_state`);
      await c.query(`DO $$ DECLARE f regprocedure; BEGIN
                       FOR f IN SELECT oid::regprocedure FROM pg_proc WHERE proname LIKE 'dash\\_%' LOOP
                         EXECUTE 'DROP FUNCTION ' || f || ' CASCADE'; -- and the triggers that use it
                       END LOOP; END $$`);
      assert.equal((await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_trigger WHERE tgname LIKE 'dash%'`)).rows[0]!.n, 0);
      await commitBatch(url, batch('s1', makeEvents(500, prng(7)), [{ file: 'f.csv', line: 4, raw: 'r', reason: 'stale_timestamp', detail: 'old' }], 2));
      // The initial migration run again, as on a database created by the single init script that preceded
      // numbered migrations (it is postgres/migrations/0002_initial.sql now).
      const initial = listMigrations().find((m) => m.name === 'initial')!.sql;
      await c.query(initial);
      await assertAggregatesMatch(url);
      // And a second run neither rebuilds nor double-counts.
      await commitBatch(url, batch('s1', makeEvents(100, prng(8))));
      await c.query(initial);
      await assertAggregatesMatch(url);
    } finally {
      await c.end();
    }
  });

  test('latency buckets in SQL and TypeScript agree', async () => {
    const { rows } = await db.query<{ ms: number; idx: number }>(
      `SELECT ms, dash_latency_idx(ms) AS idx FROM unnest(ARRAY[0, 0.5, 1, 1.2, 1.25, 7, 100, 149.9, 1000, 60000, 1e9]::float8[]) AS ms`,
    );
    for (const r of rows) assert.equal(r.idx, latencyIndex(r.ms), `latency ${r.ms} ms`);
    const h = new Map([
      [latencyIndex(100), 98],
      [latencyIndex(5000), 2],
    ]);
    const p50 = histogramQuantile(h, 0.5)!;
    assert.ok(p50 > 80 && p50 < 125, `p50 ${p50} near 100 ms`);
    const p99 = histogramQuantile(h, 0.99)!;
    assert.ok(p99 > 4000 && p99 < 6250, `p99 ${p99} near 5000 ms`);
  });
});

describe('read-only role', () => {
  test('can read the dashboard tables and cannot write anything', async () => {
    const ro = new pg.Client({ connectionString: readonlyUrl(db.url, 'dashboard_reader', 'dashboard_reader') });
    await ro.connect();
    try {
      await ro.query('SELECT count(*) FROM dash_event_types');
      await ro.query('SELECT count(*) FROM user_events');
      await assert.rejects(ro.query(`INSERT INTO dash_state VALUES (1, now())`), { code: '25006' }); // read-only session
      // Even after switching its session to read-write, the grants stop it.
      await ro.query('SET default_transaction_read_only = off');
      await assert.rejects(
        ro.query(`INSERT INTO user_events (event_id, user_id, event_type, product_id, event_timestamp) VALUES ('x', 'u', 'view', 'p', now())`),
        { code: '42501' },
      );
      await assert.rejects(ro.query('DELETE FROM stream_batches'), { code: '42501' });
      await assert.rejects(ro.query('TRUNCATE dash_categories'), { code: '42501' });
      await assert.rejects(ro.query('CREATE TABLE mine (x int)'), { code: '42501' });
      await assert.rejects(ro.query('SELECT dash_rebuild()'), { code: '42501' });
    } finally {
      await ro.end();
    }
  });
});

describe('dashboard server', () => {
  test('serves the page, the API and SSE within a second of a commit', async () => {
    const url = await db.freshDatabase();
    const input = await tempDir('dash-input-');
    const cp = await tempDir('dash-cp-');
    const dash = await startDashboard({ config: config({ inputDir: input, checkpointDir: cp }), databaseUrl: url, log: silentLogger });
    try {
      assert.match(dash.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
      const page = await fetch(dash.url);
      assert.equal(page.status, 200);
      assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'self'/);
      assert.match(await page.text(), /<h2 id="now-h">Now<\/h2>/);
      for (const p of ['app.js', 'style.css', 'vendor/uPlot.iife.min.js', 'vendor/uPlot.min.css']) {
        assert.equal((await fetch(dash.url + p)).status, 200, p);
      }

      // Two files published, one of them already in a batch: the backlog is the other one.
      await fsp.writeFile(path.join(input, 'events_waiting.csv'), 'x');
      await fsp.writeFile(path.join(input, 'events_0_0.csv'), 'x');
      await fsp.writeFile(path.join(input, '.events_tmp.csv'), 'x'); // unpublished temp file: not counted

      const sse = openSse(`${dash.url}api/events?window=5m`);
      try {
        await sse.next((e) => e.event === 'status' && (e.data as { db: { state: string } }).db.state === 'ok');
        const initial = (await sse.next((e) => e.event === 'snapshot')).data as Snapshot;
        assert.equal(initial.now.events, 0);

        batchSeq = 0;
        const events = makeEvents(120, prng(3));
        const committedAt = Date.now();
        await commitBatch(url, batch('s-live', events, [{ file: 'events_0_0.csv', line: 5, raw: '<b>bad</b>,row', reason: 'invalid_price', detail: 'abc' }]));
        const pushed = await sse.next((e) => e.event === 'snapshot' && (e.data as Snapshot).now.events === 120, 3000);
        const lag = pushed.atMs - committedAt;
        assert.ok(lag < 1000, `snapshot pushed ${lag} ms after the commit (must be within a second)`);
        const s = pushed.data as Snapshot;
        assert.equal(s.now.purchases, events.filter((e) => e.event_type === 'purchase').length);
        const revenue = events.filter((e) => e.event_type === 'purchase').reduce((a, e) => a + Number(e.price ?? 0), 0);
        assert.ok(Math.abs(s.now.revenue - revenue) < 0.005, `revenue ${s.now.revenue} vs ${revenue}`);
        assert.equal(s.now.rejectedRows, 1);
        assert.equal(s.now.backlogFiles, 1);
        assert.equal(s.batches[0]?.batchId, 0);
        assert.equal(s.quality.reasons[0]?.reason, 'invalid_price');
        assert.equal(s.quality.reasons[0].examples[0]?.raw, '<b>bad</b>,row');
        assert.ok(
          s.timeline.rowsPerSecond.some((r) => r > 0),
          'throughput series shows the batch',
        );
        assert.ok(s.now.latencyP50Ms !== null && s.now.latencyP50Ms > 100, 'latency from file mtime to commit');
        assert.equal(s.now.engine.state, 'unknown');

        // The API's numbers are the full GROUP BY's numbers.
        const api = (await (await fetch(`${dash.url}api/snapshot?window=15m`)).json()) as Snapshot;
        const c = new pg.Client({ connectionString: url });
        await c.connect();
        const full = await c.query<{ event_type: string; n: number }>(`SELECT event_type, count(*)::int AS n FROM user_events GROUP BY 1 ORDER BY 1`);
        await c.end();
        assert.deepEqual(api.business.eventTypes.map((t) => [t.eventType, t.events]).sort(), full.rows.map((r) => [r.event_type, r.n]).sort());
        assert.equal(api.window.key, '15m');
      } finally {
        sse.close();
      }

      // No SQL from the browser, only GET, only the fixed routes, only our own Host.
      assert.equal((await fetch(`${dash.url}api/snapshot?window=1;DROP TABLE user_events`)).status, 400);
      assert.equal((await fetch(`${dash.url}api/snapshot`, { method: 'POST', body: 'SELECT 1' })).status, 405);
      const missing = await fetch(`${dash.url}../../etc/passwd`);
      assert.equal(missing.status, 404);
      const rebinding = await new Promise<number>((resolve, reject) => {
        const u = new URL(dash.url);
        const req = http.get({ host: u.hostname, port: u.port, path: '/api/health', headers: { Host: 'evil.example:80' } }, (res) =>
          resolve(res.statusCode ?? 0),
        );
        req.on('error', reject);
      });
      assert.equal(rebinding, 421);
    } finally {
      await dash.close();
      await fsp.rm(input, { recursive: true, force: true });
      await fsp.rm(cp, { recursive: true, force: true });
    }
  });

  test('shows the database going away and recovers by itself', async () => {
    // A server of its own, so stopping it does not disturb the other tests.
    const dir = await tempDir('dash-pg-');
    await fsp.chmod(dir, 0o755); // the server runs as the postgres user when we are root
    const opts = {
      dataDir: path.join(dir, 'data'),
      port: 17432 + Math.floor(Math.random() * 1000),
      user: 'sparkuser',
      password: 'sparkpass123',
      database: 'ecommerce_events',
    };
    let server = await startEmbedded(opts);
    await migrate(server.url);
    const port = server.port;
    const dash = await startDashboard({ config: config(), databaseUrl: server.url, log: silentLogger });
    const sse = openSse(`${dash.url}api/events`);
    try {
      await sse.next((e) => e.event === 'snapshot');
      await server.stop();
      const down = await sse.next((e) => e.event === 'status' && (e.data as { db: { state: string } }).db.state === 'unavailable', 5000);
      const message = (down.data as { db: { message: string } }).db.message;
      assert.ok(message.length > 0 && !/\n\s+at /.test(message), `one-line reason, no stack: ${message}`);
      const api = await fetch(`${dash.url}api/snapshot`);
      assert.equal(api.status, 503);
      const body = (await api.json()) as { error: string };
      assert.match(body.error, /database unavailable/);
      assert.doesNotMatch(body.error, /\n\s+at /);
      assert.equal((await fetch(`${dash.url}api/health`)).status, 503);

      server = await startEmbedded({ ...opts, port });
      assert.equal(server.port, port, 'the restarted server got its port back');
      await sse.next((e) => e.event === 'status' && (e.data as { db: { state: string } }).db.state === 'ok', 10_000);
      await commitBatch(server.url, batch('s-back', makeEvents(10, prng(9))));
      await sse.next((e) => e.event === 'snapshot' && (e.data as Snapshot).now.events === 10, 5000);
    } finally {
      sse.close();
      await dash.close();
      await server.stop();
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });

  test('`ecomstream dashboard` serves against DATABASE_URL and stops on SIGINT', async () => {
    const url = await db.freshDatabase();
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        `const m = await import(${JSON.stringify(path.join(ROOT, 'src/cli/main.ts'))}); await m.main(['dashboard', '--port', '0']);`,
      ],
      { cwd: ROOT, env: { ...process.env, DATABASE_URL: url }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    try {
      const started = Date.now();
      while (!/dashboard at (http:\S+)/.test(out)) {
        assert.ok(Date.now() - started < 30_000, `no URL printed: ${out}`);
        assert.equal(child.exitCode, null, `exited early: ${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const dashUrl = /dashboard at (http:\S+)/.exec(out)![1]!;
      assert.match(dashUrl, /^http:\/\/127\.0\.0\.1:/);
      for (let i = 0; ; i++) {
        const res = await fetch(`${dashUrl}api/health`);
        if (res.status === 200) break;
        assert.ok(i < 50, 'healthy within 5 s');
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      child.kill('SIGINT');
    }
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    assert.equal(code, 0, out);
  });
});
