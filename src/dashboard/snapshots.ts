/**
 * Snapshots for the pages and the API, computed through the read-only pool and cached per chart window.
 *
 * Snapshots are computed one at a time (API calls and pushes share one queue), so the dashboard never
 * holds more than one query connection busy however many pages are open.
 */
import fsp from 'node:fs/promises';
import type pg from 'pg';
import type { Config } from '../config.js';
import { isConnectionError, withClient } from '../db/errors.js';
import type { Logger } from '../log.js';
import { explainDbError } from './live.js';
import { buildSnapshot, readDbRows, type Snapshot, type WindowKey } from './queries.js';
import { ARCHITECTURE_SVG } from './static.js';
import { BacklogTracker, engineState } from './surroundings.js';

export interface CachedSnapshot {
  snapshot: Snapshot;
  atMs: number;
}

export interface SnapshotEvents {
  /** `problem` changed. */
  problemChanged(): void;
  /** A query lost its connection: the database is probably away. */
  connectionLost(err: unknown): void;
}

export class SnapshotSource {
  /** A query failed for a reason other than the connection (for example a missing table); null once one succeeds. */
  problem: string | null = null;
  private readonly cache = new Map<WindowKey, CachedSnapshot>();
  private readonly backlog: BacklogTracker;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly pool: pg.Pool,
    private readonly config: Readonly<Config>,
    private readonly log: Logger,
    private readonly events: SnapshotEvents,
  ) {
    this.backlog = new BacklogTracker(config.engine.inputDir);
  }

  /** The last snapshot computed for `window`, and when. */
  cached(window: WindowKey): CachedSnapshot | undefined {
    return this.cache.get(window);
  }

  /** Fresh snapshots of `windows`, after those already queued. */
  compute(windows: WindowKey[]): Promise<Map<WindowKey, Snapshot>> {
    const run = () => this.run(windows);
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }

  /** Resolves when the queued computations have ended. */
  async idle(): Promise<void> {
    await this.queue;
  }

  private async run(windows: WindowKey[]): Promise<Map<WindowKey, Snapshot>> {
    try {
      const out = await this.query(windows);
      if (this.problem !== null) {
        this.problem = null;
        this.events.problemChanged();
      }
      return out;
    } catch (err) {
      if (isConnectionError(err)) {
        this.events.connectionLost(err);
      } else {
        const message = explainDbError(err, this.config.db.readonlyUser);
        if (message !== this.problem) {
          this.problem = message;
          this.log.warn(`dashboard: query failed: ${message}`);
          this.events.problemChanged();
        }
      }
      throw err;
    }
  }

  private async query(windows: WindowKey[]): Promise<Map<WindowKey, Snapshot>> {
    const out = new Map<WindowKey, Snapshot>();
    // withClient handles the client's 'error' event: a connection killed mid-query (server crash,
    // pg_terminate_backend) is a ConnectionLostError here, never a crash of the dashboard.
    await withClient(this.pool, async (client) => {
      const backlogFiles = await this.backlog.count(client);
      const [engine, architecture] = await Promise.all([
        engineState(this.config.engine.checkpointDir, backlogFiles),
        fsp.access(ARCHITECTURE_SVG).then(
          () => true,
          () => false,
        ),
      ]);
      for (const w of windows) {
        const { rows } = await readDbRows(client, w);
        const snapshot = buildSnapshot(rows, w, { backlogFiles, engine, architecture });
        out.set(w, snapshot);
        this.cache.set(w, { snapshot, atMs: Date.now() });
      }
    });
    return out;
  }
}
