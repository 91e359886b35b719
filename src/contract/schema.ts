/**
 * The shape of a feed contract: the data both engines execute. A contract names its columns (SQL type,
 * length or precision, required or optional, allowed values), its target table and conflict key, the
 * ordered checks with their reason codes and detail templates, the file-level notices, the limits and the
 * quality weights. `SEMANTICS` defines, once and in words, how each kind of value is parsed and
 * normalised; src/engine/validate.ts and spark/ecomstream_spark/rows.py each implement those words.
 *
 * The event contract (src/contract/event.ts) is the default; `--contract FILE` reads another one in the
 * JSON form that `contractJson()` writes (spark/event_contract.json is the event contract's).
 */
import fs from 'node:fs';
import { FENCING, type Fencing } from '../db/epoch.js';
import { RETRYABLE_SQLSTATES, type RetryableSqlstates } from '../db/sqlstates.js';
import { EcomstreamError } from '../errors.js';
import { BATCH_QUALITY, PUBLISHED, type BatchQuality, type Published } from './batch.js';

/**
 * 3: the splitter's, the unreadable file's and the engine-only reasons' details are templates too.
 * 4: `retryableSqlstates`, the database errors worth a retry (src/db/sqlstates.ts).
 * 5: `fencing`, the statements of the epoch that keeps one writer per stream (src/db/epoch.ts).
 * 6: `published` and `batchQuality`, the published-file rule and the batch quality score (src/contract/batch.ts).
 */
export const CONTRACT_VERSION = 6;

export type SqlType = 'varchar' | 'decimal' | 'timestamp';

export interface ColumnSpec {
  readonly name: string;
  readonly type: SqlType;
  readonly required: boolean;
  /** VARCHAR(length): longer values (in code points) are rejected rather than failing the COPY. */
  readonly length?: number;
  /** DECIMAL(precision, scale). */
  readonly precision?: number;
  readonly scale?: number;
  /** The values the column may hold (compared exactly, case-sensitive, no trimming). */
  readonly allowed?: readonly string[];
}

/**
 * One row check, run in contract order; the first failure is the row's reason. Checks that name a
 * column skip an empty optional value (an empty required value already failed `required`).
 *
 * Detail templates use `{name}` placeholders: {column}, {value} (as written), {value_json} (as a JSON
 * string literal, see SEMANTICS.json_string), {count}, {expected}, {length}, {max}, {allowed} (the
 * allowed values joined by ", "), {precision}, {scale}, {min}, {hours}, {batch_timestamp} (ISO-8601 with
 * milliseconds and Z), {pattern}.
 */
export type CheckSpec =
  | { readonly check: 'column_count'; readonly reason: string; readonly detail: string }
  | { readonly check: 'required'; readonly reason: string; readonly detail: string }
  | { readonly check: 'max_length'; readonly reason: string; readonly detail: string }
  | { readonly check: 'allowed'; readonly column: string; readonly reason: string; readonly detail: string }
  | { readonly check: 'pattern'; readonly column: string; readonly pattern: string; readonly reason: string; readonly detail: string }
  | { readonly check: 'decimal'; readonly column: string; readonly reason: string; readonly detail: string }
  | { readonly check: 'min'; readonly column: string; readonly min: number; readonly reason: string; readonly detail: string }
  | { readonly check: 'timestamp'; readonly column: string; readonly reason: string; readonly detail: string }
  | { readonly check: 'not_stale'; readonly column: string; readonly reason: string; readonly detail: string }
  | { readonly check: 'not_future'; readonly column: string; readonly reason: string; readonly detail: string };

export type CheckKind = CheckSpec['check'];

/**
 * Why the CSV splitter refused a line (src/engine/csv-line.ts, split_csv_line in
 * spark/ecomstream_spark/rows.py): an unterminated quoted field, a character after a closing quote, a
 * quote inside an unquoted field. Each has a detail template in `reader.malformed.detailSplit`.
 */
export const SPLIT_FAILURES = ['unterminated_quote', 'after_closing_quote', 'quote_in_unquoted'] as const;
export type SplitFailure = (typeof SPLIT_FAILURES)[number];

/** What the file listing found under a published name that it does not read (`engine.fileSkipped`). */
export const SKIP_KINDS = ['folder', 'fifo', 'socket', 'other', 'dangling_link', 'unexaminable'] as const;
export type SkipKind = (typeof SKIP_KINDS)[number];

/** Reasons the reader gives before the row checks, and the file-level notices (line number 0). */
export interface ReaderSpec {
  /** Not UTF-8, or a NUL byte. Details: {byte} is the 1-based byte offset of the NUL. */
  readonly invalidEncoding: { readonly reason: string; readonly detailNul: string; readonly detailUtf8: string };
  /**
   * Not one CSV record: the template for the splitter's failure ({column}, see SEMANTICS.csv), or longer
   * than `limits.maxLineBytes` ({max}).
   */
  readonly malformed: { readonly reason: string; readonly detailTooLong: string; readonly detailSplit: Readonly<Record<SplitFailure, string>> };
  /** A first line naming other columns: a notice ({header_json}, {expected}) and each row rejected. */
  readonly badHeader: { readonly reason: string; readonly notice: string; readonly detail: string };
  /** A first line that is data: a notice, and the rows are read. */
  readonly missingHeader: { readonly reason: string; readonly notice: string };
  /** No data rows: {file}. */
  readonly emptyFile: { readonly reason: string; readonly noticeZeroBytes: string; readonly noticeNoRows: string };
  readonly fileMissing: { readonly reason: string; readonly notice: string };
  /** {file}; {error} the system's error (its code when it has one); {line} the last line read before a read failed. */
  readonly fileUnreadable: { readonly reason: string; readonly detailOpen: string; readonly detailStat: string; readonly detailRead: string };
  /** A second row with the conflict key's value: in the batch ({value}), or already stored. */
  readonly duplicate: { readonly reason: string; readonly detailInBatch: string; readonly detailStored: string };
}

/**
 * Reasons given outside the reader: by the file listing (src/engine/source.ts) and by the database
 * (src/sink/postgres.ts). `typescriptOnly` marks a reason the Spark job cannot give (it has no file
 * listing of its own and writes no row PostgreSQL refuses), so no cross-engine comparison expects it.
 */
export interface EngineSpec {
  /** A processed file changed under its name: {file}, {size} (bytes), {mtime} (ISO-8601 with milliseconds and Z). */
  readonly fileModified: { readonly reason: string; readonly typescriptOnly: boolean; readonly detailReread: string; readonly detailNotReread: string };
  /** A published name that is no readable regular file, by what it is: {file}; {error} for `unexaminable`. */
  readonly fileSkipped: { readonly reason: string; readonly typescriptOnly: boolean; readonly detail: Readonly<Record<SkipKind, string>> };
  /** PostgreSQL refused a row that passed the contract: {error} is the server's message. */
  readonly refusedByDatabase: { readonly reason: string; readonly typescriptOnly: boolean; readonly detail: string };
}

export interface ContractSpec {
  /** A short name for logs and errors. */
  readonly name: string;
  /** The target table and the column that is unique in it (ON CONFLICT (key) DO NOTHING). */
  readonly table: string;
  readonly conflictKey: string;
  readonly columns: readonly ColumnSpec[];
  readonly checks: readonly CheckSpec[];
  readonly reader: ReaderSpec;
  readonly engine: EngineSpec;
  /** Every reason code the feed can give, with its meaning for operators. */
  readonly reasons: Readonly<Record<string, string>>;
  /** Reasons that are notices about a file, not rejected rows (recorded with line number 0). */
  readonly fileNoticeReasons: readonly string[];
  readonly limits: {
    /** A line of this many bytes or more (before its LF) is rejected whole. */
    readonly maxLineBytes: number;
    /** Raw lines are stored up to this many code points in rejected_events, then "…". */
    readonly maxRawChars: number;
    /** `not_stale`: an instant more than this before the batch timestamp is rejected. */
    readonly maxEventAgeHours: number;
    /** `not_future`: an instant more than this after the batch timestamp is rejected. */
    readonly futureToleranceSeconds: number;
  };
  /** Quality score of a valid row by its number of empty optional fields (index), the last for more. */
  readonly qualityWeights: readonly number[];
}

/**
 * The semantics both engines implement. Changing one means changing both evaluators and the golden
 * vectors (test/fixtures/contract/vectors.json) that pin it.
 */
export const SEMANTICS = {
  lines:
    'A file is split at LF (0x0A). One CR (0x0D) ending a line is removed. A UTF-8 BOM (EF BB BF) at the start of the file is removed. ' +
    'A line that is empty after this is not a row and has no reason. Line numbers count every line, from 1. The bytes after the last LF form a last line.',
  encoding:
    'A line must be valid UTF-8 (no overlong forms, no surrogates, no code point above U+10FFFF) without a NUL byte, else the reader reason invalidEncoding. A first line that fails this is not a header: the file has none, and no missing_header notice is written.',
  header:
    'The first non-empty line is the header if it equals the column names joined by ",", or if its CSV fields, each trimmed, do. It names other columns if it splits as CSV and every trimmed field matches identifierPattern: a bad_header notice, and every data row is rejected bad_header. Otherwise the file has no header (a missing_header notice) and the line is data.',
  trim: 'Trimming (header fields only; data values are never trimmed) removes, from both ends, the code points listed in trimCharacters.',
  csv:
    'A line is one RFC 4180 record: fields separated by ",", a field either unquoted (no " inside) or wholly quoted, with "" for a quote inside quotes. Quoted fields cannot span lines. Anything else is the reader reason malformed. ' +
    'Its detail is the detailSplit template of the first fault from the left, {column} the 1-based position in code points of: the opening quote, or the second quote of the last "" in the field (unterminated_quote); the character after the closing quote (after_closing_quote); the quote (quote_in_unquoted).',
  empty: 'An empty field is NULL. A required column may not be NULL.',
  length: 'VARCHAR(n) lengths count Unicode code points.',
  decimal:
    'Syntax: decimalPattern (ASCII digits only). The value is the exact decimal written (no binary floating point). It is rounded to the column scale, half away from zero (as PostgreSQL NUMERIC does); the rounded magnitude must be below 10^(precision-scale). `min` compares the value as written (before rounding). The text is stored as written; PostgreSQL rounds it the same way.',
  timestamp:
    'Syntax: timestampPattern. Year 0001-9999, month 01-12, day within the month (proleptic Gregorian, leap years by the 4/100/400 rule), hour 00-23, minute 00-59, second 00-59. ' +
    'Zone: none or Z is UTC; +HH:MM or +HHMM with HH <= 23 and MM <= 59. The instant is the wall time minus the offset; comparisons use it truncated to whole milliseconds. ' +
    'Stored: the UTC wall time as "YYYY-MM-DD HH:MM:SS" followed by the fraction exactly as written; with a non-zero offset the date and time are converted to UTC first (the fraction is unchanged). A converted date outside years 0001-9999 is invalid.',
  windows:
    'not_stale fails when instant < batch timestamp - maxEventAgeHours; not_future fails when instant > batch timestamp + futureToleranceSeconds. The batch timestamp is the one recorded in offsets/N.',
  duplicates:
    'Within a batch the first valid row (files in batch order, lines in file order) with a conflict-key value is kept; later ones get the duplicate reason. A value already in the table gets it too.',
  json_string:
    '{value_json}: the value in double quotes; " and \\ escaped with \\, U+0008 U+0009 U+000A U+000C U+000D as \\b \\t \\n \\f \\r, other code points below U+0020 as \\u00xx (lower-case hex); nothing else escaped.',
  numbers: 'Numbers in details are written as the shortest decimal that reads back as the same number, with no exponent and no trailing ".0" (24, 0.5).',
  raw: 'raw_line is the line after CR removal, NUL replaced by U+FFFD, clipped to maxRawChars code points followed by "…" when longer. An undecodable line is shown decoded with U+FFFD for each maximal invalid subsequence.',
  quality: 'A valid row scores qualityWeights[k] where k is its number of empty optional fields, or the last weight when k is larger.',
} as const;

/** Portable regular expressions (ASCII classes only: they mean the same in JavaScript and Python). */
export const DECIMAL_PATTERN = '^[+-]?(?:[0-9]+\\.?[0-9]*|\\.[0-9]+)(?:[eE][+-]?[0-9]+)?$';
export const TIMESTAMP_PATTERN = '^([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:?[0-9]{2})?$';
export const IDENTIFIER_PATTERN = '^[A-Za-z_][A-Za-z0-9_ .-]*$';
/** What header trimming removes: ECMAScript's WhiteSpace and LineTerminator code points. */
export const TRIM_CHARACTERS =
  '\t\n\u000b\u000c\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff';

/** The JSON both engines read: the contract plus the shared semantics and patterns. */
export interface ContractJson extends ContractSpec {
  readonly version: number;
  readonly header: string;
  readonly semantics: typeof SEMANTICS;
  readonly decimalPattern: string;
  readonly timestampPattern: string;
  readonly identifierPattern: string;
  readonly trimCharacters: string;
  /** The splitter's failure codes (SPLIT_FAILURES), for an evaluator to check its templates against. */
  readonly splitFailures: readonly SplitFailure[];
  /** The SQLSTATEs after which a database step is retried (src/db/sqlstates.ts): the Spark job's list. */
  readonly retryableSqlstates: RetryableSqlstates;
  /** The epoch's statements and names (src/db/epoch.ts): the Spark job fences its batches with them. */
  readonly fencing: Fencing;
  /** Which names in the landing folder are published files (src/contract/batch.ts). */
  readonly published: Published;
  /** How a batch's quality score is computed (src/contract/batch.ts). */
  readonly batchQuality: BatchQuality;
}

export function contractJson(spec: ContractSpec): ContractJson {
  return {
    version: CONTRACT_VERSION,
    header: spec.columns.map((c) => c.name).join(','),
    ...spec,
    semantics: SEMANTICS,
    decimalPattern: DECIMAL_PATTERN,
    timestampPattern: TIMESTAMP_PATTERN,
    identifierPattern: IDENTIFIER_PATTERN,
    trimCharacters: TRIM_CHARACTERS,
    splitFailures: SPLIT_FAILURES,
    retryableSqlstates: RETRYABLE_SQLSTATES,
    fencing: FENCING,
    published: PUBLISHED,
    batchQuality: BATCH_QUALITY,
  };
}

export class ContractError extends EcomstreamError {
  constructor(message: string, context: { file?: string; option?: string; cause?: unknown } = {}) {
    super(message, { ...context, code: 'CONTRACT_INVALID' });
  }
}

const SQL_NAME = /^[a-z_][a-z0-9_]*$/;

/** Checks what the evaluators rely on; throws ContractError naming the contract and the fault. */
export function checkContract(spec: ContractSpec, source: string): ContractSpec {
  const fail = (what: string): never => {
    throw new ContractError(`contract ${source}: ${what}`, { file: source });
  };
  if (!SQL_NAME.test(spec.table)) fail(`table ${JSON.stringify(spec.table)} is not a lower-case SQL name`);
  const names = new Set<string>();
  for (const c of spec.columns) {
    if (!SQL_NAME.test(c.name)) fail(`column ${JSON.stringify(c.name)} is not a lower-case SQL name`);
    if (names.has(c.name)) fail(`column ${c.name} appears twice`);
    names.add(c.name);
    if (c.type === 'varchar' && !(Number.isInteger(c.length) && c.length! > 0)) fail(`varchar column ${c.name} needs a positive length`);
    if (c.type === 'decimal' && !(Number.isInteger(c.precision) && Number.isInteger(c.scale) && c.scale! >= 0 && c.precision! >= Math.max(c.scale!, 1))) {
      fail(`decimal column ${c.name} needs precision >= scale >= 0 and precision >= 1, as PostgreSQL's DECIMAL(p,s)`);
    }
    if (!['varchar', 'decimal', 'timestamp'].includes(c.type)) fail(`column ${c.name} has unknown type ${JSON.stringify(c.type)}`);
  }
  if (!names.has(spec.conflictKey)) fail(`conflict key ${spec.conflictKey} is not a column`);
  const key = spec.columns.find((c) => c.name === spec.conflictKey)!;
  if (!key.required) fail(`conflict key ${spec.conflictKey} must be required`);
  const reasons = new Set(Object.keys(spec.reasons));
  // Down to eslint-enable, checks of what the types already promise: checkContract also vets contracts written
  // by hand (loadContractFile), which may lack any part.
  /* eslint-disable @typescript-eslint/no-unnecessary-condition */
  interface Section {
    reason: string;
  }
  const sections = [...(Object.values(spec.reader) as Section[]), ...(Object.values(spec.engine ?? fail('there is no engine section')) as Section[])];
  const used = [...spec.checks.map((c) => c.reason), ...sections.map((r) => r.reason), ...spec.fileNoticeReasons];
  for (const r of used) if (!reasons.has(r)) fail(`reason ${r} is used but not listed in reasons`);
  // Templates are read only when a line fails, so a missing one would surface mid-batch: refuse it here.
  const templates: [string, Readonly<Record<string, string>>, readonly string[]][] = [
    ['reader.malformed.detailSplit', spec.reader.malformed.detailSplit ?? {}, SPLIT_FAILURES],
    ['reader.fileUnreadable', spec.reader.fileUnreadable, ['detailOpen', 'detailStat', 'detailRead']],
    ['engine.fileModified', spec.engine.fileModified as unknown as Record<string, string>, ['detailReread', 'detailNotReread']],
    ['engine.fileSkipped.detail', spec.engine.fileSkipped?.detail ?? {}, SKIP_KINDS],
    ['engine.refusedByDatabase', spec.engine.refusedByDatabase as unknown as Record<string, string>, ['detail']],
  ];
  for (const [where, entry, keys] of templates) for (const k of keys) if (typeof entry?.[k] !== 'string') fail(`${where} has no ${k} template`);
  for (const [k, e] of Object.entries(spec.engine) as [string, { typescriptOnly?: unknown }][])
    if (typeof e.typescriptOnly !== 'boolean') fail(`engine.${k} needs typescriptOnly (true or false)`);
  /* eslint-enable @typescript-eslint/no-unnecessary-condition */
  for (const c of spec.checks) {
    if ('column' in c) {
      const col = spec.columns.find((x) => x.name === c.column);
      if (!col) fail(`check ${c.check} names unknown column ${c.column}`);
      const needs: Partial<Record<CheckKind, SqlType>> = {
        decimal: 'decimal',
        min: 'decimal',
        timestamp: 'timestamp',
        not_stale: 'timestamp',
        not_future: 'timestamp',
      };
      const t = needs[c.check];
      if (t && col!.type !== t) fail(`check ${c.check} needs a ${t} column, ${c.column} is ${col!.type}`);
      if (c.check === 'allowed' && !col!.allowed) fail(`check allowed on ${c.column}, which lists no allowed values`);
      if (
        (c.check === 'not_stale' || c.check === 'not_future') &&
        spec.checks.findIndex((x) => x.check === 'timestamp' && x.column === c.column) > spec.checks.indexOf(c)
      ) {
        fail(`check ${c.check} on ${c.column} must come after its timestamp check`);
      }
    }
  }
  for (const col of spec.columns) {
    if (col.type === 'decimal' && !spec.checks.some((c) => c.check === 'decimal' && c.column === col.name))
      fail(`decimal column ${col.name} has no decimal check`);
    if (col.type === 'timestamp' && !spec.checks.some((c) => c.check === 'timestamp' && c.column === col.name))
      fail(`timestamp column ${col.name} has no timestamp check`);
  }
  if (spec.checks[0]?.check !== 'column_count') fail('the first check must be column_count (the other checks index the fields)');
  if (!spec.checks.some((c) => c.check === 'required')) fail('there is no required check');
  if (spec.qualityWeights.length === 0) fail('qualityWeights is empty');
  return spec;
}

/** Reads a contract file (the JSON `ecomstream contract` writes, or one written by hand for another feed). */
export function loadContractFile(file: string): ContractSpec {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (cause) {
    throw new ContractError(`cannot read contract ${file}: ${(cause as Error).message}`, { file, cause });
  }
  const spec = raw as ContractJson;
  if (spec.version !== CONTRACT_VERSION)
    throw new ContractError(`contract ${file}: version ${String(spec.version)}, this engine reads version ${CONTRACT_VERSION}`, { file });
  const stated: Partial<ContractJson> = spec; // a contract written by hand may leave these out
  for (const [k, v] of [
    ['decimalPattern', DECIMAL_PATTERN],
    ['timestampPattern', TIMESTAMP_PATTERN],
    ['identifierPattern', IDENTIFIER_PATTERN],
    ['trimCharacters', TRIM_CHARACTERS],
  ] as const) {
    if (stated[k] !== undefined && stated[k] !== v)
      throw new ContractError(`contract ${file}: ${k} differs from the semantics this engine implements`, { file, option: k });
  }
  if (stated.splitFailures !== undefined && stated.splitFailures.join(',') !== SPLIT_FAILURES.join(','))
    throw new ContractError(`contract ${file}: splitFailures differs from the codes this engine's splitter gives`, { file, option: 'splitFailures' });
  if (stated.retryableSqlstates !== undefined && JSON.stringify(stated.retryableSqlstates) !== JSON.stringify(RETRYABLE_SQLSTATES))
    throw new ContractError(`contract ${file}: retryableSqlstates differs from the errors this engine retries`, { file, option: 'retryableSqlstates' });
  if (stated.fencing !== undefined && JSON.stringify(stated.fencing) !== JSON.stringify(FENCING))
    throw new ContractError(`contract ${file}: fencing differs from the statements this engine fences with`, { file, option: 'fencing' });
  return checkContract(spec, file);
}
