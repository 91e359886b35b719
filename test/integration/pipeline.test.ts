/**
 * generate -> process -> rows in the table, end to end: the generator's injected bad rows must come back
 * from the engine as rejects with exactly the expected reason on exactly the expected line.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fsp from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { loadConfig } from '../../src/config.js';
import { StreamEngine } from '../../src/engine/stream.js';
import { runGenerator, expectedRejections } from '../../src/generator/run.js';
import { PACKAGE_ROOT } from '../../src/db/migrate.js';
import { NAMED_QUERIES } from '../../src/db/queries.js';
import { silentLogger } from '../../src/log.js';
import { startTestDb, type TestDb } from '../support/pg.js';
import { tempDir } from '../support/files.js';

let db: TestDb;
before(async () => {
  db = await startTestDb();
});
after(async () => {
  await (db as TestDb | undefined)?.close(); // undefined when before() failed
});

test('generated bad rows are rejected with the expected reason, line by line; the rest is stored', async () => {
  const url = await db.freshDatabase();
  const dir = await tempDir();
  const input = path.join(dir, 'in');
  const expected: string[] = [];
  let events = 0;
  await runGenerator({
    outDir: input,
    config: { ...loadConfig().generator, files: 8, eventsPerFile: 200, intervalSeconds: 0, seed: 11, invalidRate: 0.2 },
    onFile: (f) => {
      events += f.events;
      for (const e of expectedRejections(f)) expected.push(`${f.name}:${e.line}:${e.reason}`);
    },
  });
  const config = loadConfig({
    engine: {
      inputDir: input,
      checkpointDir: path.join(dir, 'ck'),
      progressFile: path.join(dir, 'p.jsonl'),
      trigger: { kind: 'available-now' },
      maxFilesPerTrigger: 3,
    },
  });
  const s = await new StreamEngine({ engine: config.engine, databaseUrl: url, log: silentLogger }).run();
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const got = (
    await c.query<{ source_file: string; line_number: number; reason: string }>(
      'SELECT source_file, line_number, reason FROM rejected_events ORDER BY source_file, line_number',
    )
  ).rows.map((r) => `${r.source_file}:${r.line_number}:${r.reason}`);
  const stored = Number((await c.query<{ n: string }>('SELECT COUNT(*) n FROM user_events')).rows[0]!.n);
  await c.end();
  assert.ok(expected.length > 100, `the generator injected ${expected.length} bad rows`);
  assert.deepEqual(got.sort(), expected.sort());
  assert.equal(new Set(expected.map((e) => e.split(':')[2])).size, 13, 'all 13 row-level kinds appear');
  assert.equal(s.inputRows, events);
  assert.equal(stored + expected.length, events, 'every row is stored or rejected');
});

test("the spec's latency query measures the pipeline: paced generator, engine on arrival", async () => {
  const url = await db.freshDatabase();
  const dir = await tempDir();
  const input = path.join(dir, 'in');
  const files = 6;
  const intervalSeconds = 0.4;
  const config = loadConfig({
    generator: { files, eventsPerFile: 10, intervalSeconds, seed: 12 },
    // As `up` runs it: on arrival, no settle wait (the generator links complete files into place).
    engine: {
      inputDir: input,
      checkpointDir: path.join(dir, 'ck'),
      progressFile: path.join(dir, 'p.jsonl'),
      trigger: { kind: 'on-arrival' },
      fileSettleMillis: 0,
    },
  });
  const stop = new AbortController();
  let inserted = 0;
  const engine = new StreamEngine({
    engine: config.engine,
    databaseUrl: url,
    log: silentLogger,
    signal: stop.signal,
    onProgress: (p) => {
      inserted += p.insertedRows;
      if (inserted === files * 10) stop.abort();
    },
  });
  const engineRun = engine.run();
  await runGenerator({ outDir: input, config: config.generator });
  const timeout = setTimeout(() => stop.abort(), 30_000);
  await engineRun;
  clearTimeout(timeout);
  assert.equal(inserted, files * 10);
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const { avg_latency_seconds: avg } = (await c.query(NAMED_QUERIES.latency.sql)).rows[0] as { avg_latency_seconds: string };
  await c.end();
  // Events happen in the interval before their file: on average half of it old when the file is published,
  // then on-arrival commits within milliseconds (the poll that backs up fs.watch bounds it at pollMillis).
  const half = intervalSeconds / 2;
  assert.ok(Number(avg) >= half * 0.8, `average latency ${avg} s is less than the events' wait for their file`);
  assert.ok(Number(avg) <= half + config.engine.pollMillis / 1000, `average latency ${avg} s`);
});

test('the CLI: generate then process then query, as subprocesses', async () => {
  const url = await db.freshDatabase();
  const dir = await tempDir();
  const bin = path.join(PACKAGE_ROOT, 'bin', 'ecomstream.js');
  const run = (args: string[]) =>
    new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, DATABASE_URL: url, ECOMSTREAM_METRICS_PORT: '0' } });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      child.on('close', (code) => resolve({ code, out }));
    });
  const g = await run(['generate', '--out', path.join(dir, 'in'), '--files', '4', '--events-per-file', '25', '--interval', '0', '--seed', '3']);
  assert.equal(g.code, 0, g.out);
  assert.equal((await fsp.readdir(path.join(dir, 'in'))).filter((f) => /^events_\d{8}_\d{6}_\d+\.csv$/.test(f)).length, 4);
  const p = await run([
    'process',
    '--input',
    path.join(dir, 'in'),
    '--checkpoint',
    path.join(dir, 'ck'),
    '--trigger',
    'available-now',
    '--progress-file',
    path.join(dir, 'p.jsonl'),
  ]);
  assert.equal(p.code, 0, p.out);
  assert.match(p.out, /100 inserted/);
  const q = await run(['query', 'events-by-type', '--json']);
  const counts = JSON.parse(q.out.slice(q.out.indexOf('['))) as { event_type: string; count: number }[];
  assert.equal(
    counts.reduce((a, r) => a + r.count, 0),
    100,
  );
  const bad = await run(['generate', '--invalid-rate', '2']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.out, /--invalid-rate/);
});
