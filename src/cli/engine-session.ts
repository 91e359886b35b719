/**
 * The set-up `process`, `up` and `reprocess` share around the stream engine: the database (embedded or
 * DATABASE_URL, waited for), the Ctrl-C protocol, the ops endpoint, and the engine with one log line per
 * committed batch; everything closed in reverse order, also when the engine fails.
 */
import type { Config } from '../config.js';
import { openDatabase, type Database } from '../db/connect.js';
import { StreamEngine, type RunSummary, type StreamOptions } from '../engine/stream.js';
import { formatProgress, progressFields } from '../engine/progress.js';
import type { Logger } from '../log.js';
import { startOps } from '../ops/index.js';
import { gracefulStop } from './signals.js';

export interface SessionOptions {
  /** What a first Ctrl-C lets finish, for its log line; without it, Ctrl-C is not handled here. */
  stopping?: string;
  /** Serve the ops endpoint (metrics, health) and let it observe the engine. */
  ops?: boolean;
}

/** What a command adds to the engine's options. */
export type EngineExtras = Pick<StreamOptions, 'contract' | 'reprocess' | 'onProgress'>;

export interface EngineSession {
  db: Database;
  /** Aborted by the first Ctrl-C (with `stopping`), by `stop`, and when the session ends. */
  signal: AbortSignal | undefined;
  /** Aborts `signal` now (the engine is done: what runs beside it stops too). */
  stop(): void;
  /** Runs the stream engine on the session's database; each committed batch is logged, then passed to `onProgress`. */
  runEngine(more?: EngineExtras): Promise<RunSummary>;
}

export async function withEngineSession<T>(config: Readonly<Config>, log: Logger, opts: SessionOptions, use: (s: EngineSession) => Promise<T>): Promise<T> {
  const db = await openDatabase(config, log, { waitForServer: true });
  const stop = opts.stopping === undefined ? undefined : gracefulStop(log, opts.stopping);
  try {
    const ops = opts.ops ? await startOps({ ops: config.ops, http: config.http, databaseUrl: db.url, log }) : undefined;
    try {
      const runEngine = (more: EngineExtras = {}): Promise<RunSummary> =>
        new StreamEngine({
          engine: config.engine,
          databaseUrl: db.url,
          log,
          signal: stop?.signal,
          observer: ops?.observer,
          contract: more.contract,
          reprocess: more.reprocess,
          onProgress: (p) => {
            log.info(formatProgress(p), progressFields(p));
            more.onProgress?.(p);
          },
        }).run();
      return await use({ db, signal: stop?.signal, stop: () => stop?.release(), runEngine });
    } finally {
      stop?.release(); // also when the engine failed: nothing started beside it may run on alone
      await ops?.close();
    }
  } finally {
    stop?.release();
    await db.close();
  }
}
