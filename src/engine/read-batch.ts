/**
 * Reads the files of one micro-batch and sorts every line into valid rows (COPY text, streamed in
 * chunks with back-pressure) or reject records. Bad input is data: nothing here throws for a bad file.
 *
 * Files are read in fixed-size chunks, so memory stays flat however large a file is. A chunk's complete
 * lines are decoded at once when they are valid UTF-8 without NUL bytes (the common case); otherwise
 * line by line, so one bad byte rejects one line.
 */
import fsp from 'node:fs/promises';
import { isUtf8 } from 'node:buffer';
import { COLUMN_NAMES, type Reason } from '../contract/event.js';
import type { FileEntry } from '../checkpoint/checkpoint.js';
import { splitCsvLine } from './csv-line.js';
import { EventIdSet } from './event-id-set.js';
import { filePath } from './source.js';
import { EcomstreamError } from '../errors.js';
import { copyEscape } from '../sink/copy-text.js';
import { validateRow, type RowRules } from './validate.js';

export interface RejectRecord {
  file: string;
  /** 1-based line number; 0 for a file-level notice. */
  line: number;
  raw: string | null;
  reason: Reason;
  detail: string;
}

/**
 * A file changed while it was being read (or since it was planned): what was read is not a version of
 * the file, so the batch must not commit it. The engine waits for the file to settle and reads it again.
 */
export class FileChangedError extends EcomstreamError {
  constructor(readonly entry: FileEntry, readonly now: { size: number; mtimeMs: number }, when: string) {
    super(`${entry.name} changed ${when} (${entry.size} -> ${now.size} bytes, mtime ${new Date(entry.mtimeMs).toISOString()} -> ${new Date(now.mtimeMs).toISOString()})`, {
      code: 'FILE_CHANGED',
      file: entry.name,
    });
  }
}

export interface ScanStats {
  /** Data lines read (header and blank lines excluded). */
  inputRows: number;
  validRows: number;
  /** Rule violations and malformed lines (not duplicates, not file notices). */
  rejectedRows: number;
  duplicateRows: number;
  notices: number;
  qualitySum: number;
  bytes: number;
}

export interface ScanOptions {
  inputDir: string;
  files: readonly FileEntry[];
  rules: RowRules;
  /**
   * `direct`: the 10 columns of user_events. `staging`: the same plus source file, line number and raw
   * line, for the ON CONFLICT fallback that must report which rows were duplicates.
   */
  mode: 'direct' | 'staging';
  onValid(chunk: string): Promise<void> | void;
  onReject(r: RejectRecord): void;
  /** Chunk size for reading files (bytes). */
  readSize?: number;
}

const READ_SIZE = 1 << 20;
/** A line longer than this is rejected whole instead of growing the buffer without bound. */
export const MAX_LINE_BYTES = 16 << 20;
/** Raw lines are stored up to this many characters in rejected_events. */
const MAX_RAW_CHARS = 65_536;
const EXPECTED_HEADER = COLUMN_NAMES.join(',');
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_ .-]*$/;

function clipRaw(raw: string): string {
  const clean = raw.indexOf('\0') === -1 ? raw : raw.replace(/\0/g, '\uFFFD');
  return clean.length > MAX_RAW_CHARS ? `${clean.slice(0, MAX_RAW_CHARS)}…` : clean;
}

type HeaderVerdict = 'ok' | 'missing' | 'bad';

/** The first line: the contract header, a header of other columns, or already data (no header). */
export function classifyHeader(line: string): HeaderVerdict {
  if (line === EXPECTED_HEADER) return 'ok';
  const split = splitCsvLine(line);
  if (split.ok && split.fields.map((f) => f.trim()).join(',') === EXPECTED_HEADER) return 'ok';
  if (split.ok && split.fields.every((f) => IDENTIFIER.test(f.trim()))) return 'bad';
  return 'missing';
}

export async function scanBatch(opts: ScanOptions): Promise<ScanStats> {
  const stats: ScanStats = { inputRows: 0, validRows: 0, rejectedRows: 0, duplicateRows: 0, notices: 0, qualitySum: 0, bytes: 0 };
  const ids = new EventIdSet();
  for (const file of opts.files) await scanFile(file, ids, stats, opts);
  return stats;
}

async function scanFile(file: FileEntry, ids: EventIdSet, stats: ScanStats, opts: ScanOptions): Promise<void> {
  const name = file.name;
  const staging = opts.mode === 'staging';
  const notice = (reason: Reason, detail: string): void => {
    stats.notices++;
    opts.onReject({ file: name, line: 0, raw: null, reason, detail });
  };
  const reject = (line: number, raw: string, reason: Reason, detail: string): void => {
    if (reason === 'duplicate_event_id') stats.duplicateRows++;
    else stats.rejectedRows++;
    opts.onReject({ file: name, line, raw: clipRaw(raw), reason, detail });
  };

  if (file.notice) notice(file.notice.reason, file.notice.detail);
  if (file.read === false) return;

  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(filePath(opts.inputDir, file), 'r');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') notice('file_missing', `${name} vanished before it was read`);
    else notice('file_unreadable', `${name} could not be opened: ${code ?? (cause as Error).message}`);
    return;
  }
  let opened: { size: number; mtimeMs: number };
  try {
    const st = await fh.stat();
    opened = { size: st.size, mtimeMs: st.mtimeMs };
  } catch (cause) {
    await fh.close().catch(() => undefined);
    notice('file_unreadable', `${name} could not be examined: ${(cause as Error).message}`);
    return;
  }
  if (file.size >= 0 && (opened.size !== file.size || opened.mtimeMs !== file.mtimeMs)) {
    await fh.close().catch(() => undefined);
    throw new FileChangedError(file, opened, 'after it was planned');
  }

  let header: HeaderVerdict | undefined;
  let lineNo = 0;
  const rowsBefore = stats.inputRows;
  let out: string[] = [];
  const sameFileOut = staging ? `\t${copyEscape(name)}\t` : '';

  const handleLine = (line: string): void => {
    lineNo++;
    if (line.length !== 0 && line.charCodeAt(line.length - 1) === 13) line = line.slice(0, -1);
    // A BOM the byte-level check missed (the first read ended before any newline) — strip it before the
    // blank-line check, or a BOM-only file reads as one empty data row.
    if (lineNo === 1 && line.charCodeAt(0) === 0xfeff) line = line.slice(1);
    if (line.length === 0) return; // blank lines are not rows
    if (header === undefined) {
      header = classifyHeader(line);
      if (header === 'ok') return;
      if (header === 'bad') return void notice('bad_header', `header ${JSON.stringify(line.slice(0, 300))} does not match ${EXPECTED_HEADER}; every row of the file is rejected`);
      notice('missing_header', `first line is data, not the header ${EXPECTED_HEADER}; rows are read as data`);
    }
    stats.inputRows++;
    if (header === 'bad') return reject(lineNo, line, 'bad_header', 'the file header does not match the contract');
    const split = splitCsvLine(line);
    if (!split.ok) return reject(lineNo, line, 'malformed_csv', split.error);
    const res = validateRow(split.fields, opts.rules);
    if (!res.ok) return reject(lineNo, line, res.reason, res.detail);
    if (!ids.add(res.eventId)) return reject(lineNo, line, 'duplicate_event_id', `event_id ${res.eventId} appears earlier in this batch`);
    stats.validRows++;
    stats.qualitySum += res.quality;
    out.push(staging ? `${res.copyLine}${sameFileOut}${lineNo}\t${copyEscape(clipRaw(line))}\n` : `${res.copyLine}\n`);
  };

  /** A line that is not valid UTF-8 or has a NUL byte: rejected on its own. */
  const handleBadBytes = (bytes: Buffer): void => {
    const text = bytes.toString('utf8');
    lineNo++;
    stats.inputRows++;
    if (header === undefined) header = 'missing'; // a first line we cannot decode is not a header
    const nul = bytes.indexOf(0);
    reject(lineNo, text.replace(/\r$/, ''), 'invalid_encoding', nul !== -1 ? `NUL byte at byte ${nul + 1} of the line` : 'the line is not valid UTF-8');
  };

  const flush = async (): Promise<void> => {
    if (out.length === 0) return;
    const chunk = out.join('');
    out = [];
    await opts.onValid(chunk);
  };

  try {
    let buf = Buffer.allocUnsafe(opts.readSize ?? READ_SIZE);
    let filled = 0; // bytes in buf not yet consumed
    let first = true;
    let eof = false;
    let skippingOverlong = false;
    let readFailed = false;
    while (!eof) {
      if (filled === buf.length) {
        // One line fills the whole buffer: grow, up to MAX_LINE_BYTES.
        if (buf.length >= MAX_LINE_BYTES) {
          lineNo++;
          stats.inputRows++;
          if (header === undefined) header = 'missing';
          reject(lineNo, buf.toString('utf8', 0, 200), 'malformed_csv', `line longer than ${MAX_LINE_BYTES} bytes`);
          filled = 0;
          skippingOverlong = true;
        } else {
          const bigger = Buffer.allocUnsafe(buf.length * 2);
          buf.copy(bigger, 0, 0, filled);
          buf = bigger;
        }
      }
      let bytesRead: number;
      try {
        ({ bytesRead } = await fh.read(buf, filled, buf.length - filled, null));
      } catch (cause) {
        // A read error mid-file (e.g. EIO): what was read stands; the rest is recorded as unreadable.
        notice('file_unreadable', `${name}: read failed after line ${lineNo}: ${(cause as Error).message}`);
        readFailed = true;
        break;
      }
      stats.bytes += bytesRead;
      if (bytesRead === 0) eof = true;
      let end = filled + bytesRead;
      let start = 0;
      if (first && end >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) start = 3; // BOM
      if (first && end > 0) first = false;
      if (skippingOverlong) {
        const nl = buf.indexOf(10, 0);
        if (nl === -1 || nl >= end) {
          filled = 0;
          continue;
        }
        start = nl + 1;
        skippingOverlong = false;
      }
      // Complete lines end at the last newline; at EOF the rest is a last line without one.
      let lastNl = buf.lastIndexOf(10, end - 1);
      if (lastNl < start) lastNl = -1;
      const completeEnd = eof ? end : lastNl + 1;
      if (completeEnd > start) {
        const region = buf.subarray(start, completeEnd);
        if (isUtf8(region) && region.indexOf(0) === -1) {
          const text = region.toString('utf8');
          let pos = 0;
          for (;;) {
            const nl = text.indexOf('\n', pos);
            if (nl === -1) {
              if (pos < text.length) handleLine(text.slice(pos));
              break;
            }
            handleLine(text.slice(pos, nl));
            pos = nl + 1;
          }
        } else {
          let pos = start;
          while (pos < completeEnd) {
            let nl = buf.indexOf(10, pos);
            if (nl === -1 || nl >= completeEnd) nl = completeEnd;
            const lineBytes = buf.subarray(pos, nl);
            if (isUtf8(lineBytes) && lineBytes.indexOf(0) === -1) handleLine(lineBytes.toString('utf8'));
            else handleBadBytes(lineBytes);
            pos = nl + 1;
          }
        }
      }
      // Keep the incomplete tail for the next read.
      const rest = end - completeEnd;
      if (rest > 0 && completeEnd > 0) buf.copy(buf, 0, completeEnd, end);
      filled = rest;
      end = rest;
      await flush();
    }
    // Read to the end: unchanged since the open, or what was read is no version of the file.
    const st = readFailed ? opened : await fh.stat();
    if (st.size !== opened.size || st.mtimeMs !== opened.mtimeMs) throw new FileChangedError(file, { size: st.size, mtimeMs: st.mtimeMs }, 'while it was being read');
  } finally {
    await fh.close().catch(() => undefined);
  }
  await flush();
  if (stats.inputRows === rowsBefore && header !== 'bad') {
    notice('empty_file', file.size === 0 ? `${name} is empty (0 bytes)` : `${name} has no data rows`);
  }
}
