/**
 * Retrying while PostgreSQL is unreachable: the same doubling backoff for start-up and for batches.
 * Only connection errors are retried (src/db/errors.ts); anything else is thrown at once.
 */
import { EcomstreamError, errorCode } from '../errors.js';
import type { Logger } from '../log.js';
import { isConnectionError } from './errors.js';
import { sleep } from '../sleep.js';

export interface RetryOptions {
  log: Logger;
  /** What is being tried, for the log lines: "batch 3", "start-up". */
  what: string;
  initialMillis: number;
  maxMillis: number;
  /** Give up after this long (ms); undefined = never. */
  deadlineMillis?: number;
  signal?: AbortSignal;
}

export class DatabaseUnavailableError extends EcomstreamError {}

export async function retryWhileUnavailable<T>(opts: RetryOptions, attempt: () => Promise<T>, onRetry?: (code: string) => void): Promise<T> {
  const started = Date.now();
  let delay = opts.initialMillis;
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      if (!isConnectionError(err)) throw err;
      const reason = (err as Error).message;
      if (opts.signal?.aborted) throw err;
      if (opts.deadlineMillis !== undefined && Date.now() - started + delay > opts.deadlineMillis) {
        throw new DatabaseUnavailableError(
          `${opts.what}: PostgreSQL did not answer within ${Math.round(opts.deadlineMillis / 1000)} s (last error: ${reason})`,
          {
            cause: err,
            code: 'DB_UNAVAILABLE',
          },
        );
      }
      onRetry?.(errorCode(err) ?? 'unknown');
      opts.log.warn(`${opts.what}: database unavailable (${reason}); retry ${n} in ${delay} ms`);
      await sleep(delay, opts.signal);
      delay = Math.min(delay * 2, opts.maxMillis);
    }
  }
}
