/** The dashboard's worker thread (started by src/dashboard/thread.ts, which says why). */
import { parentPort, workerData } from 'node:worker_threads';
import type { Logger } from '../log.js';
import { startDashboard, type Dashboard } from './server.js';
import type { DashboardWorkerData, FromDashboardWorker } from './thread.js';

const port = parentPort!;
const { config, databaseUrl } = workerData as DashboardWorkerData;
const post = (m: FromDashboardWorker): void => port.postMessage(m);
const at =
  (level: keyof Logger): Logger[keyof Logger] =>
  (message, fields) =>
    post({ type: 'log', level, message, fields });
const log: Logger = { info: at('info'), warn: at('warn'), error: at('error') };

let dashboard: Dashboard | undefined;
// The one message is 'close'.
port.on('message', () => {
  void (dashboard?.close() ?? Promise.resolve()).finally(() => port.close());
});
startDashboard({ config, databaseUrl, log }).then(
  (d) => {
    dashboard = d;
    post({ type: 'started', url: d.url });
  },
  (err: unknown) => {
    post({ type: 'failed', message: (err as Error).message });
    port.close();
  },
);
