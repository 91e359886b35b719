/**
 * Progress records: one JSON line per committed batch in `data/logs/progress.jsonl`, shaped like Spark's
 * StreamingQueryProgress so the Spark job writes the same shape and the dashboard reads either.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { BatchCounts } from '../contract/records.js';

/** The batch's counts (src/contract/records.ts), its input under Spark's name `numInputRows`. */
export interface ProgressRecord extends Omit<BatchCounts, 'inputRows'> {
  engine: 'typescript' | 'spark';
  streamId: string;
  batchId: number;
  batchTimestamp: string;
  committedAt: string;
  /** Run again from the offsets log after a restart. */
  replay: boolean;
  /** The database already had the batch (crash between database commit and commits/N): nothing written. */
  alreadyCommitted: boolean;
  files: string[];
  numInputRows: number;
  /** The batch quality score (src/contract/batch.ts), the number stream_batches records. */
  qualityScore: number | null;
  processedRowsPerSecond: number;
  durationMs: { plan: number; read: number; write: number; commit: number; total: number };
  /** File publish (mtime) to commit, over the batch's files. */
  latencyMs: { p50: number; max: number };
  backlogFiles: number;
  usedFallback: boolean;
  /** A batch of `ecomstream reprocess`; its rows already stored count as already present. */
  reprocess?: boolean;
  alreadyPresentRows?: number;
}

export class ProgressLog {
  private ready = false;
  constructor(readonly file: string) {}

  async append(record: ProgressRecord): Promise<void> {
    if (!this.ready) {
      await fsp.mkdir(path.dirname(this.file), { recursive: true });
      this.ready = true;
    }
    await fsp.appendFile(this.file, `${JSON.stringify(record)}\n`);
  }
}

/** The console line for a batch. */
export function formatProgress(p: ProgressRecord): string {
  const tag = (p.alreadyCommitted ? ' (already committed, skipped)' : p.replay ? ' (replayed)' : '') + (p.reprocess ? ' (reprocessed)' : '');
  const files = p.files.length === 1 ? p.files[0] : `${p.files.length} files`;
  return (
    `batch ${p.batchId}${tag}: ${files}: ${p.numInputRows} rows -> ${p.insertedRows} inserted, ` +
    `${p.duplicateRows} duplicate, ${p.rejectedRows} rejected${p.reprocess ? `, ${p.alreadyPresentRows ?? 0} already present` : ''} in ${p.durationMs.total} ms ` +
    `(${p.processedRowsPerSecond.toLocaleString('en-US')} rows/s, latency ${p.latencyMs.max} ms` +
    `${p.backlogFiles ? `, backlog ${p.backlogFiles} files` : ''})`
  );
}

/** The machine-readable fields of a batch line (JSON logs). */
export function progressFields(p: ProgressRecord): Record<string, unknown> {
  return {
    event: 'batch_committed',
    batch: p.batchId,
    files: p.files,
    rows: p.numInputRows,
    inserted: p.insertedRows,
    duplicate: p.duplicateRows,
    rejected: p.rejectedRows,
    replay: p.replay,
    alreadyCommitted: p.alreadyCommitted,
    durationMs: p.durationMs.total,
    latencyMs: p.latencyMs.max,
    backlogFiles: p.backlogFiles,
    ...(p.reprocess ? { reprocess: true, alreadyPresent: p.alreadyPresentRows } : {}),
  };
}
