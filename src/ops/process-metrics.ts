/**
 * prom-client's default process metrics, less three that break Prometheus's naming rules:
 * `nodejs_active_handles_total`, `nodejs_active_requests_total` and `nodejs_active_resources_total` are
 * gauges with a counter's `_total` suffix (`promtool check metrics` rejects them, and `rate()` over a
 * `_total` name would be read as a counter). Nothing is lost: each is the sum of the per-type gauge kept
 * beside it (`sum(nodejs_active_handles)` and so on), which has the conventional name already.
 */
import client from 'prom-client';

/** The default metrics dropped, each with the kept gauge whose sum it was. */
export const DROPPED_DEFAULT_METRICS = {
  nodejs_active_handles_total: 'nodejs_active_handles',
  nodejs_active_requests_total: 'nodejs_active_requests',
  nodejs_active_resources_total: 'nodejs_active_resources',
} as const;

export function collectProcessMetrics(registry: client.Registry): void {
  client.collectDefaultMetrics({ register: registry });
  for (const name of Object.keys(DROPPED_DEFAULT_METRICS)) registry.removeSingleMetric(name);
}
