/**
 * The checkpoint folder, laid out as Spark's:
 *
 *   metadata          { id }: the stream id, written once; the sink's idempotence key with the batch id
 *   offsets/N         written BEFORE batch N runs: its files and batch timestamp (the write-ahead log)
 *   commits/N         written AFTER batch N committed in PostgreSQL
 *   sources/0/G.log   the seen-files set: every file ever planned, with the size and mtime it was read
 *                     at; one line appended per batch (src/checkpoint/seen-log.ts)
 *   lock              flock'd by the engine using this checkpoint for its whole life, so a second engine
 *                     refuses to start (src/checkpoint/lock.ts); holds that engine's pid, host and start
 *                     time, for information only
 */
import crypto from 'node:crypto';
import fs, { constants as fsConstants } from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { CheckpointLock } from './lock.js';
import { BatchLog, CheckpointError, describeWriteFailure, writeExclusive } from './log.js';
import { SeenFilesLog } from './seen-log.js';

/** The lock file's name in a checkpoint folder. */
export const LOCK_FILE = 'lock';

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
  private readonly lock: CheckpointLock;
  streamId = '';

  constructor(readonly dir: string) {
    this.offsets = new BatchLog(path.join(dir, 'offsets'));
    this.commits = new BatchLog(path.join(dir, 'commits'));
    this.sources = new SeenFilesLog(path.join(dir, 'sources', '0'));
    this.lock = new CheckpointLock(path.join(dir, LOCK_FILE));
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
    await this.lock.acquire();
    try {
      await this.readStream();
    } catch (err) {
      this.lock.release(); // a checkpoint that cannot be opened is not held
      throw err;
    }
  }

  private async readStream(): Promise<void> {
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

  /** Releases the lock (closing its descriptor); the lock file stays. */
  close(): Promise<void> {
    this.lock.release();
    return Promise.resolve();
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
