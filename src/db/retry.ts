/**
 * Retrying while PostgreSQL is unreachable or cannot take a write (out of connection slots, out of
 * disk): the same doubling backoff for start-up and for batches. Only the errors src/db/errors.ts calls
 * retryable are retried; anything else is thrown at once.
 */
import { EcomstreamError } from '../errors.js';
import type { Logger } from '../log.js';
import { describeUnavailable, isConnectionError, unavailableCause } from './errors.js';
import { sleep } from '../sleep.js';

export interface RetryOptions {
  log: Logger;
  /** What is being tried, for the log lines: "batch 3", "start-up". */
  what: string;
  initialMillis: number;
  maxMillis: number;
  /** Give up after this long (ms); undefined = never. */
  deadlineMillis?: number;
  /** The flag that sets the deadline, named when giving up: `--startup-timeout`. */
  deadlineOption?: string;
  signal?: AbortSignal;
}

export class DatabaseUnavailableError extends EcomstreamError {}

/**
 * One line when the deadline has passed: the cause in words where there is one and the flag that set
 * the deadline; the last error is its `cause` (the CLI prints it after the message).
 */
function gaveUp(opts: RetryOptions, deadlineMillis: number, err: unknown): DatabaseUnavailableError {
  const seconds = Math.round(deadlineMillis / 1000);
  const cause = unavailableCause(err);
  const flag = opts.deadlineOption ? ` (${opts.deadlineOption})` : '';
  return new DatabaseUnavailableError(
    cause ? `${opts.what}: ${cause}; gave up after ${seconds} s of retries${flag}` : `${opts.what}: PostgreSQL did not answer within ${seconds} s${flag}`,
    { cause: err, code: 'DB_UNAVAILABLE' },
  );
}

export async function retryWhileUnavailable<T>(opts: RetryOptions, attempt: () => Promise<T>, onRetry?: (err: unknown) => void): Promise<T> {
  const started = Date.now();
  let delay = opts.initialMillis;
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      if (!isConnectionError(err)) throw err;
      if (opts.signal?.aborted) throw err;
      // The last try is at the deadline, not a backoff step before it.
      const left = opts.deadlineMillis === undefined ? Infinity : opts.deadlineMillis - (Date.now() - started);
      if (left <= 0) throw gaveUp(opts, opts.deadlineMillis ?? 0, err);
      const wait = Math.min(delay, left);
      onRetry?.(err);
      opts.log.warn(`${opts.what}: ${describeUnavailable(err)}; retry ${n} in ${wait} ms`);
      await sleep(wait, opts.signal);
      delay = Math.min(delay * 2, opts.maxMillis);
    }
  }
}
