/**
 * The seeded event factory: turns (seed, now) into the bytes of one CSV file.
 *
 * Terminology
 * - session:  a run of events of one user on one device (`S` + 16 hex digits). A pool of sessions is open at
 *             any time; each event goes to a random open session, so sessions interleave within a file and
 *             continue across files. A session ends after a few events and a new one takes its place.
 * - window:   the events of a file happened in (since, now]: `now` is the moment the caller says the file is
 *             made, `since` the moment of the generator's previous file (run.ts passes it). Row k of n is
 *             stamped in the k-th of n equal slices of the window, so a file's rows are in time order and
 *             every session's events are too; `since` is raised to the previous file's `now`, so a session
 *             continues in order across files (unless the clock itself goes back). Never in the future: no stamp is later than `now`. With
 *             since = now (the default, and unpaced runs) every row is stamped with the moment of writing.
 * - bad row:  a row replaced, with probability `invalidRate`, by a row that the engine must reject with one
 *             known reason. Kinds are taken in turn from INJECTED_REASONS so a small sample covers them all.
 *             `GeneratedFile.expected` lists each bad row's line and reason. Two kinds bend the draw:
 *             `malformed_csv` (an unterminated quote, which swallows the lines after it) always goes on the
 *             file's last line, and `duplicate_event_id` repeats a recent *valid* id of the run, so when
 *             none exists yet one valid row is written first (with invalidRate 1: one valid row per run).
 * - debt:     a purchase drawn for a session that has not viewed anything yet becomes a view; the next view
 *             drawn while another session has something to buy becomes a purchase instead, so the purchase
 *             share stays at `purchaseShare` and every purchase is of a product its session viewed.
 *
 * The same seed and the same sequence of `now` values give byte-identical files. The hot loop only
 * concatenates a few strings per row and writes it straight into one growing Buffer: product fields are
 * pre-quoted (catalog.ts), UUIDs come from a 64K hex table, and timestamps are formatted from a per-minute
 * prefix cache instead of a Date per row.
 */
import { COLUMN_NAMES, COLUMNS, DEVICE_TYPES, HEADER_LINE, type EventColumn, type Reason } from '../contract/event.js';
import { CATALOG, CSV_PRODUCT_PREFIX, POPULARITY_TABLE, PRODUCTS_BY_CATEGORY } from './catalog.js';
import { csvRecord } from './csv.js';
import { Prng, randomSeed } from './prng.js';

/** Every row-level reason the engine rejects, in the order the factory injects them. */
export const INJECTED_REASONS = [
  'missing_required',
  'invalid_event_type',
  'invalid_device_type',
  'invalid_price',
  'negative_price',
  'invalid_timestamp',
  'stale_timestamp',
  'future_timestamp',
  'field_too_long',
  'wrong_column_count',
  'malformed_csv',
  'invalid_encoding',
  'duplicate_event_id',
] as const satisfies readonly Reason[];
export type InjectedReason = (typeof INJECTED_REASONS)[number];

export interface ExpectedRejection {
  /** 1-based line number in the file: the header is line 1, the first event is line 2. */
  line: number;
  reason: InjectedReason;
  /**
   * The event_id written in the line's first field: '' when the defect is an empty event_id; for
   * `duplicate_event_id` the id of an earlier valid event of the same run; for `malformed_csv` the id is
   * written but a CSV reader cannot recover it.
   */
  eventId: string;
}

export interface GeneratedFile {
  /** The whole file, header included. A Buffer because `invalid_encoding` rows hold non-UTF-8 bytes. */
  content: Buffer;
  /** Event lines (valid and bad), not counting the header. */
  events: number;
  /** The bad rows of this file, in line order; empty when invalidRate is 0. */
  expected: ExpectedRejection[];
}

export interface EventFactoryOptions {
  /** Undefined: a random seed (read it back from `factory.seed` to reproduce the run). */
  seed?: number | undefined;
  /** Share of purchases among valid events, 0..1. Default 0.15. */
  purchaseShare?: number;
  /** Probability that a row is replaced by a bad row, 0..1. Default 0. */
  invalidRate?: number;
  /** Sessions open at once. Default 24. */
  concurrentSessions?: number;
  /** Distinct users (`U000001`...). Default 20,000. */
  users?: number;
}

const DEFAULT_SESSIONS = 24;
const DEFAULT_USERS = 20_000;
/** Products a session remembers as viewed (purchases pick among them). */
const VIEWED_MEMORY = 8;
/** Valid event ids of the run kept for `duplicate_event_id` rows. */
const DUPLICATE_MEMORY = 64;
const HOUR_MS = 3_600_000;

const HEX4: readonly string[] = Array.from({ length: 0x10000 }, (_, i) => i.toString(16).padStart(4, '0'));
const PAD2: readonly string[] = Array.from({ length: 60 }, (_, i) => String(i).padStart(2, '0'));
const PAD3: readonly string[] = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));
const CATEGORY_PRODUCTS: readonly (readonly number[])[] = CATALOG.map((p) => PRODUCTS_BY_CATEGORY.get(p.category)!);
const [MOBILE, DESKTOP, TABLET] = DEVICE_TYPES;
/** Each column's position in a row, from the contract: a bad row changes one field by its column's name. */
const COL = Object.fromEntries(COLUMN_NAMES.map((name, i) => [name, i])) as Record<EventColumn, number>;
/** The contract's required columns, in file order: `missing_required` empties them in turn. */
const MISSING_FIELDS: readonly number[] = COLUMNS.flatMap((c, i) => (c.required ? [i] : []));

/** `2026-11-25T17:03:04.123Z` for epoch milliseconds, with a small per-minute cache of the date part. */
export class TimestampFormatter {
  private readonly minutes = new Float64Array(8).fill(NaN);
  private readonly prefixes: string[] = new Array<string>(8).fill('');

  format(ms: number): string {
    const t = Math.floor(ms);
    const minute = Math.floor(t / 60_000);
    const slot = minute & 7;
    if (this.minutes[slot] !== minute) {
      this.minutes[slot] = minute;
      this.prefixes[slot] = new Date(minute * 60_000).toISOString().slice(0, 17);
    }
    const rest = t - minute * 60_000;
    const sec = (rest / 1000) | 0;
    return `${this.prefixes[slot]}${PAD2[sec]}.${PAD3[rest - sec * 1000]}Z`;
  }
}

const sharedFormatter = new TimestampFormatter();
export function formatTimestamp(ms: number): string {
  return sharedFormatter.format(ms);
}

interface Session {
  id: string;
  user: string;
  device: string;
  /** `,U000123,` : what follows the event_id. */
  userField: string;
  /** `,S...,mobile\n` : what follows the timestamp. */
  tail: string;
  left: number;
  viewed: number[];
  viewedCount: number;
}

export class EventFactory {
  readonly seed: number;
  private readonly rng: Prng;
  private readonly purchaseShare: number;
  private readonly invalidRate: number;
  private readonly sessionCount: number;
  private readonly users: number;
  private readonly ts = new TimestampFormatter();
  private sessions: Session[] = [];
  private debt = 0;
  private readonly recentIds: string[] = [];
  private recentPos = 0;
  private kindCursor = 0;
  private missingCursor = 0;
  private columnCursor = 0;
  private duplicatePending = false;
  /** `now` of the previous file: the earliest moment the next file's window may start. */
  private lastNow = -Infinity;

  constructor(opts: EventFactoryOptions = {}) {
    this.seed = opts.seed ?? randomSeed();
    this.rng = new Prng(this.seed);
    this.purchaseShare = opts.purchaseShare ?? 0.15;
    this.invalidRate = opts.invalidRate ?? 0;
    this.sessionCount = opts.concurrentSessions ?? DEFAULT_SESSIONS;
    this.users = opts.users ?? DEFAULT_USERS;
    for (const [name, v, lo, hi] of [
      ['purchaseShare', this.purchaseShare, 0, 1],
      ['invalidRate', this.invalidRate, 0, 1],
      ['concurrentSessions', this.sessionCount, 1, 1e6],
      ['users', this.users, 1, 999_999],
    ] as const) {
      if (!Number.isFinite(v) || v < lo || v > hi) throw new RangeError(`EventFactory: ${name} must be from ${lo} to ${hi}, got ${v}`);
    }
  }

  /**
   * One file of `events` event lines (plus the header), made at `nowMs` (epoch milliseconds), its events
   * having happened since `sinceMs` (default: `nowMs`, all at the moment of writing). See "window" above.
   */
  generateFile(events: number, nowMs: number, sinceMs: number = nowMs): GeneratedFile {
    if (!Number.isSafeInteger(events) || events < 1) throw new RangeError(`EventFactory: events per file must be an integer >= 1, got ${events}`);
    if (!Number.isFinite(nowMs) || !Number.isFinite(sinceMs))
      throw new RangeError(`EventFactory: now and since must be finite epoch milliseconds, got ${nowMs}, ${sinceMs}`);
    const now = Math.floor(nowMs);
    // Raised to the previous file's moment so sessions never go back; never past now, so none is in the future.
    const since = Math.min(now, Math.max(Math.floor(sinceMs), this.lastNow));
    const span = now - since;
    this.lastNow = now;
    if (this.sessions.length === 0) {
      for (let i = 0; i < this.sessionCount; i++) this.sessions.push(this.newSession());
    }
    const rng = this.rng;
    const invalidRate = this.invalidRate;
    const expected: ExpectedRejection[] = [];
    let malformedPending = false;
    let buf = Buffer.allocUnsafe(256 + events * 160);
    let off = buf.write(`${HEADER_LINE}\n`, 0, 'utf8');
    for (let i = 0; i < events; i++) {
      const line = i + 2;
      const last = i === events - 1;
      // The i-th of n equal slices of (since, now]: later rows are never earlier, and the last can be now.
      const at = since + Math.ceil(((i + rng.float()) * span) / events);
      let kind: InjectedReason | undefined;
      const bad = invalidRate > 0 && rng.float() < invalidRate;
      if (last && malformedPending) {
        kind = 'malformed_csv';
      } else if (bad) {
        kind = this.nextKind();
        if (kind === 'malformed_csv' && !last) {
          // An unterminated quote swallows every following line in an RFC 4180 reader, so the file's last
          // line takes it (that line becomes bad even if it was not drawn; at most one per file).
          malformedPending = true;
          kind = this.nextKind();
        }
      }
      if (kind === 'duplicate_event_id' && this.recentIds.length === 0) {
        // Nothing valid to repeat yet: write a valid row (its id becomes the original) and duplicate it later.
        this.duplicatePending = true;
        kind = undefined;
      }
      let text: string;
      // Latin-1 for the invalid_encoding row only: its é becomes the single byte 0xE9, not valid UTF-8.
      let encoding: 'utf8' | 'latin1' = 'utf8';
      if (kind === undefined) {
        text = this.validRow(at);
      } else {
        const row = this.badRow(kind, at, now);
        text = row.text;
        if (kind === 'invalid_encoding') encoding = 'latin1';
        expected.push({ line, reason: kind, eventId: row.eventId });
      }
      if (buf.length - off < text.length * 3) {
        const bigger = Buffer.allocUnsafe(buf.length * 2 + text.length * 3);
        buf.copy(bigger, 0, 0, off);
        buf = bigger;
      }
      off += buf.write(text, off, encoding);
    }
    return { content: buf.subarray(0, off), events, expected };
  }

  private nextKind(): InjectedReason {
    if (this.duplicatePending && this.recentIds.length > 0) {
      this.duplicatePending = false;
      return 'duplicate_event_id';
    }
    let kind = INJECTED_REASONS[this.kindCursor++ % INJECTED_REASONS.length]!;
    // A pending duplicate is already owed; do not owe a second one.
    if (kind === 'duplicate_event_id' && this.duplicatePending) kind = INJECTED_REASONS[this.kindCursor++ % INJECTED_REASONS.length]!;
    return kind;
  }

  private uuid(): string {
    const rng = this.rng;
    const a = rng.next();
    const b = rng.next();
    const c = rng.next();
    const d = rng.next();
    // Version 4 (bits 12-15 of the third group) and RFC 4122 variant (10xx in the fourth group).
    return `${HEX4[a >>> 16]}${HEX4[a & 0xffff]}-${HEX4[b >>> 16]}-${HEX4[0x4000 | (b & 0x0fff)]}-${HEX4[0x8000 | ((c >>> 16) & 0x3fff)]}-${HEX4[c & 0xffff]}${HEX4[d >>> 16]}${HEX4[d & 0xffff]}`;
  }

  private device(): string {
    const r = this.rng.int(100); // mobile 55, desktop 35, tablet 10
    return r < 55 ? MOBILE : r < 90 ? DESKTOP : TABLET;
  }

  private userId(): string {
    return `U${String(1 + this.rng.int(this.users)).padStart(6, '0')}`;
  }

  private sessionId(): string {
    const rng = this.rng;
    const a = rng.next();
    const b = rng.next();
    return `S${HEX4[a >>> 16]}${HEX4[a & 0xffff]}${HEX4[b >>> 16]}${HEX4[b & 0xffff]}`;
  }

  private newSession(): Session {
    const rng = this.rng;
    const id = this.sessionId();
    const user = this.userId();
    const device = this.device();
    // 1..30 events, mean about 6: most sessions are short, a few browse for long.
    const left = Math.min(30, 1 + Math.floor(-Math.log(1 - rng.float()) * 5));
    return {
      id,
      user,
      device,
      userField: `,${user},`,
      tail: `,${id},${device}\n`,
      left,
      viewed: [],
      viewedCount: 0,
    };
  }

  /** A valid event at `at` (epoch ms) of a random open session. */
  private validRow(at: number): string {
    const rng = this.rng;
    const sessions = this.sessions;
    let si = rng.int(sessions.length);
    let s = sessions[si]!;
    let purchase = rng.float() < this.purchaseShare;
    if (!purchase && this.debt > 0) {
      purchase = true;
      this.debt--;
    }
    if (purchase && s.viewedCount === 0) {
      let found = -1;
      for (let j = 1; j < sessions.length; j++) {
        const k = (si + j) % sessions.length;
        if (sessions[k]!.viewedCount > 0) {
          found = k;
          break;
        }
      }
      if (found === -1) {
        purchase = false;
        this.debt++;
      } else {
        si = found;
        s = sessions[si]!;
      }
    }

    let product: number;
    const remembered = s.viewedCount < VIEWED_MEMORY ? s.viewedCount : VIEWED_MEMORY;
    if (purchase) {
      product = s.viewed[rng.int(remembered)]!;
    } else {
      if (remembered > 0 && rng.float() < 0.3) {
        // Browsing: another product of the category last looked at.
        const same = CATEGORY_PRODUCTS[s.viewed[(s.viewedCount - 1) % VIEWED_MEMORY]!]!;
        product = same[rng.int(same.length)]!;
      } else {
        product = POPULARITY_TABLE[rng.next() >>> 20]!;
      }
      s.viewed[s.viewedCount % VIEWED_MEMORY] = product;
      s.viewedCount++;
    }

    const id = this.uuid();
    const row = id + s.userField + (purchase ? 'purchase,' : 'view,') + CSV_PRODUCT_PREFIX[product]! + this.ts.format(at) + s.tail;
    this.remember(id);
    if (--s.left === 0) sessions[si] = this.newSession();
    return row;
  }

  private remember(id: string): void {
    if (this.recentIds.length < DUPLICATE_MEMORY) this.recentIds.push(id);
    else this.recentIds[this.recentPos++ % DUPLICATE_MEMORY] = id;
  }

  /**
   * A row with exactly one defect, stamped `at` like a valid row unless the defect is its timestamp (stale
   * and future ones are measured from the file's `now`). It touches no session, so valid purchases never
   * refer to it.
   */
  private badRow(kind: InjectedReason, at: number, now: number): { text: string; eventId: string } {
    const rng = this.rng;
    const p = CATALOG[POPULARITY_TABLE[rng.next() >>> 20]!]!;
    const row: Record<EventColumn, string> = {
      event_id: this.uuid(),
      user_id: this.userId(),
      event_type: 'view',
      product_id: p.id,
      product_name: p.name,
      product_category: p.category,
      price: p.price,
      event_timestamp: this.ts.format(at),
      session_id: this.sessionId(),
      device_type: this.device(),
    };
    const f = COLUMN_NAMES.map((name) => row[name]);
    switch (kind) {
      case 'missing_required':
        f[MISSING_FIELDS[this.missingCursor++ % MISSING_FIELDS.length]!] = '';
        break;
      case 'invalid_event_type':
        f[COL.event_type] = 'click';
        break;
      case 'invalid_device_type':
        f[COL.device_type] = 'smartwatch';
        break;
      case 'invalid_price':
        f[COL.price] = 'abc';
        break;
      case 'negative_price':
        f[COL.price] = '-5.00';
        break;
      case 'invalid_timestamp':
        f[COL.event_timestamp] = 'not-a-time';
        break;
      case 'stale_timestamp':
        f[COL.event_timestamp] = this.ts.format(now - 48 * HOUR_MS);
        break;
      case 'future_timestamp':
        f[COL.event_timestamp] = this.ts.format(now + 2 * HOUR_MS);
        break;
      case 'field_too_long':
        f[COL.product_name] = `${p.name} - Collector's Limited Edition Bundle `.repeat(10).slice(0, 250);
        break;
      case 'wrong_column_count':
        if (this.columnCursor++ % 2 === 0) f.pop();
        else f.push('extra');
        break;
      case 'malformed_csv': {
        // The quote opened in product_name is never closed; it runs to the end of the file.
        const text = `${f.slice(0, COL.product_name).join(',')},"${p.name.replace(/"/g, '')},${csvRecord(f.slice(COL.product_name + 1))}\n`;
        return { text, eventId: row.event_id };
      }
      case 'invalid_encoding':
        // Written as Latin-1 (see generateFile): catalogue names are ASCII, so only the é changes.
        f[COL.product_name] = `Caf\u00e9 ${p.name}`;
        break;
      case 'duplicate_event_id':
        f[COL.event_id] = this.recentIds[rng.int(this.recentIds.length)]!;
        break;
    }
    return { text: `${csvRecord(f)}\n`, eventId: f[COL.event_id]! };
  }
}
