/**
 * `npm run bench:engines`: the TypeScript engine and the Spark job side by side, in one run on this machine.
 *
 * The same 1,000,000 rows in 100 files (the generator, seed 7), trigger available-now with each engine's
 * default of at most 1000 files per batch, each engine into its own fresh database of one embedded
 * PostgreSQL 15 with the same schema (postgres/migrations/, dashboard triggers included). Both run as
 * subprocesses, exactly as a user runs them: `ecomstream process` and `spark/streaming_job.py` in Spark
 * local mode (local[2]: 2 cores, as the spec's worker). Reported for each:
 *   - rows per second over the whole run (process start to exit) and over batch processing alone;
 *   - peak memory: the largest sum of RSS over the process tree (Spark: Python driver, JVM, Python workers);
 *   - first batch: a cold process on one spec-sized file (10 events) — start to the batch committed,
 *     the figure the spec quotes as ~4,700 ms for Spark (JVM warm-up).
 * Then the same Spark bench on a standalone cluster of two 1-core workers (test/spark/cluster.ts starts it;
 * spark-submit as spark/README.md tells a user). Also reported: where Spark's batch time went (plan, read =
 * parse + validate + COPY into staging on the executors, write, commit = the final transaction).
 * Target (issue 12): TypeScript/Spark local[2] rows per second at most 1.8, in the same run.
 *
 * Writes bench/results/engines.json and engines.svg (a bar chart of the rows per second). Env: BENCH_ROWS (1,000,000), BENCH_FILES (100), BENCH_FILES_PER_BATCH
 * (default: the engines' default, 1000), BENCH_SPARK_DRIVER_MEMORY (2g).
 * Needs scripts/install-spark.sh and a built dist/ (npx tsc -p .).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { loadConfig } from '../src/config.js';
import { startEmbedded } from '../src/db/embedded.js';
import { createMigratedDatabase, PACKAGE_ROOT } from '../src/db/migrate.js';
import { enginesChart } from './chart.js';
import { clusterEnv, SPARK_SUBMIT, startCluster, submitArgs, type SparkCluster } from '../test/spark/cluster.js';

const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const FILES = Number(process.env.BENCH_FILES ?? 100);
const FILES_PER_BATCH = Number(process.env.BENCH_FILES_PER_BATCH ?? 1000);
const SPARK_DRIVER_MEMORY = process.env.BENCH_SPARK_DRIVER_MEMORY ?? '2g';
const OUT = path.join(PACKAGE_ROOT, 'bench', 'results');
const PYTHON = process.env.ECOMSTREAM_SPARK_PYTHON ?? path.join(PACKAGE_ROOT, 'spark', '.venv', 'bin', 'python');

const say = (m: string): void => void process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${m}\n`);
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

/** Resident memory (bytes) of every process whose process group is `pgid`. */
function groupRss(pgid: number): number {
  let total = 0;
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      // Fields after the command (which may contain spaces) start after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) !== pgid) continue; // field 5: pgrp
      const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      const m = /VmRSS:\s+(\d+) kB/.exec(status);
      if (m) total += Number(m[1]) * 1024;
    } catch {
      // exited while we looked
    }
  }
  return total;
}

interface Measured {
  wallMs: number;
  peakRssBytes: number;
  exitCode: number | null;
  stdout: string;
  stderr: string;
  startedAtMs: number;
}

/** Runs a command in its own process group, sampling the group's memory every 100 ms. */
function measure(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const startedAtMs = Date.now();
    const t0 = performance.now();
    const child = spawn(cmd, args, { cwd: PACKAGE_ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let peak = 0;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setInterval(() => {
      peak = Math.max(peak, groupRss(child.pid!));
    }, 100);
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(timer);
      try {
        process.kill(-child.pid!, 'SIGKILL'); // a JVM left behind must not skew the next run
      } catch {
        /* group gone */
      }
      resolve({ wallMs: performance.now() - t0, peakRssBytes: peak, exitCode: code, stdout, stderr, startedAtMs });
    });
  });
}

interface Progress {
  batchId: number;
  committedAt: string;
  numInputRows: number;
  insertedRows: number;
  durationMs: { total: number };
}

function progress(file: string): Progress[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Progress);
}

/** Where a Spark run's batch time went, summed over its progress records (the phases of job.py). */
function sparkProfile(file: string): Record<'plan' | 'read' | 'write' | 'commit', number> {
  const out = { plan: 0, read: 0, write: 0, commit: 0 };
  for (const r of progress(file) as unknown as { durationMs: typeof out }[])
    for (const k of Object.keys(out) as (keyof typeof out)[]) out[k] += r.durationMs[k];
  return out;
}

async function count(url: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query('CHECKPOINT');
    return Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM user_events')).rows[0]!.n);
  } finally {
    await c.end();
  }
}

interface EngineFigures {
  rows: number;
  batches: number;
  wallMs: number;
  rowsPerSecond: number;
  processingMs: number;
  rowsPerSecondProcessing: number;
  firstBatchCommittedAfterStartMs: number;
  firstBatchDurationMs: number;
  peakRssMb: number;
}

function figures(m: Measured, progressFile: string, stored: number): EngineFigures {
  const p = progress(progressFile);
  const processingMs = p.reduce((s, r) => s + r.durationMs.total, 0);
  const first = p.find((r) => r.batchId === 0)!;
  return {
    rows: stored,
    batches: p.length,
    wallMs: Math.round(m.wallMs),
    rowsPerSecond: Math.round(stored / (m.wallMs / 1000)),
    processingMs,
    rowsPerSecondProcessing: Math.round(stored / (processingMs / 1000)),
    firstBatchCommittedAfterStartMs: Date.parse(first.committedAt) - m.startedAtMs,
    firstBatchDurationMs: first.durationMs.total,
    peakRssMb: Math.round(m.peakRssBytes / 2 ** 20),
  };
}

interface RunSpec {
  input: string;
  checkpoint: string;
  progressFile: string;
  databaseUrl: string;
}

function runTs(o: RunSpec): Promise<Measured> {
  return measure(
    process.execPath,
    [
      path.join(PACKAGE_ROOT, 'bin', 'ecomstream.js'),
      'process',
      '--input',
      o.input,
      '--checkpoint',
      o.checkpoint,
      '--trigger',
      'available-now',
      '--max-files-per-trigger',
      String(FILES_PER_BATCH),
      '--progress-file',
      o.progressFile,
      '--file-settle',
      '0',
    ],
    { ...process.env, DATABASE_URL: o.databaseUrl },
  );
}

function runSparkJob(o: RunSpec): Promise<Measured> {
  return measure(
    PYTHON,
    [
      path.join(PACKAGE_ROOT, 'spark', 'streaming_job.py'),
      '--master',
      'local[2]',
      '--input',
      o.input,
      '--checkpoint',
      o.checkpoint,
      '--trigger',
      'available-now',
      '--max-files-per-trigger',
      String(FILES_PER_BATCH),
      '--progress-file',
      o.progressFile,
    ],
    { ...process.env, DATABASE_URL: o.databaseUrl, ECOMSTREAM_SPARK_DRIVER_MEMORY: SPARK_DRIVER_MEMORY },
  );
}

/** spark/README.md's spark-submit to a standalone cluster (the driver here, executors on the workers). */
function runSparkCluster(cluster: SparkCluster, o: RunSpec): Promise<Measured> {
  return measure(SPARK_SUBMIT, [...submitArgs(cluster.masterUrl, { ...o, maxFilesPerTrigger: FILES_PER_BATCH }), '--shuffle-partitions', '8'], {
    ...clusterEnv(),
    SPARK_CONF_DIR: cluster.confDir,
    DATABASE_URL: o.databaseUrl,
  });
}

function check(what: string, m: Measured): void {
  if (m.exitCode !== 0) throw new Error(`${what} failed (${m.exitCode}):\n${m.stdout.slice(-3000)}\n${m.stderr.slice(-5000)}`);
}

async function main(): Promise<void> {
  if (!fs.existsSync(PYTHON)) throw new Error(`no ${path.relative(PACKAGE_ROOT, PYTHON)}: run scripts/install-spark.sh`);
  if (!fs.existsSync(path.join(PACKAGE_ROOT, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is not built: run npx tsc -p .');
  const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'ecomstream-bench-engines-'));
  await fsp.chmod(work, 0o755);
  say(`work folder ${work}; ${fmt(ROWS)} rows in ${FILES} files, ${FILES_PER_BATCH} files per batch, trigger available-now`);
  const server = await startEmbedded({
    dataDir: path.join(work, 'pg'),
    port: 26432,
    user: 'sparkuser',
    password: 'sparkpass123',
    database: 'ecommerce_events',
  });
  try {
    const input = path.join(work, 'input');
    const { runGenerator } = await import('../src/generator/run.js');
    const now = Date.now();
    await runGenerator({
      outDir: input,
      now: () => now,
      config: { ...loadConfig().generator, files: FILES, eventsPerFile: ROWS / FILES, intervalSeconds: 0, seed: 7 },
    });
    say(`generated ${FILES} files`);

    // Throughput: the 100 files, each engine in turn (never both at once: they would share the 2 cores).
    const tsUrl = await createMigratedDatabase(server.url, 'bench_ts');
    const tsRun = { input, checkpoint: path.join(work, 'ck-ts'), progressFile: path.join(work, 'progress-ts.jsonl'), databaseUrl: tsUrl };
    const ts = await runTs(tsRun);
    check('TypeScript engine', ts);
    const tsStored = await count(tsUrl);
    if (tsStored !== ROWS) throw new Error(`TypeScript engine stored ${tsStored} rows, expected ${ROWS}`);
    const tsFig = figures(ts, tsRun.progressFile, tsStored);
    say(`typescript: ${fmt(tsFig.rowsPerSecond)} rows/s (${tsFig.wallMs} ms, ${tsFig.batches} batches), peak ${tsFig.peakRssMb} MB`);

    const sparkUrl = await createMigratedDatabase(server.url, 'bench_spark');
    const sparkRun = { input, checkpoint: path.join(work, 'ck-spark'), progressFile: path.join(work, 'progress-spark.jsonl'), databaseUrl: sparkUrl };
    const spark = await runSparkJob(sparkRun);
    check('Spark job', spark);
    const sparkStored = await count(sparkUrl);
    if (sparkStored !== ROWS) throw new Error(`Spark job stored ${sparkStored} rows, expected ${ROWS}`);
    const sparkFig = figures(spark, sparkRun.progressFile, sparkStored);
    say(`spark:      ${fmt(sparkFig.rowsPerSecond)} rows/s (${sparkFig.wallMs} ms, ${sparkFig.batches} batches), peak ${sparkFig.peakRssMb} MB`);

    // The same bench on a standalone cluster of two 1-core workers (the two-worker layout).
    const cluster = await startCluster({ workers: 2, cores: 1, memory: '1G' });
    let clusterFig: EngineFigures;
    try {
      const clusterUrl = await createMigratedDatabase(server.url, 'bench_spark_cluster');
      const clusterRun = {
        input,
        checkpoint: path.join(work, 'ck-spark-cluster'),
        progressFile: path.join(work, 'progress-spark-cluster.jsonl'),
        databaseUrl: clusterUrl,
      };
      const m = await runSparkCluster(cluster, clusterRun);
      check('Spark job on the standalone cluster', m);
      const stored = await count(clusterUrl);
      if (stored !== ROWS) throw new Error(`Spark job (cluster) stored ${stored} rows, expected ${ROWS}`);
      clusterFig = figures(m, clusterRun.progressFile, stored);
    } finally {
      await cluster.stop();
    }
    say(
      `spark (standalone, 2 workers x 1 core): ${fmt(clusterFig.rowsPerSecond)} rows/s (${clusterFig.wallMs} ms, ${clusterFig.batches} batches), driver peak ${clusterFig.peakRssMb} MB`,
    );

    // First batch: a cold process, one file of the spec's size (10 events).
    const small = path.join(work, 'small');
    await runGenerator({ outDir: small, config: { ...loadConfig().generator, files: 1, eventsPerFile: 10, intervalSeconds: 0, seed: 8 } });
    const first: Record<string, number> = {};
    for (const [engine, runner] of [
      ['typescript', runTs],
      ['spark', runSparkJob],
    ] as const) {
      const url = await createMigratedDatabase(server.url, `bench_first_${engine}`);
      const spec = {
        input: small,
        checkpoint: path.join(work, `ck-first-${engine}`),
        progressFile: path.join(work, `progress-first-${engine}.jsonl`),
        databaseUrl: url,
      };
      const m = await runner(spec);
      check(`${engine} (first batch)`, m);
      const f = figures(m, spec.progressFile, await count(url));
      first[engine] = f.firstBatchCommittedAfterStartMs;
      first[`${engine}BatchMs`] = f.firstBatchDurationMs;
      say(
        `first batch (${engine}): committed ${f.firstBatchCommittedAfterStartMs} ms after the process started (the batch itself ${f.firstBatchDurationMs} ms)`,
      );
    }
    tsFig.firstBatchCommittedAfterStartMs = first.typescript!;
    tsFig.firstBatchDurationMs = first.typescriptBatchMs!;
    sparkFig.firstBatchCommittedAfterStartMs = first.spark!;
    sparkFig.firstBatchDurationMs = first.sparkBatchMs!;

    const ratio = tsFig.rowsPerSecond / sparkFig.rowsPerSecond;
    const ratioProcessing = tsFig.rowsPerSecondProcessing / sparkFig.rowsPerSecondProcessing;
    const ratioCluster = tsFig.rowsPerSecond / clusterFig.rowsPerSecond;
    const profile = sparkProfile(sparkRun.progressFile);
    say(
      `ratio: the TypeScript engine is ${ratio.toFixed(2)}x Spark local[2]'s throughput over the whole run, ${ratioProcessing.toFixed(2)}x over batch processing alone (target <= 1.8x); ${ratioCluster.toFixed(2)}x the 2-worker cluster's`,
    );
    say(`spark local[2] batch time: plan ${profile.plan} ms, read ${profile.read} ms, write ${profile.write} ms, commit ${profile.commit} ms`);

    const results = {
      measuredAt: new Date().toISOString(),
      machine: `${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GB, ${os.cpus()[0]?.model ?? ''}; load average at start ${os.loadavg()[0]!.toFixed(1)}`,
      rows: ROWS,
      files: FILES,
      filesPerBatch: FILES_PER_BATCH,
      trigger: 'available-now',
      spark: { version: '3.5.0', master: 'local[2]', driverMemory: SPARK_DRIVER_MEMORY, ...sparkFig, profileMs: profile },
      sparkCluster: {
        version: '3.5.0',
        master: 'standalone, 2 workers x 1 core, 1 GB executors',
        peakRss: 'driver only',
        ...clusterFig,
        profileMs: sparkProfile(path.join(work, 'progress-spark-cluster.jsonl')),
      },
      typescript: tsFig,
      ratio: Math.round(ratio * 100) / 100,
      ratioProcessing: Math.round(ratioProcessing * 100) / 100,
      ratioCluster: Math.round(ratioCluster * 100) / 100,
      target: 'typescript / spark local[2] rows per second <= 1.8 (issue 12)',
    };
    await fsp.mkdir(OUT, { recursive: true });
    await fsp.writeFile(path.join(OUT, 'engines.json'), `${JSON.stringify(results, null, 2)}\n`);
    await fsp.writeFile(path.join(OUT, 'engines.svg'), await enginesChart(results));
    say(`wrote ${path.relative(PACKAGE_ROOT, OUT)}/engines.json, engines.svg`);
  } finally {
    await server.stop();
    if (!process.env.KEEP_BENCH_OUTPUT) await fsp.rm(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:engines: ${(err as Error).message}\n`);
  process.exit(1);
});
