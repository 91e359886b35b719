/**
 * docker-compose.yml, checked statically against the spec in every `npm test` (test/compose/ runs it for
 * real, on a Docker Engine, in `npm run test:compose`): the spec's services (sections 1-6) with their container names, images, ports, environment, resources
 * and volume mounts, the network, health checks and start order, and that every local file the file
 * refers to exists. Variables are resolved the way Compose does, from .env.example.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { defaults } from '../../src/config.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const read = (rel: string): string => fs.readFileSync(path.join(ROOT, rel), 'utf8');

const SPARK_IMAGE = 'apache/spark:3.5.0-scala2.12-java11-python3-ubuntu';
const SPARK_MOUNTS = [
  './data/input:/opt/spark-data/input',
  './data/checkpoints:/opt/spark-data/checkpoints',
  './data/logs:/opt/spark-data/logs',
  './spark:/opt/spark-apps',
];

/** KEY=value lines of .env.example. */
function envExample(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of read('.env.example').split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

/** Compose interpolation: ${VAR}, ${VAR:-default}, $$ -> $. */
function interpolate(value: string, env: Record<string, string>): string {
  return value.replace(/\$\$|\$\{([A-Z_][A-Z0-9_]*)(?::?-([^}]*))?\}/g, (m, name: string | undefined, def: string | undefined) => {
    if (m === '$$') return '$';
    return env[name!] ?? def ?? '';
  });
}

function deepInterpolate<T>(v: T, env: Record<string, string>): T {
  if (typeof v === 'string') return interpolate(v, env) as T;
  if (Array.isArray(v)) return v.map((x: unknown) => deepInterpolate(x, env)) as T;
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, deepInterpolate(x, env)])) as T;
  return v;
}

interface Service {
  container_name?: string;
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[] | string;
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  networks?: string[];
  network_mode?: string;
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
  user?: string;
  deploy?: { resources?: { limits?: { cpus?: string; memory?: string } } };
  restart?: string;
  entrypoint?: string[];
  profiles?: string[];
  hostname?: string;
}

const rawText = read('docker-compose.yml');
const raw = parse(rawText, { merge: true }) as {
  services: Record<string, Service>;
  networks: Record<string, { driver: string; name?: string }>;
  volumes: Record<string, unknown>;
};
const compose = deepInterpolate(raw, {}); // defaults only: `docker compose up` without a .env
const withEnv = deepInterpolate(raw, envExample());
const svc = compose.services;

test('the spec services with their container names and images', () => {
  const expected: Record<string, [string, string | undefined]> = {
    generator: ['ecommerce_generator', undefined],
    'spark-master': ['ecommerce_spark_master', SPARK_IMAGE],
    'spark-worker': ['ecommerce_spark_worker', undefined],
    postgres: ['ecommerce_postgres', 'postgres:15-alpine'],
    pgadmin: ['ecommerce_pgadmin', 'dpage/pgadmin4:latest'],
  };
  for (const [name, [container, image]] of Object.entries(expected)) {
    assert.ok(svc[name], `service ${name}`);
    assert.equal(svc[name].container_name, container, `${name}: container_name`);
    if (image) assert.equal(svc[name].image, image, `${name}: image`);
  }
  // Helpers beyond the spec: the job's submitter and the one-shot folder setup, on the same image.
  assert.equal(svc['spark-submit']!.image, SPARK_IMAGE);
  assert.equal(svc['data-init']!.image, SPARK_IMAGE);
  const names = Object.values(svc).map((s) => s.container_name);
  assert.equal(new Set(names).size, names.length, 'container names are unique');
});

test('ports of the spec', () => {
  const ports = (name: string): string[] => (svc[name]!.ports ?? []).map(String);
  assert.deepEqual(ports('spark-master'), ['8080:8080', '7077:7077', '4040:4040']);
  assert.deepEqual(ports('spark-worker'), ['8081:8081']);
  assert.deepEqual(ports('postgres'), ['5432:5432']);
  assert.deepEqual(ports('pgadmin'), ['5050:80']);
  assert.deepEqual(ports('generator'), []);
});

test('environment and resources of the spec', () => {
  for (const name of ['spark-master', 'spark-worker']) {
    assert.equal(svc[name]!.environment!.SPARK_NO_DAEMONIZE, 'true', `${name}: SPARK_NO_DAEMONIZE`);
    assert.equal(svc[name]!.environment!.PYTHONPATH, '/opt/spark-apps', `${name}: PYTHONPATH`);
  }
  assert.equal(svc['spark-worker']!.environment!.SPARK_WORKER_MEMORY, '2G');
  assert.equal(svc['spark-worker']!.environment!.SPARK_WORKER_CORES, '2');
  assert.equal(svc['spark-worker']!.deploy!.resources!.limits!.cpus, '2');
  assert.deepEqual(svc.postgres!.environment, { POSTGRES_DB: 'ecommerce_events', POSTGRES_USER: 'sparkuser', POSTGRES_PASSWORD: 'sparkpass123' });
  assert.equal(svc.pgadmin!.environment!.PGADMIN_DEFAULT_EMAIL, 'admin@admin.com');
  assert.equal(svc.pgadmin!.environment!.PGADMIN_DEFAULT_PASSWORD, 'admin123');
  // .env.example holds the same development values, so copying it changes nothing.
  assert.deepEqual(withEnv.services, compose.services, '.env.example values equal the compose defaults');
});

test('credentials come from .env variables, with the security note', () => {
  const env = envExample();
  const used = new Set([...rawText.matchAll(/\$\{([A-Z_][A-Z0-9_]*)/g)].map((m) => m[1]!));
  for (const name of used) assert.ok(name in env, `.env.example defines ${name}`);
  for (const secret of ['POSTGRES_PASSWORD', 'PGADMIN_DEFAULT_PASSWORD']) {
    assert.match(rawText, new RegExp(`\\$\\{${secret}`), `${secret} is read from the environment`);
  }
  const text = read('.env.example');
  for (const line of [
    'Development configuration',
    'Encrypted connections (SSL/TLS)',
    'Secret management (Vault)',
    'Network policies',
    'Authentication & authorization',
  ]) {
    assert.ok(text.includes(line), `.env.example security note: ${line}`);
  }
  assert.match(read('.gitignore'), /^\.env$/m, '.env is not committed');
});

test('volume mounts of the spec', () => {
  for (const name of ['spark-master', 'spark-worker', 'spark-submit']) {
    assert.deepEqual(svc[name]!.volumes, SPARK_MOUNTS, `${name}: volumes`);
  }
  assert.ok(svc.generator!.volumes!.includes('./data/input:/app/data/input'));
  assert.ok(
    svc.generator!.volumes!.some((v) => v.split(':')[1] === '/app/generator'),
    'generator code at /app/generator',
  );
  assert.ok(svc.postgres!.volumes!.includes('./postgres/migrations:/docker-entrypoint-initdb.d:ro'));
  assert.ok(svc.pgadmin!.volumes!.includes('./pgadmin/servers.json:/pgadmin4/servers.json:ro'));
});

test('every local file the compose file refers to exists', () => {
  const missing: string[] = [];
  for (const [name, s] of Object.entries(svc)) {
    for (const v of s.volumes ?? []) {
      const source = v.split(':')[0]!;
      if (!source.startsWith('.')) continue; // named volume
      if (source === './data' || source.startsWith('./data/')) continue; // runtime data, created by data-init
      if (!fs.existsSync(path.join(ROOT, source))) missing.push(`${name}: ${source}`);
    }
    if (s.build) {
      if (!fs.existsSync(path.join(ROOT, s.build.context, s.build.dockerfile))) missing.push(`${name}: ${s.build.dockerfile}`);
    }
  }
  // Paths inside the Spark containers that map to ./spark.
  const cmd = [...(svc['spark-submit']!.entrypoint ?? []), ...(svc['spark-submit']!.command as string[])];
  for (const arg of cmd) {
    if (arg.startsWith('/opt/spark-apps/')) {
      const local = path.join(ROOT, 'spark', arg.slice('/opt/spark-apps/'.length));
      if (!fs.existsSync(local)) missing.push(`spark-submit: ${arg}`);
    }
  }
  if (!fs.existsSync(path.join(ROOT, 'spark', 'event_contract.json'))) missing.push('spark/event_contract.json (read by the job)');
  assert.deepEqual(missing, []);
});

test('one bridge network, spark_network, joined by every service', () => {
  assert.equal(compose.networks.spark_network!.driver, 'bridge');
  assert.equal(compose.networks.spark_network!.name, 'spark_network');
  for (const [name, s] of Object.entries(svc)) {
    if (s.network_mode) {
      assert.match(s.network_mode, /^service:/, `${name}: shares another service's network`);
      assert.ok(svc[s.network_mode.slice('service:'.length)]!.networks!.includes('spark_network'));
    } else {
      assert.deepEqual(s.networks, ['spark_network'], `${name}: networks`);
    }
  }
});

test('health checks, and the job submitted only once master, worker and database are healthy', () => {
  for (const name of ['spark-master', 'spark-worker', 'postgres']) assert.ok(svc[name]!.healthcheck?.test.length, `${name}: healthcheck`);
  assert.match(svc.postgres!.healthcheck!.test.join(' '), /pg_isready/);
  const deps = svc['spark-submit']!.depends_on!;
  for (const name of ['spark-master', 'spark-worker', 'postgres']) assert.equal(deps[name]?.condition, 'service_healthy', `spark-submit waits for ${name}`);
  assert.equal(svc['spark-submit']!.network_mode, 'service:spark-master', 'the driver UI (4040) is the master container port');
  assert.equal(svc.pgadmin!.depends_on!.postgres!.condition, 'service_healthy');
  for (const name of ['generator', 'spark-job-settings']) assert.equal(svc[name]!.depends_on!['data-init']!.condition, 'service_completed_successfully');
  // A wrong flag or setting stops in the one-shot check, before the job that restarts on failure.
  assert.equal(deps['spark-job-settings']?.condition, 'service_completed_successfully');
  assert.equal(svc['spark-job-settings']!.restart, 'no');
  assert.equal(svc['spark-submit']!.restart, 'on-failure');
});

test('the settings check and the job run the job with the same flags', () => {
  const check = svc['spark-job-settings']!;
  const job = svc['spark-submit']!;
  assert.deepEqual(check.command, job.command);
  assert.deepEqual(check.environment, job.environment);
  assert.deepEqual(check.entrypoint, ['/opt/entrypoint.sh', 'python3', '/opt/spark-apps/streaming_job.py', '--print-settings']);
  assert.equal(job.entrypoint?.at(-1), '/opt/spark-apps/streaming_job.py');
});

test('more workers: a service Compose can scale (no container name, host name or host port), off by default', () => {
  const more = svc['spark-worker-more']!;
  const worker = svc['spark-worker']!;
  assert.deepEqual(more.profiles, ['more-workers']);
  assert.equal(more.container_name, undefined);
  assert.equal(more.hostname, undefined);
  assert.equal(more.ports, undefined);
  for (const k of ['image', 'build', 'environment', 'volumes', 'deploy', 'healthcheck', 'networks'] as const) assert.deepEqual(more[k], worker[k], k);
  assert.deepEqual(
    more.command,
    (worker.command as string[]).filter((a, i, all) => a !== '--host' && all[i - 1] !== '--host'),
  );
});

test('the job is submitted with the JDBC driver of scripts/install-spark.sh and the deployment facts of src/config.ts', () => {
  const cmd = [...(svc['spark-submit']!.entrypoint ?? []), ...(svc['spark-submit']!.command as string[])];
  const after = (flag: string): string | undefined => cmd[cmd.indexOf(flag) + 1];
  const installVersion = /^PG_JDBC_VERSION="([^"]+)"/m.exec(read('scripts/install-spark.sh'))?.[1];
  assert.ok(installVersion);
  assert.equal(after('--packages'), `org.postgresql:postgresql:${installVersion}`);
  assert.equal(after('--master'), 'spark://spark-master:7077');
  const confs = cmd.flatMap((a, i) => (cmd[i - 1] === '--conf' ? [a] : []));
  const { deployment } = defaults();
  assert.ok(confs.includes(`spark.sql.shuffle.partitions=${deployment.shufflePartitions}`));
  assert.ok(confs.includes('spark.sql.adaptive.enabled=true'));
  assert.equal(after('--trigger'), `${deployment.sparkTriggerSeconds}s`);
  assert.equal(after('--max-files-per-trigger'), String(deployment.sparkMaxFilesPerTrigger));
  // Under the spec's checkpoint location, in a folder of its own: ./data/checkpoints is also where the
  // TypeScript engine keeps its (different) logs when run with `npm start`.
  assert.equal(after('--checkpoint'), '/opt/spark-data/checkpoints/spark');
  assert.equal(after('--input'), '/opt/spark-data/input');
  // Every job flag exists in the job's parser.
  const settings = read('spark/ecomstream_spark/settings.py');
  const script = cmd.indexOf('/opt/spark-apps/streaming_job.py');
  for (const arg of cmd.slice(script + 1)) if (arg.startsWith('--')) assert.ok(settings.includes(`"${arg}"`), `streaming_job.py knows ${arg}`);
  assert.match(String(svc['spark-submit']!.environment!.DATABASE_URL), /^postgresql:\/\/sparkuser:sparkpass123@postgres:5432\/ecommerce_events$/);
});

test("the worker image: the spec image plus the executors' Python dependencies, same tag, same user", () => {
  const s = svc['spark-worker']!;
  assert.deepEqual(s.build, { context: '.', dockerfile: 'spark-worker.Dockerfile' });
  assert.equal(s.image?.split(':')[1], SPARK_IMAGE.split(':')[1], 'the tag names the same Spark, Scala, Java and Python');
  const dockerfile = read('spark-worker.Dockerfile');
  assert.equal(/^FROM (\S+)/m.exec(dockerfile)?.[1], SPARK_IMAGE);
  assert.match(dockerfile, /pip install --no-cache-dir -r \/tmp\/requirements-executor\.txt/);
  assert.equal([...dockerfile.matchAll(/^USER\s+(\S+)/gm)].map((m) => m[1]).at(-1), 'spark', 'runs as the base image user');
  const allowed = read('.dockerignore')
    .split('\n')
    .filter((l) => l.startsWith('!'))
    .map((l) => l.slice(1));
  for (const m of dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
    for (const src of m[1]!.split(/\s+/)) assert.ok(allowed.includes(src), `.dockerignore lets ${src} into the build context`);
  }
});

test('the generator image: Node, the TypeScript generator, a non-root user', () => {
  const s = svc.generator!;
  assert.deepEqual(s.build, { context: '.', dockerfile: 'generator.Dockerfile' });
  const dockerfile = read('generator.Dockerfile');
  assert.match(dockerfile, /^FROM node:20/m);
  const users = [...dockerfile.matchAll(/^USER\s+(\S+)/gm)].map((m) => m[1]);
  assert.equal(users.at(-1), 'node', 'the final stage runs as node');
  assert.match(dockerfile, /ENTRYPOINT \["node", "bin\/ecomstream\.js", "generate", "--out", "\/app\/data\/input"\]/);
  assert.deepEqual(s.command, ['--files', '20', '--events-per-file', '10', '--interval', '5'], 'spec section 2: 20 files of 10 events, 5 s apart');
  // What the image copies is in the build context (.dockerignore is an allow-list).
  const allowed = read('.dockerignore')
    .split('\n')
    .filter((l) => l.startsWith('!'))
    .map((l) => l.slice(1).replace(/\/$/, ''));
  for (const m of dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
    for (const src of m[1]!.split(/\s+/)) assert.ok(allowed.includes(src), `.dockerignore lets ${src} into the build context`);
  }
});

test('pgAdmin has the database registered', () => {
  const servers = JSON.parse(read('pgadmin/servers.json')) as { Servers: Record<string, Record<string, unknown>> };
  const entries = Object.values(servers.Servers);
  assert.equal(entries.length, 1);
  const pgEnv = svc.postgres!.environment!;
  assert.equal(entries[0]!.Host, 'postgres');
  assert.equal(entries[0]!.Port, 5432);
  assert.equal(entries[0]!.MaintenanceDB, pgEnv.POSTGRES_DB);
  assert.equal(entries[0]!.Username, pgEnv.POSTGRES_USER);
  assert.ok(!('Password' in entries[0]!), 'no password in a committed file');
});
