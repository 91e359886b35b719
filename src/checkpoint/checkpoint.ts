/**
 * The checkpoint folder, laid out as Spark's:
 *
 *   metadata          { id }: the stream id, written once; the sink's idempotence key with the batch id
 *   offsets/N         written BEFORE batch N runs: its files and batch timestamp (the write-ahead log)
 *   commits/N         written AFTER batch N committed in PostgreSQL
 *   sources/0/N       the files batch N added to the seen-files set; every `compactInterval` batches
 *                     `N.compact` holds the whole set, so a restart reads one compact file and a few
 *                     deltas instead of one file per batch ever run
 *   lock              pid of the engine using this checkpoint: a second engine refuses to start
 */
import crypto from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { BatchLog, CheckpointError, writeExclusive } from './log.js';

export interface FileEntry {
  /** File name inside the input folder (the source never descends into sub-folders). */
  name: string;
  size: number;
  mtimeMs: number;
}

export interface OffsetEntry {
  batchId: number;
  /** "Now" for the 24-hour rule: fixed at planning, reused on replay so decisions repeat. */
  batchTimestampMs: number;
  files: FileEntry[];
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
  readonly sources: BatchLog<FileEntry[]>;
  private lockHeld = false;
  streamId = '';

  constructor(readonly dir: string) {
    this.offsets = new BatchLog(path.join(dir, 'offsets'));
    this.commits = new BatchLog(path.join(dir, 'commits'));
    this.sources = new BatchLog(path.join(dir, 'sources', '0'));
  }

  private get lockFile(): string {
    return path.join(this.dir, 'lock');
  }

  /** Create folders, take the lock, read or create the stream id. */
  async open(): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true });
    await this.acquireLock();
    await Promise.all([this.offsets.init(), this.commits.init(), this.sources.init()]);
    const metaFile = path.join(this.dir, 'metadata');
    let meta: Metadata | undefined;
    try {
      meta = JSON.parse(await fsp.readFile(metaFile, 'utf8')) as Metadata;
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code !== 'ENOENT') throw new CheckpointError(`${metaFile}: unreadable`, { cause });
    }
    if (!meta) {
      meta = { id: crypto.randomUUID(), createdAtMs: Date.now() };
      try {
        await writeExclusive(metaFile, `${JSON.stringify(meta)}\n`);
      } catch {
        meta = JSON.parse(await fsp.readFile(metaFile, 'utf8')) as Metadata; // another writer won the race
      }
    }
    if (typeof meta.id !== 'string' || !meta.id) throw new CheckpointError(`${metaFile}: no stream id`);
    this.streamId = meta.id;
  }

  private async acquireLock(): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await writeExclusive(this.lockFile, `${process.pid}\n`);
        this.lockHeld = true;
        return;
      } catch (cause) {
        if ((cause as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw new CheckpointError(`could not create ${this.lockFile}`, { cause });
        }
      }
      const pid = Number((await fsp.readFile(this.lockFile, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
        throw new CheckpointError(
          `another engine (pid ${pid}) is using the checkpoint ${this.dir}; stop it first, or give this one its own --checkpoint`,
        );
      }
      // The holder died without cleaning up (a crash, SIGKILL): the lock is stale.
      await fsp.rm(this.lockFile, { force: true });
    }
    throw new CheckpointError(`could not take the lock ${this.lockFile}`);
  }

  async close(): Promise<void> {
    if (!this.lockHeld) return;
    this.lockHeld = false;
    await fsp.rm(this.lockFile, { force: true });
  }

  /** The seen-files set: latest compact entry plus the deltas after it. */
  async loadSeenFiles(): Promise<Map<string, number>> {
    const { ids, compact } = await this.sources.list();
    const seen = new Map<string, number>();
    const base = compact.length ? compact[compact.length - 1]! : -1;
    if (base >= 0) for (const f of (await this.sources.get(base, true)) ?? []) seen.set(f.name, f.mtimeMs);
    for (const id of ids) {
      if (id <= base) continue;
      for (const f of (await this.sources.get(id)) ?? []) seen.set(f.name, f.mtimeMs);
    }
    return seen;
  }

  /** Record batch N's files in the sources log; every `interval` batches as a compact entry. */
  async addSourceEntry(batchId: number, files: FileEntry[], seen: Map<string, number>, interval: number): Promise<void> {
    if (this.sources.exists(batchId)) return; // replay of a batch whose delta was already written
    const compact = interval > 0 && (batchId + 1) % interval === 0;
    if (compact) {
      const all: FileEntry[] = [];
      for (const [name, mtimeMs] of seen) all.push({ name, mtimeMs, size: -1 });
      for (const f of files) if (!seen.has(f.name)) all.push(f);
      await this.sources.add(batchId, all, true).catch(async (err: Error) => {
        if (!/already written/.test(err.message)) throw err;
      });
    } else {
      await this.sources.add(batchId, files);
    }
  }

  /**
   * Bound the folder sizes so restart cost stays flat: drop sources entries older than the newest compact
   * entry, and offsets/commits older than `retain` batches.
   */
  async purge(latestBatchId: number, retain: number): Promise<void> {
    const { compact } = await this.sources.list();
    const newestCompact = compact.length ? compact[compact.length - 1]! : undefined;
    if (newestCompact !== undefined) await this.sources.purgeBefore(newestCompact);
    const keepFrom = latestBatchId - retain + 1;
    if (keepFrom > 0) {
      await this.offsets.purgeBefore(keepFrom);
      await this.commits.purgeBefore(keepFrom);
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
