/**
 * A real standalone Spark cluster for the Spark suite: a master and N workers, each its own JVM started
 * with PySpark's `bin/spark-class` (the pip package has no start scripts), bound to 127.0.0.1 on free
 * ports, with `PYSPARK_PYTHON` set to the job's virtual environment. Jobs are submitted with `spark-submit`
 * exactly as spark/README.md's "On a standalone Spark cluster" section tells a user (`submitArgs`).
 *
 * Every daemon runs in its own process group, so `stop()` also ends the executor JVMs a worker started.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PYTHON, ROOT, run, runFlags, type RunResult, type SparkRunOptions } from './support.js';

const BIN = path.dirname(PYTHON);
export const SPARK_CLASS = path.join(BIN, 'spark-class');
export const SPARK_SUBMIT = path.join(BIN, 'spark-submit');

export interface ClusterOptions {
  workers?: number;
  /** Cores of each worker (the spec's worker: 2). */
  cores?: number;
  /** Memory of each worker (the spec's worker: 2G). */
  memory?: string;
  /** Extra environment of the workers, inherited by their executors and the executors' Python workers. */
  workerEnv?: NodeJS.ProcessEnv;
}

export interface MasterJson {
  url: string;
  aliveworkers: number;
  workers: { id: string; host: string; webuiaddress: string; cores: number; coresused: number; state: string }[];
  activeapps: { id: string; name: string; cores: number; state: string }[];
  completedapps: { id: string; name: string; cores: number; state: string }[];
}

export interface WorkerJson {
  id: string;
  cores: number;
  executors: { id: number; appid: string }[];
  finishedexecutors: { id: number; appid: string }[];
}

export interface SparkCluster {
  /** spark://127.0.0.1:PORT */
  masterUrl: string;
  /** http://127.0.0.1:PORT of the master's web UI (its JSON at /json/). */
  masterUi: string;
  workers: { ui: string; workDir: string }[];
  /** The folder of the daemons' logs and the workers' work folders (SPARK_WORKER_DIR). */
  dir: string;
  /** SPARK_CONF_DIR of submitted jobs: spark-defaults.conf turns Spark's event log on (into eventLogDir). */
  confDir: string;
  eventLogDir: string;
  /** The Spark listener events an application logged (one JSON object a line, Spark's event log). */
  eventLog(appId: string): Record<string, unknown>[];
  masterJson(): Promise<MasterJson>;
  workerJson(i: number): Promise<WorkerJson>;
  /** The last lines of every daemon's log, for a failure message. */
  describe(): string;
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (the kernel's choice; the daemons bind it a moment later). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** The environment every cluster process gets: local addresses only, the job's Python. */
export function clusterEnv(): NodeJS.ProcessEnv {
  return { ...process.env, SPARK_LOCAL_IP: '127.0.0.1', SPARK_LOCAL_HOSTNAME: '127.0.0.1', PYSPARK_PYTHON: PYTHON };
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

function startDaemon(args: string[], env: NodeJS.ProcessEnv, log: string): ChildProcess {
  const out = fs.openSync(log, 'a');
  const child = spawn(SPARK_CLASS, args, { cwd: ROOT, env, detached: true, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  return child;
}

async function stopGroup(child: ChildProcess): Promise<void> {
  const pgid = child.pid!;
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(-pgid, i < 50 ? 'SIGTERM' : 'SIGKILL');
    } catch {
      return; // the group is gone
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function tail(file: string, lines = 30): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** spark/README.md's master command (after `spark/.venv/bin/spark-class`). */
export function masterArgs(port: number, uiPort: number): string[] {
  return ['org.apache.spark.deploy.master.Master', '--host', '127.0.0.1', '--port', String(port), '--webui-port', String(uiPort)];
}

/** spark/README.md's worker command (after `spark/.venv/bin/spark-class`). */
export function workerArgs(masterUrl: string, uiPort: number, cores: number, memory: string): string[] {
  return [
    'org.apache.spark.deploy.worker.Worker',
    '--host',
    '127.0.0.1',
    '--webui-port',
    String(uiPort),
    '--cores',
    String(cores),
    '--memory',
    memory,
    masterUrl,
  ];
}

/** Starts the master, then the workers, and waits until the master reports every worker ALIVE. */
export async function startCluster(o: ClusterOptions = {}): Promise<SparkCluster> {
  const n = o.workers ?? 1;
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ecomstream-spark-cluster-'));
  const env = clusterEnv();
  const daemons: ChildProcess[] = [];
  const logs: string[] = [];
  const [port, uiPort] = [await freePort(), await freePort()];
  const masterUrl = `spark://127.0.0.1:${port}`;
  const masterUi = `http://127.0.0.1:${uiPort}`;
  const workers: { ui: string; workDir: string }[] = [];
  // The tests look at where tasks ran in Spark's event log; it is switched on by configuration, so the
  // spark-submit command stays spark/README.md's.
  const confDir = path.join(dir, 'conf');
  const eventLogDir = path.join(dir, 'events');
  await fsp.mkdir(confDir);
  await fsp.mkdir(eventLogDir);
  await fsp.writeFile(path.join(confDir, 'spark-defaults.conf'), `spark.eventLog.enabled true\nspark.eventLog.dir file://${eventLogDir}\n`);
  const describe = (): string => logs.map((l) => `--- ${path.basename(l)} ---\n${tail(l)}`).join('\n');
  const stop = async (): Promise<void> => {
    // Workers first (they take their executors with them), then the master.
    for (const d of daemons.slice().reverse()) await stopGroup(d);
    if (!process.env.KEEP_TEST_OUTPUT) await fsp.rm(dir, { recursive: true, force: true });
  };
  try {
    logs.push(path.join(dir, 'master.log'));
    daemons.push(startDaemon(masterArgs(port, uiPort), env, logs[0]!));
    for (let i = 0; i < n; i++) {
      const workDir = path.join(dir, `worker-${i}`);
      await fsp.mkdir(workDir, { recursive: true });
      const wUi = await freePort();
      const log = path.join(dir, `worker-${i}.log`);
      logs.push(log);
      // SPARK_WORKER_DIR: the executors' folders inside the cluster's temporary folder, not inside PySpark.
      daemons.push(startDaemon(workerArgs(masterUrl, wUi, o.cores ?? 2, o.memory ?? '2G'), { ...env, SPARK_WORKER_DIR: workDir, ...o.workerEnv }, log));
      workers.push({ ui: `http://127.0.0.1:${wUi}`, workDir });
    }
    const deadline = Date.now() + 120_000;
    for (;;) {
      for (const d of daemons) {
        if (d.exitCode !== null || d.signalCode !== null) throw new Error(`a Spark daemon exited while starting\n${describe()}`);
      }
      try {
        const m = await getJson<MasterJson>(`${masterUi}/json/`);
        if (m.workers.filter((w) => w.state === 'ALIVE').length === n) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`the Spark cluster did not report ${n} alive workers within 120 s\n${describe()}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    masterUrl,
    masterUi,
    workers,
    dir,
    confDir,
    eventLogDir,
    eventLog(appId) {
      const f = fs.readdirSync(eventLogDir).find((n) => n === appId || n === `${appId}.inprogress`);
      if (!f) throw new Error(`no event log of ${appId} in ${eventLogDir}`);
      return fs
        .readFileSync(path.join(eventLogDir, f), 'utf8')
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    masterJson: () => getJson<MasterJson>(`${masterUi}/json/`),
    workerJson: (i) => getJson<WorkerJson>(`${workers[i]!.ui}/json/`),
    describe,
    stop,
  };
}

/** The JDBC driver scripts/install-spark.sh puts in spark/jars, relative to the repository (as in spark/README.md). */
export function jdbcJar(): string {
  const jar = fs.readdirSync(path.join(ROOT, 'spark', 'jars')).find((f) => /^postgresql-.*\.jar$/.test(f));
  if (!jar) throw new Error('no PostgreSQL JDBC driver in spark/jars: run scripts/install-spark.sh');
  return `spark/jars/${jar}`;
}

/**
 * spark/README.md's cluster command: `spark-submit --master <url> --jars spark/jars/postgresql-<v>.jar
 * spark/streaming_job.py --input … --checkpoint …`, then the job flags a test needs.
 */
export function submitArgs(masterUrl: string, o: SparkRunOptions): string[] {
  return ['--master', masterUrl, '--jars', jdbcJar(), 'spark/streaming_job.py', ...runFlags(o)];
}

/** `spark-submit` of the job to the cluster, in client mode (the driver runs here, as for a user). */
export function submitSpark(cluster: SparkCluster, o: SparkRunOptions): Promise<RunResult> {
  return run(SPARK_SUBMIT, submitArgs(cluster.masterUrl, o), {
    ...clusterEnv(),
    SPARK_CONF_DIR: cluster.confDir,
    DATABASE_URL: o.databaseUrl,
    ECOMSTREAM_FAILPOINT: '',
    ...o.env,
  });
}

/** The application id (app-…) the job printed in its start line. */
export function appIdOf(r: RunResult): string {
  const m = /application (app-[0-9-]+)/.exec(r.stdout);
  if (!m) throw new Error(`no application id in the job's output:\n${r.stdout.slice(-2000)}`);
  return m[1]!;
}

/** Executor ids of an application's tasks that ended successfully, from its event log. */
export function taskExecutors(events: Record<string, unknown>[]): Set<string> {
  const out = new Set<string>();
  for (const e of events) {
    if (e.Event !== 'SparkListenerTaskEnd') continue;
    const reason = (e['Task End Reason'] as { Reason?: string } | undefined)?.Reason;
    const info = e['Task Info'] as { 'Executor ID'?: string } | undefined;
    if (reason === 'Success' && info?.['Executor ID'] !== undefined) out.add(info['Executor ID']);
  }
  return out;
}
