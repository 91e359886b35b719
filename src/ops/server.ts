/**
 * The operations endpoint of `process` and `up`: `GET /metrics` (Prometheus text format), `GET /livez`
 * and `GET /readyz`, the paths Kubernetes and Redpanda Connect use. Bound to 127.0.0.1 unless
 * `--metrics-host` says otherwise.
 *
 * The HTTP server runs in a worker thread (src/ops/ops-worker.ts), so no client — 200 scrapers in a
 * loop, a thousand connections that never finish their headers — runs code on the batch loop. The
 * engine's side does two things only: it posts the health state whenever it changes (the worker
 * answers `/livez` and `/readyz` from it), and it renders the registry when the worker asks, which the
 * worker does at most once per `metricsMinIntervalMillis` (and EngineMetrics.render enforces the same).
 * The worker also answers at most `maxScrapesPerSecond` scrapes a second, so a flood of them cannot
 * take the CPU the batches need, nor delay `/readyz` behind them in the worker's own loop.
 */
import type { AddressInfo } from 'node:net';
import type { HttpLimitsConfig } from '../config.js';
import { EcomstreamError } from '../errors.js';
import type { Logger } from '../log.js';
import { startWorker } from '../worker.js';
import type { HealthMonitor, HealthState } from './health.js';
import type { EngineMetrics, MetricsText } from './metrics.js';

export interface OpsServer {
  url: string;
  close(): Promise<void>;
}

/** The endpoint could not listen (code: the socket's, e.g. EADDRINUSE) or its worker failed (OPS_WORKER_FAILED). */
export class OpsServerError extends EcomstreamError {}

/** What the worker is started with. */
export interface OpsWorkerData {
  host: string;
  port: number;
  limits: HttpLimitsConfig;
  minIntervalMillis: number;
  maxScrapesPerSecond: number;
}

/** Engine -> worker. */
export type ToOpsWorker =
  { type: 'health'; state: HealthState } | { type: 'metrics'; metrics: MetricsText } | { type: 'metrics-error'; message: string } | { type: 'close' };

/** Worker -> engine. */
export type FromOpsWorker =
  | { type: 'listening'; address: AddressInfo }
  | { type: 'listen-error'; code: string | undefined; message: string }
  | { type: 'render' }
  | { type: 'log'; level: 'warn' | 'error'; message: string };

/** A worker that does not end within this long of being asked to is terminated. */
const CLOSE_GRACE_MS = 2000;

export async function startOpsServer(opts: {
  host: string;
  port: number;
  limits: HttpLimitsConfig;
  minIntervalMillis: number;
  maxScrapesPerSecond: number;
  metrics: EngineMetrics;
  health: HealthMonitor;
  log: Logger;
}): Promise<OpsServer> {
  const { metrics, health, log } = opts;
  const data: OpsWorkerData = {
    host: opts.host,
    port: opts.port,
    limits: opts.limits,
    minIntervalMillis: opts.minIntervalMillis,
    maxScrapesPerSecond: opts.maxScrapesPerSecond,
  };
  const running = await startWorker<FromOpsWorker, AddressInfo>(import.meta.url, 'ops-worker', data, {
    started: (m) => {
      if (m.type === 'listening') return m.address;
      if (m.type !== 'listen-error') return undefined;
      return new OpsServerError(
        `metrics endpoint: cannot listen on ${opts.host}:${opts.port} (${m.code ?? m.message}); choose another --metrics-port, or 0 to turn it off`,
        { code: m.code ?? 'LISTEN_FAILED', option: '--metrics-port' },
      );
    },
    onMessage: (m, worker) => {
      const post = (answer: ToOpsWorker): void => worker.postMessage(answer);
      if (m.type === 'render') {
        metrics.render().then(
          (text) => post({ type: 'metrics', metrics: text }),
          (err: unknown) => post({ type: 'metrics-error', message: (err as Error).message }),
        );
      } else if (m.type === 'log') log[m.level](m.message);
    },
    onError: (err) => {
      log.error(`metrics endpoint failed: ${err.message}`);
      return new OpsServerError(`metrics endpoint: ${err.message}`, { code: 'OPS_WORKER_FAILED', cause: err });
    },
  });
  const unsubscribe = health.subscribe((state) => running.worker.postMessage({ type: 'health', state } satisfies ToOpsWorker));
  const addr = running.value;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${host}:${addr.port}`,
    close() {
      unsubscribe();
      return running.end(CLOSE_GRACE_MS);
    },
  };
}
