/**
 * The Compose deployment as the end-to-end test drives it: `docker compose` on a copy of this checkout,
 * the state of its services, and what its parts answer (PostgreSQL, the Spark UIs, pgAdmin).
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The Compose file's `name:`: its containers and volumes carry it. */
export const PROJECT = 'ecommerce-streaming';
/** The Compose file's development defaults (.env.example). */
export const DATABASE_URL = 'postgresql://sparkuser:sparkpass123@127.0.0.1:5432/ecommerce_events';
export const PGADMIN = { url: 'http://127.0.0.1:5050', email: 'admin@admin.com', password: 'admin123' };

export interface Run {
  code: number | null;
  out: string;
}

/** Elapsed time since the test started, for progress lines. */
const t0 = Date.now();
export function progress(what: string): void {
  process.stderr.write(`compose test +${Math.round((Date.now() - t0) / 1000)}s: ${what}\n`);
}

/** The committed and working files of this checkout (not node_modules, not data/), copied to a new folder. */
export async function copyCheckout(): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ecomstream-compose-'));
  const list = spawnSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: ROOT, encoding: 'utf8' });
  if (list.status !== 0) throw new Error(`git ls-files failed in ${ROOT}: ${list.stderr}`);
  for (const rel of list.stdout.split('\0').filter(Boolean)) {
    const from = path.join(ROOT, rel);
    if (!fs.existsSync(from)) continue; // deleted in the working tree
    await fsp.mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await fsp.copyFile(from, path.join(dir, rel));
    await fsp.chmod(path.join(dir, rel), fs.statSync(from).mode);
  }
  return dir;
}

export class Deployment {
  constructor(
    readonly dir: string,
    private readonly env: Record<string, string>,
  ) {}

  /** `docker compose ARGS` in the deployment's folder, with its variables; output kept for messages. */
  compose(args: string[], extraEnv: Record<string, string> = {}): Promise<Run> {
    return new Promise((resolve) => {
      const child = spawn('docker', ['compose', ...args], { cwd: this.dir, env: { ...process.env, ...this.env, ...extraEnv } });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      child.on('close', (code) => resolve({ code, out }));
    });
  }

  async mustCompose(args: string[], extraEnv: Record<string, string> = {}): Promise<string> {
    const r = await this.compose(args, extraEnv);
    if (r.code !== 0) throw new Error(`docker compose ${args.join(' ')} exited ${String(r.code)}:\n${r.out.slice(-3000)}`);
    return r.out;
  }

  /** Every container of the project, stopped ones included. */
  async containers(): Promise<ContainerState[]> {
    const out = await this.mustCompose(['ps', '-a', '--format', 'json']);
    const ids = out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => (JSON.parse(l) as { ID: string }).ID);
    return ids.map(inspect);
  }

  get inputDir(): string {
    return path.join(this.dir, 'data', 'input');
  }
}

export interface ContainerState {
  name: string;
  service: string;
  status: string;
  exitCode: number;
  health: string | undefined;
  restarts: number;
  pid: number;
}

interface Inspected {
  Name: string;
  RestartCount: number;
  Config: { Labels: Record<string, string> };
  State: { Status: string; ExitCode: number; Pid: number; Health?: { Status: string } };
}

function inspect(id: string): ContainerState {
  const r = spawnSync('docker', ['inspect', id], { encoding: 'utf8' });
  const [c] = JSON.parse(r.stdout) as [Inspected];
  return {
    name: c.Name.replace(/^\//, ''),
    service: c.Config.Labels['com.docker.compose.service'] ?? '',
    status: c.State.Status,
    exitCode: c.State.ExitCode,
    health: c.State.Health?.Status,
    restarts: c.RestartCount,
    pid: c.State.Pid,
  };
}

/** Up as a user means it: one-shot services exited 0, the others running and healthy where they say. */
export function settled(c: ContainerState, oneShot: ReadonlySet<string>): boolean {
  if (oneShot.has(c.service)) return c.status === 'exited' && c.exitCode === 0;
  return c.status === 'running' && (c.health === undefined || c.health === 'healthy');
}

/** Polls `check` until it returns a value other than undefined, or fails naming `what` after `ms`. */
export async function waitFor<T>(what: string, ms: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 2000));
  }
}

export async function sql<R extends pg.QueryResultRow>(text: string, params: unknown[] = []): Promise<R[]> {
  const c = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 5000 });
  c.on('error', () => undefined); // a server restart under the test: the query below reports it
  await c.connect();
  try {
    return (await c.query<R>(text, params)).rows;
  } finally {
    await c.end().catch(() => undefined);
  }
}

export async function getJson<T>(url: string, init?: RequestInit): Promise<T> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`${url} answered ${res.status}`);
  return (await res.json()) as T;
}
