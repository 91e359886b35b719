/**
 * The PostgreSQL sink: one transaction per micro-batch, idempotent by (stream id, batch id).
 *
 *   BEGIN
 *   batch already in stream_batches?  -> ROLLBACK, report "already committed" (a replay after a crash
 *                                         between the database commit and commits/N)
 *   SAVEPOINT; COPY valid rows straight into the contract's table  (the fast path)
 *     unique violation (a row stored by an earlier batch)?
 *     -> ROLLBACK TO SAVEPOINT; COPY into a temporary staging table;
 *        INSERT ... ON CONFLICT (conflict key) DO NOTHING, and the rows that conflicted become
 *        the contract's duplicate rejects
 *   COPY rejected rows into rejected_events
 *   INSERT the batch record into stream_batches
 *   COMMIT
 *
 * The sink depends on src/contract/ (what to write where) and src/db/ only: the engine hands it the
 * batch's rows as a function it may call twice, and hooks for the failure-injection points.
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
import { copyEscape } from '../db/copy-text.js';

/** A rejected row or file notice, as rejected_events stores it. */
export interface RejectRecord {
  file: string;
  /** 1-based line number; 0 for a file-level notice. */
  line: number;
  raw: string | null;
  reason: string;
  detail: string;
}

/** What producing the batch's rows found; the sink records it in stream_batches. */
export interface ScanStats {
  inputRows: number;
  validRows: number;
  rejectedRows: number;
  duplicateRows: number;
  notices: number;
  qualitySum: number;
  bytes: number;
}

/**
 * `direct`: COPY lines of the contract's columns. `staging`: the same plus source file, line number and
 * raw line, for the ON CONFLICT fallback that must report which rows were duplicates.
 */
export type RowMode = 'direct' | 'staging';

export interface BatchToWrite {
  streamId: string;
  batchId: number;
  batchTimestampMs: number;
  files: readonly { name: string; size: number; mtimeMs: number }[];
  /** Produces the batch's rows; called a second time (mode `staging`) only if the fast path hits a duplicate. */
  scan(mode: RowMode, onValid: (chunk: string) => Promise<void> | void, onReject: (r: RejectRecord) => void): Promise<ScanStats>;
  /** The feed's contract: table, columns, conflict key, duplicate reason. The event contract when omitted. */
  contract?: ContractSpec;
  /** Failure-injection points, for the recovery tests. */
  hooks?: { duringCopy?(): void; afterCommit?(): void };
}

/** The SQL the sink writes a contract's rows with: quoted identifiers from the contract. */
export function sinkTarget(spec: ContractSpec): { table: string; columns: string; key: string; duplicateReason: string; storedDetail: [string, string] } {
  const q = (name: string): string => `"${name.replace(/"/g, '""')}"`;
  const dup = spec.reader.duplicate;
  const [before, after] = dup.detailStored.replace('{column}', spec.conflictKey).split('{value}') as [string, string | undefined];
  return { table: q(spec.table), columns: spec.columns.map((c) => q(c.name)).join(', '), key: q(spec.conflictKey), duplicateReason: dup.reason, storedDetail: [before, after ?? ''] };
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
}

export class SinkError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SinkError';
  }
}

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

  constructor(private readonly streamId: string, private readonly batchId: number) {}

  add(r: RejectRecord): void {
    const line = `${this.streamId}\t${this.batchId}\t${copyEscape(r.file)}\t${r.line}\t${r.raw === null ? '\\N' : copyEscape(r.raw)}\t${r.reason}\t${copyEscape(r.detail)}\n`;
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

export async function writeBatch(pool: pg.Pool, batch: BatchToWrite, engine = 'typescript'): Promise<BatchResult> {
  const target = sinkTarget(batch.contract ?? EVENT_CONTRACT);
  const cols = target.columns;
  const client = await pool.connect();
  let rejects = new RejectBuffer(batch.streamId, batch.batchId);
  const t0 = performance.now();
  let released = false;
  try {
    await client.query('BEGIN');
    const exists = await client.query('SELECT 1 FROM stream_batches WHERE stream_id = $1 AND batch_id = $2', [batch.streamId, batch.batchId]);
    if (exists.rowCount) {
      await client.query('ROLLBACK');
      const empty: ScanStats = { inputRows: 0, validRows: 0, rejectedRows: 0, duplicateRows: 0, notices: 0, qualitySum: 0, bytes: 0 };
      return { alreadyCommitted: true, stats: empty, insertedRows: 0, duplicateRows: 0, rejectedRows: 0, usedFallback: false, durationsMs: { read: 0, write: 0, commit: 0 } };
    }

    await client.query('SAVEPOINT fast_path');
    let stats: ScanStats;
    let insertedRows: number;
    let storedDuplicates = 0;
    let usedFallback = false;
    let chunks = 0;
    try {
      stats = await copyInto(client, `COPY ${target.table} (${cols}) FROM STDIN`, (write) =>
        batch.scan(
          'direct',
          async (chunk) => {
            if (chunks++ === 1) batch.hooks?.duringCopy?.();
            await write(chunk);
          },
          (r) => rejects.add(r),
        ),
      );
      insertedRows = stats.validRows;
    } catch (err) {
      if ((err as { code?: string }).code !== '23505') throw err;
      // A row of this batch is already stored: redo the batch through staging + ON CONFLICT.
      usedFallback = true;
      await client.query('ROLLBACK TO SAVEPOINT fast_path');
      // The second pass reports the same rejects again: start their buffer afresh.
      await rejects.dispose();
      rejects = new RejectBuffer(batch.streamId, batch.batchId);
      await client.query(
        `CREATE TEMP TABLE IF NOT EXISTS batch_staging (LIKE ${target.table} INCLUDING DEFAULTS, source_file VARCHAR(500), line_number INTEGER, raw_line TEXT) ON COMMIT DROP`,
      );
      stats = await copyInto(client, `COPY batch_staging (${cols}, source_file, line_number, raw_line) FROM STDIN`, (write) =>
        batch.scan('staging', write, (r) => rejects.add(r)),
      );
      const res = await client.query(
        `WITH ins AS (
           INSERT INTO ${target.table} (${cols})
           SELECT ${cols} FROM batch_staging ORDER BY ctid -- one COPY into a fresh temp table: physical order is line order
           ON CONFLICT (${target.key}) DO NOTHING
           RETURNING ${target.key})
         INSERT INTO rejected_events (stream_id, batch_id, source_file, line_number, raw_line, reason, detail)
         SELECT $1, $2, s.source_file, s.line_number, s.raw_line, $3, $4 || s.${target.key} || $5
         FROM batch_staging s
         WHERE NOT EXISTS (SELECT 1 FROM ins WHERE ins.${target.key} = s.${target.key})`,
        [batch.streamId, batch.batchId, target.duplicateReason, ...target.storedDetail],
      );
      storedDuplicates = res.rowCount ?? 0;
      insertedRows = stats.validRows - storedDuplicates;
    }
    const tRead = performance.now();

    if (rejects.count > 0) {
      await copyInto(
        client,
        'COPY rejected_events (stream_id, batch_id, source_file, line_number, raw_line, reason, detail) FROM STDIN',
        (write) => rejects.writeTo(write),
      );
    }
    const duplicateRows = stats.duplicateRows + storedDuplicates;
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
        stats.rejectedRows,
        stats.validRows ? Math.round((stats.qualitySum / stats.validRows) * 1000) / 1000 : null,
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
      stats,
      insertedRows,
      duplicateRows,
      rejectedRows: stats.rejectedRows,
      usedFallback,
      durationsMs: { read: Math.round(tRead - t0), write: Math.round(tWrite - tRead), commit: Math.round(tCommit - tWrite) },
    };
  } catch (err) {
    // A broken connection cannot roll back; discard the client instead of returning it to the pool.
    await client.query('ROLLBACK').catch(() => {
      released = true;
      client.release(true);
    });
    throw err;
  } finally {
    await rejects.dispose();
    if (!released) client.release();
  }
}

/** A pool that survives the server going away: idle-client errors are reported, not thrown. */
export function createPool(url: string, onError: (err: Error) => void): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max: 2, connectionTimeoutMillis: 10_000, idleTimeoutMillis: 30_000 });
  pool.on('error', onError);
  return pool;
}
