/**
 * The file source: published `*.csv` entries directly in the input folder, oldest first.
 *
 * Terminology
 * - published:  a name ending in `.csv` that is not a dotfile (the generator's temp files are hidden).
 * - settled:    a file whose size and modification time did not change for `settleMs`: either seen
 *               unchanged across two looks that far apart, or last modified at least that long ago.
 *               Only settled files are planned, so a file still being written (an upload, a slow `cp`)
 *               is not read half-way. With `settleMs` 0 (atomic producers) every file is settled.
 * - modified:   a file already processed whose size or mtime changed under the same name. It gets a
 *               `file_modified` notice once, and is read again as a new version with `rereadModified`.
 * - skipped:    a published name that is no readable regular file (FIFO, socket, folder, dangling
 *               link). It gets a `file_skipped` notice once. A symlink to a regular file is read,
 *               wherever the file is.
 * - queue:      the settled files not yet planned, in planning order (whole-millisecond mtime, then name).
 *
 * Cost (docs/performance.md): a batch costs what it plans, not what waits or what was processed before.
 * The folder is listed (readdir, one stat for each new name) only when the queue is empty; batches are
 * planned from the queue until it is, so a listing of N files is paid once for the N files, not once per
 * batch. Between listings only what is known to be in motion is looked at: the files still settling, and
 * the names the folder watcher reported (new files join the queue in order; a processed one is checked
 * for an overwrite). With a watcher, an empty queue is listed again at most every `relistMillis`, since
 * the watcher reports what arrives (and a missed event is caught by that listing). A listing also
 * re-checks 256 processed files for overwrites the watcher missed, in turns. Bounded triggers
 * (`available-now`, `once`) list once: they read exactly the files present at start.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { isUtf8 } from 'node:buffer';
import type { Stats } from 'node:fs';
import TinyQueue from 'tinyqueue';
import { displayName, fileKey, type FileEntry, type SeenFile } from '../checkpoint/checkpoint.js';
import { EcomstreamError } from '../errors.js';
import { EVENT_CONTRACT } from '../contract/event.js';
import { isPublished } from '../contract/batch.js';
import type { ContractSpec, SkipKind } from '../contract/schema.js';
import { renderDetail } from '../contract/detail.js';

/** Processed files re-checked for overwrites per listing, besides those the watcher reports. */
const SWEEP_PER_LISTING = 256;

/** The path that opens `f`: from its raw bytes when its name is not UTF-8. */
export function filePath(dir: string, f: Pick<FileEntry, 'name' | 'rawName'>): string | Buffer {
  if (f.rawName === undefined) return path.join(dir, f.name);
  return Buffer.concat([Buffer.from(path.join(dir, path.sep)), Buffer.from(f.rawName, 'base64')]);
}

export class SourceError extends EcomstreamError {}

interface Candidate {
  key: string;
  entry: FileEntry;
  /** When this size and mtime were first observed (ms). */
  sinceMs: number;
  settled: boolean;
  modified: boolean;
}

type Ref = Pick<FileEntry, 'name' | 'rawName'>;

/** Whole milliseconds, ties by name: the order Spark's file source sees (it has ms mtimes), so both
 * engines decide "first occurrence wins" between files the same way. Reprocess plans in it too. */
export function planningOrder(x: Pick<FileEntry, 'name' | 'mtimeMs'>, y: Pick<FileEntry, 'name' | 'mtimeMs'>): number {
  return Math.floor(x.mtimeMs) - Math.floor(y.mtimeMs) || (x.name < y.name ? -1 : x.name > y.name ? 1 : 0);
}

const byPlanningOrder = (a: Candidate, b: Candidate): number => planningOrder(a.entry, b.entry);

/** What looking at the folder has cost so far, in operations (the planning-cost test reads it). */
export interface SourceCost {
  /** readdir calls on the input folder, and the entries they returned. */
  listings: number;
  entriesListed: number;
  statCalls: number;
  /** Files put into the planning order (each costs a log of the queue's length). */
  entriesQueued: number;
}

export interface SourceOptions {
  inputDir: string;
  settleMs: number;
  rereadModified: boolean;
  now?: () => number;
  /** Whose `engine` templates the notices use (`--contract FILE`); the event contract when omitted. */
  contract?: ContractSpec;
  /** List the folder only the first time: the bounded triggers read exactly the files present at start. */
  listOnce?: boolean;
  /** With a folder watcher alive, an empty queue is listed again at most this often (ms). */
  relistMillis?: number;
}

export class FileSource {
  /** Files seen and not yet planned, by key: settling, or settled and in the queue. */
  private readonly settling = new Map<string, Candidate>();
  private readonly ready = new Map<string, Candidate>();
  /** The ready files in planning order; an entry whose key now maps to another candidate is stale, skipped. */
  private readonly queue = new TinyQueue<Candidate>([], byPlanningOrder);
  private readonly touched = new Set<string>();
  private listed = false;
  private lastListingMs = -Infinity;
  private sweepCursor = 0;
  /** Milliseconds until the next settling file may have settled (undefined when none is settling). */
  nextSettleMs: number | undefined;
  readonly cost: SourceCost = { listings: 0, entriesListed: 0, statCalls: 0, entriesQueued: 0 };

  constructor(private readonly opts: SourceOptions) {}

  /** The watcher saw this name change: look at it on the next refresh even if it was processed. */
  touch(name: string): void {
    this.touched.add(name);
  }

  /** Settled files (and notices) waiting to be planned. */
  get readyCount(): number {
    return this.ready.size;
  }

  get settlingCount(): number {
    return this.settling.size;
  }

  /**
   * Brings the queue up to date: a listing of the folder when the queue is empty (see the cost rule
   * above), else a look at the settling files and the names the watcher reported.
   */
  async refresh(seen: ReadonlyMap<string, SeenFile>, watching = false): Promise<void> {
    const now = (this.opts.now ?? Date.now)();
    const relist = !this.listed || (!this.opts.listOnce && this.ready.size === 0 && (!watching || now - this.lastListingMs >= (this.opts.relistMillis ?? 0)));
    if (relist) await this.list(seen, now);
    else await this.lookAgain(seen, now);
    let next: number | undefined;
    for (const c of this.settling.values()) {
      const wait = Math.max(0, c.sinceMs + this.opts.settleMs - now);
      next = next === undefined ? wait : Math.min(next, wait);
    }
    this.nextSettleMs = next;
  }

  /** Up to `limit` files from the head of the queue, planned from now on (the seen set holds them). */
  take(limit: number): FileEntry[] {
    const out: FileEntry[] = [];
    while (out.length < limit && this.queue.length > 0) {
      const c = this.queue.pop()!;
      if (this.ready.get(c.key) !== c) continue;
      this.ready.delete(c.key);
      out.push(c.entry);
    }
    return out;
  }

  private async list(seen: ReadonlyMap<string, SeenFile>, now: number): Promise<void> {
    const { inputDir } = this.opts;
    let dirents: import('node:fs').Dirent<Buffer>[];
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
    this.listed = true;
    this.lastListingMs = now;
    this.cost.listings++;
    this.cost.entriesListed += dirents.length;
    const present = new Set<string>();
    const touched = new Set(this.touched);
    this.touched.clear();
    let processed = 0;
    for (const d of dirents) {
      if (!isPublished(d.name)) continue;
      const ref: Ref = isUtf8(d.name) ? { name: d.name.toString('utf8') } : { name: displayName(d.name), rawName: d.name.toString('base64') };
      const key = fileKey(ref);
      let recheck = touched.has(ref.name);
      if (seen.has(key) && !this.settling.has(key) && !this.ready.has(key)) {
        // A processed file: only re-checked when reported, or in its turn of the sweep.
        recheck ||= processed >= this.sweepCursor && processed < this.sweepCursor + SWEEP_PER_LISTING;
        processed++;
      }
      if (await this.consider(key, ref, seen, now, recheck, () => d.isSymbolicLink())) present.add(key);
    }
    for (const key of [...this.settling.keys(), ...this.ready.keys()]) if (!present.has(key)) this.setCandidate(key, undefined);
    this.sweepCursor = this.sweepCursor + SWEEP_PER_LISTING >= processed ? 0 : this.sweepCursor + SWEEP_PER_LISTING;
  }

  /** No listing: the files still settling, and the names the watcher reported. */
  private async lookAgain(seen: ReadonlyMap<string, SeenFile>, now: number): Promise<void> {
    const names = new Set([...this.settling.values()].map((c) => c.entry));
    for (const name of this.touched) if (isPublished(name) && !this.settling.has(name)) names.add({ name, size: -1, mtimeMs: 0 });
    this.touched.clear();
    for (const ref of names) {
      const key = fileKey(ref);
      const isLink = async (): Promise<boolean> => (await fsp.lstat(filePath(this.opts.inputDir, ref)).catch(() => undefined))?.isSymbolicLink() ?? false;
      if (!(await this.consider(key, ref, seen, now, true, isLink))) this.setCandidate(key, undefined);
    }
  }

  /**
   * Looks at one published name: a processed file only when `recheck` (for an overwrite), a settled one
   * only when `recheck`, anything else always. Returns false when it is gone (vanished, and no link).
   */
  private async consider(
    key: string,
    ref: Ref,
    seen: ReadonlyMap<string, SeenFile>,
    now: number,
    recheck: boolean,
    isLink: () => boolean | Promise<boolean>,
  ): Promise<boolean> {
    const known = seen.get(key);
    const candidate = this.settling.get(key) ?? this.ready.get(key);
    if (known && !candidate) {
      if (!recheck) return true;
      const st = await this.stat(filePath(this.opts.inputDir, ref)).catch(() => undefined);
      if (!st?.isFile()) return true;
      if (st.mtimeMs !== known.mtimeMs || (known.size >= 0 && st.size !== known.size)) this.observe(key, ref, st, now, true);
      return true;
    }
    if (candidate?.settled && !recheck) return true; // settled earlier; re-checked after reading
    let st: Stats;
    try {
      st = await this.stat(filePath(this.opts.inputDir, ref));
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code;
      const link = await isLink();
      if (code === 'ENOENT' && !link) return false; // vanished: it was never published for us
      this.setCandidate(key, undefined); // a file seen earlier whose link now dangles is skipped, not awaited
      this.skip(key, ref, link && code === 'ENOENT' ? 'dangling_link' : 'unexaminable', code ?? (cause as Error).message);
      return true;
    }
    if (!st.isFile()) {
      if (!known) this.skip(key, ref, st.isDirectory() ? 'folder' : st.isFIFO() ? 'fifo' : st.isSocket() ? 'socket' : 'other');
      return true;
    }
    this.observe(key, ref, st, now, candidate?.modified ?? false);
    return true;
  }

  private async stat(p: string | Buffer): Promise<Stats> {
    this.cost.statCalls++;
    return fsp.stat(p);
  }

  /** Replaces the candidate under `key` (undefined: forgets it); a settled one joins the queue. */
  private setCandidate(key: string, c: Candidate | undefined): void {
    this.settling.delete(key);
    this.ready.delete(key);
    if (!c) return;
    if (!c.settled) {
      this.settling.set(key, c);
      return;
    }
    this.ready.set(key, c);
    this.queue.push(c);
    this.cost.entriesQueued++;
  }

  /** A regular file's size and mtime at `now`: settled when unchanged for settleMs, or old enough. */
  private observe(key: string, ref: Ref, st: Stats, now: number, modified: boolean): void {
    const { settleMs, rereadModified } = this.opts;
    const prev = this.settling.get(key) ?? this.ready.get(key);
    const same = prev?.entry.size === st.size && prev.entry.mtimeMs === st.mtimeMs;
    if (same && prev.settled) return; // unchanged in the queue: keep its place
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
    this.setCandidate(key, { key, entry, sinceMs, settled, modified });
  }

  private skip(key: string, ref: Ref, kind: SkipKind, error = ''): void {
    if (this.ready.get(key)?.entry.read === false) return; // its notice is queued already
    const s = (this.opts.contract ?? EVENT_CONTRACT).engine.fileSkipped;
    const notice = { reason: s.reason, detail: renderDetail(s.detail[kind], { file: ref.name, error }) };
    const entry: FileEntry = { ...ref, size: -1, mtimeMs: 0, read: false, notice };
    this.setCandidate(key, { key, entry, sinceMs: 0, settled: true, modified: false });
  }
}
