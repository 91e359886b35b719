/**
 * Charts for benchmark results, rendered to SVG by Vega-Lite (no browser, no canvas needed), so a
 * person can look at a distribution instead of reading percentiles.
 */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

async function render(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  return view.toSVG();
}

/** Histogram of values (e.g. latencies in ms) with p50/p99 rules. */
export function histogram(values: number[], title: string, unit: string): Promise<string> {
  const sorted = [...values].sort((a, b) => a - b);
  const q = (p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
  return render({
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title,
    width: 560,
    height: 260,
    layer: [
      {
        data: { values: values.map((v) => ({ v })) },
        mark: { type: 'bar', color: '#1976D2' },
        encoding: {
          x: { field: 'v', type: 'quantitative', bin: { maxbins: 40 }, title: unit },
          y: { aggregate: 'count', type: 'quantitative', title: 'files' },
        },
      },
      {
        data: {
          values: [
            { v: q(0.5), label: `p50 ${q(0.5).toFixed(0)} ${unit}` },
            { v: q(0.99), label: `p99 ${q(0.99).toFixed(0)} ${unit}` },
          ],
        },
        layer: [
          { mark: { type: 'rule', color: '#D32F2F', strokeDash: [4, 3] }, encoding: { x: { field: 'v', type: 'quantitative' } } },
          {
            mark: { type: 'text', align: 'left', dx: 4, dy: -110, color: '#D32F2F' },
            encoding: { x: { field: 'v', type: 'quantitative' }, text: { field: 'label' } },
          },
        ],
      },
    ],
  });
}

/** Horizontal bars of named values. */
export function barChart(rows: [string, number][], title: string): Promise<string> {
  return render({
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title,
    width: 520,
    height: 30 * rows.length,
    data: { values: rows.map(([name, value]) => ({ name, value })) },
    layer: [
      { mark: { type: 'bar', color: '#388E3C' } },
      { mark: { type: 'text', align: 'left', dx: 4 }, encoding: { text: { field: 'value', type: 'quantitative', format: ',' } } },
    ],
    encoding: {
      y: { field: 'name', type: 'nominal', title: null, sort: null, axis: { labelLimit: 400 } },
      x: { field: 'value', type: 'quantitative', title: 'rows per second' },
    },
  });
}

interface EngineFigures {
  rowsPerSecond: number;
  rowsPerSecondProcessing: number;
}

/** `npm run bench:engines` as bars: each engine's rows per second over the whole run and the batch alone. */
export function enginesChart(r: { rows: number; typescript: EngineFigures; spark: EngineFigures; sparkCluster: EngineFigures }): Promise<string> {
  const engines: [string, EngineFigures][] = [
    ['TypeScript engine', r.typescript],
    ['Spark local[2]', r.spark],
    ['Spark cluster, 2 workers x 1 core', r.sparkCluster],
  ];
  return barChart(
    [
      ...engines.map(([name, f]): [string, number] => [`${name}, whole run`, f.rowsPerSecond]),
      ...engines.map(([name, f]): [string, number] => [`${name}, batch alone`, f.rowsPerSecondProcessing]),
    ],
    `Rows per second, ${r.rows.toLocaleString('en-US')} rows in one run on 2 cores`,
  );
}
