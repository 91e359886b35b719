/**
 * Atomic, never-overwriting publish of a CSV file into the landing folder.
 *
 * 1. Write the bytes to a hidden temp file in the same folder, `.events_<stamp>.csv.tmp-<pid>-<random>`
 *    (a dotfile not ending in `.csv`, so the engine's file source never lists it), then fsync it.
 * 2. `link(temp, events_<stamp>_<N>.csv)`. A hard link fails with EEXIST instead of replacing an existing
 *    name, which `rename` would silently do; so two generators that pick the same name cannot overwrite
 *    each other: the loser takes the next N. The file appears under its `.csv` name complete or not at all.
 * 3. Unlink the temp name (the data stays reachable through the published name).
 *
 * Naming: `<stamp>` is the UTC time of publishing, `YYYYMMDD_HHMMSS`; `N` counts from 1 within that second
 * and goes up on every clash. A publisher remembers the last N it used in the current second, so a burst of
 * files in one second costs one link each instead of probing from 1 every time.
 *
 * Note for readers of the folder: a published file's mtime is the time its temp file was written, which
 * can be slightly earlier than files another process published a moment before.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { errorCode } from '../errors.js';

export interface PublishResult {
  /** Absolute path of the published file. */
  path: string;
  /** Its file name, `events_YYYYMMDD_HHMMSS_N.csv`. */
  name: string;
  bytes: number;
}

export const FILE_PREFIX = 'events_';
export const FILE_SUFFIX = '.csv';
/** Published names; anything else in the folder (temp files included) is not ours to read. */
export const PUBLISHED_NAME = /^events_\d{8}_\d{6}_\d+\.csv$/;
/** Temp names of this module: hidden and not ending in `.csv`. */
export const TEMP_NAME = /^\.events_.*\.csv\.tmp-\d+-[0-9a-f]+$/;

/** `YYYYMMDD_HHMMSS` (UTC) for epoch milliseconds. */
export function fileStamp(ms: number): string {
  const iso = new Date(ms).toISOString(); // 2026-11-25T17:03:04.123Z
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}_${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}`;
}

export function publishedName(stamp: string, n: number): string {
  return `${FILE_PREFIX}${stamp}_${n}${FILE_SUFFIX}`;
}

/**
 * Temp files being written right now by this process, so a hard exit (second Ctrl-C) can remove them
 * synchronously with `removeTempFilesSync`.
 */
const inFlight = new Set<string>();

export function removeTempFilesSync(): void {
  for (const p of inFlight) {
    try {
      fs.unlinkSync(p);
    } catch {
      // Already gone or never created: nothing to clean.
    }
    inFlight.delete(p);
  }
}

export interface PublisherOptions {
  /** fsync the temp file before linking. Default true: a crash must not publish a file of zeros. */
  fsync?: boolean;
}

export class Publisher {
  readonly dir: string;
  private readonly fsync: boolean;
  private lastStamp = '';
  private nextN = 1;
  private dirReady: Promise<unknown> | undefined;

  constructor(dir: string, opts: PublisherOptions = {}) {
    this.dir = path.resolve(dir);
    this.fsync = opts.fsync ?? true;
  }

  /** Publish `content` under a fresh `events_<stamp>_<N>.csv`, `nowMs` giving the stamp. */
  async publish(content: Buffer | string, nowMs: number): Promise<PublishResult> {
    this.dirReady ??= fsp.mkdir(this.dir, { recursive: true }).catch((err: unknown) => {
      this.dirReady = undefined;
      throw new Error(`cannot create output folder ${this.dir}: ${(err as Error).message}`, { cause: err });
    });
    await this.dirReady;

    const stamp = fileStamp(nowMs);
    const temp = path.join(this.dir, `.${FILE_PREFIX}${stamp}${FILE_SUFFIX}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
    inFlight.add(temp);
    try {
      await this.writeTemp(temp, content);
      let n = stamp === this.lastStamp ? this.nextN : 1;
      for (;;) {
        const name = publishedName(stamp, n);
        const final = path.join(this.dir, name);
        try {
          await fsp.link(temp, final);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
            n++;
            continue;
          }
          throw new Error(`cannot publish ${final}: ${(err as Error).message}`, { cause: err });
        }
        this.lastStamp = stamp;
        this.nextN = n + 1;
        return { path: final, name, bytes: typeof content === 'string' ? Buffer.byteLength(content) : content.length };
      }
    } finally {
      await fsp.unlink(temp).catch(() => undefined);
      inFlight.delete(temp);
    }
  }

  private async writeTemp(temp: string, content: Buffer | string): Promise<void> {
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(temp, 'wx', 0o644).catch(async (err: unknown) => {
        if (errorCode(err) !== 'ENOENT') throw err;
        // The folder was removed while we ran (someone cleaned data/): create it again, once.
        await fsp.mkdir(this.dir, { recursive: true });
        return fsp.open(temp, 'wx', 0o644);
      });
    } catch (err) {
      throw new Error(`cannot create temp file ${temp}: ${(err as Error).message}`, { cause: err });
    }
    try {
      await fh.writeFile(content);
      if (this.fsync) await fh.sync();
    } catch (err) {
      throw new Error(`cannot write temp file ${temp}: ${(err as Error).message}`, { cause: err });
    } finally {
      await fh.close();
    }
  }
}
