/**
 * The checkpoint folder, laid out as Spark's:
 *
 *   metadata          { id }: the stream id, written once; the sink's idempotence key with the batch id
 *   offsets/N         written BEFORE batch N runs: its files and batch timestamp (the write-ahead log)
 *   commits/N         written AFTER batch N committed in PostgreSQL
 *   sources/0/G.log   the seen-files set: every file ever planned, with the size and mtime it was read
 *                     at; one line appended per batch (src/checkpoint/seen-log.ts)
 *   lock              pid, start time and host of the engine using this checkpoint: a second engine
 *                     refuses to start; a dead holder's lock (even if its pid was reused) is taken over
 */
import crypto from 'node:crypto';
import fs, { constants as fsConstants } from 'node:fs';
import os from 'node:os';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { BatchLog, CheckpointError, describeWriteFailure, writeExclusive } from './log.js';
import { SeenFilesLog } from './seen-log.js';

export interface FileEntry {
  /**
   * File name inside the input folder (the source never descends into sub-folders). A name that is not
   * valid UTF-8 is shown with each bad byte as `\xNN`, and its bytes are kept in `rawName`.
   */
  name: string;
  /** Base64 of the name's bytes, only when they are not valid UTF-8 (then this opens the file). */
  rawName?: string;
  /** Size and modification time when planned (after the read, when it was re-read). -1: not known. */
  size: number;
  mtimeMs: number;
  /** A file-level notice this entry records (the contract's engine.fileModified or engine.fileSkipped reason), once. */
  notice?: { reason: string; detail: string };
  /** False for an entry that is only a notice: the file is not read. Default true. */
  read?: boolean;
}

/** What the seen-files set remembers of a file: the key is `fileKey(entry)`. */
export interface SeenFile {
  size: number;
  mtimeMs: number;
}

/** The identity of a file in the seen set: its name, or its raw bytes when the name is not UTF-8. */
export function fileKey(f: Pick<FileEntry, 'name' | 'rawName'>): string {
  return f.rawName === undefined ? f.name : `\0b64:${f.rawName}`;
}

export interface OffsetEntry {
  batchId: number;
  /** "Now" for the 24-hour rule: fixed at planning, reused on replay so decisions repeat. */
  batchTimestampMs: number;
  files: FileEntry[];
  /** Planned by `ecomstream reprocess`: files read again on purpose (a replay keeps this). */
  reprocess?: true;
}

export interface CommitEntry {
  batchId: number;
  committedAtMs: number;
}

interface Metadata {
  id: string;
  createdAtMs: number;
}

export class Checkpoint {
  readonly offsets: BatchLog<OffsetEntry>;
  readonly commits: BatchLog<CommitEntry>;
  readonly sources: SeenFilesLog;
  private lockHeld = false;
  streamId = '';

  constructor(readonly dir: string) {
    this.offsets = new BatchLog(path.join(dir, 'offsets'));
    this.commits = new BatchLog(path.join(dir, 'commits'));
    this.sources = new SeenFilesLog(path.join(dir, 'sources', '0'));
  }

  private get lockFile(): string {
    return path.join(this.dir, 'lock');
  }

  /**
   * True when this checkpoint has no stream yet: `streamId` is minted but `metadata` is not written
   * until `createStream()`, so a start that is refused leaves no trace.
   */
  isNew = false;

  private get metadataFile(): string {
    return path.join(this.dir, 'metadata');
  }

  /** Create folders, take the lock, read the stream id (or mint one for a new stream). */
  async open(): Promise<void> {
    try {
      await makeDir(this.dir);
      await fsp.access(this.dir, fsConstants.W_OK);
    } catch (cause) {
      throw new CheckpointError(describeWriteFailure(this.dir, cause), { cause, file: this.dir, code: (cause as NodeJS.ErrnoException).code });
    }
    await this.acquireLock();
    await Promise.all([this.offsets.init(), this.commits.init(), fsp.mkdir(this.sources.dir, { recursive: true })]);
    const metaFile = this.metadataFile;
    let meta: Metadata | undefined;
    try {
      meta = JSON.parse(await fsp.readFile(metaFile, 'utf8')) as Metadata;
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT')
        throw new CheckpointError(`${metaFile} is unreadable (${code ?? (cause as Error).message}): the checkpoint is damaged`, {
          cause,
          file: metaFile,
          code: code ?? 'CORRUPT_METADATA',
        });
    }
    if (!meta) {
      // Like Spark's MISSING_METADATA_FILE: batches without the stream id that made them. A new id
      // would make every earlier batch look foreign to the sink and re-ingest all of its files.
      const last = Math.max((await this.offsets.latest()) ?? -1, (await this.commits.latest()) ?? -1);
      if (last >= 0) {
        throw new CheckpointError(
          `${metaFile} is missing, but the checkpoint holds batches up to ${last} in offsets/ and commits/: ` +
            'the stream id is lost, and a new one would read every file again. Restore the metadata file, or move the checkpoint folder away to start a new stream',
          { code: 'MISSING_METADATA', file: metaFile },
        );
      }
      this.isNew = true;
      this.streamId = crypto.randomUUID();
      return;
    }
    if (typeof meta.id !== 'string' || !meta.id) throw new CheckpointError(`${metaFile}: no stream id`, { file: metaFile, code: 'CORRUPT_METADATA' });
    this.streamId = meta.id;
  }

  /** Write `metadata` for a new stream (after the caller decided it may start). */
  async createStream(): Promise<void> {
    if (!this.isNew) return;
    const meta: Metadata = { id: this.streamId, createdAtMs: Date.now() };
    try {
      await writeExclusive(this.metadataFile, `${JSON.stringify(meta)}\n`);
    } catch (cause) {
      throw new CheckpointError(describeWriteFailure(this.metadataFile, cause), {
        cause,
        file: this.metadataFile,
        code: (cause as NodeJS.ErrnoException).code,
      });
    }
    this.isNew = false;
  }

  /**
   * The lock holds the pid, the process start time and the host. A holder counts as alive only if a
   * process with that pid AND that start time runs on this host, so a pid reused after a crash (another
   * program got it) does not block the restart.
   */
  private async acquireLock(): Promise<void> {
    const mine: LockHolder = { pid: process.pid, startTime: processStartTime(process.pid), host: os.hostname() };
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await writeExclusive(this.lockFile, `${JSON.stringify(mine)}\n`);
        this.lockHeld = true;
        return;
      } catch (cause) {
        if ((cause as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw new CheckpointError(describeWriteFailure(this.lockFile, cause), { cause, file: this.lockFile, code: (cause as NodeJS.ErrnoException).code });
        }
      }
      const holder = parseLock(await fsp.readFile(this.lockFile, 'utf8').catch(() => ''));
      if (holder?.host !== undefined && holder.host !== mine.host) {
        throw new CheckpointError(
          `the checkpoint ${this.dir} is locked by pid ${holder.pid} on host ${holder.host}; stop that engine first (or, if it is gone, remove ${this.lockFile})`,
          { code: 'LOCKED', file: this.lockFile },
        );
      }
      if (holder && holder.pid !== process.pid && lockHolderAlive(holder)) {
        throw new CheckpointError(
          `another engine (pid ${holder.pid}) is using the checkpoint ${this.dir}; stop it first, or give this one its own --checkpoint`,
          { code: 'LOCKED', file: this.lockFile },
        );
      }
      // The holder died without cleaning up (a crash, SIGKILL): the lock is stale.
      await fsp.rm(this.lockFile, { force: true });
    }
    throw new CheckpointError(`could not take the lock ${this.lockFile}`, { code: 'LOCKED', file: this.lockFile });
  }

  async close(): Promise<void> {
    if (!this.lockHeld) return;
    this.lockHeld = false;
    await fsp.rm(this.lockFile, { force: true });
  }

  /** The seen-files set, as the log holds it. */
  async loadSeenFiles(): Promise<Map<string, SeenFile>> {
    return this.sources.load();
  }

  /** Record batch N's files in the seen-files log, before commits/N; `seen` is the set they join. */
  async addSourceEntry(batchId: number, files: FileEntry[], seen: ReadonlyMap<string, SeenFile>): Promise<void> {
    await this.sources.append(batchId, files, seen);
  }

  /** Bound the folder sizes so restart cost stays flat: drop offsets/commits older than `retain` batches. */
  async purge(latestBatchId: number, retain: number): Promise<void> {
    const keepFrom = latestBatchId - retain + 1;
    if (keepFrom > 0) {
      await this.offsets.purgeBefore(keepFrom);
      await this.commits.purgeBefore(keepFrom);
    }
  }
}

/**
 * `mkdir -p` that reports the real reason: a recursive mkdir on a read-only file system says ENOENT,
 * so on failure the missing levels are made one by one, and the first refusal is the error.
 */
async function makeDir(dir: string): Promise<void> {
  try {
    await fsp.mkdir(dir, { recursive: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    const missing: string[] = [];
    for (let d = dir; !fs.existsSync(d) && path.dirname(d) !== d; d = path.dirname(d)) missing.unshift(d);
    for (const d of missing) await fsp.mkdir(d);
    throw err;
  }
}

/** A file name's bytes as text: UTF-8, with each byte that is not valid UTF-8 shown as `\xNN`. */
export function displayName(bytes: Buffer): string {
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    let j = i;
    while (j < bytes.length && bytes[j]! < 0x80) j++;
    out += bytes.toString('latin1', i, j);
    if (j === bytes.length) break;
    // A multi-byte sequence: keep it when it decodes, else escape its first byte and go on.
    const len = bytes[j]! >= 0xf0 ? 4 : bytes[j]! >= 0xe0 ? 3 : bytes[j]! >= 0xc0 ? 2 : 1;
    const seq = bytes.subarray(j, j + len);
    if (len > 1 && seq.length === len && Buffer.from(seq.toString('utf8'), 'utf8').equals(seq)) {
      out += seq.toString('utf8');
      i = j + len;
    } else {
      out += `\\x${bytes[j]!.toString(16).padStart(2, '0')}`;
      i = j + 1;
    }
  }
  return out;
}

export interface LockHolder {
  pid: number;
  /** Start time of the process in clock ticks since boot (Linux /proc); undefined elsewhere. */
  startTime: number | undefined;
  host: string | undefined;
}

/** Who holds the lock of the checkpoint in `dir` now, if a live engine does (for the dashboard). */
export async function lockHolder(dir: string): Promise<LockHolder | undefined> {
  const holder = parseLock(await fsp.readFile(path.join(dir, 'lock'), 'utf8').catch(() => ''));
  return holder && lockHolderAlive(holder) ? holder : undefined;
}

/** The lock file's content: JSON, or a bare pid (checkpoints written before the start time was kept). */
function parseLock(text: string): LockHolder | undefined {
  const t = text.trim();
  if (/^\d+$/.test(t)) return { pid: Number(t), startTime: undefined, host: undefined };
  try {
    const j = JSON.parse(t) as Partial<LockHolder>;
    if (typeof j.pid === 'number' && j.pid > 0) return { pid: j.pid, startTime: typeof j.startTime === 'number' ? j.startTime : undefined, host: j.host };
  } catch {
    // unreadable: treated as stale
  }
  return undefined;
}

/** Field 22 of /proc/PID/stat: when the process started, which a reused pid does not share. */
export function processStartTime(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const v = Number(fields[19]);
    return Number.isFinite(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

function lockHolderAlive(holder: LockHolder): boolean {
  if (!isAlive(holder.pid)) return false;
  if (holder.startTime === undefined) return true;
  const now = processStartTime(holder.pid);
  return now === undefined || now === holder.startTime;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** What another process (the dashboard) may know of a checkpoint without opening it or taking its lock. */
export interface CheckpointView {
  /** False when the folder has neither a lock nor a planned batch: no engine checkpoint here. */
  exists: boolean;
  /** The engine holding the lock, if it is alive. */
  holder: LockHolder | undefined;
  /** The newest planned (offsets/N) and committed (commits/N) batch. */
  planned: number | undefined;
  committed: number | undefined;
}

export async function inspectCheckpoint(dir: string): Promise<CheckpointView> {
  const newest = (sub: string): Promise<number | undefined> => new BatchLog(path.join(dir, sub)).latest().catch(() => undefined);
  const [holder, planned, committed] = await Promise.all([lockHolder(dir), newest('offsets'), newest('commits')]);
  return { exists: planned !== undefined || fs.existsSync(path.join(dir, 'lock')), holder, planned, committed };
}
