/**
 * Liveness, readiness and the stall alarm of the stream engine, from its observer events.
 *
 * Terminology
 * - alive:    the process runs and its batch loop has not ended (`/livez`).
 * - ready:    the database answers, the checkpoint lock is held, and the stream is not stalled (`/readyz`).
 * - pending:  there is work: published files wait to be planned, or a batch is in flight.
 * - stalled:  work has been pending for `stallAfterSeconds` with no batch committed — whether the files
 *             just wait or a batch is stuck (a lock, a database that does not come back). A commit ends
 *             the stall; so does the work going away.
 */
import pg from 'pg';
import type { EngineObserver } from '../engine/observer.js';
import { describePgError } from '../db/errors.js';
import type { Logger } from '../log.js';

export type NotReadyReason = 'starting' | 'database_unreachable' | 'stalled' | 'stopped';

export interface Readiness {
  ready: boolean;
  reason?: NotReadyReason;
  detail?: string;
}

export interface HealthOptions {
  databaseUrl: string;
  stallAfterSeconds: number;
  log: Logger;
  /** Told when a stall begins and ends (the metrics gauge, the dashboard). */
  onStalled?(stalled: boolean): void;
  /** How long one database check may take before it counts as unreachable. Default 2000 ms. */
  dbTimeoutMillis?: number;
}

/** Checks answered within this long of each other share one database round trip. */
const DB_CHECK_CACHE_MS = 500;

export class HealthMonitor {
  readonly observer: EngineObserver;
  private lockHeld = false;
  private loopEnded = false;
  private backlogFiles = 0;
  private inFlight: { batchId: number; sinceMs: number } | undefined;
  private lastCommitMs: number | undefined;
  /** Since when work has been pending without a commit; undefined = nothing pending. */
  private pendingSinceMs: number | undefined;
  private stalled = false;
  private stalledSinceMs = 0;
  private readonly timer: NodeJS.Timeout;
  private readonly pool: pg.Pool;
  private dbCheck: { atMs: number; result: Promise<string | undefined> } | undefined;

  constructor(private readonly opts: HealthOptions) {
    const timeout = opts.dbTimeoutMillis ?? 2000;
    this.pool = new pg.Pool({
      connectionString: opts.databaseUrl,
      max: 1,
      connectionTimeoutMillis: timeout,
      query_timeout: timeout,
      idleTimeoutMillis: 10_000,
    });
    this.pool.on('error', () => undefined); // an idle client lost with the server: the next check reports it
    const period = Math.max(50, Math.min(1000, (opts.stallAfterSeconds * 1000) / 4));
    this.timer = setInterval(() => this.evaluate(), period);
    this.timer.unref();
    this.observer = {
      started: () => {
        this.lockHeld = true;
      },
      backlog: (n) => {
        this.backlogFiles = n;
        this.updatePending();
      },
      batchStarted: ({ batchId }) => {
        this.inFlight = { batchId, sinceMs: Date.now() };
        this.updatePending();
      },
      batchCommitted: ({ record }) => {
        this.inFlight = undefined;
        this.lastCommitMs = Date.parse(record.committedAt);
        this.pendingSinceMs = undefined; // a commit is progress: the clock restarts
        this.updatePending();
        this.evaluate();
      },
      stopped: () => {
        this.lockHeld = false;
        this.loopEnded = true;
        this.inFlight = undefined;
        this.evaluate();
      },
    };
  }

  get alive(): boolean {
    return !this.loopEnded;
  }

  get isStalled(): boolean {
    return this.stalled;
  }

  private updatePending(): void {
    const pending = this.backlogFiles > 0 || this.inFlight !== undefined;
    if (!pending) this.pendingSinceMs = undefined;
    else this.pendingSinceMs ??= Date.now();
  }

  /** Turns the stall alarm on or off; one log line at each edge. */
  evaluate(now = Date.now()): boolean {
    const { log, stallAfterSeconds } = this.opts;
    const over = this.pendingSinceMs !== undefined && !this.loopEnded && now - this.pendingSinceMs >= stallAfterSeconds * 1000;
    if (over && !this.stalled) {
      this.stalled = true;
      this.stalledSinceMs = now;
      log.warn(
        `stalled: ${this.describeWork(now)}, and no batch committed for ${Math.round((now - this.pendingSinceMs!) / 1000)} s (--stall-after ${stallAfterSeconds})`,
      );
      this.opts.onStalled?.(true);
    } else if (!over && this.stalled) {
      this.stalled = false;
      const why = this.loopEnded
        ? 'the engine stopped'
        : this.lastCommitMs !== undefined && this.lastCommitMs >= this.stalledSinceMs
          ? 'a batch committed'
          : 'no files wait any more';
      log.info(`stall over after ${Math.round((now - this.stalledSinceMs) / 1000)} s: ${why}`);
      this.opts.onStalled?.(false);
    }
    return this.stalled;
  }

  private describeWork(now: number): string {
    const parts: string[] = [];
    if (this.inFlight) parts.push(`batch ${this.inFlight.batchId} in flight for ${Math.round((now - this.inFlight.sinceMs) / 1000)} s`);
    if (this.backlogFiles > 0) parts.push(`${this.backlogFiles} files wait`);
    return parts.join(', ');
  }

  /** undefined when the database answered, else a one-line reason. */
  private checkDatabase(): Promise<string | undefined> {
    const now = Date.now();
    if (!this.dbCheck || now - this.dbCheck.atMs > DB_CHECK_CACHE_MS) {
      this.dbCheck = {
        atMs: now,
        result: this.pool.query('SELECT 1').then(
          () => undefined,
          (err: unknown) => describePgError(err),
        ),
      };
    }
    return this.dbCheck.result;
  }

  async readiness(): Promise<Readiness> {
    if (this.loopEnded) return { ready: false, reason: 'stopped', detail: 'the batch loop has ended' };
    if (!this.lockHeld) return { ready: false, reason: 'starting', detail: 'the checkpoint is not open yet' };
    const dbError = await this.checkDatabase();
    if (dbError !== undefined) return { ready: false, reason: 'database_unreachable', detail: dbError };
    if (this.evaluate()) return { ready: false, reason: 'stalled', detail: this.describeWork(Date.now()) };
    return { ready: true };
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.pool.end().catch(() => undefined);
  }
}
