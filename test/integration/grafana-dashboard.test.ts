/**
 * The Grafana dashboard as code (deploy/grafana/dashboard.ts -> ecomstream.json): the committed JSON is
 * what the code generates, every query parses as PromQL, and every metric an engine panel names is one a
 * running engine exports (a real scrape after a real batch on real PostgreSQL). The Spark panels name the
 * driver's metrics by a regular expression on `__name__`; test/compose/compose.test.ts runs them against a
 * Prometheus that scrapes a real Spark driver.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { DASHBOARD_FILE, dashboardJson } from '../../deploy/grafana/dashboard.js';
import { loadConfig } from '../../src/config.js';
import { freePort } from '../../src/db/embedded.js';
import { PACKAGE_ROOT } from '../../src/db/migrate.js';
import { StreamEngine } from '../../src/engine/stream.js';
import type { Logger } from '../../src/log.js';
import { startOps } from '../../src/ops/index.js';
import { csv, publish, row, tempDir } from '../support/files.js';
import { startTestDb, type TestDb } from '../support/pg.js';
import { scrape } from '../support/prometheus.js';
import { dashboardQueries, interpolate, selectors } from '../support/promql.js';

const quiet: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };
/** Series Prometheus itself makes for every target. */
const PROMETHEUS_MADE = new Set(['up']);
const SPARK_ROW = 'Spark job (driver)';

let db: TestDb;
before(async () => {
  db = await startTestDb();
});
after(async () => {
  await (db as TestDb | undefined)?.close();
});

let exported: Promise<Set<string>> | undefined;
/** The metric names a scrape offers after a batch (one run per file). */
function exportedNames(): Promise<Set<string>> {
  exported ??= scrapeAfterBatch();
  return exported;
}

/** Each family of a scrape, and a histogram's _bucket, _sum and _count series. */
async function scrapeAfterBatch(): Promise<Set<string>> {
  const dir = await tempDir();
  const input = path.join(dir, 'in');
  await publish(input, 'events_0.csv', csv(row(), row({ price: '-1.00' })));
  const config = loadConfig({
    engine: { inputDir: input, checkpointDir: path.join(dir, 'ck'), progressFile: path.join(dir, 'p.jsonl'), trigger: { kind: 'available-now' } },
    ops: { metricsHost: '127.0.0.1', metricsPort: await freePort(20400 + Math.floor(Math.random() * 500)) },
  });
  const ops = await startOps({ ops: config.ops, databaseUrl: db.url, log: quiet, strict: true });
  try {
    await new StreamEngine({ engine: config.engine, databaseUrl: db.url, log: quiet, observer: ops.observer }).run();
    const names = new Set<string>();
    for (const f of (await scrape(ops.server!.url)).values()) {
      names.add(f.name);
      if (f.type === 'HISTOGRAM') for (const s of ['_bucket', '_sum', '_count']) names.add(f.name + s);
    }
    return names;
  } finally {
    await ops.close();
  }
}

test('the committed dashboard JSON is what deploy/grafana/dashboard.ts generates (npm run grafana-dashboard)', () => {
  assert.equal(fs.readFileSync(DASHBOARD_FILE, 'utf8'), dashboardJson());
});

test('every engine query of the committed dashboard parses as PromQL and names only metrics a running engine exports', async () => {
  const queries = dashboardQueries(fs.readFileSync(DASHBOARD_FILE, 'utf8'));
  assert.ok(queries.length >= 15, `${queries.length} queries`);
  const names = await exportedNames();
  const used = new Set<string>();
  for (const q of queries) {
    const found = selectors(interpolate(q.expr));
    assert.ok(found.length > 0, `${q.panel}: no series selected`);
    for (const s of found) {
      if (q.row === SPARK_ROW) {
        assert.match(s.nameRegex ?? '', /^metrics_\.\+_driver_spark_streaming_ecomstream_\w+$/, `${q.panel}: a Spark driver metric, any app id`);
        continue;
      }
      assert.ok(s.name, `${q.panel}: an engine query names its metric (${q.expr})`);
      assert.ok(names.has(s.name) || PROMETHEUS_MADE.has(s.name), `${q.panel}: ${s.name} is not exported by the engine`);
      used.add(s.name);
    }
  }
  for (const want of [
    'ecomstream_rows_total',
    'ecomstream_rejected_rows_total',
    'ecomstream_publish_to_commit_seconds_bucket',
    'ecomstream_batch_duration_seconds_sum',
  ]) {
    assert.ok(used.has(want), `a panel shows ${want}`);
  }
});

test('a query with a typo is caught: the parser and the scrape comparison both fail it', async () => {
  assert.throws(() => selectors('sum by (outcome) (rate(ecomstream_rows_total[1m])'), /PromQL syntax error/);
  const [s] = selectors(interpolate('rate(ecomstream_row_total{job="ecomstream"}[$__rate_interval])'));
  assert.equal((await exportedNames()).has(s!.name!), false);
});

test("the Grafana provisioning files parse, and point at the dashboard file and the Compose profile's Prometheus", () => {
  const provisioning = path.join(PACKAGE_ROOT, 'deploy', 'grafana', 'provisioning');
  const ds = parse(fs.readFileSync(path.join(provisioning, 'datasources', 'prometheus.yml'), 'utf8')) as {
    apiVersion: number;
    datasources: { name: string; type: string; uid: string; url: string; isDefault: boolean }[];
  };
  assert.equal(ds.apiVersion, 1);
  assert.deepEqual(
    ds.datasources.map((d) => [d.type, d.url, d.isDefault]),
    [['prometheus', 'http://prometheus:9090', true]],
  );
  const boards = parse(fs.readFileSync(path.join(provisioning, 'dashboards', 'ecomstream.yml'), 'utf8')) as {
    apiVersion: number;
    providers: [{ type: string; options: { path: string } }];
  };
  assert.equal(boards.apiVersion, 1);
  assert.equal(boards.providers[0].type, 'file');
  const compose = parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'docker-compose.yml'), 'utf8')) as {
    services: Partial<Record<string, { volumes?: string[]; profiles?: string[] }>>;
  };
  const grafana = compose.services.grafana;
  assert.ok(grafana, 'a grafana service');
  assert.deepEqual(grafana.profiles, ['observability']);
  const mounts = new Map((grafana.volumes ?? []).map((v) => [v.split(':')[1], v.split(':')[0]]));
  // The provider's folder is where Compose mounts the generated dashboard, and the mounted files exist.
  const dashboardDir = boards.providers[0].options.path;
  const source = mounts.get(dashboardDir) ?? mounts.get(`${dashboardDir}/ecomstream.json`);
  assert.ok(source, `a volume mounts the dashboard at ${dashboardDir}`);
  assert.ok(fs.existsSync(path.join(PACKAGE_ROOT, source)), `${source} exists`);
  assert.ok(fs.existsSync(path.join(PACKAGE_ROOT, mounts.get('/etc/grafana/provisioning') ?? 'missing')), 'provisioning mounted');
});
