/**
 * What the sink needs from whoever reads a batch (the engine's reader implements it, in read-batch.ts
 * of the engine's folder): the sink owns the wire format, so it hands the reader an encoder and the reader hands
 * each valid row's values to it. The reader knows nothing of COPY, staging tables or NULL markers.
 */
import type { ReadStats, RejectRecord } from '../contract/records.js';

/** Takes the batch's valid rows, in file and line order, and encodes them for the database. */
export interface RowEncoder {
  /** True when each row must come with its line number and raw line (the staging paths need them). */
  readonly withOrigin: boolean;
  /** The rows that follow come from this file. */
  file(name: string): void;
  /**
   * One valid row: the stored text of each contract column ('' is NULL), and its quality score; with
   * `withOrigin` its line number and raw line (clipped as the contract says), else 0 and ''. Called per
   * row on the hot path: it must not keep `values`, which the reader may reuse.
   */
  row(values: readonly string[], quality: number, line: number, raw: string): void;
  /** The reader finished a chunk of its input: pass the rows on. Awaited, so the database paces the reader. */
  flush(): Promise<void>;
}

/** The batch's files, readable as many times as the sink's write paths need (each read starts afresh). */
export interface BatchSource {
  read(rows: RowEncoder, onReject: (r: RejectRecord) => void): Promise<ReadStats>;
}
