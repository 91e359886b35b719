/**
 * The dashboard's fixed, named reads and the snapshot the page renders. Nothing here takes SQL from
 * the browser: the only input is a window key, looked up in WINDOWS.
 *
 * Every read is of the small `dash_*` aggregate tables that triggers maintain in each batch's own
 * transaction (postgres/migrations/0002_initial.sql), or of stream_batches through its committed_at index;
 * none scans user_events, so a refresh costs the same at ten rows as at ten million. The business figures
 * (aggregates of user_events) are written here; the batch bookkeeping (batches, rejects, timelines) is
 * read through the ledger (src/db/ledger.ts). They run in one read-only REPEATABLE READ transaction, so
 * counters, charts and the batch list agree with each other.
 */
import type pg from 'pg';
import { REASONS, FILE_NOTICE_REASONS, type Reason } from '../contract/event.js';
import {
  batchFileNames,
  batchTimeline,
  epochMsSql as ms,
  latencyTimeline,
  latestBatches,
  recentLatency,
  recentThroughput,
  rejectReasons,
  streamTotals,
  type ChartWindow,
  type LedgerRow as Row,
} from '../db/ledger.js';
import { histogramQuantile } from './latency.js';

/**
 * Chart windows the page offers: length, the step of one plotted point, and which bucket resolution of
 * dash_timeline / dash_latency it reads (5 s buckets for short windows, 1 min buckets for long ones, so
 * even 24 hours is 1,440 rows).
 */
export const WINDOWS = {
  '5m': { seconds: 300, stepSeconds: 5, resSeconds: 5 },
  '15m': { seconds: 900, stepSeconds: 10, resSeconds: 5 },
  '1h': { seconds: 3600, stepSeconds: 60, resSeconds: 60 },
  '6h': { seconds: 21_600, stepSeconds: 180, resSeconds: 60 },
  '24h': { seconds: 86_400, stepSeconds: 600, resSeconds: 60 },
} as const satisfies Record<string, ChartWindow>;
export type WindowKey = keyof typeof WINDOWS;
export const DEFAULT_WINDOW: WindowKey = '5m';

export function parseWindow(value: string | null | undefined): WindowKey | undefined {
  if (value === null || value === undefined || value === '') return DEFAULT_WINDOW;
  return Object.hasOwn(WINDOWS, value) ? (value as WindowKey) : undefined;
}

/** Rate and latency figures in "Now" look back this far. */
const RATE_SECONDS = 60;
const NOW_LATENCY_SECONDS = 300;
export const LATEST_BATCHES = 12;
export const TOP_PRODUCTS = 10;

/** The business figures: aggregates of user_events, and the database's clock. */
const BUSINESS_QUERIES = {
  clock: `SELECT ${ms('now()')} AS now_ms`,
  eventTypes: `
    SELECT event_type, events::float8, priced_events::float8, price_sum::float8, latency_sum_s, latency_n::float8,
           ${ms('max_event_ts')} AS max_event_ms, ${ms('max_inserted_at')} AS max_inserted_ms
    FROM dash_event_types ORDER BY events DESC, event_type`,
  categories: `
    SELECT product_category AS key, events::float8, purchases::float8, revenue::float8
    FROM dash_categories ORDER BY revenue DESC, events DESC, product_category`,
  devices: `
    SELECT device_type AS key, events::float8, purchases::float8, revenue::float8
    FROM dash_devices ORDER BY events DESC, device_type`,
  topProducts: `
    SELECT product_id, product_name, product_category, events::float8, purchases::float8, revenue::float8
    FROM dash_products ORDER BY revenue DESC, purchases DESC, product_id LIMIT ${TOP_PRODUCTS}`,
} as const;

type SnapshotReader = (client: pg.ClientBase, window: ChartWindow) => Promise<Row[]>;

/** A business query as a named statement, prepared once per connection. */
function business(name: keyof typeof BUSINESS_QUERIES): SnapshotReader {
  return async (client) => (await client.query<Row>({ name: `dash_${name}`, text: BUSINESS_QUERIES[name] })).rows;
}

/** Every read of a snapshot, in the order run, by the name `buildSnapshot` finds its rows under. */
const SNAPSHOT_READS = {
  clock: business('clock'),
  eventTypes: business('eventTypes'),
  categories: business('categories'),
  devices: business('devices'),
  topProducts: business('topProducts'),
  rejects: (client) => rejectReasons(client),
  streams: (client) => streamTotals(client),
  timeline: batchTimeline,
  timelineLatency: latencyTimeline,
  recentRate: (client) => recentThroughput(client, RATE_SECONDS),
  recentLatency: (client) => recentLatency(client, NOW_LATENCY_SECONDS),
  batches: (client) => latestBatches(client, LATEST_BATCHES),
} as const satisfies Record<string, SnapshotReader>;
export type SnapshotRead = keyof typeof SNAPSHOT_READS;

export type DbRows = Record<SnapshotRead, Row[]>;

/**
 * Runs every read in one read-only snapshot. Returns the rows and the wall time spent, which is the
 * database time of a refresh plus the local round trips (an upper bound).
 */
export async function readDbRows(client: pg.ClientBase, window: WindowKey): Promise<{ rows: DbRows; elapsedMs: number }> {
  const t0 = performance.now();
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    const rows = {} as DbRows;
    for (const name of Object.keys(SNAPSHOT_READS) as SnapshotRead[]) rows[name] = await SNAPSHOT_READS[name](client, WINDOWS[window]);
    await client.query('COMMIT');
    return { rows, elapsedMs: performance.now() - t0 };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

// ---- The snapshot the page renders (JSON) ----

export type EngineStateName = 'processing' | 'idle' | 'stopped' | 'unknown';

export interface EngineState {
  state: EngineStateName;
  detail: string;
}

export interface RejectExample {
  file: string;
  line: number;
  raw: string | null;
  detail: string | null;
}

export interface Snapshot {
  generatedAtMs: number;
  window: { key: WindowKey; seconds: number; stepSeconds: number; resSeconds: number };
  now: {
    events: number;
    purchases: number;
    revenue: number;
    rejectedRows: number;
    duplicateRows: number;
    rowsPerSecond: number;
    insertedPerSecond: number;
    backlogFiles: number | null;
    newestEventMs: number | null;
    lastCommitMs: number | null;
    batches: number;
    latencyP50Ms: number | null;
    latencyP99Ms: number | null;
    /** The spec's sample query AVG(inserted_at - event_timestamp), from a running sum. */
    avgInsertDelaySeconds: number | null;
    qualityScore: number | null;
    lastQualityScore: number | null;
    engine: EngineState;
  };
  timeline: {
    t: number[];
    rowsPerSecond: number[];
    insertedPerSecond: number[];
    batches: number[];
    durationAvgMs: (number | null)[];
    durationMaxMs: (number | null)[];
    latencyP50Ms: (number | null)[];
    latencyP99Ms: (number | null)[];
  };
  business: {
    eventTypes: { eventType: string; events: number; avgPrice: number | null }[];
    categories: { category: string; events: number; purchases: number; revenue: number }[];
    devices: { device: string; events: number; purchases: number; revenue: number }[];
    topProducts: { productId: string; name: string | null; category: string | null; events: number; purchases: number; revenue: number }[];
  };
  quality: {
    reasons: { reason: string; description: string; kind: 'row' | 'duplicate' | 'notice'; rows: number; lastMs: number | null; examples: RejectExample[] }[];
  };
  batches: {
    streamId: string;
    batchId: number;
    engine: string;
    committedMs: number;
    batchMs: number;
    fileCount: number;
    files: string[];
    inputRows: number;
    insertedRows: number;
    duplicateRows: number;
    rejectedRows: number;
    qualityScore: number | null;
    durationMs: number | null;
    durations: Record<string, number>;
    latencyMinMs: number | null;
    latencyMaxMs: number | null;
  }[];
  streams: { streamId: string; engine: string; batches: number; lastBatchId: number | null; lastCommitMs: number | null }[];
  architecture: boolean;
}

/** What the server knows from outside the database: the landing folder and the engine's checkpoint. */
export interface Surroundings {
  backlogFiles: number | null;
  engine: EngineState;
  architecture: boolean;
}

const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v ?? 0));
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
// Rows come from PostgreSQL (text, numbers, JSON): String() is the text of whatever the column holds.
// eslint-disable-next-line @typescript-eslint/no-base-to-string
const str = (v: unknown): string => (v === null || v === undefined ? '' : String(v));

export function reasonKind(reason: string): 'row' | 'duplicate' | 'notice' {
  if (reason === 'duplicate_event_id') return 'duplicate';
  return (FILE_NOTICE_REASONS as readonly string[]).includes(reason) ? 'notice' : 'row';
}

function qualityReasons(rejects: Row[]): Snapshot['quality']['reasons'] {
  return rejects.map((r) => ({
    reason: str(r.reason),
    description: Object.hasOwn(REASONS, str(r.reason)) ? REASONS[str(r.reason) as Reason] : 'reason code not in the event contract',
    kind: reasonKind(str(r.reason)),
    rows: num(r.rows),
    lastMs: numOrNull(r.last_ms),
    examples: (Array.isArray(r.examples) ? (r.examples as Row[]) : []).map((e) => ({
      file: str(e.file),
      line: num(e.line),
      raw: e.raw === null || e.raw === undefined ? null : str(e.raw),
      detail: e.detail === null || e.detail === undefined ? null : str(e.detail),
    })),
  }));
}

/**
 * The plotted series: one point per step over the whole window, zero rows where nothing committed
 * (that is the truth for throughput) and gaps for duration and latency (there is no batch to measure).
 */
function buildTimeline(rows: DbRows, nowMs: number, { seconds, stepSeconds, resSeconds }: ChartWindow): Snapshot['timeline'] {
  const stepMs = stepSeconds * 1000;
  const first = Math.floor((nowMs - seconds * 1000 - Date.UTC(2000, 0, 1)) / stepMs) * stepMs + Date.UTC(2000, 0, 1);
  const byT = new Map(rows.timeline.map((r) => [num(r.t), r]));
  const hists = new Map<number, Map<number, number>>();
  for (const r of rows.timelineLatency) {
    const t = num(r.t);
    let h = hists.get(t);
    if (!h) hists.set(t, (h = new Map<number, number>()));
    h.set(num(r.idx), num(r.files));
  }
  const timeline: Snapshot['timeline'] = {
    t: [],
    rowsPerSecond: [],
    insertedPerSecond: [],
    batches: [],
    durationAvgMs: [],
    durationMaxMs: [],
    latencyP50Ms: [],
    latencyP99Ms: [],
  };
  for (let t = first; t <= nowMs; t += stepMs) {
    const r = byT.get(t);
    // The newest step is still filling: rate over the time it has run so far (at least one 5 s bucket).
    const spanS = t + stepMs > nowMs ? Math.max(resSeconds, (nowMs - t) / 1000) : stepSeconds;
    const batches = num(r?.batches);
    timeline.t.push(t / 1000);
    timeline.rowsPerSecond.push(num(r?.input_rows) / spanS);
    timeline.insertedPerSecond.push(num(r?.inserted_rows) / spanS);
    timeline.batches.push(batches);
    timeline.durationAvgMs.push(batches > 0 ? num(r?.duration_ms_sum) / batches : null);
    timeline.durationMaxMs.push(batches > 0 ? num(r?.duration_ms_max) : null);
    const h = hists.get(t);
    timeline.latencyP50Ms.push(h ? histogramQuantile(h, 0.5) : null);
    timeline.latencyP99Ms.push(h ? histogramQuantile(h, 0.99) : null);
  }
  return timeline;
}

function businessFigures(rows: DbRows): Snapshot['business'] {
  return {
    eventTypes: rows.eventTypes.map((r) => ({
      eventType: str(r.event_type),
      events: num(r.events),
      avgPrice: num(r.priced_events) > 0 ? num(r.price_sum) / num(r.priced_events) : null,
    })),
    categories: rows.categories.map((r) => ({ category: str(r.key), events: num(r.events), purchases: num(r.purchases), revenue: num(r.revenue) })),
    devices: rows.devices.map((r) => ({ device: str(r.key), events: num(r.events), purchases: num(r.purchases), revenue: num(r.revenue) })),
    topProducts: rows.topProducts.map((r) => ({
      productId: str(r.product_id),
      name: r.product_name === null ? null : str(r.product_name),
      category: r.product_category === null ? null : str(r.product_category),
      events: num(r.events),
      purchases: num(r.purchases),
      revenue: num(r.revenue),
    })),
  };
}

function batchRow(r: Row): Snapshot['batches'][number] {
  const committed = num(r.committed_ms);
  const durations: Record<string, number> = {};
  if (r.durations_ms && typeof r.durations_ms === 'object') {
    for (const [k, v] of Object.entries(r.durations_ms as Row)) if (typeof v === 'number') durations[k] = v;
  }
  return {
    streamId: str(r.stream_id),
    batchId: num(r.batch_id),
    engine: str(r.engine),
    committedMs: committed,
    batchMs: num(r.batch_ms),
    fileCount: num(r.file_count),
    files: batchFileNames(r.files),
    inputRows: num(r.input_rows),
    insertedRows: num(r.inserted_rows),
    duplicateRows: num(r.duplicate_rows),
    rejectedRows: num(r.rejected_rows),
    qualityScore: numOrNull(r.quality_score),
    durationMs: numOrNull(r.duration_ms),
    durations,
    latencyMinMs: r.newest_mtime_ms === null ? null : committed - num(r.newest_mtime_ms),
    latencyMaxMs: r.oldest_mtime_ms === null ? null : committed - num(r.oldest_mtime_ms),
  };
}

/** The "Now" figures: totals, the last minute's rates, the last five minutes' latency. */
function nowFigures(rows: DbRows, reasons: Snapshot['quality']['reasons'], around: Surroundings): Snapshot['now'] {
  const types = rows.eventTypes;
  const purchase = types.find((r) => r.event_type === 'purchase');
  const latencyN = types.reduce((s, r) => s + num(r.latency_n), 0);
  const latencySum = types.reduce((s, r) => s + num(r.latency_sum_s), 0);
  const newest = (list: Row[], col: string): number | null =>
    list.reduce<number | null>((m, r) => (r[col] === null ? m : Math.max(m ?? -Infinity, num(r[col]))), null);
  const streams = rows.streams;
  const qualityRows = streams.reduce((s, r) => s + num(r.quality_rows), 0);
  const qualitySum = streams.reduce((s, r) => s + num(r.quality_sum), 0);
  const latestBatch = rows.batches[0];
  const recentHist = new Map<number, number>(rows.recentLatency.map((r) => [num(r.idx), num(r.files)]));
  const rate = rows.recentRate[0];
  return {
    events: types.reduce((s, r) => s + num(r.events), 0),
    purchases: num(purchase?.events),
    revenue: num(purchase?.price_sum),
    rejectedRows: reasons.filter((r) => r.kind === 'row').reduce((s, r) => s + r.rows, 0),
    duplicateRows: reasons.filter((r) => r.kind === 'duplicate').reduce((s, r) => s + r.rows, 0),
    rowsPerSecond: num(rate?.input_rows) / RATE_SECONDS,
    insertedPerSecond: num(rate?.inserted_rows) / RATE_SECONDS,
    backlogFiles: around.backlogFiles,
    newestEventMs: newest(types, 'max_event_ms'),
    lastCommitMs: newest(streams, 'last_ms'),
    batches: streams.reduce((s, r) => s + num(r.batches), 0),
    latencyP50Ms: histogramQuantile(recentHist, 0.5),
    latencyP99Ms: histogramQuantile(recentHist, 0.99),
    avgInsertDelaySeconds: latencyN > 0 ? latencySum / latencyN : null,
    qualityScore: qualityRows > 0 ? qualitySum / qualityRows : null,
    lastQualityScore: latestBatch ? numOrNull(latestBatch.quality_score) : null,
    engine: around.engine,
  };
}

export function buildSnapshot(rows: DbRows, window: WindowKey, around: Surroundings): Snapshot {
  const nowMs = num(rows.clock[0]?.now_ms);
  const { seconds, stepSeconds, resSeconds } = WINDOWS[window];
  const reasons = qualityReasons(rows.rejects);
  return {
    generatedAtMs: nowMs,
    window: { key: window, seconds, stepSeconds, resSeconds },
    now: nowFigures(rows, reasons, around),
    timeline: buildTimeline(rows, nowMs, WINDOWS[window]),
    business: businessFigures(rows),
    quality: { reasons },
    batches: rows.batches.map(batchRow),
    streams: rows.streams.map((r) => ({
      streamId: str(r.stream_id),
      engine: str(r.engine),
      batches: num(r.batches),
      lastBatchId: numOrNull(r.last_batch_id),
      lastCommitMs: numOrNull(r.last_ms),
    })),
    architecture: around.architecture,
  };
}
