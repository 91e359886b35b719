/** Scrapes an ops endpoint over HTTP and parses the Prometheus text with parse-prometheus-text-format. */
import { createRequire } from 'node:module';

export interface ParsedMetric {
  value?: string;
  labels?: Record<string, string>;
  buckets?: Record<string, string>;
  count?: string;
  sum?: string;
}
export interface ParsedFamily {
  name: string;
  help: string;
  type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED';
  metrics: ParsedMetric[];
}

const parse = createRequire(import.meta.url)('parse-prometheus-text-format') as (text: string) => ParsedFamily[];

export async function scrape(baseUrl: string): Promise<Map<string, ParsedFamily>> {
  const res = await fetch(`${baseUrl}/metrics`);
  if (res.status !== 200) throw new Error(`GET ${baseUrl}/metrics: ${res.status}`);
  return new Map(parse(await res.text()).map((f) => [f.name, f]));
}

/** The value of one sample of a family, chosen by its labels (all given labels must match). */
export function sample(families: Map<string, ParsedFamily>, name: string, labels: Record<string, string> = {}): number {
  const family = families.get(name);
  if (!family) throw new Error(`no metric family ${name}`);
  const m = family.metrics.find((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v));
  if (!m) throw new Error(`${name}: no sample with labels ${JSON.stringify(labels)}`);
  return Number(m.value ?? m.count);
}

/** One sample of an instant vector, as Prometheus's HTTP API returns it. */
export interface VectorSample {
  metric: Record<string, string>;
  value: [number, string];
}

/** An instant query through Prometheus's HTTP API (/api/v1/query). */
export async function promQuery(prometheusUrl: string, expr: string): Promise<VectorSample[]> {
  const res = await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(expr)}`, { signal: AbortSignal.timeout(10_000) });
  const body = (await res.json()) as { status: string; error?: string; data?: { resultType: string; result: VectorSample[] } };
  if (body.status !== 'success' || body.data?.resultType !== 'vector') throw new Error(`query ${expr}: ${body.error ?? JSON.stringify(body)}`);
  return body.data.result;
}

/** An alert as /api/v1/alerts lists it (pending or firing; a resolved alert is no longer listed). */
export interface ActiveAlert {
  labels: Record<string, string>;
  state: 'pending' | 'firing';
  activeAt: string;
  value: string;
}

export async function activeAlerts(prometheusUrl: string): Promise<ActiveAlert[]> {
  const res = await fetch(`${prometheusUrl}/api/v1/alerts`, { signal: AbortSignal.timeout(10_000) });
  return ((await res.json()) as { data: { alerts: ActiveAlert[] } }).data.alerts;
}
