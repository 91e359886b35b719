/**
 * The ledger: every statement on the batch bookkeeping — `stream_batches` (one row per committed batch),
 * `rejected_events` (the rows and file notices a batch did not store) and the dash_* aggregates their
 * triggers maintain (postgres/migrations/0002_initial.sql) — one exported function per statement.
 * Callers bring a connected client and get rows; none of them writes SQL on these tables. The write
 * paths' statements on the contract's own table and its staging tables stay with them
 * (src/sink/paths.ts). spark/ecomstream_spark/ledger.py is the Spark job's counterpart.
 */
import type pg from 'pg';
import type { BatchCounts, RejectRecord } from '../contract/records.js';

/** A result row as pg returns it. */
export type LedgerRow = Record<string, unknown>;

/** `col` (a timestamptz) as epoch milliseconds, a float8 (shared by every dashboard read). */
export function epochMsSql(col: string): string {
  return `(extract(epoch FROM ${col}) * 1000)::float8`;
}

/** stream_batches.files when it is a JSON array, else an empty one (a hand-written row may hold anything). */
const filesArray = (col: string): string => `(CASE WHEN jsonb_typeof(${col}) = 'array' THEN ${col} ELSE '[]' END)`;

/**
 * The file names of a stream_batches.files value: the TypeScript engine records `{ name, size, mtimeMs }`
 * objects, the Spark job may record plain names; anything else is no name.
 */
export function batchFileNames(files: unknown): string[] {
  if (!Array.isArray(files)) return [];
  return files.map((f: unknown) => {
    const name = typeof f === 'string' ? f : (f as { name?: unknown } | null | undefined)?.name;
    return typeof name === 'string' ? name : '';
  });
}

// --- the batch path ---

/** rejected_events.source_file is VARCHAR(500): a longer file name is clipped rather than failing the batch. */
export const SOURCE_FILE_CHARS = 500;

/** The columns a reject row is written with, in the order of `insertReject` and of `COPY_REJECTS`' lines. */
export const REJECT_COLUMNS = 'stream_id, batch_id, source_file, line_number, raw_line, reason, detail';

/** The COPY that writes a batch's buffered reject rows (src/sink/rejects.ts encodes them). */
export const COPY_REJECTS = `COPY rejected_events (${REJECT_COLUMNS}) FROM STDIN`;

/** What stream_batches records of a committed batch. */
export interface BatchRecord {
  streamId: string;
  batchId: number;
  engine: string;
  files: readonly { name: string; size: number; mtimeMs: number }[];
  batchTimestampMs: number;
  counts: BatchCounts;
  qualityScore: number | null;
  /** Phase durations (ms), named as in the progress record. */
  durationsMs: Readonly<Record<string, number>>;
}

/** Whether stream_batches already holds the batch (a replay after a crash between the database commit and commits/N). */
export async function isBatchRecorded(client: pg.ClientBase, streamId: string, batchId: number): Promise<boolean> {
  const res = await client.query('SELECT 1 FROM stream_batches WHERE stream_id = $1 AND batch_id = $2', [streamId, batchId]);
  return (res.rowCount ?? 0) > 0;
}

/** Inserts the batch's stream_batches row, the last statement before COMMIT. */
export async function recordBatch(client: pg.ClientBase, b: BatchRecord): Promise<void> {
  const mtimes = b.files.map((f) => f.mtimeMs);
  await client.query(
    `INSERT INTO stream_batches (stream_id, batch_id, engine, files, batch_timestamp, input_rows, inserted_rows,
       duplicate_rows, rejected_rows, quality_score, oldest_file_mtime, newest_file_mtime, durations_ms)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
    [
      b.streamId,
      b.batchId,
      b.engine,
      JSON.stringify(b.files),
      new Date(b.batchTimestampMs),
      b.counts.inputRows,
      b.counts.insertedRows,
      b.counts.duplicateRows,
      b.counts.rejectedRows,
      b.qualityScore,
      mtimes.length ? new Date(Math.min(...mtimes)) : null,
      mtimes.length ? new Date(Math.max(...mtimes)) : null,
      JSON.stringify(b.durationsMs),
    ],
  );
}

/** Reprocessing: deletes the stream's earlier reject rows of these files (the batch writes their new outcome). */
export async function forgetFileRejects(client: pg.ClientBase, streamId: string, files: readonly { name: string }[]): Promise<void> {
  await client.query('DELETE FROM rejected_events WHERE stream_id = $1 AND source_file = ANY($2::text[])', [
    streamId,
    files.map((f) => f.name.slice(0, SOURCE_FILE_CHARS)),
  ]);
}

/** Inserts one reject row (the isolation path's repeats, found one row at a time). */
export async function insertReject(client: pg.ClientBase, streamId: string, batchId: number, r: RejectRecord): Promise<void> {
  await client.query(`INSERT INTO rejected_events (${REJECT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)`, [
    streamId,
    batchId,
    r.file.slice(0, SOURCE_FILE_CHARS),
    r.line,
    r.raw,
    r.reason,
    r.detail,
  ]);
}

/** The streams other than `exceptStream` that recorded one of these files (same name, size and whole-ms mtime). */
export async function streamsHoldingFiles(
  client: pg.ClientBase,
  files: readonly { name: string; size: number; mtime: number }[],
  exceptStream: string,
): Promise<{ streamId: string; batches: number; files: number }[]> {
  const { rows } = await client.query<{ stream_id: string; batches: string; files: string }>(
    `SELECT stream_id, count(DISTINCT batch_id) AS batches, count(*) AS files
     FROM stream_batches b, jsonb_array_elements(b.files) f,
          unnest($1::text[], $2::bigint[], $3::bigint[]) AS here(name, size, mtime)
     WHERE f->>'name' = here.name AND (f->>'size')::bigint = here.size AND floor((f->>'mtimeMs')::float8)::bigint = here.mtime
       AND b.stream_id <> $4
     GROUP BY stream_id ORDER BY count(*) DESC`,
    [files.map((f) => f.name), files.map((f) => f.size), files.map((f) => f.mtime), exceptStream],
  );
  return rows.map((r) => ({ streamId: r.stream_id, batches: Number(r.batches), files: Number(r.files) }));
}

// --- checkpoint verify ---

/** Every batch stream_batches recorded for `streamId`, in batch order: its id and file names. */
export async function recordedBatches(client: pg.ClientBase, streamId: string): Promise<{ batchId: number; files: string[] }[]> {
  const { rows } = await client.query<{ batch_id: string; files: unknown }>(
    'SELECT batch_id, files FROM stream_batches WHERE stream_id = $1 ORDER BY batch_id',
    [streamId],
  );
  return rows.map((r) => ({ batchId: Number(r.batch_id), files: batchFileNames(r.files) }));
}

// --- the dashboard's reads ---

/** The trigger on stream_batches NOTIFYs this channel when a batch commits. */
export const BATCH_CHANNEL = 'ecomstream_batches';

/** A chart window: its length, the step of one plotted point, and the dash_* bucket resolution read. */
export interface ChartWindow {
  seconds: number;
  stepSeconds: number;
  resSeconds: number;
}

const ORIGIN = `TIMESTAMPTZ '2000-01-01 00:00:00+00'`;
const ms = epochMsSql;

/** Runs one dashboard read as a named (prepared once per connection) statement. */
async function read(client: pg.ClientBase, name: string, text: string, values: unknown[] = []): Promise<LedgerRow[]> {
  return (await client.query<LedgerRow>({ name: `dash_${name}`, text, values })).rows;
}

const windowValues = (w: ChartWindow): number[] => [w.seconds, w.stepSeconds, w.resSeconds];

/** Starts listening on BATCH_CHANNEL on `client`. */
export async function listenForBatches(client: pg.ClientBase): Promise<void> {
  await client.query(`LISTEN ${BATCH_CHANNEL}`);
}

/** Rejected rows per reason code, with the last time and a few examples (dash_rejects). */
export function rejectReasons(client: pg.ClientBase): Promise<LedgerRow[]> {
  return read(
    client,
    'rejects',
    `SELECT reason, rows::float8, ${ms('last_rejected_at')} AS last_ms, examples
     FROM dash_rejects ORDER BY rows DESC, reason`,
  );
}

/** Totals per stream, newest first, at most 20 streams (dash_streams). */
export function streamTotals(client: pg.ClientBase): Promise<LedgerRow[]> {
  return read(
    client,
    'streams',
    `SELECT stream_id, engine, batches::float8, files::float8, input_rows::float8, inserted_rows::float8,
            duplicate_rows::float8, rejected_rows::float8, quality_sum::float8, quality_rows::float8,
            last_batch_id::float8, ${ms('first_committed_at')} AS first_ms, ${ms('last_committed_at')} AS last_ms
     FROM dash_streams ORDER BY last_committed_at DESC NULLS LAST LIMIT 20`,
  );
}

/**
 * Batches, files, rows and batch durations per plotted step of `w` (dash_timeline). Groups first and
 * converts to epoch milliseconds per plotted point after: per-row numeric arithmetic was most of the cost.
 */
export function batchTimeline(client: pg.ClientBase, w: ChartWindow): Promise<LedgerRow[]> {
  return read(
    client,
    'timeline',
    `SELECT ${ms('t')} AS t, batches, files, input_rows, inserted_rows, duration_ms_sum, duration_ms_max
     FROM (SELECT date_bin(make_interval(secs => $2::float8), bucket, ${ORIGIN}) AS t,
                  sum(batches)::float8 AS batches, sum(files)::float8 AS files, sum(input_rows)::float8 AS input_rows,
                  sum(inserted_rows)::float8 AS inserted_rows, sum(duration_ms_sum)::float8 AS duration_ms_sum,
                  max(duration_ms_max)::float8 AS duration_ms_max
           FROM dash_timeline
           WHERE res_s = $3::smallint
             AND bucket >= date_bin(make_interval(secs => $2::float8), now() - make_interval(secs => $1::float8), ${ORIGIN})
           GROUP BY 1) AS g
     ORDER BY 1`,
    windowValues(w),
  );
}

/** The publish-to-commit latency histogram of files per plotted step of `w` (dash_latency). */
export function latencyTimeline(client: pg.ClientBase, w: ChartWindow): Promise<LedgerRow[]> {
  return read(
    client,
    'timelineLatency',
    `SELECT ${ms('t')} AS t, idx, files
     FROM (SELECT date_bin(make_interval(secs => $2::float8), bucket, ${ORIGIN}) AS t, idx, sum(files)::float8 AS files
           FROM dash_latency
           WHERE res_s = $3::smallint
             AND bucket >= date_bin(make_interval(secs => $2::float8), now() - make_interval(secs => $1::float8), ${ORIGIN})
           GROUP BY 1, 2) AS g`,
    windowValues(w),
  );
}

/** Input and inserted rows of the batches committed in the last `seconds` (dash_timeline, 5 s buckets). */
export function recentThroughput(client: pg.ClientBase, seconds: number): Promise<LedgerRow[]> {
  return read(
    client,
    'recentRate',
    `SELECT coalesce(sum(input_rows), 0)::float8 AS input_rows, coalesce(sum(inserted_rows), 0)::float8 AS inserted_rows
     FROM dash_timeline WHERE res_s = 5 AND bucket > now() - make_interval(secs => $1::float8)`,
    [seconds],
  );
}

/** The latency histogram of the files committed in the last `seconds` (dash_latency, 5 s buckets). */
export function recentLatency(client: pg.ClientBase, seconds: number): Promise<LedgerRow[]> {
  return read(
    client,
    'recentLatency',
    `SELECT idx, sum(files)::float8 AS files
     FROM dash_latency WHERE res_s = 5 AND bucket > now() - make_interval(secs => $1::float8) GROUP BY idx`,
    [seconds],
  );
}

/** The `limit` batches committed last, newest first, with their first five files (stream_batches). */
export function latestBatches(client: pg.ClientBase, limit: number): Promise<LedgerRow[]> {
  return read(
    client,
    'batches',
    `SELECT stream_id, batch_id::float8, engine, dash_file_count(files)::float8 AS file_count,
            jsonb_path_query_array(${filesArray('files')}, '$[0 to 4]') AS files,
            ${ms('batch_timestamp')} AS batch_ms, input_rows::float8, inserted_rows::float8, duplicate_rows::float8,
            rejected_rows::float8, quality_score::float8, ${ms('oldest_file_mtime')} AS oldest_mtime_ms,
            ${ms('newest_file_mtime')} AS newest_mtime_ms, durations_ms, ${ms('committed_at')} AS committed_ms,
            dash_batch_ms(durations_ms, batch_timestamp, committed_at) AS duration_ms
     FROM stream_batches ORDER BY committed_at DESC LIMIT $1`,
    [limit],
  );
}

/** A committed batch's files, for telling the files that wait from those already processed. */
export interface CommittedFiles {
  committedMs: number;
  names: string[];
  /** The mtime of the batch's newest file; null when not recorded. */
  newestMs: number | null;
}

/** At most `limit` batches committed after `sinceMs` (epoch ms), newest first, through the committed_at index. */
export async function committedFilesSince(client: pg.ClientBase, sinceMs: number, limit: number): Promise<CommittedFiles[]> {
  const { rows } = await client.query<{ committed_ms: number; names: unknown; newest_ms: number | null }>(
    `SELECT ${ms('committed_at')} AS committed_ms,
            jsonb_path_query_array(${filesArray('files')}, '$[*]') AS names,
            ${ms('newest_file_mtime')} AS newest_ms
     FROM stream_batches
     WHERE committed_at > to_timestamp($1::float8 / 1000)
     ORDER BY committed_at DESC
     LIMIT $2`,
    [sinceMs, limit],
  );
  return rows.map((r) => ({ committedMs: r.committed_ms, names: batchFileNames(r.names), newestMs: r.newest_ms }));
}
