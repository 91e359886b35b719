/**
 * The Compose deployment as the diagram shows it: the services it draws, where each mounts the shared
 * folders, and the figures its boxes and legends quote.
 *
 * What the containers run is the truth the diagram shows; src/config.ts describes the same deployment,
 * and any disagreement between the two is reported (`conflicts`) rather than silently picked.
 */
import path from 'node:path';
import { parseTrigger, type Config, type DeploymentConfig, type GeneratorConfig, type TriggerSpec } from '../config.js';
import { DiagramInputError, flagValue, HELPER_KEYS, SERVICE_KEYS, sparkConf, type ComposeFacts, type ServiceFacts } from './facts.js';

/** The spec's figures for the Spark deployment, shown (and marked as the spec's) where nothing was measured. */
export const SPEC_FIGURES = {
  batchAvgMs: 500,
  firstBatchMs: 4700,
  latency: '10-15 seconds',
  warmUp: '~20-30 batches',
  peak: '20 rec/sec',
};

export interface Deployment {
  /** The Compose file, as errors and legends name it. */
  file: string;
  generator: ServiceFacts;
  master: ServiceFacts;
  worker: ServiceFacts;
  postgres: ServiceFacts;
  pgadmin: ServiceFacts;
  /** The streaming job's submit container, when Compose has one. */
  submit: ServiceFacts | undefined;
  /** The container that prepares the data folders, when Compose has one. */
  init: ServiceFacts | undefined;
  folders: Folders;
  /** The worker's SPARK_WORKER_CORES, and its SPARK_WORKER_MEMORY in GB or MB. */
  cores: string;
  memory: string;
  eventsPerFile: number;
  intervalSeconds: number;
  files: number;
  /** The Spark job's trigger: Compose's when it is not an interval, else the reconciled interval. */
  trigger: TriggerSpec;
  maxFilesPerTrigger: number;
  shufflePartitions: number;
  conflicts: string[];
}

/** The landing and checkpoint folders as `./data/...` on the host, and where the containers see them. */
export interface Folders {
  inputHost: string;
  checkpointHost: string;
  generatorInput: string;
  sparkInput: string;
  sparkCheckpoint: string;
}

/** Compose's value where it states one, else src/config.ts's; a disagreement is recorded as a conflict. */
type Reconcile = (what: string, composeValue: number | undefined, configValue: number, configName: string) => number;

export function readDeployment(config: Config, root: string, compose: ComposeFacts): Deployment {
  const file = compose.file;
  const generator = service(compose, 'generator');
  const master = service(compose, 'master');
  const worker = service(compose, 'worker');
  const postgres = service(compose, 'postgres');
  const pgadmin = service(compose, 'pgadmin');
  const folders = readFolders(config, root, file, { generator, master, worker });
  const cores = env(worker, 'SPARK_WORKER_CORES', file);
  const memory = gigabytes(env(worker, 'SPARK_WORKER_MEMORY', file));
  const submit = compose.services.find((s) => s.key === HELPER_KEYS.submit);
  const init = compose.services.find((s) => s.key === HELPER_KEYS.init);
  const conflicts: string[] = [];
  const reconcile: Reconcile = (what, composeValue, configValue, configName) => {
    if (composeValue !== undefined && composeValue !== configValue) {
      conflicts.push(`${file}: ${what} is ${composeValue}, but src/config.ts ${configName} is ${configValue}`);
    }
    return composeValue ?? configValue;
  };
  const generatorFigures = readGeneratorFigures(generator, config.generator, reconcile);
  const jobFigures = readJobFigures(submit, config.deployment, file, reconcile);
  return { file, generator, master, worker, postgres, pgadmin, submit, init, folders, cores, memory, ...generatorFigures, ...jobFigures, conflicts };
}

function service(compose: ComposeFacts, role: keyof typeof SERVICE_KEYS): ServiceFacts {
  const key = SERVICE_KEYS[role];
  const s = compose.services.find((x) => x.key === key);
  if (!s) throw new DiagramInputError(`no service "${key}" (the diagram's ${role} box)`, compose.file);
  return s;
}

function env(s: ServiceFacts, name: string, file: string): string {
  const v = s.environment[name];
  if (v === undefined || v === '') throw new DiagramInputError(`services.${s.key}.environment.${name} is not set`, file);
  return v;
}

function readFolders(config: Config, root: string, file: string, s: { generator: ServiceFacts; master: ServiceFacts; worker: ServiceFacts }): Folders {
  const inputHost = projectPath(root, config.engine.inputDir);
  const checkpointHost = projectPath(root, config.engine.checkpointDir);
  const generatorInput = mountOf(s.generator, inputHost, file, 'the landing folder');
  const sparkInput = mountOf(s.worker, inputHost, file, 'the landing folder');
  mountOf(s.master, inputHost, file, 'the landing folder');
  const sparkCheckpoint = mountOf(s.worker, checkpointHost, file, 'the checkpoint folder');
  return { inputHost, checkpointHost, generatorInput, sparkInput, sparkCheckpoint };
}

/** `./data/input` for a config path under the project root; the absolute path otherwise. */
function projectPath(root: string, p: string): string {
  const rel = path.relative(root, p);
  return rel.startsWith('..') || path.isAbsolute(rel) ? p : `./${rel.split(path.sep).join('/')}`;
}

function sameHostPath(a: string, b: string): boolean {
  return path.posix.normalize(a).replace(/\/$/, '') === path.posix.normalize(b).replace(/\/$/, '');
}

/** The mount of `hostPath` in a service: where that container sees the folder. */
function mountOf(s: ServiceFacts, hostPath: string, file: string, what: string): string {
  const m = s.volumes.find((v) => sameHostPath(v.source, hostPath));
  if (!m) throw new DiagramInputError(`services.${s.key} does not mount ${hostPath} (${what}, from src/config.ts)`, file);
  return m.target;
}

function gigabytes(mem: string): string {
  // Spark's SPARK_WORKER_MEMORY uses JVM-style sizes: 2G, 2048m.
  const m = /^(\d+(?:\.\d+)?)\s*([gGmM])?/.exec(mem);
  if (!m) return mem;
  const n = Number(m[1]);
  return (m[2] ?? 'm').toLowerCase() === 'g' ? `${n}GB` : n >= 1024 && n % 1024 === 0 ? `${n / 1024}GB` : `${n}MB`;
}

/** What the generator container writes: its flag, else its environment variable, else src/config.ts. */
function readGeneratorFigures(gen: ServiceFacts, g: GeneratorConfig, reconcile: Reconcile): Pick<Deployment, 'eventsPerFile' | 'intervalSeconds' | 'files'> {
  const arg = (flag: string, envName: string): number | undefined => {
    const raw = flagValue(gen.command, flag) ?? gen.environment[envName];
    return raw === undefined || raw === '' || !Number.isFinite(Number(raw)) ? undefined : Number(raw);
  };
  return {
    eventsPerFile: reconcile(
      "the generator's --events-per-file",
      arg('--events-per-file', 'GENERATOR_EVENTS_PER_FILE'),
      g.eventsPerFile,
      'generator.eventsPerFile',
    ),
    intervalSeconds: reconcile("the generator's --interval", arg('--interval', 'GENERATOR_INTERVAL'), g.intervalSeconds, 'generator.intervalSeconds'),
    files: reconcile("the generator's --files", arg('--files', 'GENERATOR_FILES'), g.files, 'generator.files'),
  };
}

/** How the submit container runs the Spark job: its flags and `--conf`, else src/config.ts. */
function readJobFigures(
  submit: ServiceFacts | undefined,
  dep: DeploymentConfig,
  file: string,
  reconcile: Reconcile,
): Pick<Deployment, 'trigger' | 'maxFilesPerTrigger' | 'shufflePartitions'> {
  const arg = (flag: string): string | undefined => (submit ? flagValue(submit.command, flag) : undefined);
  const trigger = submitTrigger(arg('--trigger'), file);
  const triggerSeconds = reconcile(
    "the Spark job's --trigger (seconds)",
    trigger?.kind === 'interval' ? trigger.seconds : undefined,
    dep.sparkTriggerSeconds,
    'deployment.sparkTriggerSeconds',
  );
  const maxFilesArg = arg('--max-files-per-trigger');
  const maxFilesPerTrigger = reconcile(
    "the Spark job's --max-files-per-trigger",
    maxFilesArg === undefined ? undefined : Number(maxFilesArg),
    dep.sparkMaxFilesPerTrigger,
    'deployment.sparkMaxFilesPerTrigger',
  );
  const shuffleConf = submit ? sparkConf(submit.command, 'spark.sql.shuffle.partitions') : undefined;
  const shufflePartitions = reconcile(
    'spark.sql.shuffle.partitions',
    shuffleConf === undefined ? undefined : Number(shuffleConf),
    dep.shufflePartitions,
    'deployment.shufflePartitions',
  );
  return {
    trigger: trigger && trigger.kind !== 'interval' ? trigger : { kind: 'interval', seconds: triggerSeconds },
    maxFilesPerTrigger,
    shufflePartitions,
  };
}

function submitTrigger(value: string | undefined, file: string): TriggerSpec | undefined {
  if (value === undefined) return undefined;
  try {
    return parseTrigger(value);
  } catch (err) {
    throw new DiagramInputError(`services.${HELPER_KEYS.submit}.command: ${(err as Error).message}`, file, { cause: err });
  }
}

/** `apache/spark:3.5.0-scala2.12-java11-python3-ubuntu` -> its versions. */
export function sparkVersions(image: string | undefined): { spark: string; scala: string; java: string; python: string } {
  const tag = image?.split(':')[1] ?? '';
  const m = /^(\d+(?:\.\d+)*)(?:-scala([\d.]+))?(?:-java(\d+))?(?:-python(\d+))?/.exec(tag);
  return { spark: m?.[1] ?? (tag || 'unknown'), scala: m?.[2] ?? '-', java: m?.[3] ?? '-', python: m?.[4] ?? '-' };
}

export function imageTag(image: string | undefined): string {
  return image?.split(':')[1] ?? 'latest';
}
