/**
 * Operations for a running engine in one call: metrics, health monitor and their HTTP endpoint, wired
 * to the engine through one observer. `process` and `up` use this; tests too.
 */
import { defaults, type HttpLimitsConfig, type OpsConfig } from '../config.js';
import type { EngineObserver } from '../engine/observer.js';
import { combineObservers } from '../engine/observer.js';
import type { Logger } from '../log.js';
import { HealthMonitor } from './health.js';
import { createEngineMetrics, type EngineMetrics } from './metrics.js';
import { startOpsServer, type OpsServer } from './server.js';

export interface Ops {
  observer: EngineObserver;
  metrics: EngineMetrics;
  health: HealthMonitor;
  /** undefined when `metricsPort` is 0 or the port could not be bound. */
  server: OpsServer | undefined;
  close(): Promise<void>;
}

export async function startOps(opts: {
  ops: Readonly<OpsConfig>;
  /** What a client may hold of the endpoint; the config's defaults when omitted. */
  http?: Readonly<HttpLimitsConfig>;
  databaseUrl: string;
  log: Logger;
  /** Also told of stall edges (the dashboard's banner). */
  onStalled?(stalled: boolean): void;
  /** Fail instead of warning when the port cannot be bound. Default false: a busy port must not stop the pipeline. */
  strict?: boolean;
}): Promise<Ops> {
  const { ops, log } = opts;
  const metrics = createEngineMetrics({ minIntervalMillis: ops.metricsMinIntervalMillis });
  const health = new HealthMonitor({
    databaseUrl: opts.databaseUrl,
    stallAfterSeconds: ops.stallAfterSeconds,
    log,
    onStalled: (s) => {
      metrics.setStalled(s);
      opts.onStalled?.(s);
    },
  });
  let server: OpsServer | undefined;
  if (ops.metricsPort !== 0) {
    try {
      server = await startOpsServer({
        host: ops.metricsHost,
        port: ops.metricsPort,
        limits: opts.http ?? defaults().http,
        minIntervalMillis: ops.metricsMinIntervalMillis,
        maxScrapesPerSecond: ops.maxScrapesPerSecond,
        metrics,
        health,
        log,
      });
      health.startProbing();
      log.info(`metrics: ${server.url}/metrics, health: ${server.url}/livez ${server.url}/readyz`);
    } catch (err) {
      if (opts.strict) {
        await health.close();
        throw err;
      }
      log.warn(`${(err as Error).message}; the engine runs without it`);
    }
  }
  return {
    observer: combineObservers(metrics.observer, health.observer),
    metrics,
    health,
    server,
    async close() {
      await server?.close();
      await health.close();
    },
  };
}
