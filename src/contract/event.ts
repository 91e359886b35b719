/**
 * The event contract: the one description of an e-commerce event that the generator writes, both engines
 * (TypeScript and PySpark) execute, and PostgreSQL stores. `ecomstream contract` exports it as
 * spark/event_contract.json; a test fails when that file is stale. The shape and the meaning of every
 * field are in src/contract/schema.ts.
 *
 * Terminology
 * - column:   one of the 10 CSV fields, in file order (spec section 2).
 * - required: NOT NULL in `user_events`; an empty field is a null and the row is rejected.
 * - optional: may be empty; each empty optional field lowers the row's data-quality score.
 * - reason:   the code a rejected row or file gets in `rejected_events.reason`.
 */
import type { ColumnSpec, ContractSpec } from './schema.js';

export const EVENT_TYPES = ['view', 'purchase'] as const;
export const DEVICE_TYPES = ['mobile', 'desktop', 'tablet'] as const;
/** The generator's vocabulary; not a rule (any category up to 100 characters is stored). */
export const PRODUCT_CATEGORIES = ['Electronics', 'Clothing', 'Home & Kitchen', 'Books', 'Sports & Outdoors', 'Toys & Games', 'Beauty', 'Automotive'] as const;

export type EventType = (typeof EVENT_TYPES)[number];
export type DeviceType = (typeof DEVICE_TYPES)[number];
export type ProductCategory = (typeof PRODUCT_CATEGORIES)[number];

const COLUMN_SPECS = [
  { name: 'event_id', type: 'varchar', required: true, length: 36 },
  { name: 'user_id', type: 'varchar', required: true, length: 50 },
  { name: 'event_type', type: 'varchar', required: true, length: 20, allowed: EVENT_TYPES },
  { name: 'product_id', type: 'varchar', required: true, length: 50 },
  { name: 'product_name', type: 'varchar', required: false, length: 200 },
  { name: 'product_category', type: 'varchar', required: false, length: 100 },
  { name: 'price', type: 'decimal', required: false, precision: 10, scale: 2 },
  { name: 'event_timestamp', type: 'timestamp', required: true },
  { name: 'session_id', type: 'varchar', required: false, length: 100 },
  { name: 'device_type', type: 'varchar', required: false, length: 50, allowed: DEVICE_TYPES },
] as const satisfies readonly ColumnSpec[];

export type EventColumn = (typeof COLUMN_SPECS)[number]['name'];
export const COLUMNS: readonly ColumnSpec[] = COLUMN_SPECS;
export const COLUMN_NAMES = COLUMN_SPECS.map((c) => c.name) as readonly EventColumn[];
export const HEADER_LINE = COLUMN_NAMES.join(',');
export const OPTIONAL_COLUMNS = COLUMNS.filter((c) => !c.required).map((c) => c.name);

/** The contract's limits; the reason texts below that state one are written from it, so they cannot drift. */
const LIMITS = { maxLineBytes: 16 << 20, maxRawChars: 65_536, maxEventAgeHours: 24, futureToleranceSeconds: 300 } as const;
const REQUIRED_NAMES = COLUMNS.filter((c) => c.required).map((c) => c.name);
const PRICE = COLUMNS.find((c) => c.name === 'price')!;
const PRICE_MIN = 0;

/** Reason codes, row-level and file-level, with their meaning for operators. */
export const REASONS = {
  missing_required: `a required field (${REQUIRED_NAMES.join(', ')}) is empty`,
  invalid_event_type: `event_type is not one of ${EVENT_TYPES.join(', ')}`,
  invalid_device_type: `device_type is not one of ${DEVICE_TYPES.join(', ')}`,
  invalid_price: `price is not a decimal number that fits DECIMAL(${PRICE.precision},${PRICE.scale})`,
  negative_price: `price is below ${PRICE_MIN}`,
  invalid_timestamp: 'event_timestamp is not an ISO-8601 timestamp',
  stale_timestamp: `event_timestamp is more than ${LIMITS.maxEventAgeHours} hours before the batch timestamp`,
  future_timestamp: `event_timestamp is more than ${LIMITS.futureToleranceSeconds} s after the batch timestamp`,
  field_too_long: 'a field is longer than its column allows',
  wrong_column_count: `the line does not have exactly ${COLUMNS.length} fields`,
  malformed_csv: 'the line is not valid CSV (for example an unterminated quote)',
  invalid_encoding: 'the line is not valid UTF-8 or contains a NUL byte',
  duplicate_event_id: 'an event with this event_id was already stored or appears earlier in the batch',
  bad_header: 'the header row names other columns than the contract (rows of the file are rejected)',
  missing_header: 'the file has no header row (its rows are read as data)',
  empty_file: 'the file is empty or has only a header',
  file_missing: 'the file vanished before it could be read',
  file_unreadable: 'the file could not be read',
  file_modified: 'a file already processed changed (size or modification time) under the same name',
  file_skipped: 'an entry named *.csv that is not a readable regular file (FIFO, socket, folder, dangling link)',
  rejected_by_database: 'PostgreSQL refused the row although it passed the contract (e.g. a constraint added by an operator)',
} as const;
export type Reason = keyof typeof REASONS;

/**
 * File-level reasons that do not reject rows: `missing_header` and `empty_file` are recorded once per
 * file (line_number 0) so an operator sees them, while every row of the file is still accounted for.
 */
export const FILE_NOTICE_REASONS: readonly Reason[] = ['missing_header', 'empty_file', 'file_modified', 'file_skipped'];

const ALLOWED_DETAIL = '{column} {value_json} is not one of {allowed}';

export const EVENT_CONTRACT = {
  name: 'events',
  table: 'user_events',
  conflictKey: 'event_id',
  columns: COLUMNS,
  checks: [
    { check: 'column_count', reason: 'wrong_column_count', detail: '{count} fields, expected {expected}' },
    { check: 'required', reason: 'missing_required', detail: '{column} is empty' },
    { check: 'max_length', reason: 'field_too_long', detail: '{column} has {length} characters, at most {max} allowed' },
    { check: 'allowed', column: 'event_type', reason: 'invalid_event_type', detail: ALLOWED_DETAIL },
    { check: 'allowed', column: 'device_type', reason: 'invalid_device_type', detail: ALLOWED_DETAIL },
    { check: 'decimal', column: 'price', reason: 'invalid_price', detail: '{column} {value_json} is not a DECIMAL({precision},{scale}) number' },
    { check: 'min', column: 'price', min: PRICE_MIN, reason: 'negative_price', detail: '{column} {value} is below {min}' },
    { check: 'timestamp', column: 'event_timestamp', reason: 'invalid_timestamp', detail: '{column} {value_json} is not ISO-8601' },
    {
      check: 'not_stale',
      column: 'event_timestamp',
      reason: 'stale_timestamp',
      detail: '{column} {value} is more than {hours} h before the batch timestamp {batch_timestamp}',
    },
    { check: 'not_future', column: 'event_timestamp', reason: 'future_timestamp', detail: '{column} {value} is after the batch timestamp {batch_timestamp}' },
  ],
  reader: {
    invalidEncoding: { reason: 'invalid_encoding', detailNul: 'NUL byte at byte {byte} of the line', detailUtf8: 'the line is not valid UTF-8' },
    malformed: {
      reason: 'malformed_csv',
      detailTooLong: 'line longer than {max} bytes',
      detailSplit: {
        unterminated_quote: 'unterminated quoted field starting at column {column}',
        after_closing_quote: 'unexpected character after closing quote at column {column}',
        quote_in_unquoted: 'quote inside an unquoted field at column {column}',
      },
    },
    badHeader: {
      reason: 'bad_header',
      notice: 'header {header_json} does not match {expected}; every row of the file is rejected',
      detail: 'the file header does not match the contract',
    },
    missingHeader: { reason: 'missing_header', notice: 'first line is data, not the header {expected}; rows are read as data' },
    emptyFile: { reason: 'empty_file', noticeZeroBytes: '{file} is empty (0 bytes)', noticeNoRows: '{file} has no data rows' },
    fileMissing: { reason: 'file_missing', notice: '{file} vanished before it was read' },
    fileUnreadable: {
      reason: 'file_unreadable',
      detailOpen: '{file} could not be opened: {error}',
      detailStat: '{file} could not be examined: {error}',
      detailRead: '{file}: read failed after line {line}: {error}',
    },
    duplicate: {
      reason: 'duplicate_event_id',
      detailInBatch: '{column} {value} appears earlier in this batch',
      detailStored: '{column} {value} is already stored by an earlier batch',
    },
  },
  engine: {
    fileModified: {
      reason: 'file_modified',
      typescriptOnly: true,
      detailReread: '{file} was processed before and has changed since (now {size} bytes, modified {mtime}); it is read again as a new version',
      detailNotReread:
        '{file} was processed before and has changed since (now {size} bytes, modified {mtime}); it is not read again (use --reread-modified to read it as a new version)',
    },
    fileSkipped: {
      reason: 'file_skipped',
      typescriptOnly: true,
      detail: {
        folder: '{file} is a folder, not a file; it is not read',
        fifo: '{file} is a FIFO (named pipe), not a regular file; it is not read',
        socket: '{file} is a socket, not a regular file; it is not read',
        other: '{file} is not a regular file; it is not read',
        dangling_link: '{file} is a symbolic link whose target does not exist; it is not read',
        // Byte-identical to the notice stored before this text was data, grammar slip included: no stored text changes.
        unexaminable: '{file} is cannot be examined ({error}); it is not read',
      },
    },
    refusedByDatabase: { reason: 'rejected_by_database', typescriptOnly: true, detail: 'PostgreSQL refused the row: {error}' },
  },
  reasons: REASONS,
  fileNoticeReasons: FILE_NOTICE_REASONS,
  limits: LIMITS,
  qualityWeights: [1.0, 0.9, 0.8],
} as const satisfies ContractSpec;
