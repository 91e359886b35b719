/**
 * Which files `ecomstream reprocess` reads again: named ones, or every published file of the input
 * folder modified at or after a time. The batch itself goes through the normal protocol (src/engine/stream.ts).
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { FileEntry } from '../checkpoint/checkpoint.js';
import { ConfigError, errorCode } from '../errors.js';
import { isPublished } from '../contract/batch.js';
import { planningOrder } from './source.js';

export type ReprocessSelection = { files: readonly string[] } | { sinceMs: number };

export async function selectReprocessFiles(inputDir: string, sel: ReprocessSelection): Promise<FileEntry[]> {
  const out: FileEntry[] = [];
  if ('files' in sel) {
    for (const name of sel.files) {
      if (path.basename(name) !== name)
        throw new ConfigError(`--file ${JSON.stringify(name)}: give a file name inside --input ${inputDir}, not a path`, {
          option: '--file',
          file: name,
          code: 'BAD_FILE',
        });
      const st = await fsp.stat(path.join(inputDir, name)).catch((cause: unknown) => {
        const code = errorCode(cause);
        throw new ConfigError(`--file ${name}: not found in ${inputDir} (${String(code)})`, {
          option: '--file',
          file: path.join(inputDir, name),
          code,
          cause,
        });
      });
      if (!st.isFile())
        throw new ConfigError(`--file ${name}: not a file in ${inputDir}`, { option: '--file', file: path.join(inputDir, name), code: 'BAD_FILE' });
      out.push({ name, size: st.size, mtimeMs: st.mtimeMs });
    }
    return out;
  }
  const names = await fsp.readdir(inputDir).catch((cause: unknown) => {
    const code = errorCode(cause);
    throw new ConfigError(`--input ${inputDir}: cannot list it (${String(code)})`, { option: '--input', file: inputDir, code, cause });
  });
  for (const name of names) {
    if (!isPublished(name)) continue;
    const st = await fsp.stat(path.join(inputDir, name)).catch(() => undefined);
    if (st?.isFile() && st.mtimeMs >= sel.sinceMs) out.push({ name, size: st.size, mtimeMs: st.mtimeMs });
  }
  return out.sort(planningOrder);
}
