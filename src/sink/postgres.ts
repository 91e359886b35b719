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
 *     could not see), or fewer rows stored than sent (an operator's trigger skipped some)?
 *     -> ROLLBACK TO SAVEPOINT; COPY into a temporary staging table; when the reader let keys through
 *        unchecked, rows repeating an earlier row's key (ranked by line order) become in-batch
 *        duplicate rejects; INSERT ... ON CONFLICT (conflict key) DO NOTHING, and the rows that
 *        conflicted become the contract's duplicate rejects; rows neither stored nor stored before
 *        were skipped by a trigger and count nowhere, as in the Spark job
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
 * The modules: the port it reads a batch through (port.ts), COPY text (copy.ts), the reject buffer
 * (rejects.ts), the three write paths (paths.ts), and the bookkeeping statements (src/db/ledger.ts).
 * Every client is used through `withClient`, so a connection that breaks mid-COPY is a retryable
 * ConnectionLostError for the engine, never an unhandled 'error' event. The sink depends on
 * src/contract/ and src/db/ only.
 */
import type pg from 'pg';
import { EVENT_CONTRACT } from '../contract/event.js';
import type { ContractSpec } from '../contract/schema.js';
import { qualityScore } from '../contract/batch.js';
import { emptyCounts, emptyReadStats, type BatchCounts, type ReadStats } from '../contract/records.js';
import { EcomstreamError } from '../errors.js';
import { isDataError, withClient } from '../db/errors.js';
import { checkEpoch } from '../db/epoch.js';
import { forgetFileRejects, isBatchRecorded, recordBatch } from '../db/ledger.js';
import { directPath, isolationPath, RowsSkipped, sinkTarget, stagingPath, type PathContext, type PathOutcome } from './paths.js';
import type { BatchSource } from './port.js';
import { RejectBuffer } from './rejects.js';

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
  /** The batch's rows; read again (staging layout) only if the fast path hits a duplicate or a refused row. */
  source: BatchSource;
  /** The feed's contract: table, columns, conflict key, duplicate reason. The event contract when omitted. */
  contract?: ContractSpec;
  /** Failure-injection points, for the recovery tests. */
  hooks?: { duringCopy?(): void; afterCommit?(): void };
}

export interface BatchResult {
  /** True when the batch was already recorded (a replay): nothing was written. */
  alreadyCommitted: boolean;
  counts: BatchCounts;
  /** The batch quality score (src/contract/batch.ts), over the rows stored: the one number both records carry. */
  qualityScore: number | null;
  /** Reprocessing only: valid rows whose event was already stored (input = inserted + duplicate + rejected + these). */
  alreadyPresentRows: number;
  /** What the read that committed found (the key set's figures feed the metrics). */
  read: ReadStats;
  usedFallback: boolean;
  durationsMs: { read: number; write: number; commit: number };
  /** What went to rejected_events, by reason (file notices included): the metrics count these. */
  rejectsByReason: ReadonlyMap<string, number>;
}

export class SinkError extends EcomstreamError {}

export async function writeBatch(pool: pg.Pool, batch: BatchToWrite, engine = 'typescript'): Promise<BatchResult> {
  return withClient(pool, (client) => writeBatchOn(client, batch, engine));
}

/** The protocol of the module header, step by step. */
async function writeBatchOn(client: pg.PoolClient, batch: BatchToWrite, engine: string): Promise<BatchResult> {
  const { streamId, batchId } = batch;
  const c: PathContext = {
    client,
    streamId,
    batchId,
    target: sinkTarget(batch.contract ?? EVENT_CONTRACT),
    source: batch.source,
    rejects: new RejectBuffer(streamId, batchId),
    reprocess: batch.reprocess ?? false,
    duringCopy: () => batch.hooks?.duringCopy?.(),
  };
  const t0 = performance.now();
  try {
    await client.query('BEGIN');
    await checkEpoch(client, streamId, batch.epoch, batchId);
    if (await isBatchRecorded(client, streamId, batchId)) {
      await client.query('ROLLBACK');
      return alreadyCommitted();
    }
    if (c.reprocess) await forgetFileRejects(client, streamId, batch.files);
    await client.query('SAVEPOINT fast_path');
    let outcome: PathOutcome;
    let usedFallback = false;
    try {
      outcome = await directPath(c);
    } catch (err) {
      if (!isDataError(err) && !(err instanceof RowsSkipped)) throw err;
      usedFallback = true;
      // A row of this batch is already stored (23505), or a trigger skipped rows: redo the batch through staging + ON CONFLICT.
      outcome = await retryFrom(c, err instanceof RowsSkipped || (err as { code?: string }).code === '23505' ? stagingPath : isolationPath);
    }
    const tRead = performance.now();
    await c.rejects.copyTo(client);
    const tWrite = performance.now();
    const result = tally(outcome, c.reprocess, c.target.duplicateReason, c.rejects.byReason);
    // Same phase names as the progress record; `total` runs to the batch record, just before COMMIT.
    const durationsMs = { read: Math.round(tRead - t0), write: Math.round(tWrite - tRead), total: Math.round(performance.now() - t0) };
    await recordBatch(client, { ...batch, engine, counts: result.counts, qualityScore: result.qualityScore, durationsMs });
    await client.query('COMMIT');
    batch.hooks?.afterCommit?.();
    const commit = Math.round(performance.now() - tWrite);
    return { ...result, alreadyCommitted: false, usedFallback, durationsMs: { read: durationsMs.read, write: durationsMs.write, commit } };
  } catch (err) {
    // A broken connection cannot roll back; withClient then discards the client.
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    await c.rejects.dispose();
  }
}

/**
 * Back to the savepoint with a fresh reject buffer (the next pass reports every reject again), then
 * `path`; a staging pass the server refuses a row on falls back once more, to isolation.
 */
async function retryFrom(c: PathContext, path: (c: PathContext) => Promise<PathOutcome>): Promise<PathOutcome> {
  await c.client.query('ROLLBACK TO SAVEPOINT fast_path');
  await c.rejects.dispose();
  c.rejects = new RejectBuffer(c.streamId, c.batchId);
  try {
    return await path(c);
  } catch (err) {
    if (path === isolationPath || !isDataError(err)) throw err;
    return retryFrom(c, isolationPath);
  }
}

/** A replay of a batch the database already holds: nothing written. */
const alreadyCommitted = (): BatchResult => ({
  alreadyCommitted: true,
  counts: emptyCounts(),
  qualityScore: null,
  alreadyPresentRows: 0,
  read: emptyReadStats(),
  usedFallback: false,
  durationsMs: { read: 0, write: 0, commit: 0 },
  rejectsByReason: new Map<string, number>(),
});

type Tally = Pick<BatchResult, 'counts' | 'qualityScore' | 'alreadyPresentRows' | 'read' | 'rejectsByReason'>;

/**
 * The batch's counts and quality score, computed once from what the path did: the rows stored are the
 * valid rows less those found to repeat an earlier row, refused by the server, already stored, or
 * skipped by a trigger.
 */
function tally(o: PathOutcome, reprocess: boolean, duplicateReason: string, byReason: ReadonlyMap<string, number>): Tally {
  const { read, later, refused, conflicts, skipped } = o;
  const storedRows = read.validRows - later.rows - refused.rows - conflicts.rows - skipped.rows;
  const storedQuality = read.qualitySum - later.quality - refused.quality - conflicts.quality - skipped.quality;
  const storedDuplicates = reprocess ? 0 : conflicts.rows;
  // The staging and isolation paths write their duplicate rejects in SQL, past the buffer: counted here.
  const sqlDuplicates = later.rows + storedDuplicates;
  return {
    counts: {
      inputRows: read.inputRows,
      insertedRows: storedRows,
      duplicateRows: read.duplicateRows + sqlDuplicates,
      rejectedRows: read.rejectedRows + refused.rows,
    },
    qualityScore: qualityScore(storedQuality, storedRows),
    alreadyPresentRows: reprocess ? conflicts.rows : 0,
    read,
    rejectsByReason: sqlDuplicates ? new Map(byReason).set(duplicateReason, (byReason.get(duplicateReason) ?? 0) + sqlDuplicates) : byReason,
  };
}
