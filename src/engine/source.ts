/**
 * The file source: published `*.csv` entries directly in the input folder, oldest first.
 *
 * Terminology
 * - published:  a name ending in `.csv` that is not a dotfile (the generator's temp files are hidden).
 * - settled:    a file whose size and modification time did not change for `settleMs`: either seen
 *               unchanged across two listings that far apart, or last modified at least that long ago.
 *               Only settled files are planned, so a file still being written (an upload, a slow `cp`)
 *               is not read half-way. With `settleMs` 0 (atomic producers) every file is settled.
 * - modified:   a file already processed whose size or mtime changed under the same name. It gets a
 *               `file_modified` notice once, and is read again as a new version with `rereadModified`.
 * - skipped:    a published name that is no readable regular file (FIFO, socket, folder, dangling
 *               link). It gets a `file_skipped` notice once. A symlink to a regular file is read.
 *
 * Cost: every listing reads the folder's names once; a file is stat'ed when it is new or not yet
 * settled, when the watcher reported its name, or in a rotating window of processed files (so an
 * overwrite is found even when the watcher missed it). Settled files are kept between listings, so
 * planning a batch costs in proportion to the files that changed, not to the whole backlog.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { isUtf8 } from 'node:buffer';
import type { Dirent, Stats } from 'node:fs';
import { displayName, fileKey, type FileEntry, type SeenFile } from '../checkpoint/checkpoint.js';
import { EcomstreamError } from '../errors.js';
import { EVENT_CONTRACT } from '../contract/event.js';
import type { ContractSpec, SkipKind } from '../contract/schema.js';
import { renderDetail } from './validate.js';

/** Processed files re-checked for overwrites per listing, besides those the watcher reports. */
const SWEEP_PER_LISTING = 256;
const CSV = Buffer.from('.csv');
const DOT = 0x2e;

export function isPublishedCsv(name: Buffer | string): boolean {
  const b = typeof name === 'string' ? Buffer.from(name) : name;
  return b.length > CSV.length && b[0] !== DOT && b.subarray(b.length - CSV.length).equals(CSV);
}

/** The path that opens `f`: from its raw bytes when its name is not UTF-8. */
export function filePath(dir: string, f: Pick<FileEntry, 'name' | 'rawName'>): string | Buffer {
  if (f.rawName === undefined) return path.join(dir, f.name);
  return Buffer.concat([Buffer.from(path.join(dir, path.sep)), Buffer.from(f.rawName, 'base64')]);
}

export class SourceError extends EcomstreamError {}

interface Candidate {
  entry: FileEntry;
  /** When this size and mtime were first observed (ms). */
  sinceMs: number;
  settled: boolean;
  modified: boolean;
}

export interface Listing {
  /** Settled files and notices not yet planned, in planning order. */
  ready: FileEntry[];
  /** Keys of the files seen but not yet settled. */
  settlingKeys: string[];
  /** Milliseconds until the next of them may have settled (undefined when none is settling). */
  nextSettleMs: number | undefined;
}

export interface SourceOptions {
  inputDir: string;
  settleMs: number;
  rereadModified: boolean;
  now?: () => number;
  /** Whose `engine` templates the notices use (`--contract FILE`); the event contract when omitted. */
  contract?: ContractSpec;
}

export class FileSource {
  private readonly candidates = new Map<string, Candidate>();
  private readonly touched = new Set<string>();
  private sweepCursor = 0;
  /** stat calls made, for the planning-cost test. */
  statCalls = 0;

  constructor(private readonly opts: SourceOptions) {}

  /** The watcher saw this name change: stat it on the next listing even if it was processed. */
  touch(name: string): void {
    this.touched.add(name);
  }

  /** Forget a file after it was planned (its key is in the seen set from now on). */
  planned(files: readonly FileEntry[]): void {
    for (const f of files) this.candidates.delete(fileKey(f));
  }

  async list(seen: ReadonlyMap<string, SeenFile>): Promise<Listing> {
    const { inputDir, settleMs } = this.opts;
    const now = (this.opts.now ?? Date.now)();
    let dirents: Dirent<Buffer>[];
    try {
      dirents = await fsp.readdir(inputDir, { withFileTypes: true, encoding: 'buffer' });
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === 'ENOENT') dirents = [];
      else
        throw new SourceError(`cannot list the input folder ${inputDir}: ${(cause as Error).message}`, {
          cause,
          file: inputDir,
          code: (cause as NodeJS.ErrnoException).code,
        });
    }
    const present = new Set<string>();
    const touched = new Set(this.touched);
    this.touched.clear();
    let seenIndex = 0;
    for (const d of dirents) {
      const bytes = d.name;
      if (!isPublishedCsv(bytes)) continue;
      const utf8 = isUtf8(bytes);
      const ref: Pick<FileEntry, 'name' | 'rawName'> = utf8
        ? { name: bytes.toString('utf8') }
        : { name: displayName(bytes), rawName: bytes.toString('base64') };
      const key = fileKey(ref);
      present.add(key);
      const known = seen.get(key);
      const candidate = this.candidates.get(key);
      if (known && !candidate) {
        // A processed file: only re-checked when reported, or in its turn of the sweep.
        const inSweep = seenIndex >= this.sweepCursor && seenIndex < this.sweepCursor + SWEEP_PER_LISTING;
        seenIndex++;
        if (!inSweep && !touched.has(ref.name)) continue;
        const st = await this.stat(filePath(inputDir, ref));
        if (!st?.isFile()) continue;
        if (st.mtimeMs === known.mtimeMs && (known.size < 0 || st.size === known.size)) continue;
        this.observe(key, ref, st, now, true);
        continue;
      }
      if (candidate?.settled && !touched.has(ref.name)) continue; // settled earlier; re-checked after reading
      let st: Stats | undefined;
      try {
        this.statCalls++;
        st = await fsp.stat(filePath(inputDir, ref));
      } catch (cause) {
        const code = (cause as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' && !d.isSymbolicLink()) {
          present.delete(key); // vanished between readdir and stat: it was never published for us
          continue;
        }
        if (d.isSymbolicLink() && code === 'ENOENT') this.skip(key, ref, 'dangling_link');
        else this.skip(key, ref, 'unexaminable', code ?? (cause as Error).message);
        continue;
      }
      if (!st.isFile()) {
        if (!known) this.skip(key, ref, st.isDirectory() ? 'folder' : st.isFIFO() ? 'fifo' : st.isSocket() ? 'socket' : 'other');
        continue;
      }
      this.observe(key, ref, st, now, candidate?.modified ?? false);
    }
    for (const key of this.candidates.keys()) if (!present.has(key)) this.candidates.delete(key);
    this.sweepCursor = this.sweepCursor + SWEEP_PER_LISTING >= seenIndex ? 0 : this.sweepCursor + SWEEP_PER_LISTING;

    const ready: FileEntry[] = [];
    const settlingKeys: string[] = [];
    let nextSettleMs: number | undefined;
    for (const [key, c] of this.candidates) {
      if (c.settled) ready.push(c.entry);
      else {
        settlingKeys.push(key);
        const wait = Math.max(0, c.sinceMs + settleMs - now);
        nextSettleMs = nextSettleMs === undefined ? wait : Math.min(nextSettleMs, wait);
      }
    }
    // Whole milliseconds, ties by name: the order Spark's file source sees (it has ms mtimes), so both
    // engines decide "first occurrence wins" between files the same way.
    ready.sort((a, b) => Math.floor(a.mtimeMs) - Math.floor(b.mtimeMs) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { ready, settlingKeys, nextSettleMs };
  }

  private async stat(p: string | Buffer): Promise<Stats | undefined> {
    this.statCalls++;
    return fsp.stat(p).catch(() => undefined);
  }

  /** A regular file's size and mtime at `now`: settled when unchanged for settleMs, or old enough. */
  private observe(key: string, ref: Pick<FileEntry, 'name' | 'rawName'>, st: Stats, now: number, modified: boolean): void {
    const { settleMs, rereadModified } = this.opts;
    const prev = this.candidates.get(key);
    const same = prev?.entry.size === st.size && prev.entry.mtimeMs === st.mtimeMs;
    const sinceMs = same ? prev.sinceMs : now;
    const settled = settleMs <= 0 || now - st.mtimeMs >= settleMs || (same && now - sinceMs >= settleMs);
    const entry: FileEntry = { ...ref, size: st.size, mtimeMs: st.mtimeMs };
    if (modified) {
      const m = (this.opts.contract ?? EVENT_CONTRACT).engine.fileModified;
      entry.notice = {
        reason: m.reason,
        detail: renderDetail(rereadModified ? m.detailReread : m.detailNotReread, { file: ref.name, size: st.size, mtime: new Date(st.mtimeMs).toISOString() }),
      };
      entry.read = rereadModified;
    }
    this.candidates.set(key, { entry, sinceMs, settled, modified });
  }

  private skip(key: string, ref: Pick<FileEntry, 'name' | 'rawName'>, kind: SkipKind, error = ''): void {
    if (this.candidates.has(key)) return;
    const s = (this.opts.contract ?? EVENT_CONTRACT).engine.fileSkipped;
    const notice = { reason: s.reason, detail: renderDetail(s.detail[kind], { file: ref.name, error }) };
    const entry: FileEntry = { ...ref, size: -1, mtimeMs: 0, read: false, notice };
    this.candidates.set(key, { entry, sinceMs: 0, settled: true, modified: false });
  }
}
