/**
 * `npm run soak`: exactly-once under faults, for longer than a test can afford.
 *
 *  1. kills     SOAK_KILLS times (default 100): publish files with injected duplicates, start the engine
 *               (`ecomstream process`, a subprocess), SIGKILL it at a random moment after its first
 *               batch; the next round restarts it on the same checkpoint
 *  2. crashes   SOAK_PG_CRASHES times (default 10): one engine runs on; PostgreSQL is crashed
 *               (SIGQUIT, what `pg_ctl stop -m immediate` sends) while a COPY is in flight, then
 *               restarted; the engine must retry and catch up, not exit
 *  3. final     `process --trigger available-now` to the end
 *
 * Then every input line must be in exactly one place: its event in user_events (first occurrence) or a
 * duplicate_event_id reject naming its file and line. Prints kills done, rows lost, doubled and spurious
 * rejects; exits 1 on any of them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { HEADER_LINE } from '../src/contract/event.js';
import { startEmbedded, type EmbeddedOptions, type EmbeddedServer } from '../src/db/embedded.js';
import { createMigratedDatabase, PACKAGE_ROOT } from '../src/db/migrate.js';

const KILLS = Number(process.env.SOAK_KILLS ?? 100);
const CRASHES = Number(process.env.SOAK_PG_CRASHES ?? 10);
const BIN = path.join(PACKAGE_ROOT, 'bin', 'ecomstream.js');

const say = (m: string): void => void process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${m}\n`);

/** A bar on a terminal, a plain line every tenth step otherwise. */
function progress(what: string, done: number, total: number, extra: string): void {
  if (process.stdout.isTTY) {
    const width = 30;
    const full = Math.round((done / total) * width);
    process.stdout.write(`\r${what} [${'#'.repeat(full)}${'.'.repeat(width - full)}] ${done}/${total} ${extra}   `);
    if (done === total) process.stdout.write('\n');
  } else if (done % 10 === 0 || done === total) {
    say(`${what}: ${done}/${total} ${extra}`);
  }
}

/** What each input line must become. */
interface Expected {
  stored: Map<string, { file: string; line: number }>;
  duplicates: Set<string>; // `${file}:${line}`
  lines: number;
}

class Feed {
  private n = 0;
  private mtime = Date.now() - 6 * 3_600_000;
  private readonly ids: string[] = [];
  readonly expected: Expected = { stored: new Map(), duplicates: new Set(), lines: 0 };
  published = 0;

  constructor(private readonly dir: string) {}

  /** Publishes `files` files of `rows` events, 10 % of them repeating an earlier event id. */
  async publish(files: number, rows: number): Promise<void> {
    for (let f = 0; f < files; f++) {
      const name = `events_soak_${String(this.n++).padStart(6, '0')}.csv`;
      const lines = [HEADER_LINE];
      for (let r = 0; r < rows; r++) {
        const line = lines.length + 1;
        let id: string;
        if (this.ids.length > 0 && Math.random() < 0.1) {
          id = this.ids[Math.floor(Math.random() * this.ids.length)]!;
          this.expected.duplicates.add(`${name}:${line}`);
        } else {
          id = crypto.randomUUID();
          this.ids.push(id);
          this.expected.stored.set(id, { file: name, line });
        }
        const ts = new Date(Date.now() - 60_000 - Math.floor(Math.random() * 600_000)).toISOString();
        lines.push(`${id},U${r % 97},view,P${r % 200},Soak item,Books,${(r % 50) + 0.99},${ts},S${r % 31},desktop`);
      }
      this.expected.lines += rows;
      const tmp = path.join(this.dir, `.${name}.tmp`);
      await fsp.writeFile(tmp, `${lines.join('\n')}\n`);
      const t = new Date((this.mtime += 1000));
      await fsp.utimes(tmp, t, t);
      await fsp.rename(tmp, path.join(this.dir, name));
      this.published++;
    }
  }
}

function engine(
  args: string[],
  url: string,
): { child: ChildProcess; output: () => string; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> } {
  const child = spawn(process.execPath, [BIN, 'process', ...args], { env: { ...process.env, DATABASE_URL: url }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => out, exited };
}

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs: number): Promise<void> {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`soak: timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function latest(dir: string): number {
  try {
    return Math.max(
      -1,
      ...fs
        .readdirSync(dir)
        .filter((n) => /^\d+$/.test(n))
        .map(Number),
    );
  } catch {
    return -1;
  }
}

/**
 * Waits until batches recorded `files` files; fails only when no batch commits for a minute (a stuck
 * engine), however long a backlog takes on a loaded machine.
 */
async function caughtUp(url: string, files: number, check: () => void): Promise<void> {
  let last = -1;
  let lastChange = Date.now();
  for (;;) {
    check();
    const r = await rowsOf<{ n: string }>(url, 'SELECT COALESCE(SUM(jsonb_array_length(files)), 0) n FROM stream_batches').catch(() => [{ n: '-1' }]);
    const n = Number(r[0]!.n);
    if (n >= files) return;
    if (n > last) {
      last = n;
      lastChange = Date.now();
    } else if (Date.now() - lastChange > 60_000) {
      throw new Error(`soak: no batch committed for 60 s (${n} of ${files} files recorded): the engine is stuck`);
    }
    await new Promise((res) => setTimeout(res, 100));
  }
}

async function rowsOf<R extends pg.QueryResultRow>(url: string, sql: string): Promise<R[]> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => undefined);
  await c.connect();
  try {
    return (await c.query<R>(sql)).rows;
  } finally {
    await c.end();
  }
}

async function main(): Promise<void> {
  const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'ecomstream-soak-'));
  await fsp.chmod(work, 0o755);
  const pgOpts: EmbeddedOptions = {
    dataDir: path.join(work, 'pg'),
    port: 27000 + Math.floor(Math.random() * 2000),
    user: 'sparkuser',
    password: 'sparkpass123',
    database: 'ecommerce_events',
  };
  let server: EmbeddedServer = await startEmbedded(pgOpts);
  pgOpts.port = server.port;
  const url = await createMigratedDatabase(server.url, 'soak');
  const input = path.join(work, 'input');
  const ck = path.join(work, 'ck');
  await fsp.mkdir(input);
  const feed = new Feed(input);
  const args = [
    '--input',
    input,
    '--checkpoint',
    ck,
    '--max-files-per-trigger',
    '1',
    '--file-settle',
    '0',
    '--progress-file',
    path.join(work, 'progress.jsonl'),
  ];
  say(`work folder ${work}; ${KILLS} engine kills, ${CRASHES} PostgreSQL crashes`);

  // 1. SIGKILL at random moments of a running stream.
  let midBatch = 0;
  for (let k = 1; k <= KILLS; k++) {
    await feed.publish(8, 1500);
    const e = engine([...args, '--trigger', 'on-arrival'], url);
    await until('the first batch of a round', () => /batch \d+: /.test(e.output()) || e.child.exitCode !== null, 30_000);
    if (e.child.exitCode !== null) throw new Error(`soak: the engine exited by itself in round ${k}:\n${e.output()}`);
    await new Promise((r) => setTimeout(r, Math.random() * 250));
    e.child.kill('SIGKILL');
    await e.exited;
    if (latest(path.join(ck, 'offsets')) > latest(path.join(ck, 'commits'))) midBatch++;
    if (process.env.SOAK_DEBUG) process.stdout.write(e.output());
    progress('kills', k, KILLS, `(${midBatch} mid-batch)`);
  }

  // 2. PostgreSQL crashed in the middle of a COPY, with one engine running on.
  const e = engine([...args, '--trigger', 'on-arrival'], url);
  await until('the engine watching', () => e.output().includes('watching'), 60_000);
  // The kill rounds leave a backlog (each round publishes more than it lets the engine finish).
  await caughtUp(url, feed.published, () => {
    if (e.child.exitCode !== null) throw new Error(`soak: the engine exited:\n${e.output()}`);
  });
  let crashes = 0;
  for (let m = 1; m <= CRASHES; m++) {
    await feed.publish(3, 20_000);
    await until(
      'a COPY in flight',
      async () => {
        if (e.child.exitCode !== null) throw new Error(`soak: the engine exited during the crash phase:\n${e.output()}`);
        const r = await rowsOf<{ n: string }>(
          url,
          // Into user_events (the fast path) or batch_staging: with 10 % repeated ids the fast path meets a
          // stored id within its first rows, and the batch streams through the staging table.
          "SELECT COUNT(*) n FROM pg_stat_activity WHERE (query LIKE 'COPY \"user_events\"%' OR query LIKE 'COPY batch_staging%') AND state = 'active'",
        ).catch(() => [{ n: '0' }]);
        return Number(r[0]!.n) > 0;
      },
      60_000,
    );
    const pid = server.pid;
    process.kill(pid, 'SIGQUIT');
    await until(
      'PostgreSQL to exit',
      () => {
        try {
          process.kill(pid, 0);
          return false;
        } catch {
          return true;
        }
      },
      30_000,
    );
    crashes++;
    server = await startEmbedded(pgOpts);
    await caughtUp(url, feed.published, () => {
      if (e.child.exitCode !== null) throw new Error(`soak: the engine exited after a crash:\n${e.output()}`);
    });
    progress('PostgreSQL crashes', m, CRASHES, '');
  }
  e.child.kill('SIGINT');
  const stopped = await e.exited;
  if (stopped.code !== 0) throw new Error(`soak: the engine did not stop cleanly (${stopped.code ?? stopped.signal}):\n${e.output().slice(-3000)}`);
  const retries = (e.output().match(/database unavailable/g) ?? []).length;

  // 3. The rest, to the end.
  const fin = engine([...args, '--trigger', 'available-now'], url);
  const done = await fin.exited;
  if (done.code !== 0) throw new Error(`soak: the final run failed:\n${fin.output()}`);

  // Every line in exactly one place.
  const stored = await rowsOf<{ event_id: string; n: string }>(url, 'SELECT event_id, COUNT(*) n FROM user_events GROUP BY event_id');
  const rejects = await rowsOf<{ source_file: string; line_number: number; reason: string; n: string }>(
    url,
    'SELECT source_file, line_number, reason, COUNT(*) n FROM rejected_events GROUP BY 1, 2, 3',
  );
  const storedIds = new Map(stored.map((r) => [r.event_id, Number(r.n)]));
  let lost = 0;
  let doubled = 0;
  let spurious = 0;
  for (const id of feed.expected.stored.keys()) if (!storedIds.has(id)) lost++;
  for (const [id, count] of storedIds) {
    if (count > 1) doubled += count - 1;
    if (!feed.expected.stored.has(id)) spurious++;
  }
  const rejected = new Set<string>();
  for (const r of rejects) {
    const key = `${r.source_file}:${r.line_number}`;
    if (r.reason !== 'duplicate_event_id' || !feed.expected.duplicates.has(key)) spurious += Number(r.n);
    else if (Number(r.n) > 1) doubled += Number(r.n) - 1;
    rejected.add(key);
  }
  for (const key of feed.expected.duplicates) if (!rejected.has(key)) lost++;
  const [accounted] = await rowsOf<{ input: string; batches: string }>(url, 'SELECT SUM(input_rows) input, COUNT(*) batches FROM stream_batches');

  await server.stop();
  await fsp.rm(work, { recursive: true, force: true });
  const summary = {
    measuredAt: new Date().toISOString(),
    kills: KILLS,
    killsMidBatch: midBatch,
    postgresCrashesMidCopy: crashes,
    engineRetriesLogged: retries,
    files: feed.published,
    lines: feed.expected.lines,
    batches: Number(accounted!.batches),
    linesInBatchRecords: Number(accounted!.input),
    lost,
    doubled,
    spurious,
  };
  say(`${KILLS} kills (${midBatch} with a batch planned but not committed), ${crashes} PostgreSQL crashes during a COPY (${retries} retries logged)`);
  say(`${feed.published} files, ${feed.expected.lines} lines, ${summary.batches} batches: lost ${lost}, doubled ${doubled}, spurious rejects ${spurious}`);
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  if (lost || doubled || spurious || summary.linesInBatchRecords !== feed.expected.lines) process.exitCode = 1;
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exitCode = 1;
});
