/**
 * Crash points for the exactly-once tests: `ECOMSTREAM_FAILPOINT=<point>:<batchId>` makes the engine kill
 * itself with SIGKILL at that point of that batch, exactly as a power cut or OOM kill would. Unset (the
 * normal case) this is one string comparison per batch.
 *
 * Points: after-offsets (offsets/N written, nothing else), during-copy (mid COPY, transaction open),
 * after-db-commit (database committed, commits/N not yet written).
 */
const spec = process.env.ECOMSTREAM_FAILPOINT;

export type Failpoint = 'after-offsets' | 'during-copy' | 'after-db-commit';

export function failpoint(point: Failpoint, batchId: number): void {
  if (spec === undefined) return;
  if (spec === `${point}:${batchId}`) process.kill(process.pid, 'SIGKILL');
}
