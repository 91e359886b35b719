/**
 * The file source: published `*.csv` files directly in the input folder, oldest first. Temp files
 * (the generator's `.events_…tmp`), dotfiles and sub-folders are ignored, so a file is only ever seen
 * complete. Only names not yet seen are stat'ed, so a folder with 100,000 processed files stays cheap.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { FileEntry } from '../checkpoint/checkpoint.js';

export function isPublishedCsv(name: string): boolean {
  return name.endsWith('.csv') && !name.startsWith('.');
}

/** New files, ordered by modification time then name. A file that vanishes while listing is skipped. */
export async function listNewFiles(inputDir: string, seen: ReadonlyMap<string, number>): Promise<FileEntry[]> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await fsp.readdir(inputDir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new Error(`cannot list the input folder ${inputDir}: ${(err as Error).message}`, { cause: err });
  }
  const out: FileEntry[] = [];
  for (const e of entries) {
    if (!e.isFile() || !isPublishedCsv(e.name) || seen.has(e.name)) continue;
    try {
      const st = await fsp.stat(path.join(inputDir, e.name));
      out.push({ name: e.name, size: st.size, mtimeMs: st.mtimeMs });
    } catch {
      // Vanished between readdir and stat: it was never published for us.
    }
  }
  // Whole milliseconds, ties by name: the order Spark's file source sees (it has ms mtimes), so both
  // engines decide "first occurrence wins" between files the same way.
  out.sort((a, b) => Math.floor(a.mtimeMs) - Math.floor(b.mtimeMs) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return out;
}
