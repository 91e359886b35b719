/**
 * The three write paths of a batch (the protocol is in src/sink/postgres.ts): `directPath`, COPY straight
 * into the contract's table; `stagingPath`, when a row's key is already stored; `isolationPath`, when
 * the server refused a row. Each reads the batch afresh through the BatchSource port and says which valid
 * rows it did not store, so the caller counts the batch and scores it once.
 */
import type pg from 'pg';
import type { ContractSpec } from '../contract/schema.js';
import { renderDetail } from '../contract/detail.js';
import type { ReadStats } from '../contract/records.js';
import { describePgError, isDataError } from '../db/errors.js';
import { EcomstreamError } from '../errors.js';
import { insertReject, REJECT_COLUMNS } from '../db/ledger.js';
import { CopyEncoder, STAGING_TAIL, copyInto, stagedOrigin } from './copy.js';
import type { BatchSource } from './port.js';
import type { RejectBuffer } from './rejects.js';

/** The SQL names the sink writes a contract's rows with, quoted, and its duplicate reason. */
export interface Target {
  table: string;
  columns: string;
  key: string;
  /** The key's position among the columns (a field of a COPY line). */
  keyIndex: number;
  duplicateReason: string;
  /** The stored-duplicate detail template around its {value}. */
  storedDetail: [string, string];
  /** The in-batch duplicate detail template around its {value}. */
  inBatchDetail: [string, string];
  /** The contract's engine.refusedByDatabase: a row PostgreSQL refused. */
  refused: ContractSpec['engine']['refusedByDatabase'];
}

export function sinkTarget(spec: ContractSpec): Target {
  const q = (name: string): string => `"${name.replace(/"/g, '""')}"`;
  const dup = spec.reader.duplicate;
  const aroundValue = (template: string): [string, string] => {
    const [before, after] = template.replace('{column}', spec.conflictKey).split('{value}') as [string, string | undefined];
    return [before, after ?? ''];
  };
  return {
    table: q(spec.table),
    columns: spec.columns.map((c) => q(c.name)).join(', '),
    key: q(spec.conflictKey),
    keyIndex: spec.columns.findIndex((c) => c.name === spec.conflictKey),
    duplicateReason: dup.reason,
    storedDetail: aroundValue(dup.detailStored),
    inBatchDetail: aroundValue(dup.detailInBatch),
    refused: spec.engine.refusedByDatabase,
  };
}

/** Valid rows a path did not store, and their quality scores' sum (which the batch's score must not count). */
export interface RowTally {
  rows: number;
  quality: number;
}

/** What a path did with the batch: the reader's stats, and the valid rows it moved out of "stored". */
export interface PathOutcome {
  read: ReadStats;
  /** Repeats of an earlier row of the batch, found in SQL: duplicates. */
  later: RowTally;
  /** Rows the server refused: rejected. */
  refused: RowTally;
  /** Rows whose key was already stored: duplicates (when reprocessing: already present). */
  conflicts: RowTally;
  /**
   * Rows the server neither stored nor refused: a BEFORE INSERT trigger an operator added returned NULL
   * for them. Counted nowhere (the Spark job does the same) and left out of the quality score.
   */
  skipped: RowTally;
}

/** The fast path's COPY stored fewer rows than it sent: a trigger skipped some. Redo through staging to learn which. */
export class RowsSkipped extends EcomstreamError {}

/** Where a path writes, what it reads, where its rejects go; `reprocess` and the failure hook. */
export interface PathContext {
  client: pg.PoolClient;
  streamId: string;
  batchId: number;
  target: Target;
  source: BatchSource;
  rejects: RejectBuffer;
  reprocess: boolean;
  duringCopy?(): void;
}

const none = (): RowTally => ({ rows: 0, quality: 0 });

/** The fast path: one COPY of every valid row straight into the contract's table. */
export async function directPath(c: PathContext): Promise<PathOutcome> {
  const t = c.target;
  let chunks = 0;
  let stored = 0;
  const read = await copyInto(
    c.client,
    `COPY ${t.table} (${t.columns}) FROM STDIN`,
    (write) =>
      c.source.read(
        new CopyEncoder(false, async (lines) => {
          if (chunks++ === 1) c.duringCopy?.();
          await write(lines.join(''));
        }),
        (r) => c.rejects.add(r),
      ),
    (rows) => (stored = rows),
  );
  if (stored < read.validRows) throw new RowsSkipped(`${read.validRows - stored} rows were skipped by a trigger on ${t.table}`, { batch: c.batchId });
  return { read, later: none(), refused: none(), conflicts: none(), skipped: none() };
}

const stagingColumns = (t: Target): string => `${t.columns}, ${STAGING_TAIL.join(', ')}`;
const createStaging = (t: Target): string =>
  `CREATE TEMP TABLE IF NOT EXISTS batch_staging (LIKE ${t.table} INCLUDING DEFAULTS, row_quality DOUBLE PRECISION, source_file TEXT, line_number INTEGER, raw_line TEXT) ON COMMIT DROP`;
/** The keys of the rows the isolation path staged so far, as text: what "earlier in this batch" means across its chunks. */
const CREATE_BATCH_KEYS = 'CREATE TEMP TABLE IF NOT EXISTS batch_keys (key TEXT PRIMARY KEY) ON COMMIT DROP';
/** Rows per isolation chunk: small enough that halving to the culprit takes few round trips. */
const ISOLATION_CHUNK_ROWS = 512;

/**
 * The exact in-batch check behind the reader's bounded key set: staged rows whose key occurs earlier in
 * batch_staging (ctid order is line order: COPY filled a fresh table) — or, with `acrossChunks`, in
 * batch_keys — become the contract's in-batch duplicate rejects and leave the staging table. The first
 * occurrence stays, so it wins as it does in the reader. Only keys that occur twice are ranked.
 */
async function rejectLaterOccurrences(c: PathContext, acrossChunks: boolean): Promise<RowTally> {
  const { key: k, duplicateReason, inBatchDetail } = c.target;
  const res = await c.client.query<{ n: string; q: number | null }>(
    `WITH later AS (
       DELETE FROM batch_staging s
       WHERE s.ctid IN (
           SELECT ctid FROM (
             SELECT ctid, row_number() OVER (PARTITION BY ${k} ORDER BY ctid) AS rn FROM batch_staging
             WHERE ${k} IN (SELECT ${k} FROM batch_staging GROUP BY ${k} HAVING count(*) > 1)) r
           WHERE rn > 1)
         ${acrossChunks ? `OR EXISTS (SELECT 1 FROM batch_keys b WHERE b.key = s.${k}::text)` : ''}
       RETURNING s.${k} AS key, s.row_quality, s.source_file, s.line_number, s.raw_line),
     rejected AS (
       INSERT INTO rejected_events (${REJECT_COLUMNS})
       SELECT $1, $2, source_file, line_number, raw_line, $3, $4 || key || $5 FROM later)
     SELECT count(*) AS n, sum(row_quality) AS q FROM later`,
    [c.streamId, c.batchId, duplicateReason, ...inBatchDetail],
  );
  return { rows: Number(res.rows[0]!.n), quality: res.rows[0]!.q ?? 0 };
}

interface Figures {
  n: string;
  q: number | null;
  skipped_n: string;
  skipped_q: number | null;
}

/**
 * Moves staged rows into the contract's table (in line order: COPY filled a fresh temp table). A row
 * not stored whose key was stored before (every part of one WITH sees the table as it was) is a
 * conflict and, unless reprocessing, becomes the contract's duplicate reject; any other row not stored
 * was skipped by a trigger.
 */
async function mergeStaging(c: PathContext): Promise<{ conflicts: RowTally; skipped: RowTally }> {
  const t = c.target;
  const missing = `WITH ins AS (
       INSERT INTO ${t.table} (${t.columns}) SELECT ${t.columns} FROM batch_staging ORDER BY ctid
       ON CONFLICT (${t.key}) DO NOTHING RETURNING ${t.key}),
     missing AS (
       SELECT s.*, EXISTS (SELECT 1 FROM ${t.table} d WHERE d.${t.key} = s.${t.key}) AS stored_before
       FROM batch_staging s WHERE NOT EXISTS (SELECT 1 FROM ins WHERE ins.${t.key} = s.${t.key}))`;
  const figures = `SELECT count(*) FILTER (WHERE stored_before) AS n, sum(row_quality) FILTER (WHERE stored_before) AS q,
       count(*) FILTER (WHERE NOT stored_before) AS skipped_n, sum(row_quality) FILTER (WHERE NOT stored_before) AS skipped_q FROM missing`;
  // Already stored is expected when a file is read again: count those rows, reject none of them.
  const res = c.reprocess
    ? await c.client.query<Figures>(`${missing} ${figures}`)
    : await c.client.query<Figures>(
        `${missing},
         rejected AS (
           INSERT INTO rejected_events (${REJECT_COLUMNS})
           SELECT $1, $2, source_file, line_number, raw_line, $3, $4 || ${t.key} || $5 FROM missing WHERE stored_before)
         ${figures}`,
        [c.streamId, c.batchId, t.duplicateReason, ...t.storedDetail],
      );
  const r = res.rows[0]!;
  return { conflicts: { rows: Number(r.n), quality: r.q ?? 0 }, skipped: { rows: Number(r.skipped_n), quality: r.skipped_q ?? 0 } };
}

/** The staging path: every valid row through batch_staging and ON CONFLICT. */
export async function stagingPath(c: PathContext): Promise<PathOutcome> {
  const t = c.target;
  await c.client.query(createStaging(t));
  const read = await copyInto(c.client, `COPY batch_staging (${stagingColumns(t)}) FROM STDIN`, (write) =>
    c.source.read(new CopyEncoder(true, (lines) => write(lines.join(''))), (r) => c.rejects.add(r)),
  );
  const later = read.uncheckedKeys > 0 ? await rejectLaterOccurrences(c, false) : none();
  return { read, later, refused: none(), ...(await mergeStaging(c)) };
}

/** The isolation path: chunks under savepoints, halved on a data error down to the rows at fault. */
export async function isolationPath(c: PathContext): Promise<PathOutcome> {
  const t = c.target;
  await c.client.query(createStaging(t));
  await c.client.query(CREATE_BATCH_KEYS);
  const out: PathOutcome = { read: undefined as unknown as ReadStats, later: none(), refused: none(), conflicts: none(), skipped: none() };
  const tryRows = async (rows: string[]): Promise<void> => {
    await c.client.query('SAVEPOINT isolate');
    try {
      await copyInto(c.client, `COPY batch_staging (${stagingColumns(t)}) FROM STDIN`, async (write) => write(rows.join('')));
      const chunkLater = await rejectLaterOccurrences(c, true);
      await c.client.query(`INSERT INTO batch_keys SELECT ${t.key}::text FROM batch_staging ON CONFLICT DO NOTHING`);
      const merged = await mergeStaging(c);
      await c.client.query('TRUNCATE batch_staging');
      await c.client.query('RELEASE SAVEPOINT isolate');
      add(out.later, chunkLater);
      add(out.conflicts, merged.conflicts);
      add(out.skipped, merged.skipped);
    } catch (err) {
      if (!isDataError(err)) throw err;
      await c.client.query('ROLLBACK TO SAVEPOINT isolate');
      await c.client.query('RELEASE SAVEPOINT isolate');
      if (rows.length > 1) {
        const half = rows.length >> 1;
        await tryRows(rows.slice(0, half));
        await tryRows(rows.slice(half));
        return;
      }
      await rejectOne(c, rows[0]!, err, out);
    }
  };
  let pending: string[] = [];
  const encoder = new CopyEncoder(true, async (lines) => {
    for (const line of lines) {
      pending.push(line);
      if (pending.length === ISOLATION_CHUNK_ROWS) {
        const rows = pending;
        pending = [];
        await tryRows(rows);
      }
    }
  });
  out.read = await c.source.read(encoder, (r) => c.rejects.add(r));
  if (pending.length) await tryRows(pending);
  return out;
}

/** The row at fault, alone: a repeat of an earlier row the reader let through, or a row the server refused. */
async function rejectOne(c: PathContext, line: string, err: unknown, out: PathOutcome): Promise<void> {
  const t = c.target;
  const origin = stagedOrigin(line.slice(0, -1), t.keyIndex);
  // The reader lets a key through that it had no room for; a refused row may repeat an earlier one.
  const seen = await c.client.query('INSERT INTO batch_keys VALUES ($1) ON CONFLICT DO NOTHING', [origin.key]);
  const tally = seen.rowCount === 0 ? out.later : out.refused;
  add(tally, { rows: 1, quality: origin.quality });
  if (seen.rowCount === 0) {
    const detail = `${t.inBatchDetail[0]}${origin.key}${t.inBatchDetail[1]}`;
    await insertReject(c.client, c.streamId, c.batchId, { ...origin, reason: t.duplicateReason, detail });
    return;
  }
  c.rejects.add({ ...origin, reason: t.refused.reason, detail: renderDetail(t.refused.detail, { error: describePgError(err) }) });
}

function add(into: RowTally, x: RowTally): void {
  into.rows += x.rows;
  into.quality += x.quality;
}
