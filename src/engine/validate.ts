/**
 * Row rules, compiled from a contract (src/contract/schema.ts; the event contract by default). A row is
 * data, never an exception: a compiled contract's `validateRow` returns either the row's values as they
 * are stored or the reason it is rejected.
 *
 * `compileContract` turns the contract's ordered checks into one closure each, once; the row loop runs
 * them in order and the first failure is the reason, so both engines give the same code for a row with
 * several faults. Detail templates are filled only for a failing row. The value semantics implemented
 * here (decimal rounding, timestamp forms and zones, JSON quoting) are the ones `SEMANTICS` defines in
 * words; spark/ecomstream_spark/rows.py implements the same words, and the golden vectors
 * (test/fixtures/contract/vectors.json) pin both.
 */
import { EVENT_CONTRACT } from '../contract/event.js';
import { renderDetail } from '../contract/detail.js';
import { DECIMAL_PATTERN, TIMESTAMP_PATTERN, type CheckSpec, type ContractSpec } from '../contract/schema.js';

export interface RowRules {
  /** "Now" for the time windows: the batch timestamp from offsets/N. */
  batchTimestampMs: number;
}

/**
 * A valid row: its key, its quality score and `values`, the stored text of each column ('' is NULL;
 * timestamps normalised as SEMANTICS.timestamp says). `values` is the fields array passed in, updated in
 * place, so a valid row costs no new array.
 */
export type RowResult = { ok: true; key: string; values: string[]; quality: number } | { ok: false; reason: string; detail: string };

export interface CompiledContract {
  readonly spec: ContractSpec;
  readonly header: string;
  readonly columnNames: readonly string[];
  readonly keyIndex: number;
  validateRow(fields: string[], rules: RowRules): RowResult;
}

const DECIMAL = new RegExp(DECIMAL_PATTERN);
const TIMESTAMP = new RegExp(TIMESTAMP_PATTERN);
/** PostgreSQL's numeric input refuses larger written exponents (NUMERIC_MAX_PRECISION). */
const MAX_DECIMAL_EXPONENT = 1000;
const MS_PER_DAY = 86_400_000;
const MS_400_YEARS = 146_097 * MS_PER_DAY;
const MIN_MS = Date.UTC(2001, 0, 1) - 5 * MS_400_YEARS; // 0001-01-01T00:00:00Z
const END_MS = Date.UTC(10000, 0, 1); // 10000-01-01T00:00:00Z

/** Length in code points, as PostgreSQL's VARCHAR(n) and Python count them. */
function charLength(s: string, max: number): number {
  if (s.length <= max) return s.length; // UTF-16 units >= code points, so this cannot exceed
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** An exact decimal: 0.digits × 10^point, digits without leading or trailing zeros ('' for zero). */
interface Decimal {
  negative: boolean;
  digits: string;
  point: number;
}

export function parseDecimal(text: string): Decimal | undefined {
  if (!DECIMAL.test(text)) return undefined;
  let i = 0;
  let negative = false;
  if (text.startsWith('+') || text.startsWith('-')) {
    negative = text.startsWith('-');
    i = 1;
  }
  const e = text.search(/[eE]/);
  const mantissa = text.slice(i, e === -1 ? undefined : e);
  const exponent = e === -1 ? 0 : Number(text.slice(e + 1));
  if (Math.abs(exponent) > MAX_DECIMAL_EXPONENT) return undefined;
  const dot = mantissa.indexOf('.');
  const intPart = dot === -1 ? mantissa : mantissa.slice(0, dot);
  const all = dot === -1 ? mantissa : intPart + mantissa.slice(dot + 1);
  let start = 0;
  while (start < all.length && all.charCodeAt(start) === 48) start++;
  let end = all.length;
  while (end > start && all.charCodeAt(end - 1) === 48) end--;
  const digits = all.slice(start, end);
  return { negative: negative && digits !== '', digits, point: intPart.length + exponent - start };
}

/** Whether the value, rounded to `scale` places half away from zero, is below 10^(precision-scale). */
export function decimalFits(d: Decimal, precision: number, scale: number): boolean {
  if (d.digits === '') return true;
  const keep = d.point + scale; // digits kept by the rounding
  let intDigits: number;
  if (keep < 0) return true; // rounds to zero
  if (keep >= d.digits.length) intDigits = Math.max(d.point, 0);
  else {
    const up = d.digits.charCodeAt(keep) >= 53; /* '5' */
    let allNines = true;
    for (let i = 0; i < keep && allNines; i++) allNines = d.digits.charCodeAt(i) === 57;
    intDigits = up && allNines ? Math.max(d.point + 1, 0) : Math.max(d.point, 0);
  }
  return intDigits <= precision - scale;
}

/** -1, 0 or 1 as a < b, exactly. */
export function compareDecimal(a: Decimal, b: Decimal): number {
  const sign = (x: Decimal): number => (x.digits === '' ? 0 : x.negative ? -1 : 1);
  const sa = sign(a),
    sb = sign(b);
  if (sa !== sb || sa === 0) return Math.sign(sa - sb);
  let mag: number;
  if (a.point !== b.point) mag = a.point < b.point ? -1 : 1;
  else mag = a.digits === b.digits ? 0 : a.digits < b.digits ? -1 : 1; // same length prefix order is numeric order
  return sa * mag;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** Epoch ms of a proleptic Gregorian UTC wall time; Date.UTC reads years 0..99 as 1900.., so shift them by 400 years. */
function civilMs(year: number, month: number, day: number, hour: number, minute: number, second: number): number {
  return year < 100 ? Date.UTC(year + 400, month - 1, day, hour, minute, second) - MS_400_YEARS : Date.UTC(year, month - 1, day, hour, minute, second);
}

/** SEMANTICS.timestamp: epoch ms (NaN when invalid) and the text stored in a TIMESTAMP column. */
export function parseTimestamp(text: string): { ms: number; copy: string } {
  const m = TIMESTAMP.exec(text);
  if (!m) return { ms: NaN, copy: '' };
  const [, y, mo, d, h, mi, s, frac, zone] = m as unknown as [string, string, string, string, string, string, string, string | undefined, string | undefined];
  const year = Number(y),
    month = Number(mo),
    day = Number(d),
    hour = Number(h),
    minute = Number(mi),
    second = Number(s);
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month) || hour > 23 || minute > 59 || second > 59) return { ms: NaN, copy: '' };
  const wall = civilMs(year, month, day, hour, minute, second);
  const fracMs = frac ? Number(`${frac.slice(1)}00`.slice(0, 3)) : 0;
  let offsetMs = 0;
  if (zone !== undefined && zone !== 'Z') {
    const digits = zone.length === 6 ? zone.slice(1, 3) + zone.slice(4) : zone.slice(1);
    const oh = Number(digits.slice(0, 2)),
      om = Number(digits.slice(2));
    if (oh > 23 || om > 59) return { ms: NaN, copy: '' };
    offsetMs = (zone.startsWith('-') ? -1 : 1) * (oh * 60 + om) * 60_000;
  }
  if (offsetMs === 0) return { ms: wall + fracMs, copy: `${y}-${mo}-${d} ${h}:${mi}:${s}${frac ?? ''}` };
  const utc = wall - offsetMs;
  if (utc < MIN_MS || utc >= END_MS) return { ms: NaN, copy: '' };
  const iso = new Date(utc).toISOString();
  return { ms: utc + fracMs, copy: `${iso.slice(0, 10)} ${iso.slice(11, 19)}${frac ?? ''}` };
}

interface Failure {
  ok: false;
  reason: string;
  detail: string;
}
/** One compiled check: undefined when the row passes. */
type Step = (fields: string[], now: number) => Failure | undefined;

/** What the compiled checks of one contract share: its columns, limits, and the row's parsed timestamps. */
interface StepContext {
  spec: ContractSpec;
  /** Timestamps parsed by a `timestamp` step, read by the window steps and the stored values of the same row. */
  tsMs: Float64Array;
  tsCopy: (string | undefined)[];
}

/** Compiles one check of the contract into a closure; one case per check kind (a table). */
function compileStep(c: CheckSpec, ctx: StepContext): Step {
  const { spec, tsMs, tsCopy } = ctx;
  const cols = spec.columns;
  const ncol = cols.length;
  const index = (name: string): number => cols.findIndex((col) => col.name === name);
  const requiredIdx = cols.flatMap((col, i) => (col.required ? [i] : []));
  const { maxEventAgeHours, futureToleranceSeconds } = spec.limits;
  const maxAgeMs = maxEventAgeHours * 3_600_000;
  const futureMs = futureToleranceSeconds * 1000;
  const fail = (reason: string, detail: string): Failure => ({ ok: false, reason, detail });
  const iso = (ms: number): string => new Date(ms).toISOString();
  const t = c.detail;
  switch (c.check) {
    case 'column_count':
      return (f) => (f.length === ncol ? undefined : fail(c.reason, renderDetail(t, { count: f.length, expected: ncol })));
    case 'required':
      return (f) => {
        for (const i of requiredIdx) if (f[i] === '') return fail(c.reason, renderDetail(t, { column: cols[i]!.name }));
        return undefined;
      };
    case 'max_length': {
      const checks = cols.flatMap((col, i) => (col.length ? [[i, col.length, col.name] as const] : []));
      return (f) => {
        for (const [i, max, name] of checks) {
          const v = f[i]!;
          if (v.length > max) {
            const len = charLength(v, max);
            if (len > max) return fail(c.reason, renderDetail(t, { column: name, length: len, max }));
          }
        }
        return undefined;
      };
    }
    case 'allowed': {
      const i = index(c.column);
      const allowed = cols[i]!.allowed!;
      const set = new Set<string>(allowed);
      const list = allowed.join(', ');
      return (f) => {
        const v = f[i]!;
        return v === '' || set.has(v)
          ? undefined
          : fail(c.reason, renderDetail(t, { column: c.column, value: v, value_json: JSON.stringify(v), allowed: list }));
      };
    }
    case 'pattern': {
      const i = index(c.column);
      const re = new RegExp(c.pattern);
      return (f) => {
        const v = f[i]!;
        return v === '' || re.test(v)
          ? undefined
          : fail(c.reason, renderDetail(t, { column: c.column, value: v, value_json: JSON.stringify(v), pattern: c.pattern }));
      };
    }
    case 'decimal': {
      const i = index(c.column);
      const { precision = 0, scale = 0 } = cols[i]!;
      // Plain digits that fit without rounding: the common case, decided without parsing.
      const plain = precision > scale ? new RegExp(`^[0-9]{1,${precision - scale}}(?:\\.[0-9]{0,${scale}})?$`) : undefined;
      return (f) => {
        const v = f[i]!;
        if (v === '' || plain?.test(v)) return undefined;
        const d = parseDecimal(v);
        return d !== undefined && decimalFits(d, precision, scale)
          ? undefined
          : fail(c.reason, renderDetail(t, { column: c.column, value: v, value_json: JSON.stringify(v), precision, scale }));
      };
    }
    case 'min': {
      const i = index(c.column);
      const min = parseDecimal(String(c.min))!;
      return (f) => {
        const v = f[i]!;
        if (v === '' || (v.charCodeAt(0) !== 45 /* - */ && c.min <= 0)) return undefined; // no sign: >= 0 >= min
        const d = parseDecimal(v);
        return d === undefined || compareDecimal(d, min) >= 0
          ? undefined
          : fail(c.reason, renderDetail(t, { column: c.column, value: v, value_json: JSON.stringify(v), min: c.min }));
      };
    }
    case 'timestamp': {
      const i = index(c.column);
      return (f) => {
        const v = f[i]!;
        if (v === '') {
          tsCopy[i] = '';
          return undefined;
        }
        const ts = parseTimestamp(v);
        if (Number.isNaN(ts.ms)) return fail(c.reason, renderDetail(t, { column: c.column, value: v, value_json: JSON.stringify(v) }));
        tsMs[i] = ts.ms;
        tsCopy[i] = ts.copy;
        return undefined;
      };
    }
    case 'not_stale': {
      const i = index(c.column);
      return (f, now) =>
        f[i] === '' || tsMs[i]! >= now - maxAgeMs
          ? undefined
          : fail(
              c.reason,
              renderDetail(t, { column: c.column, value: f[i]!, value_json: JSON.stringify(f[i]), hours: maxEventAgeHours, batch_timestamp: iso(now) }),
            );
    }
    case 'not_future': {
      const i = index(c.column);
      return (f, now) =>
        f[i] === '' || tsMs[i]! <= now + futureMs
          ? undefined
          : fail(c.reason, renderDetail(t, { column: c.column, value: f[i]!, value_json: JSON.stringify(f[i]), batch_timestamp: iso(now) }));
    }
  }
}

export function compileContract(spec: ContractSpec): CompiledContract {
  const cols = spec.columns;
  const optionalIdx = cols.flatMap((c, i) => (c.required ? [] : [i]));
  const weights = spec.qualityWeights;
  const ctx: StepContext = { spec, tsMs: new Float64Array(cols.length), tsCopy: cols.map(() => undefined) };
  const { tsCopy } = ctx;
  const tsIdx = cols.flatMap((c, i) => (c.type === 'timestamp' ? [i] : []));
  const steps = spec.checks.map((c) => compileStep(c, ctx));
  const keyIndex = cols.findIndex((c) => c.name === spec.conflictKey);

  return {
    spec,
    header: cols.map((c) => c.name).join(','),
    columnNames: cols.map((c) => c.name),
    keyIndex,
    validateRow(fields: string[], rules: RowRules): RowResult {
      for (const i of tsIdx) tsCopy[i] = undefined;
      for (const s of steps) {
        const failure = s(fields, rules.batchTimestampMs);
        if (failure !== undefined) return failure;
      }
      let missing = 0;
      for (const i of optionalIdx) if (fields[i] === '') missing++;
      const quality = weights[Math.min(missing, weights.length - 1)]!;
      const key = fields[keyIndex]!; // as written: the reader's in-batch check compares the written keys
      for (const i of tsIdx) if (tsCopy[i] !== undefined) fields[i] = tsCopy[i];
      return { ok: true, key, values: fields, quality };
    },
  };
}

/** The event contract, compiled once. */
export const EVENTS = compileContract(EVENT_CONTRACT);

export function validateRow(fields: string[], rules: RowRules): RowResult {
  return EVENTS.validateRow(fields, rules);
}
