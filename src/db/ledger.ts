/**
 * The ledger: every statement on the bookkeeping tables, stream_batches (one row per committed batch)
 * and rejected_events (the rows and file notices a batch did not store), one exported function per
 * statement. The write paths' statements on the contract's own table and its staging tables stay with
 * them (src/sink/paths.ts).
 */
import type pg from 'pg';
import type { BatchCounts, RejectRecord } from '../contract/records.js';

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
