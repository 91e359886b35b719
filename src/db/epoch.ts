/**
 * Fencing in the database: one writer per stream even where no file lock can see the other writer
 * (another host over NFS, a lock file removed by hand, a frozen container). Kafka fences zombie
 * producers the same way.
 *
 * - Each engine start claims a new epoch for its stream (`claim`: one row per stream in stream_epochs,
 *   postgres/migrations/0003_stream_epochs.sql, incremented in one statement) and keeps it.
 * - Every batch transaction begins with `check`: the stream's row read FOR SHARE, held to COMMIT. An
 *   epoch that is no longer the newest rolls the transaction back and stops the engine (`FencedError`),
 *   before it writes a row or learns that its batch is already committed. A claim takes the row FOR
 *   UPDATE, so it waits for a batch transaction in flight: that batch commits before the new epoch
 *   exists, or is fenced after it.
 * - A batch transaction names itself `ecomstream-batch <stream id>` (application_name, for that
 *   transaction only). A claim that still waits after CLAIM_LOCK_TIMEOUT ends those transactions
 *   (`abortOlder`): a frozen zombie cannot hold the stream, or its uncommitted rows, for ever.
 *
 * The statements are written once, here, and travel to the Spark job in the contract JSON (`fencing`,
 * src/contract/schema.ts), whose driver runs these same texts with JDBC's `?` for `$n`
 * (spark/ecomstream_spark/fencing.py): each `$n` appears once, in order.
 */
import type pg from 'pg';
import { EcomstreamError } from '../errors.js';

/** The statements of fencing, with `$n` parameters; `FENCING` adds what the Spark job needs beside them. */
export const FENCING_SQL = {
  /** $1 stream, $2 engine, $3 host, $4 pid, $5 process start (ISO), $6 input folder → the new epoch. */
  claim: `INSERT INTO stream_epochs AS e (stream_id, epoch, engine, host, pid, started_at, source)
VALUES ($1, 1, $2, $3, $4, $5::timestamptz, $6)
ON CONFLICT (stream_id) DO UPDATE SET epoch = e.epoch + 1, engine = EXCLUDED.engine, host = EXCLUDED.host, pid = EXCLUDED.pid,
  started_at = EXCLUDED.started_at, source = EXCLUDED.source
RETURNING epoch::text`,
  /** $1 the batch transaction's name (`batchName`), $2 stream → the newest epoch and its holder. */
  check: `SELECT epoch::text, engine, host, pid, to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS started_at,
  set_config('application_name', $1, true) AS name
FROM stream_epochs WHERE stream_id = $2 FOR SHARE`,
  /** $1 the batch transaction's name: ends the open transactions of older epochs of the stream. */
  abortOlder: `SELECT count(pg_terminate_backend(pid))::int AS ended FROM pg_stat_activity
WHERE datname = current_database() AND usename = current_user AND application_name = $1 AND pid <> pg_backend_pid()`,
  /** Set on the claim's transaction: how long it waits for a batch in flight before `abortOlder`. */
  claimLockTimeout: `SET LOCAL lock_timeout = '2s'`,
} as const;

/** Fencing as the contract JSON carries it to the Spark job (`fencing`, src/contract/schema.ts). */
export const FENCING = {
  sql: FENCING_SQL,
  /** A batch transaction's application_name: this, then the stream id. */
  batchNamePrefix: 'ecomstream-batch ',
  /** Claims tried, each after ending the transactions that blocked the one before. */
  claimAttempts: 3,
  /** SQLSTATE lock_not_available: the claim's lock_timeout passed. */
  lockNotAvailable: '55P03',
} as const;
export type Fencing = typeof FENCING;

/** The name a batch transaction of `streamId` carries in pg_stat_activity while it is open. */
export function batchName(streamId: string): string {
  return `${FENCING.batchNamePrefix}${streamId}`;
}

export interface EpochHolder {
  engine: 'typescript' | 'spark';
  host: string;
  pid: number;
  /** When the holder process started (ISO 8601). */
  startedAt: string;
  /** The input folder, as that engine named it (information, for messages). */
  source: string;
}

/** A batch transaction found that a newer engine claimed its stream: this engine must stop. */
export class FencedError extends EcomstreamError {}

/** Claims a new epoch for `streamId` in one transaction; returns it. */
export async function claimEpoch(client: pg.ClientBase, streamId: string, holder: EpochHolder): Promise<number> {
  const params = [streamId, holder.engine, holder.host, holder.pid, holder.startedAt, holder.source];
  for (let attempt = 1; ; attempt++) {
    try {
      await client.query('BEGIN');
      await client.query(FENCING_SQL.claimLockTimeout);
      const { rows } = await client.query<{ epoch: string }>(FENCING_SQL.claim, params);
      await client.query('COMMIT');
      return Number(rows[0]!.epoch);
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      if ((err as { code?: unknown }).code !== FENCING.lockNotAvailable || attempt === FENCING.claimAttempts) throw err;
      await client.query(FENCING_SQL.abortOlder, [batchName(streamId)]);
    }
  }
}

/**
 * First statement of a batch transaction: throws FencedError (after which the caller rolls back) unless
 * `epoch` is still the stream's newest. The row stays locked FOR SHARE until the transaction ends.
 */
export async function checkEpoch(client: pg.ClientBase, streamId: string, epoch: number, batchId: number): Promise<void> {
  const { rows } = await client.query<{ epoch: string; engine: string; host: string; pid: number; started_at: string }>(FENCING_SQL.check, [
    batchName(streamId),
    streamId,
  ]);
  const row = rows[0];
  if (row && Number(row.epoch) === epoch) return;
  const newer = row
    ? `epoch ${row.epoch}: the ${row.engine} engine pid ${row.pid} on host ${row.host}, started ${row.started_at}`
    : 'its epoch row is gone from stream_epochs';
  throw new FencedError(
    `batch ${batchId}: fenced: another engine took over stream ${streamId} (${newer}); this engine (epoch ${epoch}) stops without committing`,
    { code: 'FENCED', batch: batchId },
  );
}
