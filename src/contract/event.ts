/**
 * The event contract: the one description of an e-commerce event that the generator writes, both engines
 * (TypeScript and PySpark) read, and PostgreSQL stores. `contractJson()` exports it for the Spark job;
 * a test fails when `spark/event_contract.json` is stale.
 *
 * Terminology
 * - column:   one of the 10 CSV fields, in file order (spec section 2).
 * - required: NOT NULL in `user_events`; an empty field is a null and the row is rejected.
 * - optional: may be empty; each empty optional field lowers the row's data-quality score.
 * - reason:   the code a rejected row or file gets in `rejected_events.reason`.
 */

export type ColumnType = 'string' | 'decimal' | 'timestamp';

export interface Column {
  readonly name: EventColumn;
  readonly type: ColumnType;
  readonly required: boolean;
  /** VARCHAR length in PostgreSQL; longer values are rejected rather than failing the COPY. */
  readonly maxLength?: number;
  /** DECIMAL(precision, scale). */
  readonly precision?: number;
  readonly scale?: number;
  readonly allowed?: readonly string[];
}

export const EVENT_TYPES = ['view', 'purchase'] as const;
export const DEVICE_TYPES = ['mobile', 'desktop', 'tablet'] as const;
export const PRODUCT_CATEGORIES = [
  'Electronics',
  'Clothing',
  'Home & Kitchen',
  'Books',
  'Sports & Outdoors',
  'Toys & Games',
  'Beauty',
  'Automotive',
] as const;

export type EventType = (typeof EVENT_TYPES)[number];
export type DeviceType = (typeof DEVICE_TYPES)[number];
export type ProductCategory = (typeof PRODUCT_CATEGORIES)[number];

export const COLUMN_NAMES = [
  'event_id',
  'user_id',
  'event_type',
  'product_id',
  'product_name',
  'product_category',
  'price',
  'event_timestamp',
  'session_id',
  'device_type',
] as const;
export type EventColumn = (typeof COLUMN_NAMES)[number];

export const COLUMNS: readonly Column[] = Object.freeze([
  { name: 'event_id', type: 'string', required: true, maxLength: 36 },
  { name: 'user_id', type: 'string', required: true, maxLength: 50 },
  { name: 'event_type', type: 'string', required: true, maxLength: 20, allowed: EVENT_TYPES },
  { name: 'product_id', type: 'string', required: true, maxLength: 50 },
  { name: 'product_name', type: 'string', required: false, maxLength: 200 },
  { name: 'product_category', type: 'string', required: false, maxLength: 100 },
  { name: 'price', type: 'decimal', required: false, precision: 10, scale: 2 },
  { name: 'event_timestamp', type: 'timestamp', required: true },
  { name: 'session_id', type: 'string', required: false, maxLength: 100 },
  { name: 'device_type', type: 'string', required: false, maxLength: 50, allowed: DEVICE_TYPES },
]);

export const HEADER_LINE = COLUMN_NAMES.join(',');
export const OPTIONAL_COLUMNS = COLUMNS.filter((c) => !c.required).map((c) => c.name);

/** Reason codes, row-level and file-level. The same codes are used by the Spark job. */
export const REASONS = {
  missing_required: 'a required field (event_id, user_id, event_type, product_id, event_timestamp) is empty',
  invalid_event_type: 'event_type is not one of view, purchase',
  invalid_device_type: 'device_type is not one of mobile, desktop, tablet',
  invalid_price: 'price is not a decimal number that fits DECIMAL(10,2)',
  negative_price: 'price is below 0',
  invalid_timestamp: 'event_timestamp is not an ISO-8601 timestamp',
  stale_timestamp: 'event_timestamp is more than 24 hours before the batch timestamp',
  future_timestamp: 'event_timestamp is after the batch timestamp',
  field_too_long: 'a field is longer than its column allows',
  wrong_column_count: 'the line does not have exactly 10 fields',
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

export interface ContractJson {
  version: number;
  header: string;
  columns: readonly Column[];
  eventTypes: readonly string[];
  deviceTypes: readonly string[];
  productCategories: readonly string[];
  optionalColumns: readonly string[];
  reasons: Record<Reason, string>;
  fileNoticeReasons: readonly Reason[];
  rules: {
    maxEventAgeHours: number;
    futureToleranceSeconds: number;
    qualityScore: { allPresent: number; oneMissing: number; moreMissing: number };
  };
}

export const QUALITY_SCORE = { allPresent: 1.0, oneMissing: 0.9, moreMissing: 0.8 } as const;

export function contractJson(rules: { maxEventAgeHours: number; futureToleranceSeconds: number }): ContractJson {
  return {
    version: 1,
    header: HEADER_LINE,
    columns: COLUMNS,
    eventTypes: EVENT_TYPES,
    deviceTypes: DEVICE_TYPES,
    productCategories: PRODUCT_CATEGORIES,
    optionalColumns: OPTIONAL_COLUMNS,
    reasons: { ...REASONS },
    fileNoticeReasons: FILE_NOTICE_REASONS,
    rules: { ...rules, qualityScore: { ...QUALITY_SCORE } },
  };
}
