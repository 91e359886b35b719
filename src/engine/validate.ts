/**
 * Row rules of the event contract (spec section 4 "Validate data"). A row is data, never an exception:
 * `validateRow` returns either the row ready for COPY or the reason it is rejected.
 *
 * Checks run in a fixed order and the first failure is the reason, so both engines give the same code
 * for a row with several faults: column count -> required -> length -> event_type -> device_type ->
 * price -> timestamp.
 */
import { COLUMNS, EVENT_TYPES, DEVICE_TYPES, QUALITY_SCORE, type Reason } from '../contract/event.js';
import { copyEscape } from '../sink/copy-text.js';

export interface RowRules {
  /** "Now" for the time window: the batch timestamp from offsets/N. */
  batchTimestampMs: number;
  maxEventAgeHours: number;
  futureToleranceSeconds: number;
}

export type RowResult =
  | { ok: true; eventId: string; copyLine: string; quality: number }
  | { ok: false; reason: Reason; detail: string };

const NCOL = COLUMNS.length;
const REQUIRED_IDX = COLUMNS.flatMap((c, i) => (c.required ? [i] : []));
const OPTIONAL_IDX = COLUMNS.flatMap((c, i) => (c.required ? [] : [i]));
const LENGTH_CHECKS = COLUMNS.flatMap((c, i) => (c.maxLength ? [[i, c.maxLength, c.name] as const] : []));
const EVENT_TYPE_SET = new Set<string>(EVENT_TYPES);
const DEVICE_TYPE_SET = new Set<string>(DEVICE_TYPES);
const I_EVENT_ID = 0;
const I_EVENT_TYPE = 2;
const I_PRICE = 6;
const I_TS = 7;
const I_DEVICE = 9;
const PRICE_LIMIT = 1e8; // DECIMAL(10,2): |value| < 10^(10-2)

const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})?$/;

/** Length in characters (code points), as PostgreSQL's VARCHAR(n) and Python count them. */
function charLength(s: string, max: number): number {
  if (s.length <= max) return s.length; // UTF-16 units >= code points, so this cannot exceed
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** Parses an ISO-8601 timestamp; no zone means UTC. Returns epoch ms (NaN when invalid) and COPY text. */
export function parseTimestamp(text: string): { ms: number; copy: string } {
  const m = TIMESTAMP.exec(text);
  if (!m) return { ms: NaN, copy: '' };
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  const year = Number(y), month = Number(mo), day = Number(d), hour = Number(h), minute = Number(mi), second = Number(s);
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return { ms: NaN, copy: '' };
  const wall = Date.UTC(year, month - 1, day, hour, minute, second);
  if (new Date(wall).getUTCDate() !== day) return { ms: NaN, copy: '' }; // e.g. 2026-02-30
  const fracMs = frac ? Math.floor(Number(`0${frac}`) * 1000) : 0;
  let offsetMs = 0;
  if (zone && zone !== 'Z') {
    const sign = zone[0] === '-' ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    const oh = Number(digits.slice(0, 2)), om = Number(digits.slice(2));
    if (oh > 23 || om > 59) return { ms: NaN, copy: '' };
    offsetMs = sign * (oh * 60 + om) * 60_000;
  }
  const ms = wall + fracMs - offsetMs;
  // The column is TIMESTAMP (UTC wall time). Without an offset the text can go to COPY as written
  // (keeping microseconds); with one, it is converted to UTC.
  const copy = offsetMs === 0 ? `${y}-${mo}-${d} ${h}:${mi}:${s}${frac ?? ''}` : new Date(ms).toISOString().replace('T', ' ').slice(0, -1);
  return { ms, copy };
}

export function validateRow(fields: string[], rules: RowRules): RowResult {
  if (fields.length !== NCOL) {
    return { ok: false, reason: 'wrong_column_count', detail: `${fields.length} fields, expected ${NCOL}` };
  }
  for (const i of REQUIRED_IDX) {
    if (fields[i] === '') return { ok: false, reason: 'missing_required', detail: `${COLUMNS[i]!.name} is empty` };
  }
  for (const [i, max, name] of LENGTH_CHECKS) {
    const v = fields[i]!;
    if (v.length > max) {
      const len = charLength(v, max);
      if (len > max) return { ok: false, reason: 'field_too_long', detail: `${name} has ${len} characters, at most ${max} allowed` };
    }
  }
  const eventType = fields[I_EVENT_TYPE]!;
  if (!EVENT_TYPE_SET.has(eventType)) {
    return { ok: false, reason: 'invalid_event_type', detail: `event_type ${JSON.stringify(eventType)} is not one of ${EVENT_TYPES.join(', ')}` };
  }
  const device = fields[I_DEVICE]!;
  if (device !== '' && !DEVICE_TYPE_SET.has(device)) {
    return { ok: false, reason: 'invalid_device_type', detail: `device_type ${JSON.stringify(device)} is not one of ${DEVICE_TYPES.join(', ')}` };
  }
  const price = fields[I_PRICE]!;
  if (price !== '') {
    const value = DECIMAL.test(price) ? Number(price) : NaN;
    if (!Number.isFinite(value) || Math.abs(Math.round(value * 100) / 100) >= PRICE_LIMIT) {
      return { ok: false, reason: 'invalid_price', detail: `price ${JSON.stringify(price)} is not a DECIMAL(10,2) number` };
    }
    if (value < 0) return { ok: false, reason: 'negative_price', detail: `price ${price} is below 0` };
  }
  const tsText = fields[I_TS]!;
  const ts = parseTimestamp(tsText);
  if (Number.isNaN(ts.ms)) {
    return { ok: false, reason: 'invalid_timestamp', detail: `event_timestamp ${JSON.stringify(tsText)} is not ISO-8601` };
  }
  if (ts.ms < rules.batchTimestampMs - rules.maxEventAgeHours * 3_600_000) {
    return { ok: false, reason: 'stale_timestamp', detail: `event_timestamp ${tsText} is more than ${rules.maxEventAgeHours} h before the batch timestamp ${new Date(rules.batchTimestampMs).toISOString()}` };
  }
  if (ts.ms > rules.batchTimestampMs + rules.futureToleranceSeconds * 1000) {
    return { ok: false, reason: 'future_timestamp', detail: `event_timestamp ${tsText} is after the batch timestamp ${new Date(rules.batchTimestampMs).toISOString()}` };
  }

  let missing = 0;
  for (const i of OPTIONAL_IDX) if (fields[i] === '') missing++;
  const quality = missing === 0 ? QUALITY_SCORE.allPresent : missing === 1 ? QUALITY_SCORE.oneMissing : QUALITY_SCORE.moreMissing;

  // COPY text line: empty optional field -> \N (NULL); every other field escaped as COPY requires.
  let line = '';
  for (let i = 0; i < NCOL; i++) {
    const v = i === I_TS ? ts.copy : fields[i]!;
    if (i > 0) line += '\t';
    line += v === '' ? '\\N' : copyEscape(v);
  }
  return { ok: true, eventId: fields[I_EVENT_ID]!, copyLine: line, quality };
}
