/**
 * The PromQL of the Grafana dashboard (deploy/grafana/ecomstream.json), read with the Prometheus project's
 * own parser (@prometheus-io/lezer-promql, the one Prometheus's web UI uses): which series each query
 * selects, by metric name or by a regular expression on `__name__`.
 */
import { parser } from '@prometheus-io/lezer-promql';

export interface DashboardQuery {
  row: string;
  panel: string;
  expr: string;
}

interface PanelJson {
  type: string;
  title?: string;
  targets?: { expr?: string }[];
}

/** Every panel query of a dashboard's JSON, with the row it sits under (rows are flat panels, in order). */
export function dashboardQueries(json: string): DashboardQuery[] {
  const dashboard = JSON.parse(json) as { panels?: PanelJson[] };
  let row = '';
  const out: DashboardQuery[] = [];
  for (const p of dashboard.panels ?? []) {
    if (p.type === 'row') row = p.title ?? '';
    for (const t of p.targets ?? []) if (t.expr) out.push({ row, panel: p.title ?? '', expr: t.expr });
  }
  return out;
}

/** What Grafana sends for its macros and the dashboard's variables ($instance = All). */
export function interpolate(expr: string): string {
  return expr.replaceAll('$__rate_interval', '1m').replaceAll('$instance', '.*');
}

export interface Selector {
  /** The metric name written before the braces. */
  name?: string;
  /** A `__name__=~"…"` matcher's regular expression. */
  nameRegex?: string;
}

/** The series selectors of a query; throws naming the position of a syntax error. */
export function selectors(expr: string): Selector[] {
  const tree = parser.parse(expr);
  const out: Selector[] = [];
  const cursor = tree.cursor();
  do {
    if (cursor.type.isError) throw new Error(`PromQL syntax error at ${cursor.from}: ${expr.slice(0, cursor.from)} ⚠ ${expr.slice(cursor.from)}`);
    if (cursor.name !== 'VectorSelector') continue;
    const node = cursor.node;
    const name = node.getChild('Identifier');
    const sel: Selector = {};
    if (name) sel.name = expr.slice(name.from, name.to);
    for (const m of node.getChild('LabelMatchers')?.getChildren('UnquotedLabelMatcher') ?? []) {
      const label = m.getChild('LabelName');
      const op = m.getChild('MatchOp');
      const value = m.getChild('StringLiteral');
      if (label && op && value && expr.slice(label.from, label.to) === '__name__' && expr.slice(op.from, op.to) === '=~') {
        sel.nameRegex = JSON.parse(expr.slice(value.from, value.to)) as string;
      }
    }
    out.push(sel);
  } while (cursor.next());
  return out;
}
