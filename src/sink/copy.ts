/**
 * COPY text: the sink's wire format, and the only module that writes or reads it. In that format a
 * field may not hold a raw backslash, tab, newline or carriage return (the server refuses the whole
 * COPY: 22P04 "literal carriage return found in data"), so every one of the four is escaped, whatever
 * the column; an empty value is NULL (`\N`).
 *
 * Two line layouts: `direct`, the contract's columns of its table; `staging`, the same plus the row's
 * quality score, source file, line number and raw line, for the paths that must say which rows were
 * duplicates or refused (src/sink/paths.ts).
 */
import { once } from 'node:events';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { RowEncoder } from './port.js';

const SPECIAL = /[\\\t\n\r]/;
const SPECIAL_ALL = /[\\\t\n\r]/g;
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** One field, escaped; the value is returned as it is when it needs no escaping (the common case). */
export function copyEscape(s: string): string {
  return SPECIAL.test(s) ? s.replace(SPECIAL_ALL, (c) => ESCAPES[c]!) : s;
}

const UNESCAPES: Record<string, string> = { '\\': '\\', t: '\t', n: '\n', r: '\r', N: '' };

/** The inverse of `copyEscape` for one field (`\N`, NULL, reads as null). */
export function copyUnescape(s: string): string | null {
  if (s === '\\N') return null;
  return s.includes('\\') ? s.replace(/\\(.)/g, (_, c: string) => UNESCAPES[c] ?? c) : s;
}

/** The columns after the contract's in a staging line, as batch_staging names them. */
export const STAGING_TAIL = ['row_quality', 'source_file', 'line_number', 'raw_line'] as const;

/**
 * Encodes rows as COPY lines in the `direct` or `staging` layout and hands them on, one array of lines
 * per reader chunk, to `onLines` (which may keep the array).
 */
export class CopyEncoder implements RowEncoder {
  private lines: string[] = [];
  /** The staging layout's escaped source file between tabs, the same for every row of a file. */
  private fileField = '';

  constructor(
    readonly withOrigin: boolean,
    private readonly onLines: (lines: string[]) => Promise<void> | void,
  ) {}

  file(name: string): void {
    if (this.withOrigin) this.fileField = `\t${copyEscape(name)}\t`;
  }

  row(values: readonly string[], quality: number, line: number, raw: string): void {
    let s = '';
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (i > 0) s += '\t';
      s += v === '' ? '\\N' : copyEscape(v);
    }
    this.lines.push(this.withOrigin ? `${s}\t${quality}${this.fileField}${line}\t${copyEscape(raw)}\n` : `${s}\n`);
  }

  async flush(): Promise<void> {
    if (this.lines.length === 0) return;
    const lines = this.lines;
    this.lines = [];
    await this.onLines(lines);
  }
}

/** A staged line's key and last four fields (see STAGING_TAIL): how the isolation path names a refused row. */
export function stagedOrigin(line: string, keyIndex: number): { key: string; quality: number; file: string; line: number; raw: string | null } {
  const c3 = line.lastIndexOf('\t');
  const c2 = line.lastIndexOf('\t', c3 - 1);
  const c1 = line.lastIndexOf('\t', c2 - 1);
  const c0 = line.lastIndexOf('\t', c1 - 1);
  return {
    key: copyUnescape(line.split('\t', keyIndex + 1)[keyIndex]!) ?? '',
    quality: Number(line.slice(c0 + 1, c1)),
    file: copyUnescape(line.slice(c1 + 1, c2)) ?? '',
    line: Number(line.slice(c2 + 1, c3)),
    raw: copyUnescape(line.slice(c3 + 1)),
  };
}

/**
 * Streams `produce`'s chunks into `COPY ... FROM STDIN` with back-pressure; fails with the server's
 * error. `counted`, when given, hears how many rows the server stored (a BEFORE INSERT trigger may skip
 * rows without an error).
 */
export async function copyInto<T>(
  client: pg.PoolClient,
  sql: string,
  produce: (write: (chunk: string | Buffer) => Promise<void>) => Promise<T>,
  counted?: (rows: number) => void,
): Promise<T> {
  const stream = client.query(copyFrom(sql));
  let failure: Error | undefined;
  const done = new Promise<void>((resolve, reject) => {
    stream.on('finish', resolve);
    stream.on('error', (err: Error) => {
      failure = err;
      reject(err);
    });
  });
  done.catch(() => undefined);
  const write = async (chunk: string | Buffer): Promise<void> => {
    if (failure) throw failure;
    if (!stream.write(chunk)) await Promise.race([once(stream, 'drain'), done]);
    // The stream's error handler may have set it during the await; TypeScript's narrowing cannot see that.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition, @typescript-eslint/only-throw-error
    if (failure) throw failure;
  };
  let result: T;
  try {
    result = await produce(write);
  } catch (err) {
    if (!failure) stream.destroy(err as Error); // sends CopyFail so the server aborts the COPY
    await done.catch(() => undefined);
    throw failure ?? err;
  }
  stream.end();
  await done;
  counted?.(stream.rowCount);
  return result;
}
