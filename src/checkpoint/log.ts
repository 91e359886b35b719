/**
 * A versioned, never-overwritten batch log, modelled on Spark's HDFSMetadataLog: one file per batch id
 * in a folder, named by the id, first line a version marker, then JSON.
 *
 * Writes are atomic and exclusive: temp file -> fsync -> link(temp, N) -> unlink temp -> fsync folder.
 * `link` fails if N exists, so two writers (or a replay that re-plans) can never overwrite a batch.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { EcomstreamError } from '../errors.js';

export const LOG_VERSION = 'v1';

export class CheckpointError extends EcomstreamError {}

/** One line for a failed checkpoint write: what could not be written, and the system's reason. */
export function describeWriteFailure(file: string, cause: unknown): string {
  const code = (cause as NodeJS.ErrnoException).code;
  const why =
    code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
      ? 'the checkpoint folder is not writable'
      : code === 'ENOSPC' || code === 'EDQUOT'
        ? 'the disk is full'
        : (cause as Error).message;
  return `could not write ${file}: ${why}${code ? ` (${code})` : ''}`;
}

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Atomically create `file` with `content`; throws `EEXIST` (as CheckpointError cause) if it exists. */
export async function writeExclusive(file: string, content: string): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  try {
    const fh = await fsp.open(tmp, 'wx');
    try {
      await fh.writeFile(content);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.link(tmp, file);
  } finally {
    // Also when the write failed (disk full, EIO): no temp file is ever left behind.
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
  }
  await fsyncDir(dir);
}

export class BatchLog<T> {
  constructor(
    readonly dir: string,
    /** Suffix that marks compacted entries (sources log only), e.g. `.compact`. */
    private readonly compactSuffix = '.compact',
  ) {}

  async init(): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true });
  }

  private file(batchId: number, compact = false): string {
    return path.join(this.dir, `${batchId}${compact ? this.compactSuffix : ''}`);
  }

  async add(batchId: number, value: T, compact = false): Promise<void> {
    const file = this.file(batchId, compact);
    try {
      await writeExclusive(file, `${LOG_VERSION}\n${JSON.stringify(value)}\n`);
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new CheckpointError(`batch ${batchId} is already written in ${file}; the log is never overwritten`, {
          cause,
          code: 'EEXIST',
          file,
          batch: batchId,
        });
      }
      throw new CheckpointError(describeWriteFailure(file, cause), { cause, code: (cause as NodeJS.ErrnoException).code, file, batch: batchId });
    }
  }

  async get(batchId: number, compact = false): Promise<T | undefined> {
    const file = this.file(batchId, compact);
    let text: string;
    try {
      text = await fsp.readFile(file, 'utf8');
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new CheckpointError(`could not read ${file}: ${(cause as Error).message}`, { cause, file, batch: batchId });
    }
    if (text.length === 0) {
      throw new CheckpointError(
        `${file} is empty (0 bytes): the checkpoint is damaged; restore it from a backup or move the checkpoint folder away to start a new stream`,
        { code: 'EMPTY_LOG_FILE', file, batch: batchId },
      );
    }
    const nl = text.indexOf('\n');
    const version = text.slice(0, nl);
    if (version !== LOG_VERSION) {
      throw new CheckpointError(`${file}: unsupported log version ${JSON.stringify(version)} (this engine reads ${LOG_VERSION})`, {
        code: 'LOG_VERSION',
        file,
        batch: batchId,
      });
    }
    try {
      return JSON.parse(text.slice(nl + 1)) as T;
    } catch (cause) {
      throw new CheckpointError(`${file}: corrupt entry (not JSON)`, { cause, code: 'CORRUPT_LOG_FILE', file, batch: batchId });
    }
  }

  /** Batch ids present, ascending; `compact` ids are those with a compacted entry. */
  async list(): Promise<{ ids: number[]; compact: number[] }> {
    let names: string[];
    try {
      names = await fsp.readdir(this.dir);
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return { ids: [], compact: [] };
      throw new CheckpointError(`could not list ${this.dir}`, { cause });
    }
    const ids: number[] = [];
    const compact: number[] = [];
    for (const n of names) {
      if (/^\d+$/.test(n)) ids.push(Number(n));
      else if (n.endsWith(this.compactSuffix) && /^\d+$/.test(n.slice(0, -this.compactSuffix.length))) {
        compact.push(Number(n.slice(0, -this.compactSuffix.length)));
      }
    }
    return { ids: ids.sort((a, b) => a - b), compact: compact.sort((a, b) => a - b) };
  }

  async latest(): Promise<number | undefined> {
    const { ids, compact } = await this.list();
    const all = ids.concat(compact);
    return all.length ? Math.max(...all) : undefined;
  }

  /** Remove entries (plain and compact) with id < `batchId`. */
  async purgeBefore(batchId: number): Promise<void> {
    const { ids, compact } = await this.list();
    for (const id of ids) if (id < batchId) await fsp.rm(this.file(id), { force: true });
    for (const id of compact) if (id < batchId) await fsp.rm(this.file(id, true), { force: true });
  }

  exists(batchId: number, compact = false): boolean {
    return fs.existsSync(this.file(batchId, compact));
  }
}
