/**
 * Reads the files of one micro-batch and sorts every line into valid rows (handed, value by value, to
 * the encoder the sink supplies, flushed per chunk with back-pressure) or reject records: the sink's
 * BatchSource port (src/sink/port.ts). Bad input is data: nothing here throws for a bad file.
 *
 * Files are read in fixed-size chunks, so memory stays flat however large a file is. A chunk's complete
 * lines are decoded at once when they are valid UTF-8 without NUL bytes (the common case); otherwise
 * line by line, so one bad byte rejects one line.
 */
import fsp from 'node:fs/promises';
import { isUtf8 } from 'node:buffer';
import { IDENTIFIER_PATTERN, TRIM_CHARACTERS } from '../contract/schema.js';
import type { FileEntry } from '../checkpoint/checkpoint.js';
import { renderDetail } from '../contract/detail.js';
import { emptyReadStats, type ReadStats, type RejectRecord } from '../contract/records.js';
import type { BatchSource, RowEncoder } from '../sink/port.js';
import { splitCsvLine } from './csv-line.js';
import { EventIdSet } from './event-id-set.js';
import { filePath } from './source.js';
import { EcomstreamError } from '../errors.js';
import { EVENTS, type CompiledContract, type RowRules } from './validate.js';

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

export interface ReadOptions {
  inputDir: string;
  files: readonly FileEntry[];
  rules: RowRules;
  /** The feed's contract, compiled; the event contract when omitted. */
  contract?: CompiledContract;
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

/** The batch's files as the sink's BatchSource: each read starts again from the first file. */
export function batchSource(opts: ReadOptions): BatchSource {
  return { read: (rows, onReject) => readBatch(opts, rows, onReject) };
}

/** Reads every file of the batch once: valid rows to `rows`, rejects and file notices to `onReject`. */
export async function readBatch(opts: ReadOptions, rows: RowEncoder, onReject: (r: RejectRecord) => void): Promise<ReadStats> {
  const stats = emptyReadStats();
  const ids = new EventIdSet(opts.keySetBytes);
  for (const file of opts.files) {
    const reader = new FileLines(file, opts.contract ?? EVENTS, opts.rules, { stats, ids, rows, onReject });
    await readFile(file, opts, reader);
  }
  stats.uncheckedKeys = ids.unchecked;
  stats.keySetPeakBytes = ids.peakBytes;
  return stats;
}

/** Opens the planned file and reads it to the end through `reader`; a missing or unreadable file is a notice. */
async function readFile(file: FileEntry, opts: ReadOptions, reader: FileLines): Promise<void> {
  const { reader: r } = reader.contract.spec;
  if (file.notice) reader.notice(file.notice.reason, file.notice.detail);
  if (file.read === false) return;
  const name = file.name;
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(filePath(opts.inputDir, file), 'r');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') reader.notice(r.fileMissing.reason, renderDetail(r.fileMissing.notice, { file: name }));
    else reader.notice(r.fileUnreadable.reason, renderDetail(r.fileUnreadable.detailOpen, { file: name, error: code ?? (cause as Error).message }));
    return;
  }
  try {
    let opened: { size: number; mtimeMs: number };
    try {
      const st = await fh.stat();
      opened = { size: st.size, mtimeMs: st.mtimeMs };
    } catch (cause) {
      reader.notice(r.fileUnreadable.reason, renderDetail(r.fileUnreadable.detailStat, { file: name, error: (cause as Error).message }));
      return;
    }
    if (file.size >= 0 && (opened.size !== file.size || opened.mtimeMs !== file.mtimeMs)) throw new FileChangedError(file, opened, 'after it was planned');
    const readFailed = await readLines(fh, opts.readSize ?? READ_SIZE, reader);
    // Read to the end: unchanged since the open, or what was read is no version of the file.
    const st = readFailed ? opened : await fh.stat();
    if (st.size !== opened.size || st.mtimeMs !== opened.mtimeMs)
      throw new FileChangedError(file, { size: st.size, mtimeMs: st.mtimeMs }, 'while it was being read');
  } finally {
    await fh.close().catch(() => undefined);
  }
  await reader.end();
}

/** Where a file's lines go: the batch's stats, key set, encoder and reject callback. */
interface BatchSinks {
  stats: ReadStats;
  ids: EventIdSet;
  rows: RowEncoder;
  onReject(r: RejectRecord): void;
}

/** One file's lines, judged in order: the header, then each row against the contract. */
class FileLines {
  private header: HeaderVerdict | undefined;
  private lineNo = 0;
  private readonly rowsBefore: number;
  private readonly keyName: string;

  constructor(
    private readonly file: FileEntry,
    readonly contract: CompiledContract,
    private readonly rules: RowRules,
    private readonly to: BatchSinks,
  ) {
    this.rowsBefore = to.stats.inputRows;
    this.keyName = contract.columnNames[contract.keyIndex]!;
    to.rows.file(file.name);
  }

  get maxLineBytes(): number {
    return this.contract.spec.limits.maxLineBytes;
  }

  notice(reason: string, detail: string): void {
    this.to.stats.notices++;
    this.to.onReject({ file: this.file.name, line: 0, raw: null, reason, detail });
  }

  private reject(raw: string, reason: string, detail: string): void {
    if (reason === this.contract.spec.reader.duplicate.reason) this.to.stats.duplicateRows++;
    else this.to.stats.rejectedRows++;
    this.to.onReject({ file: this.file.name, line: this.lineNo, raw: clipRaw(raw, this.contract.spec.limits.maxRawChars), reason, detail });
  }

  /** A decoded line, without its LF. */
  line(text: string): void {
    const { reader } = this.contract.spec;
    let line = text;
    this.lineNo++;
    if (line.length !== 0 && line.charCodeAt(line.length - 1) === 13) line = line.slice(0, -1);
    // A BOM the byte-level check missed (the first read ended before any newline) — strip it before the
    // blank-line check, or a BOM-only file reads as one empty data row.
    if (this.lineNo === 1 && line.charCodeAt(0) === 0xfeff) line = line.slice(1);
    if (line.length === 0) return; // blank lines are not rows
    if (this.header === undefined && this.firstLine(line)) return;
    this.to.stats.inputRows++;
    if (this.header === 'bad') return this.reject(line, reader.badHeader.reason, reader.badHeader.detail);
    const split = splitCsvLine(line);
    if (!split.ok) return this.reject(line, reader.malformed.reason, renderDetail(reader.malformed.detailSplit[split.code], { column: split.column }));
    const res = this.contract.validateRow(split.fields, this.rules);
    if (!res.ok) return this.reject(line, res.reason, res.detail);
    if (!this.to.ids.add(res.key))
      return this.reject(line, reader.duplicate.reason, renderDetail(reader.duplicate.detailInBatch, { column: this.keyName, value: res.key }));
    this.to.stats.validRows++;
    this.to.stats.qualitySum += res.quality;
    const rows = this.to.rows;
    if (rows.withOrigin) rows.row(res.values, res.quality, this.lineNo, clipRaw(line, this.contract.spec.limits.maxRawChars));
    else rows.row(res.values, res.quality, 0, '');
  }

  /** Classifies the first non-empty line; true when it is a header (not a row). */
  private firstLine(line: string): boolean {
    const { reader } = this.contract.spec;
    const expected = this.contract.header;
    this.header = classifyHeader(line, expected);
    if (this.header === 'ok') return true;
    if (this.header === 'bad') {
      this.notice(reader.badHeader.reason, renderDetail(reader.badHeader.notice, { header_json: JSON.stringify(line.slice(0, 300)), expected }));
      return true;
    }
    this.notice(reader.missingHeader.reason, renderDetail(reader.missingHeader.notice, { expected }));
    return false;
  }

  /** A line that is not valid UTF-8 or has a NUL byte: rejected on its own. */
  badBytes(bytes: Buffer): void {
    const enc = this.contract.spec.reader.invalidEncoding;
    this.lineNo++;
    this.to.stats.inputRows++;
    this.header ??= 'missing'; // a first line we cannot decode is not a header
    const nul = bytes.indexOf(0);
    this.reject(bytes.toString('utf8').replace(/\r$/, ''), enc.reason, nul !== -1 ? renderDetail(enc.detailNul, { byte: nul + 1 }) : enc.detailUtf8);
  }

  /** A line of maxLineBytes or more: rejected whole, `head` its first bytes. */
  tooLong(head: string): void {
    const m = this.contract.spec.reader.malformed;
    this.lineNo++;
    this.to.stats.inputRows++;
    this.header ??= 'missing';
    this.reject(head, m.reason, renderDetail(m.detailTooLong, { max: this.maxLineBytes }));
  }

  /** A read error mid-file (e.g. EIO): what was read stands; the rest is recorded as unreadable. */
  readFailed(cause: unknown): void {
    const u = this.contract.spec.reader.fileUnreadable;
    this.notice(u.reason, renderDetail(u.detailRead, { file: this.file.name, line: this.lineNo, error: (cause as Error).message }));
  }

  bytesRead(n: number): void {
    this.to.stats.bytes += n;
  }

  /** The end of a chunk: the sink takes the rows (and may make the reader wait). */
  flush(): Promise<void> {
    return this.to.rows.flush();
  }

  /** The end of the file: rows passed on, and a file without data rows noted. */
  async end(): Promise<void> {
    await this.flush();
    if (this.to.stats.inputRows === this.rowsBefore && this.header !== 'bad') {
      const e = this.contract.spec.reader.emptyFile;
      this.notice(e.reason, renderDetail(this.file.size === 0 ? e.noticeZeroBytes : e.noticeNoRows, { file: this.file.name }));
    }
  }
}

/**
 * Reads `fh` in chunks of `readSize` bytes and hands `to` each complete line; returns true when a read
 * failed mid-file. A chunk's complete lines are decoded at once when they are valid UTF-8 without NUL
 * bytes, else line by line. The buffer grows for a long line up to maxLineBytes.
 */
async function readLines(fh: fsp.FileHandle, readSize: number, to: FileLines): Promise<boolean> {
  const maxLineBytes = to.maxLineBytes;
  let buf = Buffer.allocUnsafe(readSize);
  let filled = 0; // bytes in buf not yet consumed
  let first = true;
  let eof = false;
  let skippingOverlong = false;
  while (!eof) {
    if (filled === buf.length) {
      // One line fills the whole buffer: grow, up to the contract's maxLineBytes.
      if (buf.length >= maxLineBytes) {
        to.tooLong(buf.toString('utf8', 0, 200));
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
      to.readFailed(cause);
      return true;
    }
    to.bytesRead(bytesRead);
    if (bytesRead === 0) eof = true;
    const end = filled + bytesRead;
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
    if (completeEnd > start) splitLines(buf, start, completeEnd, to);
    // Keep the incomplete tail for the next read.
    const rest = end - completeEnd;
    if (rest > 0 && completeEnd > 0) buf.copy(buf, 0, completeEnd, end);
    filled = rest;
    await to.flush();
  }
  return false;
}

/** Hands `to` the lines of buf[start, end) (the last may lack its LF). */
function splitLines(buf: Buffer, start: number, end: number, to: FileLines): void {
  const region = buf.subarray(start, end);
  if (isUtf8(region) && region.indexOf(0) === -1) {
    const text = region.toString('utf8');
    let pos = 0;
    for (;;) {
      const nl = text.indexOf('\n', pos);
      if (nl === -1) {
        if (pos < text.length) to.line(text.slice(pos));
        break;
      }
      to.line(text.slice(pos, nl));
      pos = nl + 1;
    }
    return;
  }
  let pos = start;
  while (pos < end) {
    let nl = buf.indexOf(10, pos);
    if (nl === -1 || nl >= end) nl = end;
    const lineBytes = buf.subarray(pos, nl);
    if (isUtf8(lineBytes) && lineBytes.indexOf(0) === -1) to.line(lineBytes.toString('utf8'));
    else to.badBytes(lineBytes);
    pos = nl + 1;
  }
}
