/**
 * Helpers of the Spark suite: render the conformance templates, run the Spark job (local mode) and the
 * TypeScript engine as subprocesses, read back what they stored.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SPARK_DIR = path.join(ROOT, 'spark');
export const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'conformance');
export const PYTHON = process.env.ECOMSTREAM_SPARK_PYTHON ?? path.join(SPARK_DIR, '.venv', 'bin', 'python');

/** Why the Spark suite cannot run here, or undefined when it can (scripts/install-spark.sh was run). */
export function sparkMissing(): string | undefined {
  const why = whySparkMissing();
  // A developer without Spark gets a skip; CI must really run the suite, so there it is a failure.
  if (why && process.env.CI) throw new Error(`${why} (CI runs the Spark suite: .ci/run installs it)`);
  return why;
}

function whySparkMissing(): string | undefined {
  if (!fs.existsSync(PYTHON)) return `no ${path.relative(ROOT, PYTHON)}: run scripts/install-spark.sh`;
  const jars = path.join(SPARK_DIR, 'jars');
  if (!fs.existsSync(jars) || !fs.readdirSync(jars).some((f) => /^postgresql-.*\.jar$/.test(f))) {
    return 'no PostgreSQL JDBC driver in spark/jars: run scripts/install-spark.sh';
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------
// Templates (see test/fixtures/conformance/README.md).

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000 };

function pad(n: number, w = 2): string {
  return String(n).padStart(w, '0');
}

function formatTs(ms: number, format: string | undefined): string {
  const iso = new Date(ms).toISOString();
  if (!format) return iso;
  if (format === 'space') return iso.slice(0, 19).replace('T', ' ');
  if (format === 'micro') return `${iso.slice(0, 23)}456Z`; // microseconds: what a millisecond clock would lose
  const m = /^([+-])(\d{2}):?(\d{2})$/.exec(format);
  if (!m) throw new Error(`unknown timestamp format ${format}`);
  const offsetMs = (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) * 60_000;
  const local = new Date(ms + offsetMs);
  const wall =
    `${local.getUTCFullYear()}-${pad(local.getUTCMonth() + 1)}-${pad(local.getUTCDate())}T` +
    `${pad(local.getUTCHours())}:${pad(local.getUTCMinutes())}:${pad(local.getUTCSeconds())}.${pad(local.getUTCMilliseconds(), 3)}`;
  return `${wall}${format}`;
}

export function renderTemplate(text: string, now: number): Buffer {
  const parts: Buffer[] = [];
  let last = 0;
  for (const m of text.matchAll(/\{\{([^}]*)\}\}/g)) {
    parts.push(Buffer.from(text.slice(last, m.index), 'utf8'));
    last = m.index + m[0].length;
    const [kind, ...args] = m[1]!.split(':');
    if (kind === 'ts') {
      const rel = /^([+-]\d+)([smh])$/.exec(args[0] ?? '');
      if (!rel) throw new Error(`bad placeholder ${m[0]}`);
      parts.push(Buffer.from(formatTs(now + Number(rel[1]) * UNITS[rel[2]!]!, args.slice(1).join(':') || undefined)));
    } else if (kind === 'bom') parts.push(Buffer.from([0xef, 0xbb, 0xbf]));
    else if (kind === 'cr') parts.push(Buffer.from('\r'));
    else if (kind === 'byte') parts.push(Buffer.from([parseInt(args[0]!, 16)]));
    else if (kind === 'long') parts.push(Buffer.from(args[0]!.repeat(Number(args[1])), 'utf8'));
    else throw new Error(`unknown placeholder ${m[0]}`);
  }
  parts.push(Buffer.from(text.slice(last), 'utf8'));
  return Buffer.concat(parts);
}

/**
 * Renders every `*.tmpl` under `from` into `to` (same relative paths, `.tmpl` and `.zero` dropped),
 * with modification times `step` ms apart in path order starting at `mtimeBase`. Returns the files.
 */
export async function renderFixtures(from: string, to: string, now: number, mtimeBase: number, step = 1000): Promise<string[]> {
  const rels: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of await fsp.readdir(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.name.endsWith('.tmpl')) rels.push(path.relative(from, p));
    }
  };
  await walk(from);
  rels.sort();
  const out: string[] = [];
  let t = mtimeBase;
  for (const rel of rels) {
    const zero = rel.includes('.zero.');
    const target = path.join(to, rel.replace(/\.tmpl$/, '').replace('.zero.', '.'));
    await fsp.mkdir(path.dirname(target), { recursive: true });
    const content = zero ? Buffer.alloc(0) : renderTemplate(await fsp.readFile(path.join(from, rel), 'utf8'), now);
    // Publish atomically, as the generator does: a hidden temp file, then rename.
    const tmp = path.join(path.dirname(target), `.${path.basename(target)}.rendering`);
    await fsp.writeFile(tmp, content);
    const when = new Date(t);
    await fsp.utimes(tmp, when, when);
    await fsp.rename(tmp, target);
    t += step;
    out.push(target);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Subprocesses.

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * Runs a command in its own process group and, once it exited, kills what is left of that group (the
 * JVM that a killed Python driver leaves behind for a moment), so the next run never meets it.
 */
export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 300_000, onSpawn?: (pid: number) => void): Promise<RunResult> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.pid !== undefined) onSpawn?.(child.pid);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      stderr += `\n[test] timed out after ${timeoutMs} ms: killing the process group\n`;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      killGroup(child.pid!).then(() => resolve({ code, signal, stdout, stderr, ms: Date.now() - t0 }), reject);
    });
  });
}

async function killGroup(pgid: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(-pgid, i < 50 ? 'SIGTERM' : 'SIGKILL');
    } catch {
      return; // no process left in the group
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface SparkRunOptions {
  input: string;
  checkpoint: string;
  progressFile: string;
  databaseUrl: string;
  maxFilesPerTrigger?: number;
  trigger?: string;
  /** Another feed's contract file (`--contract`); the event contract when omitted. */
  contract?: string;
  /** More flags of the job. */
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Told the pid of the job's Python driver once it is started (to signal it). */
  onSpawn?: (pid: number) => void;
}

/** The flags both engines take for a run: the folders, the trigger and the files per batch. */
export function runFlags(o: SparkRunOptions): string[] {
  return [
    '--input',
    o.input,
    '--checkpoint',
    o.checkpoint,
    '--progress-file',
    o.progressFile,
    '--trigger',
    o.trigger ?? 'available-now',
    '--max-files-per-trigger',
    String(o.maxFilesPerTrigger ?? 1000),
  ];
}

export function runSpark(o: SparkRunOptions): Promise<RunResult> {
  const args = [
    path.join(SPARK_DIR, 'streaming_job.py'),
    ...runFlags(o),
    '--shuffle-partitions',
    '2',
    ...(o.contract ? ['--contract', o.contract] : []),
    ...(o.args ?? []),
  ];
  return run(
    PYTHON,
    args,
    {
      ...process.env,
      DATABASE_URL: o.databaseUrl,
      ECOMSTREAM_SPARK_DRIVER_MEMORY: '768m',
      ECOMSTREAM_FAILPOINT: '',
      ...o.env,
    },
    300_000,
    o.onSpawn,
  );
}

export function runTypeScriptEngine(o: SparkRunOptions): Promise<RunResult> {
  const args = [path.join(ROOT, 'bin', 'ecomstream.js'), 'process', ...runFlags(o), ...(o.contract ? ['--contract', o.contract] : [])];
  return run(process.execPath, args, { ...process.env, DATABASE_URL: o.databaseUrl, ECOMSTREAM_FAILPOINT: '', ...o.env });
}

export function describeRun(what: string, r: RunResult): string {
  return `${what} exited with ${r.code ?? r.signal} after ${r.ms} ms\n--- stdout ---\n${r.stdout.slice(-4000)}\n--- stderr ---\n${r.stderr.slice(-6000)}`;
}

// ---------------------------------------------------------------------------------------------------
// Database reads.

export async function query<R extends pg.QueryResultRow = pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []): Promise<R[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<R>(sql, params)).rows;
  } finally {
    await c.end();
  }
}

/** user_events without id and inserted_at, as text, in event_id order. */
export async function storedEvents(url: string): Promise<Record<string, string | null>[]> {
  return query(
    url,
    `SELECT event_id, user_id, event_type, product_id, product_name, product_category, price::text AS price,
            to_char(event_timestamp, 'YYYY-MM-DD"T"HH24:MI:SS.US') AS event_timestamp, session_id, device_type
     FROM user_events ORDER BY event_id`,
  );
}

/** rejected_events as (file, line, reason, raw line), sorted; detail texts are free to differ. */
export async function storedRejects(url: string): Promise<Record<string, string | number | null>[]> {
  return query(url, `SELECT source_file, line_number, reason, raw_line FROM rejected_events ORDER BY source_file, line_number, reason`);
}

export async function batchTotals(url: string): Promise<Record<string, string>> {
  const rows = await query<Record<string, string>>(
    url,
    `SELECT count(*)::text AS batches, sum(input_rows)::text AS input_rows, sum(inserted_rows)::text AS inserted_rows,
            sum(duplicate_rows)::text AS duplicate_rows, sum(rejected_rows)::text AS rejected_rows
     FROM stream_batches`,
  );
  return rows[0]!;
}

export function readProgress(file: string): Record<string, unknown>[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
