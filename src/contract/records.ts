/**
 * The records a batch's path hands from layer to layer, declared once: what reading the files found
 * (`ReadStats`), a rejected row (`RejectRecord`), and what became of the batch's rows (`BatchCounts`),
 * which the run summary, the progress record, the sink's result and the stream_batches row all carry.
 */

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

/** What reading a batch's files found, before the database had its say. */
export interface ReadStats {
  /** Data lines read (header and blank lines excluded). */
  inputRows: number;
  validRows: number;
  /** Rule violations and malformed lines (not duplicates, not file notices). */
  rejectedRows: number;
  duplicateRows: number;
  notices: number;
  /** The quality scores of the valid rows, summed. */
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

export function emptyReadStats(): ReadStats {
  return { inputRows: 0, validRows: 0, rejectedRows: 0, duplicateRows: 0, notices: 0, qualitySum: 0, bytes: 0, uncheckedKeys: 0, keySetPeakBytes: 0 };
}

/**
 * What became of a batch's data lines: input = inserted + duplicate + rejected (+ the rows a reprocess
 * found already present). The column names of stream_batches are these in snake case.
 */
export interface BatchCounts {
  inputRows: number;
  insertedRows: number;
  duplicateRows: number;
  rejectedRows: number;
}

export function emptyCounts(): BatchCounts {
  return { inputRows: 0, insertedRows: 0, duplicateRows: 0, rejectedRows: 0 };
}

/** Adds `c` into `total` (a run's summary over its batches). */
export function addCounts(total: BatchCounts, c: Readonly<BatchCounts>): void {
  total.inputRows += c.inputRows;
  total.insertedRows += c.insertedRows;
  total.duplicateRows += c.duplicateRows;
  total.rejectedRows += c.rejectedRows;
}
