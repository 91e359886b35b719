/**
 * `checkpoint verify`: does the checkpoint agree with what PostgreSQL recorded (`stream_batches`)?
 *
 * Mismatches (each one named, the command exits non-zero):
 * - the stream id of the checkpoint is unknown to the database although the checkpoint has commits;
 * - a batch in commits/ has no stream_batches row;
 * - a stream_batches row of this stream is beyond the newest planned batch, or (within the batches the
 *   checkpoint still keeps) has neither commits/N nor is the batch pending replay;
 * - a batch's files in offsets/N differ from the files its stream_batches row lists.
 * Not a mismatch: the pending batch already in the database (a crash between the database commit and
 * commits/N) — the next start sees it is committed and writes commits/N; it is reported as a note.
 */
import { Checkpoint } from './checkpoint.js';
import { inspectCheckpoint, type CheckpointReport } from './inspect.js';

export interface VerifyResult {
  report: CheckpointReport;
  mismatches: string[];
  notes: string[];
  /** Batches compared on both sides. */
  checked: number;
}

/** A batch as the database recorded it: what this check needs of a stream_batches row. */
export interface RecordedBatch {
  batchId: number;
  files: string[];
}

/**
 * The port to the database: the batches recorded for a stream id, in batch order. The caller reads them
 * (src/cli/checkpoint.ts), so this module stays with the checkpoint's plain files.
 */
export type RecordedBatches = (streamId: string) => Promise<RecordedBatch[]>;

export async function verifyCheckpoint(dir: string, readRecorded: RecordedBatches): Promise<VerifyResult> {
  const report = await inspectCheckpoint(dir);
  const mismatches: string[] = [];
  const notes: string[] = [];
  if (report.streamId === null) {
    mismatches.push(`${dir}: no metadata file, so no stream id to check against the database`);
    return { report, mismatches, notes, checked: 0 };
  }
  const rows = await readRecorded(report.streamId);
  const recorded = new Map(rows.map((r) => [r.batchId, r]));
  const cp = new Checkpoint(dir);
  const commitIds = (await cp.commits.list()).ids;
  const offsetIds = new Set((await cp.offsets.list()).ids);
  const commitSet = new Set(commitIds);

  if (rows.length === 0 && commitIds.length > 0) {
    mismatches.push(
      `stream ${report.streamId}: the checkpoint has ${commitIds.length} committed batches, but stream_batches knows no batch of this stream (wrong database?)`,
    );
    return { report, mismatches, notes, checked: 0 };
  }
  for (const id of commitIds) if (!recorded.has(id)) mismatches.push(`batch ${id}: commits/${id} exists, but stream_batches has no row for it`);

  const pending = report.pendingReplay?.batchId;
  const keptFrom = Math.min(report.logs.offsets.oldest ?? Infinity, report.logs.commits.oldest ?? Infinity);
  let checked = 0;
  for (const r of rows) {
    const id = r.batchId;
    if (report.lastPlannedBatch === null || id > report.lastPlannedBatch) {
      mismatches.push(
        `batch ${id}: recorded in stream_batches, but the checkpoint never planned it (newest offsets entry: ${report.lastPlannedBatch ?? 'none'})`,
      );
      continue;
    }
    if (id === pending) {
      notes.push(`batch ${id}: committed in the database, commits/${id} not yet written (the next start records it without writing anything twice)`);
    } else if (id >= keptFrom && !commitSet.has(id)) {
      mismatches.push(`batch ${id}: recorded in stream_batches, but commits/${id} is missing`);
      continue;
    }
    if (report.engine === 'typescript' && offsetIds.has(id)) {
      const entry = await cp.offsets.get(id);
      const planned = (entry?.files ?? []).map((f) => f.name).sort();
      const stored = [...r.files].sort();
      if (JSON.stringify(planned) !== JSON.stringify(stored)) {
        mismatches.push(`batch ${id}: offsets/${id} planned ${planned.join(', ') || 'no files'}, stream_batches lists ${stored.join(', ') || 'no files'}`);
      }
    }
    checked++;
  }
  return { report, mismatches, notes, checked };
}
