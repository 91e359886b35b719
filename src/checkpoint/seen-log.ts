/**
 * The seen-files log: every file ever planned, with the size and mtime it was read at.
 *
 *   sources/0/G.log   a generation, started at batch G. Line 1: the version. Line 2: the whole set as of
 *                     batch G (a JSON array of file entries). Then one line per later batch, appended and
 *                     fsync'ed before its commits/N is written: {"batchId":N,"files":[…]}.
 *
 * Appended, not a file per batch compacted every 10 batches (Spark's FileStreamSourceLog, and this engine
 * before issue 18): that compaction rewrote the whole set, so every batch paid a tenth of all the files
 * ever seen and batches got slower the longer a stream ran. An append costs what its batch planned. A new
 * generation — the set written once more, then the older files removed — starts only when the log holds
 * twice the entries of the set (a file read again after it changed leaves its older entry behind), so
 * each entry is written a bounded number of times on average, and a restart reads one file.
 *
 * A crash in the middle of an append leaves a torn last line: readers skip it, the next append cuts it off
 * first (the batch it belonged to has no commits/N, so it is replayed and appended again). The layout
 * before issue 18 (sources/0/N and N.compact) is read as it was, and folded into a generation at the
 * first append.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { BatchLog, CheckpointError, LOG_VERSION, describeWriteFailure, writeExclusive } from './log.js';
import { displayName, fileKey, type FileEntry, type SeenFile } from './checkpoint.js';

const GENERATION = /^(\d+)\.log$/;
/** A new generation never starts for fewer superseded entries than this, so small sets do not churn. */
const MIN_SUPERSEDED = 1000;

/** One batch's line after the set. */
interface BatchLine {
  batchId: number;
  files: FileEntry[];
}

export interface SeenLogSummary {
  /** Batches the log holds a line for, the generation's set counting as one. */
  entries: number;
  bytes: number;
  oldest: number | null;
  newest: number | null;
  /** When the current generation was written (the last "compaction"). */
  generation: { batchId: number; mtimeMs: number };
}

export class SeenFilesLog {
  /** G of the current generation file, once one is known. */
  private generation: number | undefined;
  /** Bytes of the current generation file that hold complete lines (past them: a torn line). */
  private intactBytes = 0;
  private torn = false;
  /** Entries the current generation holds: its set and every appended line's. */
  private entries = 0;
  /** The newest batch whose files the log holds. */
  private lastBatch = -1;
  /** Files to remove at the next append: the old layout, and generations a crash left behind. */
  private leftovers: string[] = [];
  /** Bytes written to the log so far (appends and new generations): the cost counters read it. */
  bytesWritten = 0;

  private readonly old: BatchLog<FileEntry[]>;

  constructor(readonly dir: string) {
    this.old = new BatchLog(dir);
  }

  private file(g: number): string {
    return path.join(this.dir, `${g}.log`);
  }

  /** The whole set, from the newest generation (or the layout before issue 18). */
  async load(): Promise<Map<string, SeenFile>> {
    const seen = new Map<string, SeenFile>();
    const add = (f: FileEntry): void => void seen.set(fileKey(f), { size: f.size, mtimeMs: f.mtimeMs });
    const generations = await this.generations();
    const { ids, compact } = await this.old.list();
    this.leftovers = [...ids.map(String), ...compact.map((c) => `${c}.compact`), ...generations.slice(0, -1).map((g) => `${g}.log`)];
    const g = generations[generations.length - 1];
    if (g === undefined) {
      // The layout before issue 18: the newest N.compact, then the deltas after it.
      const base = compact.length ? compact[compact.length - 1]! : -1;
      if (base >= 0) for (const f of (await this.old.get(base, true)) ?? []) add(f);
      for (const id of ids) if (id > base) for (const f of (await this.old.get(id)) ?? []) add(f);
      this.lastBatch = Math.max(base, ids[ids.length - 1] ?? -1);
      return seen;
    }
    this.generation = g;
    this.lastBatch = g;
    this.entries = 0;
    await this.readGeneration(g, (batchId, files) => {
      for (const f of files) add(f);
      this.entries += files.length;
      if (batchId !== undefined) this.lastBatch = batchId;
    });
    return seen;
  }

  /** Record batch N's files; `seen` is the set they join. A replay whose line is already there adds nothing. */
  async append(batchId: number, files: readonly FileEntry[], seen: ReadonlyMap<string, SeenFile>): Promise<void> {
    if (batchId <= this.lastBatch) return;
    const entries = files.map(logEntry);
    if (this.generation !== undefined && this.leftovers.length) await this.removeLeftovers();
    if (this.generation === undefined || this.entries + entries.length > 2 * seen.size + MIN_SUPERSEDED) {
      await this.startGeneration(batchId, entries, seen);
    } else {
      await this.appendLine(`${JSON.stringify({ batchId, files: entries } satisfies BatchLine)}\n`);
      this.entries += entries.length;
    }
    this.lastBatch = batchId;
  }

  /** The log's size and span, for `checkpoint inspect`. */
  async summary(): Promise<SeenLogSummary | undefined> {
    const generations = await this.generations();
    const g = generations[generations.length - 1];
    if (g === undefined) return undefined;
    let lines = 0;
    let newest = g;
    await this.readGeneration(g, (line) => {
      lines++;
      if (line !== undefined) newest = line;
    });
    const st = await fsp.stat(this.file(g));
    return { entries: lines, bytes: st.size, oldest: g, newest, generation: { batchId: g, mtimeMs: st.mtimeMs } };
  }

  private async generations(): Promise<number[]> {
    let names: string[];
    try {
      names = await fsp.readdir(this.dir);
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new CheckpointError(`could not list ${this.dir}`, { cause, file: this.dir });
    }
    return names.flatMap((n) => (GENERATION.test(n) ? [Number(GENERATION.exec(n)![1])] : [])).sort((a, b) => a - b);
  }

  private async removeLeftovers(): Promise<void> {
    for (const name of this.leftovers) await fsp.rm(path.join(this.dir, name), { force: true });
    this.leftovers = [];
  }

  /** Calls `each` with the set (batch undefined), then with each intact batch line. */
  private async readGeneration(g: number, each: (batchId: number | undefined, files: FileEntry[]) => void): Promise<void> {
    const file = this.file(g);
    const buf = await fsp.readFile(file).catch((cause: unknown) => {
      throw new CheckpointError(`could not read ${file}: ${(cause as Error).message}`, { cause, file });
    });
    let pos = 0;
    for (let n = 0; pos < buf.length; n++) {
      const nl = buf.indexOf(10, pos);
      const text = buf.toString('utf8', pos, nl === -1 ? buf.length : nl);
      let value: unknown;
      try {
        value = n === 0 ? text : JSON.parse(text);
      } catch (cause) {
        // Only the last line can be torn (the next append cuts it off before writing); else the log is damaged.
        if (nl === -1 || nl === buf.length - 1) break;
        throw new CheckpointError(`${file}: line ${n + 1} is corrupt (not JSON)`, { cause, code: 'CORRUPT_LOG_FILE', file });
      }
      if (nl === -1) break; // a last line without its newline is torn even when it parses
      if (n === 0 && value !== LOG_VERSION)
        throw new CheckpointError(`${file}: unsupported log version ${JSON.stringify(value)} (this engine reads ${LOG_VERSION})`, {
          code: 'LOG_VERSION',
          file,
        });
      if (n === 1) each(undefined, value as FileEntry[]);
      if (n > 1) each((value as BatchLine).batchId, (value as BatchLine).files);
      pos = nl + 1;
    }
    if (g === this.generation) {
      this.intactBytes = pos;
      this.torn = pos < buf.length;
    }
  }

  /** Writes the whole set as generation `batchId`, then removes older generations and the old layout. */
  private async startGeneration(batchId: number, entries: FileEntry[], seen: ReadonlyMap<string, SeenFile>): Promise<void> {
    const keys = new Set(entries.map(fileKey));
    const all: FileEntry[] = [];
    for (const [key, f] of seen) if (!keys.has(key)) all.push(seenEntry(key, f));
    all.push(...entries);
    const content = `${LOG_VERSION}\n${JSON.stringify(all)}\n`;
    const file = this.file(batchId);
    try {
      await writeExclusive(file, content);
    } catch (cause) {
      throw new CheckpointError(describeWriteFailure(file, cause), { cause, code: (cause as NodeJS.ErrnoException).code, file, batch: batchId });
    }
    this.bytesWritten += Buffer.byteLength(content);
    if (this.generation !== undefined) this.leftovers.push(`${this.generation}.log`);
    this.generation = batchId;
    this.intactBytes = Buffer.byteLength(content);
    this.torn = false;
    this.entries = all.length;
    await this.removeLeftovers();
  }

  private async appendLine(line: string): Promise<void> {
    const file = this.file(this.generation!);
    try {
      if (this.torn) await fsp.truncate(file, this.intactBytes);
      this.torn = false;
      const fh = await fsp.open(file, 'a');
      try {
        await fh.writeFile(line);
        await fh.datasync();
      } finally {
        await fh.close();
      }
    } catch (cause) {
      // What this append wrote, if anything, is a torn line now: cut it off before the next one.
      this.torn = true;
      throw new CheckpointError(describeWriteFailure(file, cause), { cause, code: (cause as NodeJS.ErrnoException).code, file });
    }
    const bytes = Buffer.byteLength(line);
    this.intactBytes += bytes;
    this.bytesWritten += bytes;
  }
}

/** What the log keeps of a planned file: no notice, no read flag. */
function logEntry({ name, rawName, size, mtimeMs }: FileEntry): FileEntry {
  return rawName === undefined ? { name, size, mtimeMs } : { name, rawName, size, mtimeMs };
}

/** A seen-set entry back as a log entry (the inverse of `fileKey`). */
function seenEntry(key: string, f: SeenFile): FileEntry {
  const raw = key.startsWith('\0b64:') ? key.slice(6) : undefined;
  return raw === undefined ? { name: key, ...f } : { name: displayName(Buffer.from(raw, 'base64')), rawName: raw, ...f };
}
