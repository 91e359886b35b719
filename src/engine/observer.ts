/**
 * What the stream engine tells the outside while it runs: the one seam that operations code (metrics,
 * health, stall alarm in src/ops/) hooks into, so the engine itself knows nothing of HTTP or Prometheus.
 * Every method is optional and called synchronously; an observer must not throw or block.
 */
import type { FileEntry } from '../checkpoint/checkpoint.js';
import type { ProgressRecord } from './progress.js';

export interface BatchCommitted {
  record: ProgressRecord;
  files: readonly FileEntry[];
  /** Rows (and file notices) this batch wrote to rejected_events, by reason code. */
  rejectsByReason: ReadonlyMap<string, number>;
}

export interface EngineObserver {
  /** The checkpoint is open and its lock held; the engine is about to connect, recover and plan. */
  started?(info: { streamId: string; checkpointDir: string }): void;
  /** Start-up is done: the database answered and a batch left planned was replayed; files are awaited. */
  running?(): void;
  /** Published files not yet planned, as last listed (after planning: those left for later batches). */
  backlog?(files: number): void;
  /** Batch N is planned (or replayed) and about to be read and written. */
  batchStarted?(info: { batchId: number; files: readonly FileEntry[]; replay: boolean }): void;
  batchCommitted?(batch: BatchCommitted): void;
  /**
   * A database step failed for a reason worth a retry (src/db/errors.ts: the connection, no connection
   * slot, no disk space) and will be retried. `batchId` undefined: the start-up connection.
   */
  dbRetry?(info: { batchId: number | undefined; error: unknown }): void;
  /** The engine stopped (normally or not); the checkpoint lock is released. */
  stopped?(): void;
}

/** Calls every observer in turn: `process` and `up` combine metrics and health. */
export function combineObservers(...observers: EngineObserver[]): EngineObserver {
  return {
    started: (i) => observers.forEach((o) => o.started?.(i)),
    running: () => observers.forEach((o) => o.running?.()),
    backlog: (n) => observers.forEach((o) => o.backlog?.(n)),
    batchStarted: (i) => observers.forEach((o) => o.batchStarted?.(i)),
    batchCommitted: (b) => observers.forEach((o) => o.batchCommitted?.(b)),
    dbRetry: (i) => observers.forEach((o) => o.dbRetry?.(i)),
    stopped: () => observers.forEach((o) => o.stopped?.()),
  };
}
