/**
 * The checkpoint's lock: one engine per checkpoint, wherever the engines run.
 *
 * An exclusive flock(2) on the file `lock` in the checkpoint, held for the life of the process. It
 * belongs to the engine's open file, not to a pid, so it holds across PID namespaces and containers that
 * share the volume, and the kernel releases it when the holder's descriptor closes: when the process
 * exits or dies in any way. A stopped (SIGSTOP) or frozen holder keeps it. No pid is ever judged alive
 * or dead, and no lock is ever taken over.
 *
 * Node has no flock(). The engine opens the file and hands that descriptor to util-linux `flock -x -n 3`,
 * which locks the open file it shares with the engine and exits at once: the lock then belongs to the
 * engine's descriptor alone, with no helper process beside the engine that could die first or outlive it.
 *
 * The file is never deleted: deleting a locked file would let the next engine lock a new inode while the
 * holder still writes (a lock file removed by hand is what the database's epoch fencing catches, see
 * src/db/epoch.ts). Its content — the holder's pid, host and start time — is information only, for
 * messages and `ecomstream checkpoint inspect`. Whether an engine holds it is asked of the kernel
 * (`lockHolder`): /proc/locks first, which takes nothing, else a shared lock tried for an instant, which
 * an engine starting at that moment outlasts by trying again.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CheckpointError, describeWriteFailure } from './log.js';

/** Who holds (or last held) a checkpoint's lock, as the holder wrote it: information, never a decision. */
export interface LockHolder {
  /** In the holder's own PID namespace (a container's engine is often pid 1). */
  pid: number | undefined;
  host: string | undefined;
  /** When the holder process started (ISO 8601). */
  startedAt: string | undefined;
}

/** When this process started (ISO 8601): with pid and host, what names a holder to a person. */
export function processStartedAt(): string {
  return new Date(Math.round(Date.now() - process.uptime() * 1000)).toISOString();
}

/** flock(1)'s exit status when `-n` finds the lock taken (util-linux and BusyBox alike). */
const FLOCK_CONFLICT = 1;
/**
 * How often, and how far apart, a start tries again when the lock is taken: a reader asking whether an
 * engine holds it (`lockHolder`) may hold a shared lock for a few milliseconds, and must not refuse an
 * engine that starts at that moment. A real holder is still there after the last try.
 */
const ACQUIRE_TRIES = 10;
const ACQUIRE_PAUSE_MS = 50;

export class CheckpointLock {
  private fd: number | undefined;

  constructor(readonly file: string) {}

  /** Takes the lock, or throws LOCKED naming the holder; then records this process as the holder. */
  async acquire(): Promise<void> {
    let fd: number;
    try {
      fd = fs.openSync(this.file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
    } catch (cause) {
      throw new CheckpointError(describeWriteFailure(this.file, cause), { cause, file: this.file, code: (cause as NodeJS.ErrnoException).code });
    }
    try {
      let status = await flockNonBlocking(fd, this.file, 'exclusive');
      for (let i = 1; i < ACQUIRE_TRIES && status === FLOCK_CONFLICT; i++) {
        await new Promise((r) => setTimeout(r, ACQUIRE_PAUSE_MS));
        status = await flockNonBlocking(fd, this.file, 'exclusive');
      }
      if (status === FLOCK_CONFLICT) {
        const holder = describeHolder(parseHolder(await fsp.readFile(this.file, 'utf8').catch(() => '')));
        throw new CheckpointError(
          `the checkpoint ${path.dirname(this.file)} is in use by another engine (${holder}): stop it first, or give this one its own --checkpoint`,
          { code: 'LOCKED', file: this.file },
        );
      }
    } catch (err) {
      fs.closeSync(fd); // this descriptor holds no lock: closing it touches no one else's
      throw err;
    }
    this.fd = fd;
    const mine: LockHolder = { pid: process.pid, host: os.hostname(), startedAt: processStartedAt() };
    try {
      fs.ftruncateSync(fd, 0);
      fs.writeSync(fd, `${JSON.stringify(mine)}\n`, 0);
    } catch (cause) {
      this.release();
      throw new CheckpointError(describeWriteFailure(this.file, cause), { cause, file: this.file, code: (cause as NodeJS.ErrnoException).code });
    }
  }

  /** Closes the descriptor, which releases the lock. The file stays (see the module comment). */
  release(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    fs.closeSync(fd);
  }
}

/** Runs `flock -x|-s -n 3` on `fd`; returns its exit status (0: locked, FLOCK_CONFLICT: held elsewhere). */
async function flockNonBlocking(fd: number, file: string, mode: 'exclusive' | 'shared'): Promise<number> {
  const child = spawn('flock', [mode === 'exclusive' ? '-x' : '-s', '-n', '3'], { stdio: ['ignore', 'ignore', 'pipe', fd] });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const status = await new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : -1)));
  }).catch((cause: unknown) => {
    throw new CheckpointError(
      `cannot lock ${file}: the flock command (util-linux) did not run (${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}); install util-linux`,
      { cause, file, code: 'FLOCK_MISSING' },
    );
  });
  if (status !== 0 && status !== FLOCK_CONFLICT)
    throw new CheckpointError(`cannot lock ${file}: flock exited with status ${status}${stderr.trim() ? ` (${stderr.trim()})` : ''}`, {
      file,
      code: 'LOCK_FAILED',
    });
  return status;
}

/** The lock file's content. Also reads the older forms: a bare pid, and `{ pid, startTime, host }`. */
function parseHolder(text: string): LockHolder | undefined {
  const t = text.trim();
  if (/^\d+$/.test(t)) return { pid: Number(t), host: undefined, startedAt: undefined };
  try {
    const j = JSON.parse(t) as Partial<Record<keyof LockHolder, unknown>>;
    return {
      pid: typeof j.pid === 'number' ? j.pid : undefined,
      host: typeof j.host === 'string' ? j.host : undefined,
      startedAt: typeof j.startedAt === 'string' ? j.startedAt : undefined,
    };
  } catch {
    return undefined; // being written at this instant, or not ours: the holder is unknown
  }
}

/** "pid 12 on host h, started 2024-…": what is known of a holder, for one-line messages. */
export function describeHolder(h: LockHolder | undefined): string {
  if (!h || (h.pid === undefined && h.host === undefined)) return 'holder unknown';
  return [h.pid !== undefined ? `pid ${h.pid}` : undefined, h.host ? `on host ${h.host}` : undefined, h.startedAt ? `started ${h.startedAt}` : undefined]
    .filter((s) => s !== undefined)
    .join(' ');
}

/**
 * The holder of the lock on `file` if an engine holds it now, or undefined when it is free. First the
 * file's device and inode are looked up in /proc/locks, which takes no lock. But the kernel lists a lock
 * there only to readers that can see the pid that took it — here the `flock` process, which has exited —
 * so a reader in another PID namespace (a container beside the engine's) sees nothing. Then the kernel is
 * asked by trying a shared lock for an instant on a descriptor of our own: refused means an engine holds
 * it. An engine starting at that instant tries again (ACQUIRE_TRIES), so the question never refuses one.
 */
export async function lockHolder(file: string): Promise<LockHolder | undefined> {
  const st = await fsp.stat(file, { bigint: true }).catch(() => undefined);
  if (!st) return undefined;
  const table = await fsp.readFile('/proc/locks', 'utf8').catch(() => '');
  if (!kernelLists(table, st.dev, st.ino) && !(await refusesSharedLock(file))) return undefined;
  return parseHolder(await fsp.readFile(file, 'utf8').catch(() => '')) ?? { pid: undefined, host: undefined, startedAt: undefined };
}

/** True when a shared lock on `file` is refused now: an engine holds it exclusively. */
async function refusesSharedLock(file: string): Promise<boolean> {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY);
  } catch {
    return false; // gone, or unreadable to this reader: nothing to tell
  }
  try {
    return (await flockNonBlocking(fd, file, 'shared').catch(() => 0)) === FLOCK_CONFLICT;
  } finally {
    fs.closeSync(fd); // releases the shared lock, if it was granted
  }
}

/**
 * True when /proc/locks (`N: FLOCK ADVISORY WRITE pid MAJ:MIN:INODE start end`, a waiter's line has `->`
 * after the number) lists a granted lock on the file of `dev` and `ino`. The device is stat's st_dev
 * split as glibc's major()/minor() do; /proc/locks prints both in hex.
 */
export function kernelLists(table: string, dev: bigint, ino: bigint): boolean {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  for (const line of table.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields[1] === '->') continue;
    const id = fields.find((f) => /^[0-9a-f]+:[0-9a-f]+:\d+$/.test(f));
    if (!id) continue;
    const [maj, min, inode] = id.split(':') as [string, string, string];
    if (BigInt(inode) === ino && BigInt(`0x${maj}`) === major && BigInt(`0x${min}`) === minor) return true;
  }
  return false;
}
