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
