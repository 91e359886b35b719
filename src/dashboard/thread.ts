/**
 * The dashboard in a worker thread, as `up` runs it beside the engine: its page, API and live updates
 * then run on their own event loop, so no dashboard client can delay a batch. Its log lines come back
 * to the caller's logger (src/dashboard/dashboard-worker.ts is the other side).
 */
import type { Config } from '../config.js';
import type { LogFields, Logger } from '../log.js';
import { startWorker } from '../worker.js';
import { DashboardError, type Dashboard } from './server.js';

export interface DashboardWorkerData {
  config: Readonly<Config>;
  databaseUrl: string;
}

/** Worker -> caller. */
export type FromDashboardWorker =
  { type: 'started'; url: string } | { type: 'failed'; message: string } | { type: 'log'; level: keyof Logger; message: string; fields?: LogFields };

/** A worker that does not end within this long of being asked to is terminated. */
const CLOSE_GRACE_MS = 5000;

export async function startDashboardThread(opts: { config: Readonly<Config>; databaseUrl: string; log: Logger }): Promise<Dashboard> {
  const data: DashboardWorkerData = { config: opts.config, databaseUrl: opts.databaseUrl };
  const running = await startWorker<FromDashboardWorker, string>(import.meta.url, 'dashboard-worker', data, {
    started: (m) => (m.type === 'started' ? m.url : m.type === 'failed' ? new DashboardError(m.message) : undefined),
    onMessage: (m) => {
      if (m.type === 'log') opts.log[m.level](m.message, m.fields);
    },
    onError: (err) => {
      opts.log.error(`dashboard failed: ${err.message}`);
      return new DashboardError(`dashboard: ${err.message}`, { cause: err });
    },
  });
  return { url: running.value, close: () => running.end(CLOSE_GRACE_MS) };
}
