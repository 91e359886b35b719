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
import { IDENTIFIER_PATTERN, TRIM_CHARACTERS } from '../contract/schema.js';
import type { FileEntry } from '../checkpoint/checkpoint.js';
import { copyEscape } from '../sink/copy-text.js';
import { splitCsvLine } from './csv-line.js';
import { EventIdSet } from './event-id-set.js';
import { filePath } from './source.js';
import { EcomstreamError } from '../errors.js';
import { EVENTS, renderDetail, type CompiledContract, type RowRules } from './validate.js';
import { emptyScanStats, type RejectRecord, type RowMode, type ScanStats } from '../sink/postgres.js';

export type { RejectRecord, ScanStats } from '../sink/postgres.js';

/**
 * A file changed while it was being read (or since it was planned): what was read is not a version of
 * the file, so the batch must not commit it. The engine waits for the file to settle and reads it again.
 */
export class FileChangedError extends EcomstreamError {
  constructor(
    readonly entry: FileEntry,
    readonly now: { size: number; mtimeMs: number },
    when: string,
  ) {
    super(
      `${entry.name} changed ${when} (${entry.size} -> ${now.size} bytes, mtime ${new Date(entry.mtimeMs).toISOString()} -> ${new Date(now.mtimeMs).toISOString()})`,
      {
        code: 'FILE_CHANGED',
        file: entry.name,
      },
    );
  }
}

export interface ScanOptions {
  inputDir: string;
  files: readonly FileEntry[];
  rules: RowRules;
  /** The feed's contract, compiled; the event contract when omitted. */
  contract?: CompiledContract;
  /**
   * `direct`: the contract's columns of its table. `staging`: the same plus the row's quality score, source
   * file, line number and raw line, for the fallback that must report which rows were duplicates.
   */
  mode: RowMode;
  onValid(chunk: string): Promise<void> | void;
  onReject(r: RejectRecord): void;
  /** Chunk size for reading files (bytes). */
  readSize?: number;
  /** Memory for the in-batch key set (src/engine/event-id-set.ts); unbounded when omitted. */
  keySetBytes?: number;
}

/**
 * 256 KiB: a chunk's strings (its text, lines, fields, COPY lines) die young. At 1 MiB more of them
 * outlived a scavenge, and the old generation, so peak memory, grew by ~30 MB, for no gain in speed.
 */
const READ_SIZE = 1 << 18;
const IDENTIFIER = new RegExp(IDENTIFIER_PATTERN);
const TRIM_SET = `[${TRIM_CHARACTERS.replace(/[\\\]^-]/g, '\\$&')}]`;
const TRIM = new RegExp(`^${TRIM_SET}+|${TRIM_SET}+$`, 'g');

/** SEMANTICS.trim: the contract's trim characters, not String#trim (whose set is the engine's business). */
export function trimField(s: string): string {
  return s.replace(TRIM, '');
}

/** SEMANTICS.raw: NUL -> U+FFFD, clipped to maxRawChars code points. */
function clipRaw(raw: string, maxChars: number): string {
  const clean = raw.includes('\0') ? raw.replace(/\0/g, '\uFFFD') : raw;
  if (clean.length <= maxChars) return clean;
  const cps = Array.from(clean);
  return cps.length > maxChars ? `${cps.slice(0, maxChars).join('')}…` : clean;
}

type HeaderVerdict = 'ok' | 'missing' | 'bad';

/** The first line: the contract header, a header of other columns, or already data (no header). */
export function classifyHeader(line: string, expected = EVENTS.header): HeaderVerdict {
  if (line === expected) return 'ok';
  const split = splitCsvLine(line);
  if (split.ok && split.fields.map(trimField).join(',') === expected) return 'ok';
  if (split.ok && split.fields.every((f) => IDENTIFIER.test(trimField(f)))) return 'bad';
  return 'missing';
}

export async function scanBatch(opts: ScanOptions): Promise<ScanStats> {
  const stats = emptyScanStats();
  const ids = new EventIdSet(opts.keySetBytes);
  for (const file of opts.files) await scanFile(file, ids, stats, opts);
  stats.uncheckedKeys = ids.unchecked;
  stats.keySetPeakBytes = ids.peakBytes;
  return stats;
}

async function scanFile(file: FileEntry, ids: EventIdSet, stats: ScanStats, opts: ScanOptions): Promise<void> {
  const name = file.name;
  const staging = opts.mode === 'staging';
  const contract = opts.contract ?? EVENTS;
  const { reader, limits } = contract.spec;
  const expected = contract.header;
  const keyName = contract.columnNames[contract.keyIndex]!;
  const maxLineBytes = limits.maxLineBytes;
  const maxRaw = limits.maxRawChars;
  const notice = (reason: string, detail: string): void => {
    stats.notices++;
    opts.onReject({ file: name, line: 0, raw: null, reason, detail });
  };
  const reject = (line: number, raw: string, reason: string, detail: string): void => {
    if (reason === reader.duplicate.reason) stats.duplicateRows++;
    else stats.rejectedRows++;
    opts.onReject({ file: name, line, raw: clipRaw(raw, maxRaw), reason, detail });
  };

  if (file.notice) notice(file.notice.reason, file.notice.detail);
  if (file.read === false) return;

  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(filePath(opts.inputDir, file), 'r');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') notice(reader.fileMissing.reason, renderDetail(reader.fileMissing.notice, { file: name }));
    else notice(reader.fileUnreadable.reason, renderDetail(reader.fileUnreadable.detailOpen, { file: name, error: code ?? (cause as Error).message }));
    return;
  }
  let opened: { size: number; mtimeMs: number };
  try {
    const st = await fh.stat();
    opened = { size: st.size, mtimeMs: st.mtimeMs };
  } catch (cause) {
    await fh.close().catch(() => undefined);
    notice(reader.fileUnreadable.reason, renderDetail(reader.fileUnreadable.detailStat, { file: name, error: (cause as Error).message }));
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
      header = classifyHeader(line, expected);
      if (header === 'ok') return;
      if (header === 'bad') {
        return notice(reader.badHeader.reason, renderDetail(reader.badHeader.notice, { header_json: JSON.stringify(line.slice(0, 300)), expected }));
      }
      notice(reader.missingHeader.reason, renderDetail(reader.missingHeader.notice, { expected }));
    }
    stats.inputRows++;
    if (header === 'bad') return reject(lineNo, line, reader.badHeader.reason, reader.badHeader.detail);
    const split = splitCsvLine(line);
    if (!split.ok) return reject(lineNo, line, reader.malformed.reason, renderDetail(reader.malformed.detailSplit[split.code], { column: split.column }));
    const res = contract.validateRow(split.fields, opts.rules);
    if (!res.ok) return reject(lineNo, line, res.reason, res.detail);
    if (!ids.add(res.key))
      return reject(lineNo, line, reader.duplicate.reason, renderDetail(reader.duplicate.detailInBatch, { column: keyName, value: res.key }));
    stats.validRows++;
    stats.qualitySum += res.quality;
    out.push(staging ? `${res.copyLine}\t${res.quality}${sameFileOut}${lineNo}\t${copyEscape(clipRaw(line, maxRaw))}\n` : `${res.copyLine}\n`);
  };

  /** A line that is not valid UTF-8 or has a NUL byte: rejected on its own. */
  const handleBadBytes = (bytes: Buffer): void => {
    const text = bytes.toString('utf8');
    lineNo++;
    stats.inputRows++;
    header ??= 'missing'; // a first line we cannot decode is not a header
    const nul = bytes.indexOf(0);
    const enc = reader.invalidEncoding;
    reject(lineNo, text.replace(/\r$/, ''), enc.reason, nul !== -1 ? renderDetail(enc.detailNul, { byte: nul + 1 }) : enc.detailUtf8);
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
        // One line fills the whole buffer: grow, up to the contract's maxLineBytes.
        if (buf.length >= maxLineBytes) {
          lineNo++;
          stats.inputRows++;
          header ??= 'missing';
          reject(lineNo, buf.toString('utf8', 0, 200), reader.malformed.reason, renderDetail(reader.malformed.detailTooLong, { max: maxLineBytes }));
          filled = 0;
          skippingOverlong = true;
        } else {
          const bigger = Buffer.allocUnsafe(Math.min(buf.length * 2, maxLineBytes));
          buf.copy(bigger, 0, 0, filled);
          buf = bigger;
        }
      }
      let bytesRead: number;
      try {
        ({ bytesRead } = await fh.read(buf, filled, buf.length - filled, null));
      } catch (cause) {
        // A read error mid-file (e.g. EIO): what was read stands; the rest is recorded as unreadable.
        notice(reader.fileUnreadable.reason, renderDetail(reader.fileUnreadable.detailRead, { file: name, line: lineNo, error: (cause as Error).message }));
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
    if (st.size !== opened.size || st.mtimeMs !== opened.mtimeMs)
      throw new FileChangedError(file, { size: st.size, mtimeMs: st.mtimeMs }, 'while it was being read');
  } finally {
    await fh.close().catch(() => undefined);
  }
  await flush();
  if (stats.inputRows === rowsBefore && header !== 'bad') {
    const e = reader.emptyFile;
    notice(e.reason, renderDetail(file.size === 0 ? e.noticeZeroBytes : e.noticeNoRows, { file: name }));
  }
}
