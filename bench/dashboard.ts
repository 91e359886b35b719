/**
 * `npm run bench:dashboard`: what the dashboard costs the database, at 10,000,000 rows.
 *
 *  1. load      BENCH_DASHBOARD_ROWS rows (default 10,000,000) into user_events with INSERT ... SELECT
 *               generate_series, in 1,000,000-row statements, through the aggregate triggers; plus
 *               20,000 batch records over the last 24 h (every 5 s bucket filled) and 50,000 rejects
 *  2. refresh   one full dashboard refresh (all its named queries, as the read-only role, in one
 *               snapshot) for the default 5-minute window and the heaviest 24-hour window: median and
 *               p95 of 20; beside it, what the spec's sample queries cost scanning user_events directly
 *  3. ingest    COPY of 1,000,000 rows with vs. without the triggers (into the loaded table and into an
 *               empty one), and the triggers' fixed cost on a small 10-row batch transaction
 *
 * Writes bench/results/dashboard.json. Env: BENCH_DASHBOARD_ROWS, BENCH_COPY_ROWS, DATABASE_URL (use that
 * server instead of a fresh embedded one; the benchmark creates and drops its own databases there).
 */
import crypto from 'node:crypto';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { PRODUCT_CATEGORIES } from '../src/contract/event.js';
import { readDbRows, type WindowKey } from '../src/dashboard/queries.js';
import { readonlyUrl } from '../src/dashboard/server.js';
import { BacklogTracker } from '../src/dashboard/surroundings.js';
import { startEmbedded, type EmbeddedServer } from '../src/db/embedded.js';
import { migrate, PACKAGE_ROOT } from '../src/db/migrate.js';

const ROWS = Number(process.env.BENCH_DASHBOARD_ROWS ?? 10_000_000);
const COPY_ROWS = Number(process.env.BENCH_COPY_ROWS ?? 1_000_000);
const CHUNK = 1_000_000;
const BATCH_RECORDS = 20_000;
const REJECTS = 50_000;
const REFRESHES = 20;
const OUT = path.join(PACKAGE_ROOT, 'bench', 'results', 'dashboard.json');
const DASH_TRIGGERS = ['dash_user_events_ins', 'dash_user_events_del', 'dash_user_events_upd', 'dash_user_events_trunc'];

const say = (m: string): void => void process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${m}\n`);
const round = (n: number, d = 1): number => Math.round(n * 10 ** d) / 10 ** d;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
function p95(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(0.95 * s.length) - 1)]!;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

const CATEGORIES_SQL = `ARRAY[${PRODUCT_CATEGORIES.map((c) => `'${c.replace(/'/g, "''")}'`).join(', ')}]`;

/** Rows like the generator's: 200 products with fixed category and price, 15 % purchases, 3 devices. */
function eventsSelect(from: number, to: number, idExpr: string): string {
  return `
    SELECT ${idExpr}, 'U' || lpad(((g * 7919) % 100000)::text, 6, '0'),
           CASE WHEN g % 20 < 3 THEN 'purchase' ELSE 'view' END,
           'P' || lpad(((g * 31) % 200)::text, 5, '0'), 'Product ' || ((g * 31) % 200),
           (${CATEGORIES_SQL})[((g * 31) % 200) % 8 + 1],
           (5 + ((g * 31) % 200) * 2.5)::numeric(10, 2),
           now()::timestamp - make_interval(secs => (g % 86400)),
           'S' || (g / 5), (ARRAY['mobile', 'desktop', 'tablet'])[g % 3 + 1]
    FROM generate_series(${from}::bigint, ${to}::bigint) AS g`;
}

const EVENT_COLUMNS = 'event_id, user_id, event_type, product_id, product_name, product_category, price, event_timestamp, session_id, device_type';

async function load(admin: pg.Client): Promise<Record<string, number>> {
  await admin.query('SET synchronous_commit = off');
  let loaded = 0;
  const t0 = performance.now();
  while (loaded < ROWS) {
    const n = Math.min(CHUNK, ROWS - loaded);
    // Sequential ids keep the unique index appends cheap: this phase builds state, it is not measured.
    await admin.query(`INSERT INTO user_events (${EVENT_COLUMNS}) ${eventsSelect(loaded + 1, loaded + n, `'ev-' || lpad(g::text, 32, '0')`)}`);
    loaded += n;
    say(`  ${loaded.toLocaleString('en-US')} rows (${round((performance.now() - t0) / 1000)} s)`);
  }
  const loadMs = performance.now() - t0;
  const t1 = performance.now();
  await admin.query(`
    INSERT INTO stream_batches (stream_id, batch_id, engine, files, batch_timestamp, input_rows, inserted_rows, duplicate_rows,
                                rejected_rows, quality_score, oldest_file_mtime, newest_file_mtime, durations_ms, committed_at)
    SELECT 'bench', g, 'typescript',
           jsonb_build_array(jsonb_build_object('name', 'events_' || g || '.csv', 'size', 50000,
                                                'mtimeMs', extract(epoch FROM c) * 1000 - 40 - (g % 300))),
           c - interval '30 milliseconds', 500, 497, 1, 2, 0.97, c - make_interval(secs => (40 + g % 300) / 1000.0),
           c - make_interval(secs => (40 + g % 300) / 1000.0), jsonb_build_object('read', 12, 'write', 9, 'commit', 2, 'total', 25 + g % 20), c
    FROM generate_series(1, ${BATCH_RECORDS}) AS g, LATERAL (SELECT now() - interval '24 hours' + g * (interval '24 hours' / ${BATCH_RECORDS})) AS t(c)`);
  await admin.query(`
    INSERT INTO rejected_events (stream_id, batch_id, source_file, line_number, raw_line, reason, detail)
    SELECT 'bench', g % ${BATCH_RECORDS}, 'events_' || (g % ${BATCH_RECORDS}) || '.csv', g % 500 + 2, 'raw,line,' || g,
           (ARRAY['invalid_event_type', 'negative_price', 'stale_timestamp', 'missing_required', 'wrong_column_count', 'duplicate_event_id'])[g % 6 + 1],
           'bench'
    FROM generate_series(1, ${REJECTS}) AS g`);
  const extrasMs = performance.now() - t1;
  await admin.query('RESET synchronous_commit');
  say('  VACUUM ANALYZE');
  await admin.query('VACUUM ANALYZE');
  return { loadMs, extrasMs };
}

async function refreshes(url: string, roUser: string, roPassword: string): Promise<Record<string, unknown>> {
  const ro = new pg.Client({ connectionString: readonlyUrl(url, roUser, roPassword) });
  await ro.connect();
  const input = await fsp.mkdtemp(path.join(os.tmpdir(), 'ecomstream-bench-input-'));
  try {
    // A landing folder with a few files, so the backlog query runs as in a live refresh.
    for (let i = 0; i < 50; i++) await fsp.writeFile(path.join(input, `events_${BATCH_RECORDS - i}.csv`), 'x');
    await fsp.writeFile(path.join(input, 'events_waiting.csv'), 'x');
    const backlog = new BacklogTracker(input);
    const firstBacklogMs = await timed(() => backlog.count(ro));
    const out: Record<string, unknown> = { firstBacklogScanMs: round(firstBacklogMs) };
    for (const window of ['5m', '24h'] as WindowKey[]) {
      await readDbRows(ro, window); // warm the plans and the cache, as a running dashboard has them
      const db: number[] = [];
      const withBacklog: number[] = [];
      for (let i = 0; i < REFRESHES; i++) {
        const t0 = performance.now();
        await backlog.count(ro);
        const { elapsedMs } = await readDbRows(ro, window);
        withBacklog.push(performance.now() - t0);
        db.push(elapsedMs);
      }
      out[window] = {
        queriesMedianMs: round(median(db), 2),
        queriesP95Ms: round(p95(db), 2),
        withBacklogMedianMs: round(median(withBacklog), 2),
        runs: REFRESHES,
      };
      say(`  window ${window}: median ${round(median(db), 2)} ms, p95 ${round(p95(db), 2)} ms (with backlog scan ${round(median(withBacklog), 2)} ms)`);
    }
    return out;
  } finally {
    await ro.end();
    await fsp.rm(input, { recursive: true, force: true });
  }
}

async function naiveScan(admin: pg.Client): Promise<Record<string, number>> {
  // What the page would cost without the aggregates: the spec's sample queries on user_events.
  const byType = await timed(() => admin.query('SELECT event_type, count(*) FROM user_events GROUP BY event_type'));
  const byCategory = await timed(() =>
    admin.query(`SELECT product_category, sum(price) FROM user_events WHERE event_type = 'purchase' GROUP BY product_category`),
  );
  const latency = await timed(() => admin.query('SELECT avg(extract(epoch FROM (inserted_at - event_timestamp))) FROM user_events'));
  return { eventsByTypeMs: round(byType), revenueByCategoryMs: round(byCategory), latencyMs: round(latency) };
}

/** COPY lines of `n` events with random UUIDs, as the engine writes them. */
function copyLines(n: number): string[] {
  const now = Date.now();
  const chunks: string[] = [];
  let buf: string[] = [];
  for (let i = 0; i < n; i++) {
    const p = (i * 31) % 200;
    buf.push(
      `${crypto.randomUUID()}\tU${String((i * 7919) % 100000).padStart(6, '0')}\t${i % 20 < 3 ? 'purchase' : 'view'}\tP${String(p).padStart(5, '0')}\tProduct ${p}\t${PRODUCT_CATEGORIES[p % 8]}\t${(5 + p * 2.5).toFixed(2)}\t${new Date(now - (i % 86_400) * 1000).toISOString()}\tS${i}\t${['mobile', 'desktop', 'tablet'][i % 3]}\n`,
    );
    if (buf.length === 10_000) {
      chunks.push(buf.join(''));
      buf = [];
    }
  }
  if (buf.length) chunks.push(buf.join(''));
  return chunks;
}

/**
 * One COPY in a transaction that is rolled back, so every run starts from the same table. Returns the
 * COPY's wall time and the time spent inside the aggregate trigger (from the server's function
 * statistics, which a shared, noisy machine disturbs far less than a difference of two wall times).
 */
async function copyOnce(client: pg.Client, chunks: string[], triggers: boolean): Promise<{ wallMs: number; triggerMs: number }> {
  await client.query('BEGIN');
  try {
    if (!triggers) for (const t of DASH_TRIGGERS) await client.query(`ALTER TABLE user_events DISABLE TRIGGER ${t}`);
    const wallMs = await timed(() => pipeline(Readable.from(chunks), client.query(copyFrom(`COPY user_events (${EVENT_COLUMNS}) FROM STDIN`))));
    const { rows } = await client.query<{ ms: number }>(
      `SELECT coalesce(pg_stat_get_xact_function_total_time('dash_user_events_ins()'::regprocedure), 0)::float8 AS ms`,
    );
    return { wallMs, triggerMs: rows[0]!.ms };
  } finally {
    await client.query('ROLLBACK');
  }
}

async function copyComparison(url: string, label: string): Promise<Record<string, number>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`SET track_functions = 'pl'`);
    const chunks = copyLines(COPY_ROWS);
    const withT: number[] = [];
    const withoutT: number[] = [];
    const inTrigger: number[] = [];
    // Alternate, so cache warm-up, dead tuples of the rolled-back runs and the neighbours' load fall on both sides.
    for (let i = 0; i < 3; i++) {
      withoutT.push((await copyOnce(client, chunks, false)).wallMs);
      const r = await copyOnce(client, chunks, true);
      withT.push(r.wallMs);
      inTrigger.push(r.triggerMs);
    }
    const r = {
      withoutTriggersMs: round(median(withoutT)),
      withTriggersMs: round(median(withT)),
      ratio: round(median(withT) / median(withoutT), 3),
      insideTriggerMs: round(median(inTrigger)),
      triggerShareOfCopy: round(median(inTrigger) / median(withT), 3),
    };
    say(
      `  ${label}: COPY ${COPY_ROWS.toLocaleString('en-US')} rows without triggers ${r.withoutTriggersMs} ms, with ${r.withTriggersMs} ms ` +
        `(x${r.ratio}); inside the trigger ${r.insideTriggerMs} ms (${round(r.triggerShareOfCopy * 100)} % of the COPY)`,
    );
    return r;
  } finally {
    await client.end();
  }
}

/** The fixed cost per batch: a 10-row batch (COPY + batch record) committed 200 times each way. */
async function smallBatches(url: string): Promise<Record<string, number>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const run = async (triggers: boolean, n: number): Promise<number[]> => {
    const times: number[] = [];
    for (const t of [...DASH_TRIGGERS, 'dash_stream_batches_ins']) {
      await client.query(`ALTER TABLE ${t.startsWith('dash_stream') ? 'stream_batches' : 'user_events'} ${triggers ? 'ENABLE' : 'DISABLE'} TRIGGER ${t}`);
    }
    for (let i = 0; i < n; i++) {
      const chunks = copyLines(10);
      const id = crypto.randomUUID();
      times.push(
        await timed(async () => {
          await client.query('BEGIN');
          await pipeline(Readable.from(chunks), client.query(copyFrom(`COPY user_events (${EVENT_COLUMNS}) FROM STDIN`)));
          await client.query(
            `INSERT INTO stream_batches (stream_id, batch_id, engine, files, batch_timestamp, input_rows, inserted_rows, duplicate_rows, rejected_rows,
               oldest_file_mtime, newest_file_mtime) VALUES ($1, 0, 'typescript', $2, now(), 10, 10, 0, 0, now(), now())`,
            [id, JSON.stringify([{ name: `${id}.csv`, size: 1000, mtimeMs: Date.now() - 50 }])],
          );
          await client.query('COMMIT');
        }),
      );
    }
    return times;
  };
  try {
    await run(true, 20); // warm-up
    // Alternating blocks, so whatever else the machine does falls on both sides.
    const withoutT: number[] = [];
    const withT: number[] = [];
    for (let i = 0; i < 4; i++) {
      withoutT.push(...(await run(false, 50)));
      withT.push(...(await run(true, 50)));
    }
    const r = {
      withoutTriggersMedianMs: round(median(withoutT), 2),
      withTriggersMedianMs: round(median(withT), 2),
      addedMs: round(median(withT) - median(withoutT), 2),
    };
    say(`  10-row batch transaction: ${r.withoutTriggersMedianMs} ms without triggers, ${r.withTriggersMedianMs} ms with (+${r.addedMs} ms)`);
    return r;
  } finally {
    await client.end();
  }
}

async function main(): Promise<void> {
  let server: EmbeddedServer | undefined;
  let work: string | undefined;
  let baseUrl = process.env.DATABASE_URL;
  if (!baseUrl) {
    work = await fsp.mkdtemp(path.join(os.tmpdir(), 'ecomstream-bench-dash-'));
    await fsp.chmod(work, 0o755);
    server = await startEmbedded({ dataDir: path.join(work, 'pg'), port: 26432, user: 'sparkuser', password: 'sparkpass123', database: 'ecommerce_events' });
    baseUrl = server.url;
  }
  const dbUrl = async (name: string): Promise<string> => {
    const c = new pg.Client({ connectionString: baseUrl });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${name}`);
    await c.query(`CREATE DATABASE ${name}`);
    await c.end();
    const u = new URL(baseUrl);
    u.pathname = `/${name}`;
    await migrate(u.href);
    return u.href;
  };
  const results: Record<string, unknown> = {
    measuredAt: new Date().toISOString(),
    machine: `${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GB, ${os.cpus()[0]?.model ?? ''}`,
    rows: ROWS,
    batchRecords: BATCH_RECORDS,
    rejects: REJECTS,
  };
  try {
    const url = await dbUrl('bench_dashboard');
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      results.postgres = (await admin.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version;
      say(`loading ${ROWS.toLocaleString('en-US')} rows through the aggregate triggers`);
      const l = await load(admin);
      results.load = {
        rowsPerSecond: Math.round(ROWS / (l.loadMs! / 1000)),
        seconds: round(l.loadMs! / 1000),
        batchesAndRejectsSeconds: round(l.extrasMs! / 1000),
      };
      const check = await admin.query<{ agg: string; rows: string }>(
        `SELECT (SELECT sum(events) FROM dash_event_types)::bigint AS agg, (SELECT count(*) FROM user_events)::bigint AS rows`,
      );
      const { agg, rows } = check.rows[0]!;
      if (agg !== rows) throw new Error(`aggregates disagree: ${agg} vs ${rows}`);
      results.tableSize = (await admin.query<{ s: string }>(`SELECT pg_size_pretty(pg_total_relation_size('user_events')) AS s`)).rows[0]!.s;

      say(`dashboard refresh (${REFRESHES} runs per window, read-only role)`);
      results.refresh = await refreshes(url, 'dashboard_reader', 'dashboard_reader');
      say('the same figures scanning user_events directly');
      results.naiveScan = await naiveScan(admin);
      say(`  ${JSON.stringify(results.naiveScan)}`);
    } finally {
      await admin.end();
    }

    say(`trigger overhead on ingest: COPY ${COPY_ROWS.toLocaleString('en-US')} rows (random UUIDs), rolled back after each run`);
    const copyLoaded = await copyComparison(url, `into ${ROWS.toLocaleString('en-US')} rows`);
    const emptyUrl = await dbUrl('bench_dashboard_empty');
    say('trigger cost per small batch (10 rows + batch record, committed)');
    results.smallBatch = await smallBatches(emptyUrl);
    await (async () => {
      const c = new pg.Client({ connectionString: emptyUrl });
      await c.connect();
      await c.query('TRUNCATE user_events, stream_batches');
      await c.end();
    })();
    const copyEmpty = await copyComparison(emptyUrl, 'into an empty table');
    results.copy = { rows: COPY_ROWS, intoLoadedTable: copyLoaded, intoEmptyTable: copyEmpty };

    await fsp.mkdir(path.dirname(OUT), { recursive: true });
    await fsp.writeFile(OUT, `${JSON.stringify(results, null, 2)}\n`);
    say(`wrote ${path.relative(PACKAGE_ROOT, OUT)}`);
  } finally {
    if (server) await server.stop();
    if (work) await fsp.rm(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:dashboard failed: ${String((err as Error).stack ?? err)}\n`);
  process.exitCode = 1;
});
