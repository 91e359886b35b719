/**
 * The engine under a real Prometheus (Debian's 2.42), started with the shipped scrape config and alert
 * rules (deploy/prometheus/): its series agree with the tables, and a stream stalled by a lock raises
 * EcomstreamStalled, which resolves once the lock is gone. Also `promtool check metrics` on a real scrape.
 *
 * The config is deploy/prometheus/prometheus.yml as shipped but for two values: the target is the test
 * engine's address, and evaluation_interval is 1 s (shipped: 15 s) so that the alert's state is read
 * within a second of changing. scrape_interval (15 s) and the rules' `for:` durations are as shipped, so
 * the waits below are an operator's: the stall alert fires a minute after Prometheus first sees the stall.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { parse, stringify } from 'yaml';
import { freePort } from '../../src/db/embedded.js';
import { PACKAGE_ROOT } from '../../src/db/migrate.js';
import { BIN } from '../support/cli.js';
import { csv, publish, row, tempDir } from '../support/files.js';
import { query, startTestDb, type TestDb } from '../support/pg.js';
import { activeAlerts, promQuery } from '../support/prometheus.js';
import { missingTool, PROMETHEUS_INSTALL } from '../support/tools.js';
import { waitFor } from '../support/until.js';

const SHIPPED = path.join(PACKAGE_ROOT, 'deploy', 'prometheus');
const MINUTE = 60_000;

const missing = missingTool('prometheus', PROMETHEUS_INSTALL) ?? missingTool('promtool', PROMETHEUS_INSTALL);

let db: TestDb;
let dir: string;
let input: string;
let engine: ChildProcess | undefined;
let engineOut = '';
let metricsUrl = '';
let prometheus: ChildProcess | undefined;
let promUrl = '';

/** The shipped config with the test's target and evaluation interval; the rules read from deploy/. */
function testConfig(target: string): string {
  const config = parse(fs.readFileSync(path.join(SHIPPED, 'prometheus.yml'), 'utf8')) as {
    global: Record<string, string>;
    rule_files: string[];
    scrape_configs: [{ job_name: string; static_configs: { targets: string[] }[] }];
  };
  assert.deepEqual(config.scrape_configs[0].static_configs, [{ targets: ['127.0.0.1:9464'] }], 'the shipped target');
  config.scrape_configs[0].static_configs = [{ targets: [target] }];
  config.global.evaluation_interval = '1s';
  config.rule_files = config.rule_files.map((f) => path.join(SHIPPED, f));
  return stringify(config);
}

before(async () => {
  if (missing) return;
  db = await startTestDb();
  dir = await tempDir('ecomstream-prometheus-');
  input = path.join(dir, 'in');
  fs.mkdirSync(input);
  const port = await freePort(19900 + Math.floor(Math.random() * 500));
  metricsUrl = `http://127.0.0.1:${port}`;
  // --stall-after 2: the engine's own threshold, so the test need not wait the default minute before the gauge rises.
  const args = ['process', '--input', input, '--checkpoint', path.join(dir, 'ck'), '--progress-file', path.join(dir, 'p.jsonl')];
  engine = spawn(process.execPath, [BIN, ...args, '--metrics-port', String(port), '--stall-after', '2', '--file-settle', '0'], {
    env: { ...process.env, DATABASE_URL: db.url },
  });
  engine.stdout!.on('data', (d: Buffer) => (engineOut += d.toString()));
  engine.stderr!.on('data', (d: Buffer) => (engineOut += d.toString()));
  await waitFor('the engine ready', MINUTE, async () => ((await fetch(`${metricsUrl}/readyz`)).status === 200 ? true : undefined));

  const promPort = await freePort(29090 + Math.floor(Math.random() * 500));
  promUrl = `http://127.0.0.1:${promPort}`;
  fs.writeFileSync(path.join(dir, 'prometheus.yml'), testConfig(`127.0.0.1:${port}`));
  prometheus = spawn(
    'prometheus',
    [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${promPort}`],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let promLog = '';
  prometheus.stderr!.on('data', (d: Buffer) => (promLog = (promLog + d.toString()).slice(-4000)));
  await waitFor('Prometheus ready', MINUTE, async () => ((await fetch(`${promUrl}/-/ready`)).status === 200 ? true : undefined)).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}\n${promLog}`);
  });
});

after(async () => {
  prometheus?.kill('SIGTERM');
  engine?.kill('SIGTERM');
  await (db as TestDb | undefined)?.close(); // undefined when skipped or before() failed
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('promtool check metrics finds nothing to complain about in a real scrape, default process metrics included', async (t) => {
  if (missing) return t.skip(missing);
  const text = await (await fetch(`${metricsUrl}/metrics`)).text();
  for (const name of ['process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_active_handles', 'nodejs_heap_size_used_bytes']) {
    assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), `${name} is still exported`);
  }
  const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  t.diagnostic(`promtool check metrics: exit ${check.status}, output ${JSON.stringify(check.stdout + check.stderr)}`);
  assert.equal(check.stdout + check.stderr, '');
  assert.equal(check.status, 0);
});

test("after a batch, Prometheus holds the engine's series with the values the tables hold", async (t) => {
  if (missing) return t.skip(missing);
  const dup = crypto.randomUUID();
  await publish(input, 'events_0.csv', csv(row({ event_id: dup }), row(), row({ event_type: 'click' }), row({ price: '-1.00' }), row({ event_id: dup })));
  await publish(input, 'events_1.csv', csv(row(), row({ user_id: '' })));
  const files = 2;
  await waitFor('both files committed', MINUTE, async () => {
    const [r] = await query<{ n: number }>(db.url, 'SELECT coalesce(sum(jsonb_array_length(files)), 0)::int n FROM stream_batches');
    return r!.n === files ? true : undefined;
  });
  const batches = (await query<{ n: number }>(db.url, 'SELECT count(*)::int n FROM stream_batches'))[0]!.n;
  const at = Date.now();
  await waitFor('a scrape after the commit', MINUTE, async () => {
    const [s] = await promQuery(promUrl, 'ecomstream_batches_total{job="ecomstream"}');
    return s && Number(s.value[1]) === batches ? true : undefined;
  });
  t.diagnostic(`Prometheus had the batches ${((Date.now() - at) / 1000).toFixed(1)} s after the commit (scrape_interval 15 s)`);

  const value = async (expr: string): Promise<number> => {
    const result = await promQuery(promUrl, expr);
    assert.equal(result.length, 1, `${expr}: one series`);
    return Number(result[0]!.value[1]);
  };
  const one = async (sql: string): Promise<number> => Number((await query<{ n: string | number }>(db.url, sql))[0]!.n);
  assert.equal(await value('up{job="ecomstream"}'), 1);
  assert.equal(await value('ecomstream_rows_total{outcome="inserted"}'), await one('SELECT count(*) n FROM user_events'));
  assert.equal(await value('ecomstream_rows_total{outcome="duplicate"}'), await one('SELECT sum(duplicate_rows) n FROM stream_batches'));
  assert.equal(await value('ecomstream_rows_total{outcome="rejected"}'), await one('SELECT sum(rejected_rows) n FROM stream_batches'));
  const byReason = await query<{ reason: string; n: number }>(db.url, 'SELECT reason, count(*)::int n FROM rejected_events GROUP BY reason ORDER BY reason');
  assert.ok(byReason.length >= 3, 'the files exercise several reasons');
  const exported = await promQuery(promUrl, 'ecomstream_rejected_rows_total > 0');
  assert.deepEqual(
    exported.map((s) => ({ reason: s.metric.reason, n: Number(s.value[1]) })).sort((a, b) => (a.reason ?? '').localeCompare(b.reason ?? '')),
    byReason,
  );
  assert.equal(await value('ecomstream_publish_to_commit_seconds_count'), files);
  assert.equal(await value('ecomstream_backlog_files'), 0);
  assert.equal(await value('ecomstream_stalled'), 0);
  const lastCommit = await one('SELECT extract(epoch FROM max(committed_at)) n FROM stream_batches');
  assert.ok(Math.abs((await value('ecomstream_last_commit_timestamp_seconds')) - lastCommit) < 1);

  const rules = (await (await fetch(`${promUrl}/api/v1/rules`)).json()) as { data: { groups: { rules: { name: string; health: string }[] }[] } };
  const loaded = rules.data.groups.flatMap((g) => g.rules);
  assert.equal(loaded.length, 7, 'every rule of alerts.yml is loaded');
  assert.ok(
    loaded.every((r) => r.health === 'ok'),
    JSON.stringify(loaded),
  );
  // Before its first scrape Prometheus has no `up` for the job, so EcomstreamAbsent is pending (never
  // firing: for: 5m) until the next evaluation after it; then a healthy engine has no alert at all.
  await waitFor('no active alert', 10_000, async () => ((await activeAlerts(promUrl)).length === 0 ? true : undefined));
});

test('a stream stalled by LOCK TABLE user_events fires EcomstreamStalled; it resolves once the lock is released', async (t) => {
  if (missing) return t.skip(missing);
  const stamp = (ms: number): string => new Date(ms).toISOString();
  const locker = new pg.Client({ connectionString: db.url });
  await locker.connect();
  let released = false;
  try {
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE user_events');
    const lockedAt = Date.now();
    await publish(input, 'events_2.csv', csv(row(), row()));
    const firing = await waitFor('EcomstreamStalled firing', 4 * MINUTE, async () => {
      const a = (await activeAlerts(promUrl)).find((x) => x.labels.alertname === 'EcomstreamStalled');
      return a?.state === 'firing' ? a : undefined;
    });
    const firingSeenAt = Date.now();
    t.diagnostic(`lock taken ${stamp(lockedAt)}; alert active (pending) since ${firing.activeAt}; seen firing ${stamp(firingSeenAt)}`);
    assert.ok(firingSeenAt - Date.parse(firing.activeAt) >= MINUTE, 'pending for its for: of 1 minute first');
    assert.deepEqual(firing.labels, { alertname: 'EcomstreamStalled', instance: new URL(metricsUrl).host, job: 'ecomstream', severity: 'critical' });
    assert.deepEqual(
      (await activeAlerts(promUrl)).map((a) => a.labels.alertname),
      ['EcomstreamStalled'],
      'no other alert',
    );

    await locker.query('COMMIT');
    released = true;
    const releasedAt = Date.now();
    await waitFor('the blocked batch committed', MINUTE, async () => {
      const [r] = await query<{ n: number }>(db.url, 'SELECT coalesce(sum(jsonb_array_length(files)), 0)::int n FROM stream_batches');
      return r!.n === 3 ? true : undefined;
    });
    await waitFor('EcomstreamStalled resolved', 2 * MINUTE, async () => {
      if ((await activeAlerts(promUrl)).some((a) => a.labels.alertname === 'EcomstreamStalled')) return undefined;
      const rules = (await (await fetch(`${promUrl}/api/v1/rules?type=alert`)).json()) as { data: { groups: { rules: { name: string; state: string }[] }[] } };
      const rule = rules.data.groups.flatMap((g) => g.rules).find((r) => r.name === 'EcomstreamStalled');
      return rule?.state === 'inactive' ? true : undefined;
    });
    t.diagnostic(`lock released ${stamp(releasedAt)}; alert resolved (inactive, no longer listed) ${stamp(Date.now())}`);
  } finally {
    if (!released) await locker.query('ROLLBACK').catch(() => undefined);
    await locker.end();
  }
  assert.match(engineOut, /stalled: .*no batch committed/);
  assert.match(engineOut, /stall over after \d+ s: a batch committed/);
});
