/**
 * The PostgreSQL sink: one transaction per micro-batch, idempotent by (stream id, batch id).
 *
 *   BEGIN
 *   this engine's epoch still the stream's newest?      (src/db/epoch.ts; the row stays locked to COMMIT)
 *                                      -> else FencedError: ROLLBACK, the engine stops; nothing written
 *   batch already in stream_batches?  -> ROLLBACK, report "already committed" (a replay after a crash
 *                                         between the database commit and commits/N)
 *   SAVEPOINT; COPY valid rows straight into the contract's table  (the fast path)
 *     unique violation (a row stored by an earlier batch, or a repeat the reader's bounded key set
 *     could not see)?
 *     -> ROLLBACK TO SAVEPOINT; COPY into a temporary staging table; when the reader let keys through
 *        unchecked, rows repeating an earlier row's key (ranked by line order) become in-batch
 *        duplicate rejects; INSERT ... ON CONFLICT (conflict key) DO NOTHING, and the rows that
 *        conflicted become the contract's duplicate rejects
 *     the server refused a row for a data reason (SQLSTATE class 22/23: a value it will not take, a
 *     constraint an operator added), on either path?
 *     -> ROLLBACK TO SAVEPOINT; isolation: the rows go in chunks, each under its own savepoint through
 *        staging + ON CONFLICT; a chunk that fails is halved until the rows at fault are found, and
 *        each of those becomes a rejected_by_database reject with the server's message. No single
 *        row can fail a batch, so no batch can be replayed forever.
 *   COPY rejected rows into rejected_events
 *   INSERT the batch record into stream_batches
 *   COMMIT
 *
 * Every client is used through `withClient`, so a connection that breaks mid-COPY is a retryable
 * ConnectionLostError for the engine, never an unhandled 'error' event.
 *
 * The sink depends on src/contract/ (what to write where) and src/db/ only: the engine hands it the
 * batch's rows as a function it may call again, and hooks for the failure-injection points.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { EVENT_CONTRACT } from '../contract/event.js';
import type { ContractSpec } from '../contract/schema.js';
import { copyEscape, copyUnescape } from './copy-text.js';
import { qualityScore } from '../contract/batch.js';
import { EcomstreamError } from '../errors.js';
import { describePgError, isDataError, withClient } from '../db/errors.js';
import { checkEpoch } from '../db/epoch.js';
import { renderDetail } from '../engine/validate.js';

const REJECT_COLUMNS = 'stream_id, batch_id, source_file, line_number, raw_line, reason, detail';
const SOURCE_FILE_CHARS = 500;

/** A rejected row or file notice, as rejected_events stores it. */
export interface RejectRecord {
  file: string;
  /** 1-based line number; 0 for a file-level notice. */
  line: number;
  raw: string | null;
  /** A reason code of the contract. */
  reason: string;
  detail: string;
}

/** What producing the batch's rows found; the sink records it in stream_batches. */
export interface ScanStats {
  /** Data lines read (header and blank lines excluded). */
  inputRows: number;
  validRows: number;
  /** Rule violations and malformed lines (not duplicates, not file notices). */
  rejectedRows: number;
  duplicateRows: number;
  notices: number;
  qualitySum: number;
  bytes: number;
  /**
   * Valid rows whose key the reader could not check against the batch's earlier rows: its key set had
   * spent its memory budget (src/engine/event-id-set.ts). The sink then finds their repeats in SQL.
   */
  uncheckedKeys: number;
  /** The most memory the reader's key set held (bytes). */
  keySetPeakBytes: number;
}

export function emptyScanStats(): ScanStats {
  return { inputRows: 0, validRows: 0, rejectedRows: 0, duplicateRows: 0, notices: 0, qualitySum: 0, bytes: 0, uncheckedKeys: 0, keySetPeakBytes: 0 };
}

/**
 * `direct`: COPY lines of the contract's columns. `staging`: the same plus the row's quality score, source
 * file, line number and raw line, for the fallback that must report which rows were duplicates.
 */
export type RowMode = 'direct' | 'staging';

export interface BatchToWrite {
  streamId: string;
  /** The epoch this engine claimed for the stream at start (src/db/epoch.ts): the batch commits only while it is the newest. */
  epoch: number;
  batchId: number;
  batchTimestampMs: number;
  files: readonly { name: string; size: number; mtimeMs: number }[];
  /**
   * Reprocessing on purpose (`ecomstream reprocess`): the files' earlier reject rows are deleted in this
   * transaction, and rows whose key is already stored count as already present, not as duplicates.
   */
  reprocess?: boolean;
  /** Produces the batch's rows; called again (mode `staging`) only if the fast path hits a duplicate or a refused row. */
  scan(mode: RowMode, onValid: (chunk: string) => Promise<void> | void, onReject: (r: RejectRecord) => void): Promise<ScanStats>;
  /** The feed's contract: table, columns, conflict key, duplicate reason. The event contract when omitted. */
  contract?: ContractSpec;
  /** Failure-injection points, for the recovery tests. */
  hooks?: { duringCopy?(): void; afterCommit?(): void };
}

/** The SQL names the sink writes a contract's rows with, quoted, and its duplicate reason. */
interface Target {
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

export interface BatchResult {
  /** True when the batch was already recorded (a replay): nothing was written. */
  alreadyCommitted: boolean;
  stats: ScanStats;
  insertedRows: number;
  duplicateRows: number;
  rejectedRows: number;
  usedFallback: boolean;
  durationsMs: { read: number; write: number; commit: number };
  /** What went to rejected_events, by reason (file notices included): the metrics count these. */
  rejectsByReason: ReadonlyMap<string, number>;
  /** Reprocessing only: valid rows whose event was already stored (input = inserted + duplicate + rejected + these). */
  alreadyPresentRows: number;
}

export class SinkError extends EcomstreamError {}

/**
 * Rejected rows, kept in memory as COPY lines until they pass 32 MiB, then spilled to a temporary file:
 * a file of a million bad lines must not take the engine's memory.
 */
class RejectBuffer {
  private lines: string[] = [];
  private bytes = 0;
  private spillFile: string | undefined;
  private spill: fs.WriteStream | undefined;
  count = 0;
  readonly byReason = new Map<string, number>();

  constructor(
    private readonly streamId: string,
    private readonly batchId: number,
  ) {}

  add(r: RejectRecord): void {
    this.byReason.set(r.reason, (this.byReason.get(r.reason) ?? 0) + 1);
    // source_file is VARCHAR(500): a longer file name is clipped rather than failing the batch.
    const line = `${this.streamId}\t${this.batchId}\t${copyEscape(r.file.slice(0, SOURCE_FILE_CHARS))}\t${r.line}\t${r.raw === null ? '\\N' : copyEscape(r.raw)}\t${r.reason}\t${copyEscape(r.detail)}\n`;
    this.count++;
    this.bytes += line.length;
    this.lines.push(line);
    if (this.bytes > 32 << 20) {
      if (!this.spill) {
        this.spillFile = path.join(os.tmpdir(), `ecomstream-rejects-${process.pid}-${this.batchId}-${Date.now()}`);
        this.spill = fs.createWriteStream(this.spillFile);
      }
      this.spill.write(this.lines.join(''));
      this.lines = [];
      this.bytes = 0;
    }
  }

  async writeTo(write: (chunk: string | Buffer) => Promise<void>): Promise<void> {
    if (this.spill && this.spillFile) {
      this.spill.end();
      await once(this.spill, 'finish');
      for await (const chunk of fs.createReadStream(this.spillFile, { highWaterMark: 1 << 20 })) await write(chunk as Buffer);
    }
    for (let i = 0; i < this.lines.length; i += 4096) await write(this.lines.slice(i, i + 4096).join(''));
  }

  async dispose(): Promise<void> {
    this.spill?.destroy();
    if (this.spillFile) await fsp.rm(this.spillFile, { force: true });
  }
}

/** Streams `produce`'s chunks into `COPY ... FROM STDIN` with back-pressure; fails with the server's error. */
async function copyInto<T>(client: pg.PoolClient, sql: string, produce: (write: (chunk: string | Buffer) => Promise<void>) => Promise<T>): Promise<T> {
  const stream = client.query(copyFrom(sql));
  let failure: Error | undefined;
  const done = new Promise<void>((resolve, reject) => {
    stream.on('finish', resolve);
    stream.on('error', (err: Error) => {
      failure = err;
      reject(err);
    });
  });
  done.catch(() => undefined);
  const write = async (chunk: string | Buffer): Promise<void> => {
    if (failure) throw failure;
    if (!stream.write(chunk)) await Promise.race([once(stream, 'drain'), done]);
    // The stream's error handler may have set it during the await; TypeScript's narrowing cannot see that.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition, @typescript-eslint/only-throw-error
    if (failure) throw failure;
  };
  let result: T;
  try {
    result = await produce(write);
  } catch (err) {
    if (!failure) stream.destroy(err as Error); // sends CopyFail so the server aborts the COPY
    await done.catch(() => undefined);
    throw failure ?? err;
  }
  stream.end();
  await done;
  return result;
}

const stagingColumns = (t: Target): string => `${t.columns}, row_quality, source_file, line_number, raw_line`;
const createStaging = (t: Target): string =>
  `CREATE TEMP TABLE IF NOT EXISTS batch_staging (LIKE ${t.table} INCLUDING DEFAULTS, row_quality DOUBLE PRECISION, source_file TEXT, line_number INTEGER, raw_line TEXT) ON COMMIT DROP`;
/** The keys of the rows the isolation path staged so far, as text: what "earlier in this batch" means across its chunks. */
const CREATE_BATCH_KEYS = 'CREATE TEMP TABLE IF NOT EXISTS batch_keys (key TEXT PRIMARY KEY) ON COMMIT DROP';
/** Rows per isolation chunk: small enough that halving to the culprit takes few round trips. */
const ISOLATION_CHUNK_ROWS = 512;

/** Valid rows that turned out to repeat an earlier row of the batch: moved from valid to duplicate. */
interface LaterOccurrences {
  rows: number;
  /** Their quality scores' sum, which the batch's quality score must not count. */
  quality: number;
}

/**
 * The exact in-batch check behind the reader's bounded key set: staged rows whose key occurs earlier in
 * batch_staging (ctid order is line order: COPY filled a fresh table) — or, with `acrossChunks`, in
 * batch_keys — become the contract's in-batch duplicate rejects and leave the staging table. The first
 * occurrence stays, so it wins as it does in the reader. Only keys that occur twice are ranked.
 */
async function rejectLaterOccurrences(client: pg.PoolClient, batch: BatchToWrite, t: Target, acrossChunks: boolean): Promise<LaterOccurrences> {
  const k = t.key;
  const res = await client.query<{ n: string; q: number | null }>(
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
    [batch.streamId, batch.batchId, t.duplicateReason, ...t.inBatchDetail],
  );
  return { rows: Number(res.rows[0]!.n), quality: res.rows[0]!.q ?? 0 };
}

/**
 * Moves staged rows into the contract's table; those whose conflict key is already stored become the
 * contract's duplicate rejects. Returns how many were duplicates.
 */
async function mergeStaging(client: pg.PoolClient, batch: BatchToWrite, t: Target): Promise<number> {
  if (batch.reprocess) {
    // Already stored is expected when a file is read again: count those rows, reject none of them.
    const res = await client.query<{ n: string }>(
      `WITH ins AS (
         INSERT INTO ${t.table} (${t.columns})
         SELECT ${t.columns} FROM batch_staging ORDER BY ctid
         ON CONFLICT (${t.key}) DO NOTHING
         RETURNING ${t.key})
       SELECT count(*) AS n FROM batch_staging s WHERE NOT EXISTS (SELECT 1 FROM ins WHERE ins.${t.key} = s.${t.key})`,
    );
    return Number(res.rows[0]!.n);
  }
  const res = await client.query(
    `WITH ins AS (
       INSERT INTO ${t.table} (${t.columns})
       SELECT ${t.columns} FROM batch_staging ORDER BY ctid -- filled by COPY into a fresh temp table: line order
       ON CONFLICT (${t.key}) DO NOTHING
       RETURNING ${t.key})
     INSERT INTO rejected_events (stream_id, batch_id, source_file, line_number, raw_line, reason, detail)
     SELECT $1, $2, s.source_file, s.line_number, s.raw_line, $3, $4 || s.${t.key} || $5
     FROM batch_staging s
     WHERE NOT EXISTS (SELECT 1 FROM ins WHERE ins.${t.key} = s.${t.key})`,
    [batch.streamId, batch.batchId, t.duplicateReason, ...t.storedDetail],
  );
  return res.rowCount ?? 0;
}

interface PathOutcome {
  stats: ScanStats;
  storedDuplicates: number;
  /** Rows the server refused, moved from valid to rejected. */
  refused: number;
  later: LaterOccurrences;
}

/** The staging path: every valid row through batch_staging and ON CONFLICT. */
async function stagingPath(client: pg.PoolClient, batch: BatchToWrite, t: Target, rejects: RejectBuffer): Promise<PathOutcome> {
  await client.query(createStaging(t));
  const stats = await copyInto(client, `COPY batch_staging (${stagingColumns(t)}) FROM STDIN`, (write) => batch.scan('staging', write, (r) => rejects.add(r)));
  const later = stats.uncheckedKeys > 0 ? await rejectLaterOccurrences(client, batch, t, false) : { rows: 0, quality: 0 };
  return { stats, storedDuplicates: await mergeStaging(client, batch, t), refused: 0, later };
}

/** The staged COPY line's key and last four fields: row quality, source file, line number, raw line. */
function stagedOrigin(line: string, t: Target): { key: string; quality: number; file: string; line: number; raw: string | null } {
  const c3 = line.lastIndexOf('\t');
  const c2 = line.lastIndexOf('\t', c3 - 1);
  const c1 = line.lastIndexOf('\t', c2 - 1);
  const c0 = line.lastIndexOf('\t', c1 - 1);
  return {
    key: copyUnescape(line.split('\t', t.keyIndex + 1)[t.keyIndex]!) ?? '',
    quality: Number(line.slice(c0 + 1, c1)),
    file: copyUnescape(line.slice(c1 + 1, c2)) ?? '',
    line: Number(line.slice(c2 + 1, c3)),
    raw: copyUnescape(line.slice(c3 + 1)),
  };
}

/** The isolation path: chunks under savepoints, halved on a data error down to the rows at fault. */
async function isolationPath(client: pg.PoolClient, batch: BatchToWrite, t: Target, rejects: RejectBuffer): Promise<PathOutcome> {
  await client.query(createStaging(t));
  await client.query(CREATE_BATCH_KEYS);
  let storedDuplicates = 0;
  let refused = 0;
  const later: LaterOccurrences = { rows: 0, quality: 0 };
  const tryRows = async (rows: string[]): Promise<void> => {
    await client.query('SAVEPOINT isolate');
    try {
      await copyInto(client, `COPY batch_staging (${stagingColumns(t)}) FROM STDIN`, async (write) => write(rows.join('')));
      const chunkLater = await rejectLaterOccurrences(client, batch, t, true);
      await client.query(`INSERT INTO batch_keys SELECT ${t.key}::text FROM batch_staging ON CONFLICT DO NOTHING`);
      storedDuplicates += await mergeStaging(client, batch, t);
      await client.query('TRUNCATE batch_staging');
      await client.query('RELEASE SAVEPOINT isolate');
      later.rows += chunkLater.rows;
      later.quality += chunkLater.quality;
    } catch (err) {
      if (!isDataError(err)) throw err;
      await client.query('ROLLBACK TO SAVEPOINT isolate');
      await client.query('RELEASE SAVEPOINT isolate');
      if (rows.length > 1) {
        const half = rows.length >> 1;
        await tryRows(rows.slice(0, half));
        await tryRows(rows.slice(half));
        return;
      }
      const origin = stagedOrigin(rows[0]!.slice(0, -1), t);
      // The reader lets a key through that it had no room for; a refused row may repeat an earlier one.
      const seen = await client.query('INSERT INTO batch_keys VALUES ($1) ON CONFLICT DO NOTHING', [origin.key]);
      if (seen.rowCount === 0) {
        later.rows++;
        later.quality += origin.quality;
        await client.query(`INSERT INTO rejected_events (${REJECT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)`, [
          batch.streamId,
          batch.batchId,
          origin.file.slice(0, SOURCE_FILE_CHARS),
          origin.line,
          origin.raw,
          t.duplicateReason,
          `${t.inBatchDetail[0]}${origin.key}${t.inBatchDetail[1]}`,
        ]);
        return;
      }
      refused++;
      rejects.add({ ...origin, reason: t.refused.reason, detail: renderDetail(t.refused.detail, { error: describePgError(err) }) });
    }
  };
  let pending: string[] = [];
  const stats = await batch.scan(
    'staging',
    async (chunk) => {
      // COPY lines end in a newline and escape every newline inside a field, so this split is exact.
      for (let pos = 0; pos < chunk.length;) {
        const nl = chunk.indexOf('\n', pos);
        pending.push(chunk.slice(pos, nl + 1));
        pos = nl + 1;
        if (pending.length === ISOLATION_CHUNK_ROWS) {
          const rows = pending;
          pending = [];
          await tryRows(rows);
        }
      }
    },
    (r) => rejects.add(r),
  );
  if (pending.length) await tryRows(pending);
  return { stats, storedDuplicates, refused, later };
}

export async function writeBatch(pool: pg.Pool, batch: BatchToWrite, engine = 'typescript'): Promise<BatchResult> {
  return withClient(pool, (client) => writeBatchOn(client, batch, engine));
}

async function writeBatchOn(client: pg.PoolClient, batch: BatchToWrite, engine: string): Promise<BatchResult> {
  const t = sinkTarget(batch.contract ?? EVENT_CONTRACT);
  let rejects = new RejectBuffer(batch.streamId, batch.batchId);
  const t0 = performance.now();
  try {
    await client.query('BEGIN');
    await checkEpoch(client, batch.streamId, batch.epoch, batch.batchId);
    const exists = await client.query('SELECT 1 FROM stream_batches WHERE stream_id = $1 AND batch_id = $2', [batch.streamId, batch.batchId]);
    if (exists.rowCount) {
      await client.query('ROLLBACK');
      return {
        alreadyCommitted: true,
        stats: emptyScanStats(),
        insertedRows: 0,
        duplicateRows: 0,
        rejectedRows: 0,
        usedFallback: false,
        durationsMs: { read: 0, write: 0, commit: 0 },
        rejectsByReason: new Map(),
        alreadyPresentRows: 0,
      };
    }

    if (batch.reprocess) {
      await client.query('DELETE FROM rejected_events WHERE stream_id = $1 AND source_file = ANY($2::text[])', [
        batch.streamId,
        batch.files.map((f) => f.name.slice(0, SOURCE_FILE_CHARS)),
      ]);
    }
    await client.query('SAVEPOINT fast_path');
    let outcome: PathOutcome;
    let usedFallback = false;
    let chunks = 0;
    /** Back to the savepoint, with a fresh reject buffer: the next pass reports every reject again. */
    const restart = async (): Promise<void> => {
      usedFallback = true;
      await client.query('ROLLBACK TO SAVEPOINT fast_path');
      await rejects.dispose();
      rejects = new RejectBuffer(batch.streamId, batch.batchId);
    };
    try {
      const stats = await copyInto(client, `COPY ${t.table} (${t.columns}) FROM STDIN`, (write) =>
        batch.scan(
          'direct',
          async (chunk) => {
            if (chunks++ === 1) batch.hooks?.duringCopy?.();
            await write(chunk);
          },
          (r) => rejects.add(r),
        ),
      );
      outcome = { stats, storedDuplicates: 0, refused: 0, later: { rows: 0, quality: 0 } };
    } catch (err) {
      if (!isDataError(err)) throw err;
      await restart();
      if ((err as { code?: string }).code === '23505') {
        // A row of this batch is already stored: redo the batch through staging + ON CONFLICT.
        try {
          outcome = await stagingPath(client, batch, t, rejects);
        } catch (err2) {
          if (!isDataError(err2)) throw err2;
          await restart();
          outcome = await isolationPath(client, batch, t, rejects);
        }
      } else {
        outcome = await isolationPath(client, batch, t, rejects);
      }
    }
    const { storedDuplicates, refused, later } = outcome;
    // Repeats found in SQL are duplicates, as they would have been had the reader held every key.
    const stats = {
      ...outcome.stats,
      validRows: outcome.stats.validRows - later.rows,
      duplicateRows: outcome.stats.duplicateRows + later.rows,
      qualitySum: outcome.stats.qualitySum - later.quality,
    };
    const validRows = stats.validRows - refused;
    const insertedRows = validRows - storedDuplicates;
    const rejectedRows = stats.rejectedRows + refused;
    const tRead = performance.now();

    if (rejects.count > 0) {
      await copyInto(client, `COPY rejected_events (${REJECT_COLUMNS}) FROM STDIN`, (write) => rejects.writeTo(write));
    }
    const alreadyPresentRows = batch.reprocess ? storedDuplicates : 0;
    const duplicateRows = stats.duplicateRows + storedDuplicates - alreadyPresentRows;
    const mtimes = batch.files.map((f) => f.mtimeMs);
    const tWrite = performance.now();
    await client.query(
      `INSERT INTO stream_batches (stream_id, batch_id, engine, files, batch_timestamp, input_rows, inserted_rows,
         duplicate_rows, rejected_rows, quality_score, oldest_file_mtime, newest_file_mtime, durations_ms)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
      [
        batch.streamId,
        batch.batchId,
        engine,
        JSON.stringify(batch.files),
        new Date(batch.batchTimestampMs),
        stats.inputRows,
        insertedRows,
        duplicateRows,
        rejectedRows,
        qualityScore(stats.qualitySum, stats.validRows),
        mtimes.length ? new Date(Math.min(...mtimes)) : null,
        mtimes.length ? new Date(Math.max(...mtimes)) : null,
        // Same phase names as the progress record; `total` runs to the batch record, just before COMMIT.
        JSON.stringify({ read: Math.round(tRead - t0), write: Math.round(tWrite - tRead), total: Math.round(performance.now() - t0) }),
      ],
    );
    await client.query('COMMIT');
    batch.hooks?.afterCommit?.();
    const tCommit = performance.now();
    return {
      alreadyCommitted: false,
      stats: { ...stats, validRows, rejectedRows },
      insertedRows,
      duplicateRows,
      rejectedRows,
      usedFallback,
      durationsMs: { read: Math.round(tRead - t0), write: Math.round(tWrite - tRead), commit: Math.round(tCommit - tWrite) },
      alreadyPresentRows,
      rejectsByReason: withSqlDuplicates(rejects.byReason, t.duplicateReason, later.rows + (batch.reprocess ? 0 : storedDuplicates)),
    };
  } catch (err) {
    // A broken connection cannot roll back; withClient then discards the client.
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    await rejects.dispose();
  }
}

/** The staging and isolation paths write their duplicate rejects in SQL, past the buffer: counted here. */
function withSqlDuplicates(byReason: ReadonlyMap<string, number>, reason: string, rows: number): ReadonlyMap<string, number> {
  return rows ? new Map(byReason).set(reason, (byReason.get(reason) ?? 0) + rows) : byReason;
}

/** A pool that survives the server going away: idle-client errors are reported, not thrown. */
export function createPool(url: string, onError: (err: Error) => void): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max: 2, connectionTimeoutMillis: 10_000, idleTimeoutMillis: 30_000 });
  pool.on('error', onError);
  return pool;
}
