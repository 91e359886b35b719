/**
 * `npm run bench`: the core pipeline's figures, all in one run on this machine.
 *
 *  1. bound     plain COPY of N rows (the same files) into an empty copy of user_events
 *  2. engine    the engine on the same rows in 100 files, trigger available-now; ratio to the bound
 *  3. memory    the engine's peak RSS (its VmHWM) on one file of N rows and on one of 10,000,000 rows
 *  4. start     `ecomstream up` to first batch committed: cold (initdb) and warm (existing data)
 *  5. latency   file publish -> commit, trigger on-arrival, generator paced at 1,000 events/s
 *  6. restart   engine start with 100,000 files already in the checkpoint
 *
 * Writes bench/results/latest.json (read by the diagram's metrics legend) and SVG charts beside it.
 * Env: BENCH_ROWS (default 1,000,000), BENCH_LATENCY_SECONDS (default 30), BENCH_BIG_ROWS (default
 * 10,000,000; 0 skips the big file).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { pipeline } from 'node:stream/promises';
import { loadConfig } from '../src/config.js';
import { COLUMN_NAMES } from '../src/contract/event.js';
import { startEmbedded } from '../src/db/embedded.js';
import { createMigratedDatabase, PACKAGE_ROOT } from '../src/db/migrate.js';
import { StreamEngine } from '../src/engine/stream.js';
import { Checkpoint, type SeenFile } from '../src/checkpoint/checkpoint.js';
import { runGenerator } from '../src/generator/run.js';
import { silentLogger } from '../src/log.js';
import { barChart, histogram } from './chart.js';

const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const FILES = 100;
const LATENCY_SECONDS = Number(process.env.BENCH_LATENCY_SECONDS ?? 30);
/** The big single file of the memory case (issue 18: memory flat at any file size); 0 skips it. */
const BIG_ROWS = Number(process.env.BENCH_BIG_ROWS ?? 10_000_000);
const BIN = path.join(PACKAGE_ROOT, 'bin', 'ecomstream.js');
const OUT = path.join(PACKAGE_ROOT, 'bench', 'results');

const say = (m: string): void => void process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${m}\n`);

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const r = await fn();
  return [r, performance.now() - t0];
}

/** Maker and family of the CPU ("Intel(R) Xeon(R) Processor" -> "Intel Xeon"): the diagram's footer has one line for it. */
/** The bound: every file by plain COPY into `table`, in one transaction. */
async function plainCopy(c: pg.Client, table: string, input: string, files: string[]): Promise<void> {
  await c.query('BEGIN');
  for (const f of files) {
    await pipeline(
      fs.createReadStream(path.join(input, f)),
      c.query(copyFrom(`COPY ${table} (${COLUMN_NAMES.join(', ')}) FROM STDIN (FORMAT csv, HEADER true)`)),
    );
  }
  await c.query('COMMIT');
}

function cpuMaker(): string {
  const words = (os.cpus()[0]?.model ?? '')
    .replace(/\((R|TM)\)/gi, '')
    .split(/\s+/)
    .filter(Boolean);
  return words.slice(0, 2).join(' ');
}

function quantile(sorted: number[], q: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function main(): Promise<void> {
  const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'ecomstream-bench-'));
  await fsp.chmod(work, 0o755);
  say(
    `work folder ${work}; ${ROWS.toLocaleString('en-US')} rows in ${FILES} files; load average ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  const server = await startEmbedded({
    dataDir: path.join(work, 'pg'),
    port: 25432,
    user: 'sparkuser',
    password: 'sparkpass123',
    database: 'ecommerce_events',
  });
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  const results: Record<string, unknown> = {
    measuredAt: new Date().toISOString(),
    machine: `${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GB, ${cpuMaker()}`,
    // Other work on the machine moves every figure; the engine's share of the COPY bound moves least.
    loadAverageAtStart: os.loadavg().map((l) => Math.round(l * 100) / 100),
    rows: ROWS,
    files: FILES,
  };
  try {
    // Input: 100 files of ROWS/100 valid events.
    const input = path.join(work, 'input');
    const now = Date.now();
    const [, genMs] = await timed(() =>
      runGenerator({
        outDir: input,
        now: () => now,
        config: { ...loadConfig().generator, files: FILES, eventsPerFile: ROWS / FILES, intervalSeconds: 0, seed: 7 },
      }),
    );
    say(`generated in ${Math.round(genMs)} ms (${Math.round(ROWS / (genMs / 1000)).toLocaleString('en-US')} events/s)`);
    const files = (await fsp.readdir(input)).filter((f) => f.endsWith('.csv')).sort();

    // 1. The bound: plain COPY into an empty copy of user_events (same indexes), one transaction.
    const boundUrl = await createMigratedDatabase(server.url, 'bench_bound');
    const bc = new pg.Client({ connectionString: boundUrl });
    await bc.connect();
    await bc.query('CREATE TABLE bound (LIKE user_events INCLUDING ALL)');
    await bc.query('CHECKPOINT');
    const [, boundMs] = await timed(() => plainCopy(bc, 'bound', input, files));
    const boundCount = Number((await bc.query<{ n: string }>('SELECT COUNT(*) n FROM bound')).rows[0]!.n);
    say(`bound: plain COPY of ${boundCount} rows in ${Math.round(boundMs)} ms (${Math.round(ROWS / (boundMs / 1000)).toLocaleString('en-US')} rows/s)`);
    // 1b. The same plain COPY into user_events itself, whose dashboard triggers (issue 5) fold every
    // insert into the aggregates in the same transaction: the like-for-like reference for the engine.
    await bc.query('CHECKPOINT');
    const [, boundTrigMs] = await timed(() => plainCopy(bc, 'user_events', input, files));
    await bc.end();
    say(
      `bound with triggers: plain COPY into user_events in ${Math.round(boundTrigMs)} ms (${Math.round(ROWS / (boundTrigMs / 1000)).toLocaleString('en-US')} rows/s)`,
    );

    // 2. The engine on the same files, available-now, into user_events (with its triggers).
    const engineUrl = await createMigratedDatabase(server.url, 'bench_engine');
    const ec = new pg.Client({ connectionString: engineUrl });
    await ec.connect();
    await ec.query('CHECKPOINT');
    const engineCfg = loadConfig({
      engine: {
        inputDir: input,
        checkpointDir: path.join(work, 'ck-engine'),
        progressFile: path.join(work, 'progress-engine.jsonl'),
        trigger: { kind: 'available-now' },
        fileSettleMillis: 0,
      },
    }); // the generator publishes atomically, as under `up`
    const [summary, engineMs] = await timed(() => new StreamEngine({ engine: engineCfg.engine, databaseUrl: engineUrl, log: silentLogger }).run());
    const engineCount = Number((await ec.query<{ n: string }>('SELECT COUNT(*) n FROM user_events')).rows[0]!.n);
    await ec.end();
    if (engineCount !== ROWS || summary.insertedRows !== ROWS) throw new Error(`engine stored ${engineCount} rows, expected ${ROWS}`);
    const ratio = boundMs / engineMs;
    const ratioTrig = boundTrigMs / engineMs;
    say(
      `engine: ${engineCount} rows in ${Math.round(engineMs)} ms (${Math.round(ROWS / (engineMs / 1000)).toLocaleString('en-US')} rows/s) = ${(ratio * 100).toFixed(1)} % of the bound, ${(ratioTrig * 100).toFixed(1)} % of the bound with triggers (target >= 80 %)`,
    );

    // 3. Peak memory on one file of ROWS rows, and of BIG_ROWS rows: the engine's own high-water mark.
    const peakRssMb = await peakOnOneFile(server.url, work, ROWS, 8);
    say(`memory: peak RSS ${peakRssMb} MB processing one file of ${ROWS.toLocaleString('en-US')} rows (target < 250 MB)`);
    const bigPeakRssMb = BIG_ROWS > 0 ? await peakOnOneFile(server.url, work, BIG_ROWS, 9) : undefined;
    if (bigPeakRssMb !== undefined)
      say(`memory: peak RSS ${bigPeakRssMb} MB processing one file of ${BIG_ROWS.toLocaleString('en-US')} rows (target <= 250 MB)`);

    // 4. `ecomstream up` to first batch committed, cold (initdb) and warm.
    const upDir = path.join(work, 'up');
    await fsp.mkdir(upDir);
    const cold = await firstBatch(upDir);
    const warm = await firstBatch(upDir);
    say(`start: up -> first batch committed: cold ${cold} ms (includes initdb), warm ${warm} ms (target < 2000 ms)`);

    // 5. Latency from file publish to commit, on-arrival, 1,000 events/s (100-event files, 10 per second).
    const latUrl = await createMigratedDatabase(server.url, 'bench_latency');
    const latInput = path.join(work, 'lat-input');
    await fsp.mkdir(latInput);
    const stop = new AbortController();
    const latCfg = loadConfig({
      engine: {
        inputDir: latInput,
        checkpointDir: path.join(work, 'ck-lat'),
        progressFile: path.join(work, 'p-lat.jsonl'),
        trigger: { kind: 'on-arrival' },
        fileSettleMillis: 0,
      },
    }); // atomic publisher: nothing to settle
    const engineRun = new StreamEngine({ engine: latCfg.engine, databaseUrl: latUrl, log: silentLogger, signal: stop.signal }).run();
    await runGenerator({
      outDir: latInput,
      config: { ...loadConfig().generator, files: LATENCY_SECONDS * 10, eventsPerFile: 100, intervalSeconds: 0, rate: 1000 },
    });
    await new Promise((r) => setTimeout(r, 1500));
    stop.abort();
    await engineRun;
    const lc = new pg.Client({ connectionString: latUrl });
    await lc.connect();
    const lat = await lc.query<{ ms: string | number }>(`SELECT EXTRACT(EPOCH FROM (b.committed_at - to_timestamp((f->>'mtimeMs')::float8 / 1000))) * 1000 AS ms
                                FROM stream_batches b, jsonb_array_elements(b.files) f`);
    const inserted = Number((await lc.query<{ n: string }>('SELECT COUNT(*) n FROM user_events')).rows[0]!.n);
    await lc.end();
    const lats = lat.rows.map((r) => Number(r.ms)).sort((a, b) => a - b);
    const p50 = quantile(lats, 0.5);
    const p99 = quantile(lats, 0.99);
    say(
      `latency: ${lats.length} files (${inserted} events) at 1,000 events/s: p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${lats[lats.length - 1]!.toFixed(1)} ms (target p99 < 250 ms)`,
    );

    // 6. Restart with 100,000 files in the checkpoint.
    const rsDir = path.join(work, 'restart');
    const cp = new Checkpoint(path.join(rsDir, 'ck'));
    await cp.open();
    await cp.createStream();
    const seen = new Map<string, SeenFile>();
    for (let b = 0, n = 0; b < 100; b++) {
      const fs1000 = Array.from({ length: 1000 }, () => ({ name: `events_${String(n++).padStart(6, '0')}.csv`, size: 1000, mtimeMs: n }));
      await cp.addSourceEntry(b, fs1000, seen);
      for (const f of fs1000) seen.set(f.name, { size: f.size, mtimeMs: f.mtimeMs });
      await cp.offsets.add(b, { batchId: b, batchTimestampMs: Date.now(), files: [] });
      await cp.commits.add(b, { batchId: b, committedAtMs: Date.now() });
      if ((b + 1) % 10 === 0) await cp.purge(b, 100);
    }
    await cp.close();
    await fsp.mkdir(path.join(rsDir, 'in'));
    const rsUrl = await createMigratedDatabase(server.url, 'bench_restart');
    const rsCfg = loadConfig({
      engine: {
        inputDir: path.join(rsDir, 'in'),
        checkpointDir: path.join(rsDir, 'ck'),
        progressFile: path.join(rsDir, 'p.jsonl'),
        trigger: { kind: 'available-now' },
      },
    });
    const restarts: number[] = [];
    for (let i = 0; i < 5; i++) restarts.push((await timed(() => new StreamEngine({ engine: rsCfg.engine, databaseUrl: rsUrl, log: silentLogger }).run()))[1]);
    restarts.sort((a, b) => a - b);
    const restartMs = quantile(restarts, 0.5);
    say(`restart: engine start to idle with 100,000 files seen: median ${restartMs.toFixed(0)} ms of 5 (target < 1000 ms)`);

    results.engine = {
      rowsPerSecond: Math.round(ROWS / (engineMs / 1000)),
      copyBoundRowsPerSecond: Math.round(ROWS / (boundMs / 1000)),
      ratio: Math.round(ratio * 1000) / 1000,
      copyBoundWithTriggersRowsPerSecond: Math.round(ROWS / (boundTrigMs / 1000)),
      ratioWithTriggers: Math.round(ratioTrig * 1000) / 1000,
      engineMs: Math.round(engineMs),
      boundMs: Math.round(boundMs),
      firstBatchMs: warm,
      firstBatchColdMs: cold,
      latencyP50Ms: Math.round(p50 * 10) / 10,
      latencyP99Ms: Math.round(p99 * 10) / 10,
      latencyFiles: lats.length,
      peakRssMb,
      ...(bigPeakRssMb === undefined ? {} : { bigFileRows: BIG_ROWS, bigFilePeakRssMb: bigPeakRssMb }),
      restartMs: Math.round(restartMs),
      generatorEventsPerSecond: Math.round(ROWS / (genMs / 1000)),
    };
    await fsp.mkdir(OUT, { recursive: true });
    await fsp.writeFile(path.join(OUT, 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
    await fsp.writeFile(
      path.join(OUT, 'latency.svg'),
      await histogram(lats, `Publish -> commit latency, on-arrival, 1,000 events/s (${lats.length} files)`, 'ms'),
    );
    await fsp.writeFile(
      path.join(OUT, 'throughput.svg'),
      await barChart(
        [
          ['plain COPY (bound)', Math.round(ROWS / (boundMs / 1000))],
          ['plain COPY into user_events (triggers)', Math.round(ROWS / (boundTrigMs / 1000))],
          ['ecomstream engine', Math.round(ROWS / (engineMs / 1000))],
        ],
        `Rows per second, ${ROWS.toLocaleString('en-US')} rows in ${FILES} files`,
      ),
    );
    say(`wrote ${path.relative(PACKAGE_ROOT, OUT)}/latest.json, latency.svg, throughput.svg`);
  } finally {
    await admin.end().catch(() => undefined);
    await server.stop();
    await fsp.rm(work, { recursive: true, force: true });
  }
}

/**
 * `ecomstream process` on one generated file of `rows` rows, in a subprocess: the peak memory it prints is
 * its own high-water mark (VmHWM), not this process's. The file is removed afterwards (10 M rows: 1.5 GB).
 */
async function peakOnOneFile(adminUrl: string, work: string, rows: number, seed: number): Promise<number> {
  const input = path.join(work, `single-${rows}`);
  await runGenerator({
    outDir: input,
    now: () => Date.now(),
    config: { ...loadConfig().generator, files: 1, eventsPerFile: rows, intervalSeconds: 0, seed },
  });
  const url = await createMigratedDatabase(adminUrl, `bench_memory_${rows}`);
  const ck = path.join(work, `ck-mem-${rows}`);
  const run = await runCli(
    ['process', '--input', input, '--checkpoint', ck, '--trigger', 'available-now', '--progress-file', path.join(work, `p-mem-${rows}.jsonl`)],
    { DATABASE_URL: url, ECOMSTREAM_METRICS_PORT: '0' },
  );
  await fsp.rm(input, { recursive: true, force: true });
  const peak = /peak memory (\d+) MB/.exec(run.stdout);
  if (!peak) throw new Error(`no peak memory line in: ${run.stdout}${run.stderr}`);
  return Number(peak[1]);
}

function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Spawns `ecomstream up` in `cwd`, returns ms until its first batch line, then stops it with Ctrl-C. */
function firstBatch(cwd: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const env = { ...process.env };
    delete env.DATABASE_URL;
    const child = spawn(process.execPath, [BIN, 'up', '--files', '3', '--interval', '1', '--no-dashboard'], { cwd, env });
    let out = '';
    let ms: number | undefined;
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (ms === undefined && /batch \d+( \(replayed\))?: /.test(out)) {
        ms = Math.round(performance.now() - t0);
        child.kill('SIGINT');
      }
    });
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', () => (ms === undefined ? reject(new Error(`up never committed a batch:\n${out}`)) : resolve(ms)));
    setTimeout(() => child.kill('SIGKILL'), 60_000);
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack}\n`);
  process.exitCode = 1;
});
