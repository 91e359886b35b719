/**
 * The Grafana dashboard of the engine and of the Spark job, as code: built with Grafana's typed
 * foundation SDK and written to deploy/grafana/ecomstream.json by `npm run grafana-dashboard`. The JSON is
 * generated, never edited: test/integration/grafana-dashboard.test.ts checks that it is current and that
 * its queries name only metrics a running engine exports.
 *
 * Engine panels select the scrape job of deploy/prometheus/prometheus.yml (`job="ecomstream"`) and the
 * chosen instances. The Spark job's driver names its metrics after its application id
 * (`metrics_<app-id>_driver_spark_streaming_ecomstream_inputRate_total_Value`), which changes with every
 * submission, so those panels match `__name__` with a regular expression and show the app id as a label.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  LegendDisplayMode,
  LegendPlacement,
  SortOrder,
  StackingConfigBuilder,
  StackingMode,
  TooltipDisplayMode,
  VizLegendOptionsBuilder,
  VizTooltipOptionsBuilder,
  type DataSourceRef,
} from '@grafana/grafana-foundation-sdk/common';
import {
  DashboardBuilder,
  DashboardCursorSync,
  DatasourceVariableBuilder,
  QueryVariableBuilder,
  RowBuilder,
  VariableRefresh,
  VariableSort,
  type Dashboard,
} from '@grafana/grafana-foundation-sdk/dashboard';
import { DataqueryBuilder } from '@grafana/grafana-foundation-sdk/prometheus';
import { PanelBuilder as StatPanel } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as TimeseriesPanel } from '@grafana/grafana-foundation-sdk/timeseries';

export const DASHBOARD_FILE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'ecomstream.json');

/** Every query reads the data source the dashboard's `datasource` variable names. */
const DS: DataSourceRef = { type: 'prometheus', uid: '${datasource}' };
/** The engine's series, as the shipped scrape job and the instance variable select them. */
const ENGINE = 'job="ecomstream", instance=~"$instance"';

type PanelBuilder = TimeseriesPanel | StatPanel;

function query(expr: string, legend: string): DataqueryBuilder {
  return new DataqueryBuilder().datasource(DS).expr(expr).legendFormat(legend);
}

/** Queries get refIds A, B, … in order, as Grafana's editor names them. */
function refIds(targets: DataqueryBuilder[]): DataqueryBuilder[] {
  return targets.map((t, i) => t.refId(String.fromCharCode(65 + i)));
}

function timeseries(title: string, unit: string, description: string, ...targets: DataqueryBuilder[]): TimeseriesPanel {
  return new TimeseriesPanel()
    .title(title)
    .description(description)
    .datasource(DS)
    .unit(unit)
    .height(8)
    .span(12)
    .legend(new VizLegendOptionsBuilder().showLegend(true).displayMode(LegendDisplayMode.List).placement(LegendPlacement.Bottom))
    .tooltip(new VizTooltipOptionsBuilder().mode(TooltipDisplayMode.Multi).sort(SortOrder.Descending))
    .targets(refIds(targets));
}

function stat(title: string, unit: string, description: string, target: DataqueryBuilder): StatPanel {
  return new StatPanel()
    .title(title)
    .description(description)
    .datasource(DS)
    .unit(unit)
    .height(4)
    .span(6)
    .targets(refIds([target]));
}

/** A Spark driver gauge for every running submission, labelled with its application id. */
function sparkGauge(suffix: string): string {
  return `label_replace({__name__=~"metrics_.+_driver_spark_streaming_ecomstream_${suffix}"}, "app", "$1", "__name__", "metrics_(.+)_driver_spark_streaming_.*")`;
}

function overview(): PanelBuilder[] {
  return [
    stat('Engine up', 'none', 'up: 1 while Prometheus scrapes the engine.', query(`up{${ENGINE}}`, '{{instance}}')),
    stat('Stalled', 'none', '1 while files wait and no batch commits for --stall-after seconds.', query(`ecomstream_stalled{${ENGINE}}`, '{{instance}}')),
    stat('Backlog', 'none', 'Published files not yet planned into a batch.', query(`ecomstream_backlog_files{${ENGINE}}`, '{{instance}}')),
    stat(
      'Since the last commit',
      's',
      'Seconds since the last committed batch (since the engine started, when it has committed none).',
      query(
        `time() - (ecomstream_last_commit_timestamp_seconds{${ENGINE}} > process_start_time_seconds{${ENGINE}} or process_start_time_seconds{${ENGINE}})`,
        '{{instance}}',
      ),
    ),
  ];
}

function rows(): PanelBuilder[] {
  return [
    timeseries(
      'Rows by outcome',
      'rowsps',
      'Input rows per second: inserted, duplicate, rejected, already_present (reprocessing).',
      query(`sum by (outcome) (rate(ecomstream_rows_total{${ENGINE}}[$__rate_interval]))`, '{{outcome}}'),
    ).stacking(new StackingConfigBuilder().mode(StackingMode.Normal)),
    timeseries(
      'Rejects by reason',
      'rowsps',
      "Rows and file notices written to rejected_events per second, by the contract's reason code.",
      query(`sum by (reason) (rate(ecomstream_rejected_rows_total{${ENGINE}}[$__rate_interval])) > 0`, '{{reason}}'),
    ),
  ];
}

function latency(): PanelBuilder[] {
  const quantile = (q: number): DataqueryBuilder =>
    query(`histogram_quantile(${q}, sum by (le) (rate(ecomstream_publish_to_commit_seconds_bucket{${ENGINE}}[$__rate_interval])))`, `p${q * 100}`);
  return [
    timeseries(
      'Publish → commit latency',
      's',
      "Per file: its publication (mtime) to its batch's commit, from the histogram.",
      quantile(0.5),
      quantile(0.9),
      quantile(0.99),
    ),
    timeseries(
      'Batch phases (mean per batch)',
      's',
      'Mean time per batch in each phase: plan, read, write, commit.',
      query(
        `sum by (phase) (rate(ecomstream_batch_duration_seconds_sum{${ENGINE}}[$__rate_interval])) / sum by (phase) (rate(ecomstream_batch_duration_seconds_count{${ENGINE}}[$__rate_interval]))`,
        '{{phase}}',
      ),
    ).stacking(new StackingConfigBuilder().mode(StackingMode.Normal)),
  ];
}

function health(): PanelBuilder[] {
  return [
    timeseries('Backlog', 'none', 'Published files not yet planned into a batch.', query(`ecomstream_backlog_files{${ENGINE}}`, '{{instance}}')),
    timeseries(
      'Stall',
      'none',
      '1 while stalled: the engine logs the batch and /readyz says stalled.',
      query(`ecomstream_stalled{${ENGINE}}`, '{{instance}}'),
    ).max(1),
    timeseries(
      'Database retries',
      'none',
      'Batch writes retried after a lost connection, by SQLSTATE or error code.',
      query(`sum by (code) (increase(ecomstream_db_retries_total{${ENGINE}}[$__rate_interval]))`, '{{code}}'),
    ),
    timeseries(
      'Batches and replays',
      'ops',
      'Committed batches per second; replays of batches planned before a restart.',
      query(`sum(rate(ecomstream_batches_total{${ENGINE}}[$__rate_interval]))`, 'batches'),
      query(`sum(rate(ecomstream_replays_total{${ENGINE}}[$__rate_interval]))`, 'replays'),
    ),
  ];
}

function engineProcess(): PanelBuilder[] {
  return [
    timeseries('Memory', 'bytes', 'Resident memory of the engine process.', query(`process_resident_memory_bytes{${ENGINE}}`, '{{instance}}')),
    timeseries(
      'Event loop lag (p99) and CPU',
      's',
      "The engine's event loop lag, and CPU seconds per second.",
      query(`nodejs_eventloop_lag_p99_seconds{${ENGINE}}`, 'lag p99'),
      query(`rate(process_cpu_seconds_total{${ENGINE}}[$__rate_interval])`, 'CPU'),
    ),
  ];
}

function spark(): PanelBuilder[] {
  return [
    timeseries(
      'Spark: input and processing rate',
      'rowsps',
      "The streaming query's rows per second, from the driver's /metrics/prometheus/ (one series per submission).",
      query(sparkGauge('inputRate_total_Value'), 'input {{app}}'),
      query(sparkGauge('processingRate_total_Value'), 'processed {{app}}'),
    ),
    timeseries(
      'Spark: batch latency',
      'ms',
      "The streaming query's last micro-batch duration, in milliseconds.",
      query(sparkGauge('latency_Value'), '{{app}}'),
    ),
  ];
}

// The v1 dashboard model, which the SDK marks deprecated in favour of v2: v1 is what Grafana's file
// provisioning and "Import dashboard" read in every version from 9 to 12, v2 only where its feature flags are on.
// eslint-disable-next-line @typescript-eslint/no-deprecated
export function buildDashboard(): Dashboard {
  // eslint-disable-next-line @typescript-eslint/no-deprecated
  const builder = new DashboardBuilder('ecomstream')
    .uid('ecomstream')
    .description('The ecomstream engine (job "ecomstream") and the Spark job\'s driver. Generated by deploy/grafana/dashboard.ts.')
    .tags(['ecomstream', 'generated'])
    .editable()
    .tooltip(DashboardCursorSync.Crosshair)
    .refresh('30s')
    .time({ from: 'now-1h', to: 'now' })
    .timezone('browser')
    .withVariable(new DatasourceVariableBuilder('datasource').label('Data source').type('prometheus'))
    .withVariable(
      new QueryVariableBuilder('instance')
        .label('Engine')
        .datasource(DS)
        .query('label_values(up{job="ecomstream"}, instance)')
        .refresh(VariableRefresh.OnTimeRangeChanged)
        .sort(VariableSort.AlphabeticalAsc)
        .multi(true)
        .includeAll(true)
        .allValue('.*'),
    );
  const sections: [string, PanelBuilder[]][] = [
    ['Overview', overview()],
    ['Rows', rows()],
    ['Latency and batch phases', latency()],
    ['Backlog, stall and retries', health()],
    ['Engine process', engineProcess()],
    ['Spark job (driver)', spark()],
  ];
  let id = 0;
  for (const [title, panels] of sections) {
    builder.withRow(new RowBuilder(title).id(++id));
    for (const p of panels) builder.withPanel(p.id(++id));
  }
  return builder.build();
}

/** The dashboard as committed: JSON, two-space indented, one trailing newline. */
export function dashboardJson(): string {
  return `${JSON.stringify(buildDashboard(), null, 2)}\n`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  fs.writeFileSync(DASHBOARD_FILE, dashboardJson());
  process.stdout.write(`wrote ${path.relative(process.cwd(), DASHBOARD_FILE)}\n`);
}
