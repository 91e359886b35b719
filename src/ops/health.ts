/**
 * Liveness, readiness and the stall alarm of the stream engine, kept as state: the engine's observer
 * events and a background database probe update it, and `/livez` and `/readyz` read it, so no answer
 * waits for the database or for anything else the engine does.
 *
 * Terminology
 * - alive:      the process runs and its batch loop has not ended (`/livez`).
 * - ready:      the checkpoint lock is held, start-up is done, the batch path's last database attempt did
 *               not fail, the probe answers, and the stream is not stalled (`/readyz`).
 * - batch path: the engine's own connections (start-up and batch writes). A failure there worth a retry
 *               (src/db/errors.ts) means not ready until a batch commits again — `database_full` when
 *               the server is out of disk space, else `database_unreachable`. The probe alone cannot
 *               tell: its one connection, once open, still answers while every new batch connection is
 *               refused (53300), and a `SELECT 1` needs no disk.
 * - probe:      a `SELECT 1` on the monitor's own connection every second while the endpoint is served,
 *               for a database that goes away while no batch runs.
 * - pending:    there is work: published files wait to be planned, or a batch is in flight.
 * - stalled:    work has been pending for `stallAfterSeconds` with no batch committed — whether the files
 *               just wait or a batch is stuck (a lock, a database that does not come back). A commit ends
 *               the stall; so does the work going away.
 */
import type pg from 'pg';
import type { EngineObserver } from '../engine/observer.js';
import { CONNECTIONS, openPool } from '../db/client.js';
import { describePgError, describeUnavailable, isDiskFull } from '../db/errors.js';
import type { Logger } from '../log.js';

export type NotReadyReason = 'starting' | 'database_unreachable' | 'database_full' | 'stalled' | 'stopped';

export interface Readiness {
  ready: boolean;
  reason?: NotReadyReason;
  detail?: string;
}

/** What `/livez` and `/readyz` answer. */
export interface HealthState {
  alive: boolean;
  readiness: Readiness;
}

export interface HealthOptions {
  databaseUrl: string;
  stallAfterSeconds: number;
  log: Logger;
  /** Told when a stall begins and ends (the metrics gauge, the dashboard). */
  onStalled?(stalled: boolean): void;
}

const PROBE_PERIOD_MS = 1000;
/** The probe's connection, as pg_stat_activity shows it. */
export const PROBE_APPLICATION_NAME = CONNECTIONS.probe.applicationName;

export class HealthMonitor {
  readonly observer: EngineObserver;
  private lockHeld = false;
  private running = false;
  private loopEnded = false;
  private backlogFiles = 0;
  private inFlight: { batchId: number; sinceMs: number } | undefined;
  private lastCommitMs: number | undefined;
  /** Since when work has been pending without a commit; undefined = nothing pending. */
  private pendingSinceMs: number | undefined;
  private stalled = false;
  private stalledSinceMs = 0;
  /** The batch path's last attempt failed (and is being retried); cleared by a commit or start-up's end. */
  private writeFailure: { reason: NotReadyReason; detail: string } | undefined;
  private probeFailure: string | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private probing = false;
  private readonly timer: NodeJS.Timeout;
  private readonly pool: pg.Pool;
  private readonly listeners = new Set<(state: HealthState) => void>();
  private published = '';

  constructor(private readonly opts: HealthOptions) {
    // An idle client lost with the server is ignored: the next probe reports it.
    this.pool = openPool(opts.databaseUrl, 'probe');
    const period = Math.max(50, Math.min(1000, (opts.stallAfterSeconds * 1000) / 4));
    this.timer = setInterval(() => this.evaluate(), period);
    this.timer.unref();
    this.observer = this.createObserver();
  }

  private createObserver(): EngineObserver {
    return {
      started: () => {
        this.lockHeld = true;
        this.changed();
      },
      running: () => {
        this.running = true;
        this.writeFailure = undefined;
        this.changed();
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
        this.writeFailure = undefined;
        this.updatePending();
        this.evaluate();
        this.changed();
      },
      dbRetry: ({ batchId, error }) => {
        this.writeFailure = {
          reason: isDiskFull(error) ? 'database_full' : 'database_unreachable',
          detail: `${batchId === undefined ? 'start-up' : `batch ${batchId}`}: ${describeUnavailable(error)}`,
        };
        this.changed();
      },
      stopped: () => {
        this.lockHeld = false;
        this.loopEnded = true;
        this.inFlight = undefined;
        this.evaluate();
        this.changed();
      },
    };
  }

  get alive(): boolean {
    return !this.loopEnded;
  }

  get isStalled(): boolean {
    return this.stalled;
  }

  /** `listener` gets the state now and on every change. */
  subscribe(listener: (state: HealthState) => void): () => void {
    this.listeners.add(listener);
    listener(this.state());
    return () => this.listeners.delete(listener);
  }

  state(): HealthState {
    return { alive: this.alive, readiness: this.readiness() };
  }

  private changed(): void {
    const state = this.state();
    const key = JSON.stringify(state);
    if (key === this.published) return;
    this.published = key;
    for (const listener of this.listeners) listener(state);
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
    this.changed(); // an edge, or the stall's detail (how long the batch has been in flight) moved on
    return this.stalled;
  }

  private describeWork(now: number): string {
    const parts: string[] = [];
    if (this.inFlight) parts.push(`batch ${this.inFlight.batchId} in flight for ${Math.round((now - this.inFlight.sinceMs) / 1000)} s`);
    if (this.backlogFiles > 0) parts.push(`${this.backlogFiles} files wait`);
    return parts.join(', ');
  }

  /** Probes the database every second from now on (while the endpoint is served). */
  startProbing(): void {
    if (this.probeTimer) return;
    this.probe();
    this.probeTimer = setInterval(() => this.probe(), PROBE_PERIOD_MS);
    this.probeTimer.unref();
  }

  private probe(): void {
    if (this.probing || this.loopEnded) return;
    this.probing = true;
    void this.pool
      .query('SELECT 1')
      .then(
        () => undefined,
        (err: unknown) => describePgError(err),
      )
      .then((failure) => {
        this.probing = false;
        this.probeFailure = failure;
        this.changed();
      });
  }

  readiness(): Readiness {
    if (this.loopEnded) return { ready: false, reason: 'stopped', detail: 'the batch loop has ended' };
    if (!this.lockHeld) return { ready: false, reason: 'starting', detail: 'the checkpoint is not open yet' };
    if (this.writeFailure) return { ready: false, ...this.writeFailure };
    if (!this.running) return { ready: false, reason: 'starting', detail: 'connecting to PostgreSQL and replaying a batch left planned' };
    if (this.probeFailure !== undefined) return { ready: false, reason: 'database_unreachable', detail: this.probeFailure };
    if (this.stalled) return { ready: false, reason: 'stalled', detail: this.describeWork(Date.now()) };
    return { ready: true };
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    clearInterval(this.probeTimer);
    this.listeners.clear();
    await this.pool.end().catch(() => undefined);
  }
}
