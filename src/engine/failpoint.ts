/**
 * Crash points for the exactly-once tests: `ECOMSTREAM_FAILPOINT=<point>:<batchId>` makes the engine kill
 * itself with SIGKILL at that point of that batch, exactly as a power cut or OOM kill would;
 * `<point>:<batchId>:stop` stops it there with SIGSTOP instead, as a frozen container (the fencing tests
 * resume it with SIGCONT). Unset (the normal case) this is one comparison per batch.
 *
 * Points: after-offsets (offsets/N written, nothing else), during-copy (mid COPY, transaction open),
 * after-db-commit (database committed, commits/N not yet written).
 */
const spec = process.env.ECOMSTREAM_FAILPOINT;

export type Failpoint = 'after-offsets' | 'during-copy' | 'after-db-commit';

export function failpoint(point: Failpoint, batchId: number): void {
  if (spec === undefined) return;
  if (spec === `${point}:${batchId}`) process.kill(process.pid, 'SIGKILL');
  else if (spec === `${point}:${batchId}:stop`) process.kill(process.pid, 'SIGSTOP');
}
