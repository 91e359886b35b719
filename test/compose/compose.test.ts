/**
 * The spec's deployment, really run: the project's docker-compose.yml, unchanged, on a real Docker Engine
 * (`npm run test:compose` first makes one answer and provides the public images: scripts/install-docker.sh,
 * test/compose/stand-ins/build.sh). It runs on a copy of this checkout, with the Compose file's own
 * variables set to shorten the run, and checks what a user would: every service up, every generated row
 * stored exactly once and every bad one rejected, the Spark UIs, pgAdmin, the `observability` profile's Prometheus
 * scraping the Spark driver; then faults, each followed by the
 * same accounting: the driver killed, PostgreSQL restarted mid-stream, `down` and `up` again, two more
 * workers, and a wrong setting. KEEP_COMPOSE=1 leaves the deployment and its folder for inspection.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { csv, row } from '../support/files.js';
import { account, balanced, describe } from './accounting.js';
import { copyCheckout, Deployment, getJson, PROJECT, progress, settled, sql, waitFor, type ContainerState } from './deployment.js';
import { registeredServer } from './pgadmin.js';
import { DASHBOARD_FILE } from '../../deploy/grafana/dashboard.js';
import { promQuery } from '../support/prometheus.js';
import { dashboardQueries, interpolate } from '../support/promql.js';

/** The Compose file's documented variables (.env.example), set to make the run short. */
const ENV = { GENERATOR_FILES: '12', GENERATOR_EVENTS_PER_FILE: '10', GENERATOR_INTERVAL: '1', SPARK_TRIGGER: '2s' };
const ONE_SHOT = new Set(['data-init', 'generator', 'spark-job-settings']);
const MINUTE = 60_000;
/** The observability profile's Prometheus, on its published port. */
const PROMETHEUS = 'http://127.0.0.1:9090';

let d: Deployment;
let copied = false;
/** When `docker compose up` was started, images already built: the first row is timed from here. */
let upAt = 0;

/** Another deployment of this project (same container names) would be replaced: refuse instead. */
function otherDeployment(): string | undefined {
  const r = spawnSync(
    'docker',
    ['ps', '-a', '--filter', `label=com.docker.compose.project=${PROJECT}`, '--format', '{{.Label "com.docker.compose.project.working_dir"}}'],
    {
      encoding: 'utf8',
    },
  );
  return r.stdout.split('\n').find(Boolean);
}

before(async () => {
  const other = otherDeployment();
  if (other) throw new Error(`a deployment of ${PROJECT} exists (from ${other}): stop it first (docker compose down in that folder)`);
  d = new Deployment(await copyCheckout(), ENV);
  copied = true;
  progress(`docker compose build in ${d.dir}`);
  await d.mustCompose(['build']);
  progress('docker compose up -d');
  upAt = Date.now();
  await d.mustCompose(['up', '-d']);
});

after(async () => {
  if (!copied || process.env.KEEP_COMPOSE === '1') return;
  await d.compose(['--profile', 'more-workers', '--profile', 'observability', 'down', '-v', '--remove-orphans']);
  await fsp.rm(d.dir, { recursive: true, force: true }).catch(() => undefined);
});

/** Waits until every service is up (or completed), and returns their states. */
async function allSettled(ms = 5 * MINUTE): Promise<ContainerState[]> {
  return waitFor('every service healthy or completed', ms, async () => {
    const cs = await d.containers();
    return cs.length > 0 && cs.every((c) => settled(c, ONE_SHOT)) ? cs : undefined;
  });
}

/** Waits until the generator has finished and every line in the landing folder is accounted for once. */
async function exactlyOnce(what: string): Promise<void> {
  const ledger = await waitFor(`every row of the landing folder stored or rejected once (${what})`, 5 * MINUTE, async () => {
    const running = (await d.containers()).some((c) => c.service === 'generator' && c.status === 'running');
    const l = await account(d.inputDir);
    return !running && balanced(l) ? l : undefined;
  }).catch(async (err: unknown) => {
    throw new Error(`${String(err)}\nnow: ${describe(await account(d.inputDir))}`);
  });
  progress(`${what}: ${describe(ledger)}`);
}

/** More files from the generator service, while something else happens. */
function generate(files: number, interval = 1): Promise<string> {
  return d.mustCompose(['run', '--rm', '--no-deps', '-T', 'generator', '--files', String(files), '--events-per-file', '10', '--interval', String(interval)]);
}

test('every service comes up: healthy, or completed with exit 0', async () => {
  const cs = await allSettled();
  const services = new Set(cs.map((c) => c.service));
  for (const s of ['data-init', 'generator', 'spark-job-settings', 'spark-master', 'spark-worker', 'spark-submit', 'postgres', 'pgadmin']) {
    assert.ok(services.has(s), `no container for ${s}`);
  }
  progress(`up: ${cs.map((c) => `${c.service} ${c.health ?? c.status}`).join(', ')}`);
  await waitFor('the first row in user_events', 2 * MINUTE, async () => ((await sql('SELECT 1 FROM user_events LIMIT 1')).length ? true : undefined));
  progress(`first row stored ${((Date.now() - upAt) / 1000).toFixed(0)} s after docker compose up (at most 2 s late: polled)`);
});

test('every generated row is stored exactly once, and bad rows are rejected with a reason', async () => {
  const first = row();
  const bad = [row({ event_type: 'click' }), row({ price: '-5.00' }), row({ event_id: first.split(',')[0] ?? '' }), 'a,b,c'];
  const tmp = path.join(d.inputDir, '.hostile.csv.tmp');
  await fsp.writeFile(tmp, csv(first, row(), ...bad));
  await fsp.rename(tmp, path.join(d.inputDir, 'hostile_input.csv'));
  await exactlyOnce('first run');
  const reasons = await sql<{ reason: string }>("SELECT reason FROM rejected_events WHERE source_file LIKE '%hostile_input.csv' ORDER BY line_number");
  assert.deepEqual(
    reasons.map((r) => r.reason),
    ['invalid_event_type', 'negative_price', 'duplicate_event_id', 'wrong_column_count'],
  );
});

test("the master's UI lists the worker with 2 cores; the job's UI and its Prometheus metrics answer on 4040", async () => {
  const master = await getJson<{ workers: { host: string; cores: number; state: string }[]; activeapps: { name: string }[] }>('http://127.0.0.1:8080/json/');
  assert.deepEqual(
    master.workers.map((w) => [w.host, w.cores, w.state]),
    [['spark-worker', 2, 'ALIVE']],
  );
  assert.deepEqual(
    master.activeapps.map((a) => a.name),
    ['ecomstream-spark'],
  );
  const apps = await getJson<{ id: string; name: string }[]>('http://127.0.0.1:4040/api/v1/applications');
  assert.equal(apps[0]?.name, 'ecomstream-spark');
  const metrics = await (await fetch('http://127.0.0.1:4040/metrics/prometheus/')).text();
  assert.match(metrics, /_driver_spark_streaming_ecomstream_processingRate_total_Value/);
});

test("the observability profile: Prometheus scrapes the Spark driver, and the dashboard's Spark queries return its streaming series", async () => {
  // Only Prometheus: the profile's Grafana has no stand-in (test/compose/images.json says why).
  progress('docker compose --profile observability up -d prometheus');
  await d.mustCompose(['--profile', 'observability', 'up', '-d', 'prometheus']);
  try {
    await waitFor('prometheus healthy', 2 * MINUTE, async () => {
      const c = (await d.containers()).find((x) => x.service === 'prometheus');
      return c && settled(c, ONE_SHOT) ? c : undefined;
    });
    await waitFor('the spark-driver target up', 2 * MINUTE, async () => {
      const [up] = await promQuery(PROMETHEUS, 'up{job="spark-driver"}');
      return up?.value[1] === '1' ? up : undefined;
    });
    const spark = dashboardQueries(fs.readFileSync(DASHBOARD_FILE, 'utf8')).filter((q) => q.row === 'Spark job (driver)');
    assert.ok(spark.length >= 3);
    for (const q of spark) {
      const series = await waitFor(`${q.panel}: ${q.expr}`, 2 * MINUTE, async () => {
        const r = await promQuery(PROMETHEUS, interpolate(q.expr));
        return r.length > 0 ? r : undefined;
      });
      progress(`${q.panel}: ${series.map((x) => `${x.metric.__name__ ?? ''}{app="${x.metric.app ?? ''}"} ${x.value[1]}`).join(', ')}`);
      assert.ok(
        series.every((x) => /^app_\d+_\d+$/.test(x.metric.app ?? '')),
        'labelled with the application id',
      );
    }
  } finally {
    // Removed again: `docker compose down` without the profile would leave it holding the network.
    await d.mustCompose(['--profile', 'observability', 'rm', '--stop', '--force', 'prometheus']);
  }
});

test('pgAdmin logs in and lists the registered server, and reaches PostgreSQL through it', async () => {
  const server = await registeredServer('sparkpass123');
  assert.deepEqual(server, { group: 'ecomstream', name: 'ecommerce_events (Docker Compose)', host: 'postgres', db: 'ecommerce_events', connected: true });
});

test("the driver's process killed: the restart policy starts it again, and it resumes from its checkpoint", async () => {
  const before = (await d.containers()).find((c) => c.service === 'spark-submit');
  assert.ok(before && before.pid > 0);
  const more = generate(6);
  await new Promise((r) => setTimeout(r, 4000));
  progress(`kill -9 ${before.pid} (the driver, main process of ${before.name})`);
  process.kill(before.pid, 'SIGKILL');
  await more;
  const now = await waitFor('spark-submit restarted and healthy', 3 * MINUTE, async () => {
    const c = (await d.containers()).find((x) => x.service === 'spark-submit');
    return c && c.restarts > before.restarts && settled(c, ONE_SHOT) ? c : undefined;
  });
  progress(`spark-submit restarted ${now.restarts - before.restarts} time(s)`);
  await exactlyOnce('after the driver was killed');
});

test('PostgreSQL restarted mid-stream: the job retries and loses nothing', async () => {
  const more = generate(6);
  await new Promise((r) => setTimeout(r, 3000));
  progress('docker compose restart postgres');
  await d.mustCompose(['restart', 'postgres']);
  await more;
  await allSettled();
  await exactlyOnce('after PostgreSQL restarted');
});

test('docker compose down (volumes kept) and up again: the job resumes from its checkpoint', async () => {
  const streams = async (): Promise<string[]> => (await sql<{ stream_id: string }>('SELECT DISTINCT stream_id FROM stream_batches')).map((r) => r.stream_id);
  const before = await streams();
  progress('docker compose down');
  await d.mustCompose(['down']);
  progress('docker compose up -d (the generator runs again)');
  await d.mustCompose(['up', '-d']);
  await allSettled();
  await exactlyOnce('after down and up');
  assert.deepEqual(await streams(), before, 'one stream: the checkpoint was resumed, not started anew');
});

test('two more workers: the master lists three, the job runs executors on all of them, rows still exactly once', async () => {
  progress('docker compose --profile more-workers up -d --scale spark-worker-more=2');
  await d.mustCompose(['--profile', 'more-workers', 'up', '-d', '--scale', 'spark-worker-more=2']);
  await waitFor('three alive workers with 2 cores each', 3 * MINUTE, async () => {
    const m = await getJson<{ workers: { cores: number; state: string }[] }>('http://127.0.0.1:8080/json/');
    const alive = m.workers.filter((w) => w.state === 'ALIVE' && w.cores === 2);
    return alive.length === 3 ? alive : undefined;
  });
  const executorHosts = async (): Promise<{ host: string; tasks: number }[]> => {
    const [app] = await getJson<{ id: string }[]>('http://127.0.0.1:4040/api/v1/applications');
    const ex = await getJson<{ id: string; hostPort: string; totalTasks: number; isActive: boolean }[]>(
      `http://127.0.0.1:4040/api/v1/applications/${app?.id ?? ''}/executors`,
    );
    return ex.filter((e) => e.id !== 'driver' && e.isActive).map((e) => ({ host: e.hostPort.split(':')[0] ?? '', tasks: e.totalTasks }));
  };
  const hosts = await waitFor('executors on three workers', 3 * MINUTE, async () => {
    const ex = await executorHosts();
    return new Set(ex.map((e) => e.host)).size === 3 ? ex : undefined;
  });
  progress(`executors: ${hosts.map((h) => h.host).join(', ')}`);
  // Many files at once make a batch of several partitions, which the scheduler spreads over executors.
  await generate(40, 0);
  await exactlyOnce('with three workers');
  const busy = (await executorHosts()).filter((e) => e.tasks > 0);
  progress(`executors that ran tasks: ${busy.map((e) => `${e.host} (${e.tasks})`).join(', ')}`);
  assert.ok(busy.length >= 2, `tasks ran on ${busy.length} executor(s) only`);
});

test('a wrong setting stops the job with one line in the logs, and does not restart it for ever', async () => {
  const r = await d.compose(['up', '-d'], { SPARK_TRIGGER: 'fast' });
  assert.notEqual(r.code, 0, 'docker compose up reports the failed settings check');
  const logs = await d.mustCompose(['logs', '--no-log-prefix', 'spark-job-settings']);
  const lines = logs.split('\n').filter(Boolean);
  assert.deepEqual(lines, [
    'ecomstream-spark: --trigger "fast": allowed are available-now, once or <N>s (e.g. 10s); on-arrival is a TypeScript-engine trigger that Spark does not have',
  ]);
  const states = async (): Promise<ContainerState | undefined> => (await d.containers()).find((c) => c.service === 'spark-submit');
  const first = await states();
  await new Promise((r) => setTimeout(r, 15_000));
  const later = await states();
  assert.ok(first && later);
  assert.notEqual(later.status, 'running', 'the job was not started with the wrong setting');
  assert.equal(later.restarts, first.restarts, 'and nothing restarts it');
});
