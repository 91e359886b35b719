/**
 * The architecture model: what the diagram says, built from the system's own configuration, before
 * anything decides how it looks. DOT, draw.io and the checklist tests all read this one model.
 *
 * Terminology
 * - component:  one box of the spec's seven (generator, shared volume, Spark master, Spark worker,
 *               PostgreSQL, pgAdmin, checkpoint storage), plus any further Compose service, shown
 *               plainly so the picture never hides a container.
 * - connection: one of the spec's six arrows, with its label, colour, width and dash.
 * - cluster:    a group drawn as a box around components: the Docker network, the Spark cluster,
 *               "Data Storage & Management".
 * - legend:     a box of key/value rows (performance metrics, technology stack) or plain lines
 *               (security note), outside the Docker boundary.
 * - line:       one line of text with a kind that fixes its size and style (spec "Text Requirements").
 *
 * Truth over copy: ports, images, resources, paths, trigger and files per trigger come from
 * docker-compose.yml and src/config.ts; measured figures from bench/results/latest.json when it exists,
 * otherwise the spec's figures, marked as such.
 */
import path from 'node:path';
import { formatTrigger, parseTrigger, type Config, type TriggerSpec } from '../config.js';
import {
  DiagramInputError,
  flagValue,
  sparkConf,
  type BenchResults,
  type ComposeFacts,
  type EnginesResults,
  type PortMapping,
  type SchemaFacts,
  type ServiceFacts,
} from './facts.js';
import { INPUT_FILES } from './inputs.js';
import { EDGE, PALETTE, STORAGE_CLUSTER, type Palette } from './style.js';

/**
 * - name:  a component's label (12 pt); title: the diagram title (16 pt bold).
 * - port:  a port or path (9 pt italic); muted: secondary facts such as container names (9 pt).
 * - note:  an annotation line (10 pt); scale: a scalability annotation (10 pt, bold, highlighted).
 */
export type LineKind = 'title' | 'name' | 'port' | 'note' | 'muted' | 'scale';

export interface Line {
  text: string;
  kind: LineKind;
  align: 'center' | 'left';
}

export type ComponentRole = 'generator' | 'volume' | 'master' | 'worker' | 'postgres' | 'pgadmin' | 'checkpoints' | 'service';
export type ClusterId = 'docker' | 'spark' | 'storage';

export interface Component {
  id: string;
  role: ComponentRole;
  /** The component label, e.g. "Spark Worker". */
  name: string;
  lines: Line[];
  palette: Palette;
  /** Innermost cluster; every component is inside the Docker network. */
  cluster: ClusterId;
  /** Host ports shown on the box, for tests and draw.io tooltips. */
  ports: PortMapping[];
}

export interface Connection {
  id: string;
  from: string;
  to: string;
  /** The spec's label, one entry per line. */
  label: string[];
  color: string;
  width: number;
  style: 'solid' | 'bold' | 'dashed';
  /** Arrow heads at both ends (the checkpoint edge). */
  both: boolean;
  kind: 'data' | 'control';
  /** The cluster the label sits in (inside the clusters both ends share). */
  cluster: ClusterId;
}

export interface Cluster {
  id: ClusterId;
  label: string;
  palette: Palette;
  dashed: boolean;
  parent: ClusterId | undefined;
}

export interface LegendRow {
  key: string;
  value: string;
  /** A sub-heading spanning the row (`key` is its text). */
  heading?: boolean;
  /** The file the value comes from (its base name; the legend's lines give the full path). */
  source?: string;
}

export interface Legend {
  id: string;
  title: string;
  rows: LegendRow[];
  lines: Line[];
}

/** A note attached to a connection (spec "Fault Tolerance Highlights": explain the recovery). */
export interface Annotation {
  id: string;
  /** The connection it explains; drawn with a dotted leader to that connection's label. */
  connection: string;
  lines: Line[];
}

export interface ArchitectureModel {
  /**
   * Facts that two sources state differently (docker-compose.yml runs the Spark job with one trigger,
   * src/config.ts says another). The diagram shows what Compose runs; these make the checks fail.
   */
  conflicts: string[];
  title: string;
  subtitle: string;
  clusters: Cluster[];
  components: Component[];
  connections: Connection[];
  annotations: Annotation[];
  legends: Legend[];
}

export interface ModelInputs {
  /** The typed configuration; the committed diagrams use `defaults(root)`. */
  config: Config;
  /** The project folder the config's absolute paths are relative to (shown as `./data/...`). */
  root: string;
  compose: ComposeFacts;
  schema: SchemaFacts;
  /** The TypeScript engine's benchmark results, when `bench/results/latest.json` exists. */
  bench?: BenchResults | undefined;
  /** Both engines side by side, when `bench/results/engines.json` exists (the Spark job's figures). */
  engines?: EnginesResults | undefined;
  /** The generator's base image and where it came from. */
  generatorImage: { image: string; source: string };
}

/** Characters of 10 pt text per line in the notes and legend footers of the lower-left column. */
const NOTE_CHARS = 31;

const SPEC_FIGURES = {
  batchAvgMs: 500,
  firstBatchMs: 4700,
  latency: '10-15 seconds',
  warmUp: '~20-30 batches',
  peak: '20 rec/sec',
};

const line = (text: string, kind: LineKind, align: Line['align'] = kind === 'note' ? 'left' : 'center'): Line => ({ text, kind, align });
const bullet = (text: string): Line => line(`• ${text}`, 'note');

/** Compose roles by service key; a Compose file that renames a service must rename it here too. */
const SERVICE_KEYS = {
  generator: 'generator',
  master: 'spark-master',
  worker: 'spark-worker',
  postgres: 'postgres',
  pgadmin: 'pgadmin',
} as const;

/**
 * Helper containers shown inside the box they serve rather than as boxes of their own: the streaming
 * job's driver runs in the master's network (its UI is the master's :4040), the one-shot init
 * container only prepares the data folders, the one-shot settings check runs before the job, and the
 * optional extra workers are what the worker box's "Horizontally scalable" line stands for.
 */
const HELPER_KEYS = { submit: 'spark-submit', init: 'data-init', settings: 'spark-job-settings', moreWorkers: 'spark-worker-more' } as const;

/** What each well-known container port is, for the port lines. */
const PORT_ROLES: Record<number, string> = {
  8080: 'Web UI',
  7077: 'Cluster',
  4040: 'App UI, while a job runs',
  8081: 'Web UI',
  5432: 'SQL',
  80: 'HTTP',
};

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

/** Port lines; two short ones share a line (`:8080 (Web UI) · :7077 (Cluster)`), which keeps the box low. */
function portLines(s: ServiceFacts): Line[] {
  const texts = s.ports.map((p) => `:${p.host} (${PORT_ROLES[p.container] ?? `container port ${p.container}`})`);
  const out: string[] = [];
  for (const t of texts) {
    const last = out[out.length - 1];
    if (last !== undefined && !last.includes(' · ') && last.length + 3 + t.length <= PORT_LINE_CHARS) out[out.length - 1] = `${last} · ${t}`;
    else out.push(t);
  }
  return out.map((t) => line(t, 'port'));
}

/** Characters of 9 pt italic that fit the Spark boxes' width. */
const PORT_LINE_CHARS = 32;

/** Words of `text` as lines of at most `width` characters. */
function wrapWords(text: string, width: number): string[] {
  const out: string[] = [];
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const last = out[out.length - 1];
    if (last !== undefined && last.length + 1 + word.length <= width) out[out.length - 1] = `${last} ${word}`;
    else out.push(word);
  }
  return out;
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

/** `apache/spark:3.5.0-scala2.12-java11-python3-ubuntu` -> its versions. */
function sparkVersions(image: string | undefined): { spark: string; scala: string; java: string; python: string } {
  const tag = image?.split(':')[1] ?? '';
  const m = /^(\d+(?:\.\d+)*)(?:-scala([\d.]+))?(?:-java(\d+))?(?:-python(\d+))?/.exec(tag);
  return { spark: m?.[1] ?? (tag || 'unknown'), scala: m?.[2] ?? '-', java: m?.[3] ?? '-', python: m?.[4] ?? '-' };
}

function imageTag(image: string | undefined): string {
  return image?.split(':')[1] ?? 'latest';
}

function gigabytes(mem: string): string {
  // Spark's SPARK_WORKER_MEMORY uses JVM-style sizes: 2G, 2048m.
  const m = /^(\d+(?:\.\d+)?)\s*([gGmM])?/.exec(mem);
  if (!m) return mem;
  const n = Number(m[1]);
  return (m[2] ?? 'm').toLowerCase() === 'g' ? `${n}GB` : n >= 1024 && n % 1024 === 0 ? `${n / 1024}GB` : `${n}MB`;
}

function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function fmtMs(n: number): string {
  return n >= 10 ? `${fmtInt(n)} ms` : `${n.toFixed(1)} ms`;
}

/** The streaming job's driver, where it runs and how it reaches the cluster. */
function driverLines(submit: ServiceFacts, master: ServiceFacts): Line[] {
  const mode = flagValue(submit.command, '--deploy-mode') ?? 'client';
  const shares = submit.networkMode === `service:${master.key}`;
  return [line(`driver: ${submit.containerName}`, 'muted'), line(`(${mode} mode${shares ? ', in this network' : ''})`, 'muted')];
}

/** Build the model. Pure: everything it shows is in `inputs`. */
export function buildModel(inputs: ModelInputs): ArchitectureModel {
  const { config, root, compose, schema, bench } = inputs;
  const file = compose.file;
  const gen = service(compose, 'generator');
  const master = service(compose, 'master');
  const worker = service(compose, 'worker');
  const pg = service(compose, 'postgres');
  const pgadmin = service(compose, 'pgadmin');

  const inputHost = projectPath(root, config.engine.inputDir);
  const checkpointHost = projectPath(root, config.engine.checkpointDir);
  const genInput = mountOf(gen, inputHost, file, 'the landing folder');
  const sparkInput = mountOf(worker, inputHost, file, 'the landing folder');
  mountOf(master, inputHost, file, 'the landing folder');
  const sparkCheckpoint = mountOf(worker, checkpointHost, file, 'the checkpoint folder');

  const cores = env(worker, 'SPARK_WORKER_CORES', file);
  const memory = gigabytes(env(worker, 'SPARK_WORKER_MEMORY', file));
  const submit = compose.services.find((s) => s.key === HELPER_KEYS.submit);
  const init = compose.services.find((s) => s.key === HELPER_KEYS.init);
  const dep = config.deployment;

  // What the containers run is the truth the diagram shows; src/config.ts describes the same
  // deployment, and any disagreement between the two is reported rather than silently picked.
  const conflicts: string[] = [];
  const fact = (what: string, composeValue: number | undefined, configValue: number, configName: string): number => {
    if (composeValue !== undefined && composeValue !== configValue) {
      conflicts.push(`${file}: ${what} is ${composeValue}, but src/config.ts ${configName} is ${configValue}`);
    }
    return composeValue ?? configValue;
  };
  const genArg = (flag: string, envName: string): number | undefined => {
    const raw = flagValue(gen.command, flag) ?? gen.environment[envName];
    return raw === undefined || raw === '' || !Number.isFinite(Number(raw)) ? undefined : Number(raw);
  };
  const eventsPerFile = fact(
    "the generator's --events-per-file",
    genArg('--events-per-file', 'GENERATOR_EVENTS_PER_FILE'),
    config.generator.eventsPerFile,
    'generator.eventsPerFile',
  );
  const interval = fact(
    "the generator's --interval",
    genArg('--interval', 'GENERATOR_INTERVAL'),
    config.generator.intervalSeconds,
    'generator.intervalSeconds',
  );
  const files = fact("the generator's --files", genArg('--files', 'GENERATOR_FILES'), config.generator.files, 'generator.files');
  const submitArg = (flag: string): string | undefined => (submit ? flagValue(submit.command, flag) : undefined);
  const triggerArg = submitArg('--trigger');
  let trigger: TriggerSpec | undefined;
  if (triggerArg !== undefined) {
    try {
      trigger = parseTrigger(triggerArg);
    } catch (err) {
      throw new DiagramInputError(`services.${HELPER_KEYS.submit}.command: ${(err as Error).message}`, file, { cause: err });
    }
  }
  const triggerSeconds = fact(
    "the Spark job's --trigger (seconds)",
    trigger?.kind === 'interval' ? trigger.seconds : undefined,
    dep.sparkTriggerSeconds,
    'deployment.sparkTriggerSeconds',
  );
  const triggerText = trigger && trigger.kind !== 'interval' ? formatTrigger(trigger) : `Every ${triggerSeconds} seconds`;
  const maxFilesArg = submitArg('--max-files-per-trigger');
  const maxFiles = fact(
    "the Spark job's --max-files-per-trigger",
    maxFilesArg === undefined ? undefined : Number(maxFilesArg),
    dep.sparkMaxFilesPerTrigger,
    'deployment.sparkMaxFilesPerTrigger',
  );
  const shuffleConf = submit ? sparkConf(submit.command, 'spark.sql.shuffle.partitions') : undefined;
  const shuffle = fact(
    'spark.sql.shuffle.partitions',
    shuffleConf === undefined ? undefined : Number(shuffleConf),
    dep.shufflePartitions,
    'deployment.shufflePartitions',
  );
  const sparkImage = master.image ?? worker.image;
  const v = sparkVersions(sparkImage);
  const pgVersion = imageTag(pg.image).split('-')[0] ?? '';
  // An empty POSTGRES_DB is unset, as the postgres image treats it: `||`, not `??`.
  // eslint-disable-next-line @typescript-eslint/prefer-nullish-coalescing
  const database = pg.environment.POSTGRES_DB || config.db.database;
  const nodeImage = inputs.generatorImage.image;
  const nodeVersion = /^node:(\d+)/.exec(nodeImage)?.[1];
  const specMs = (n: number) => `~${fmtInt(n)}ms`;

  const eventsTable = schema.tables.includes('user_events') ? 'user_events' : (schema.tables[0] ?? 'user_events');
  const indexes = schema.indexedColumns[eventsTable] ?? [];
  const otherTables = schema.tables.filter((t) => t !== eventsTable);

  const components: Component[] = [
    {
      id: 'generator',
      role: 'generator',
      name: 'Data Generator',
      cluster: 'docker',
      palette: PALETTE.generator,
      ports: gen.ports,
      lines: [
        line('(Node.js/TypeScript Container)', 'note', 'center'),
        line(`${gen.containerName} · ${nodeImage}`, 'muted'),
        bullet('Creates CSV files'),
        bullet(`${eventsPerFile} events/file`),
        bullet(`${interval}s intervals${files > 0 ? `, ${files} files` : ''}`),
        bullet('Atomic writes (.tmp → .csv)'),
        bullet('Isolated container'),
        line('Can run multiple instances', 'scale'),
      ],
    },
    {
      id: 'volume',
      role: 'volume',
      name: 'Shared Volume',
      cluster: 'docker',
      palette: PALETTE.volume,
      ports: [],
      lines: [
        line(inputHost, 'port'),
        line(`generator: ${genInput}`, 'muted'),
        line(`Spark: ${sparkInput}`, 'muted'),
        bullet('CSV file storage'),
        bullet('Monitored by Spark'),
        bullet('Shared between containers'),
        ...(init ? [line('folders prepared by', 'muted'), line(init.containerName, 'muted')] : []),
      ],
    },
    {
      id: 'master',
      role: 'master',
      name: 'Spark Master',
      cluster: 'spark',
      palette: PALETTE.master,
      ports: master.ports,
      lines: [
        line(master.containerName, 'muted'),
        ...portLines(master),
        bullet('Coordinates cluster'),
        bullet('Manages streaming query'),
        bullet('Assigns tasks to workers'),
        bullet('Monitors checkpoints'),
        ...(submit ? driverLines(submit, master) : []),
      ],
    },
    {
      id: 'worker',
      role: 'worker',
      name: worker.replicas > 1 ? `Spark Worker ×${worker.replicas}` : 'Spark Worker',
      cluster: 'spark',
      palette: PALETTE.worker,
      ports: worker.ports,
      lines: [
        line(worker.containerName, 'muted'),
        ...portLines(worker),
        bullet(`${cores} cores, ${memory} RAM`),
        bullet('Parse CSV files'),
        bullet(`Transform data (${shuffle} partitions)`),
        bullet('Filter nulls'),
        bullet('Validate ranges'),
        // The executors COPY into staging (psycopg); only the driver's batch transaction uses JDBC.
        bullet('COPY write to staging'),
        bullet(`${specMs(SPEC_FIGURES.batchAvgMs)} per batch (spec)`),
        line('Horizontally scalable', 'scale'),
      ],
    },
    {
      id: 'postgres',
      role: 'postgres',
      name: `PostgreSQL ${pgVersion}`.trim(),
      cluster: 'storage',
      palette: PALETTE.postgres,
      ports: pg.ports,
      lines: [
        line(pg.containerName, 'muted'),
        ...pg.ports.map((p) => line(`:${p.host}`, 'port')),
        line(`Database: ${database}`, 'note'),
        line(`Table: ${eventsTable}`, 'note'),
        ...wrapList('Indexes: ', indexes, 26).map((t) => line(t, 'note')),
        ...(schema.views.length ? [line(`View: ${schema.views.join(', ')}`, 'note')] : []),
        ...wrapList('Also: ', groupNames(otherTables), 26).map((t) => line(t, 'note')),
      ],
    },
    {
      id: 'pgadmin',
      role: 'pgadmin',
      name: 'pgAdmin',
      cluster: 'storage',
      palette: PALETTE.pgadmin,
      ports: pgadmin.ports,
      lines: [
        line(pgadmin.containerName, 'muted'),
        ...pgadmin.ports.map((p) => line(`:${p.host}`, 'port')),
        bullet('Web UI'),
        bullet('Database management'),
        bullet('Query editor'),
        bullet('Monitoring'),
      ],
    },
    {
      id: 'checkpoints',
      role: 'checkpoints',
      name: 'Checkpoint Storage',
      cluster: 'docker',
      palette: PALETTE.checkpoints,
      ports: [],
      lines: [
        line(checkpointHost, 'port'),
        line(`Spark: ${sparkCheckpoint}`, 'muted'),
        bullet('Fault tolerance'),
        bullet('Offset tracking'),
        bullet('Exactly-once semantics'),
        bullet('State recovery'),
      ],
    },
  ];

  // A service the diagram has no role for is still a container on the network: show it plainly. The
  // diagram is the deployment `docker compose up` starts, so services under a profile (off unless asked
  // for, like the observability profile's Prometheus and Grafana) are not drawn.
  const known = new Set<string>([...Object.values(SERVICE_KEYS), ...Object.values(HELPER_KEYS)]);
  for (const s of compose.services.filter((x) => !known.has(x.key) && x.profiles.length === 0)) {
    components.push({
      id: `service_${s.key.replace(/\W/g, '_')}`,
      role: 'service',
      name: s.key,
      cluster: 'docker',
      palette: PALETTE.volume,
      ports: s.ports,
      lines: [line(s.containerName, 'muted'), ...(s.image ? [line(s.image, 'muted')] : []), ...portLines(s)],
    });
  }

  const connections: Connection[] = [
    {
      id: 'csv',
      from: 'generator',
      to: 'volume',
      label: ['CSV Files', '(events_*.csv)'],
      ...EDGE.csv,
      style: 'solid',
      both: false,
      kind: 'data',
      cluster: 'docker',
    },
    {
      id: 'read',
      from: 'volume',
      to: 'master',
      label: ['readStream', `(maxFilesPerTrigger=${maxFiles})`],
      ...EDGE.spark,
      style: 'solid',
      both: false,
      kind: 'data',
      cluster: 'docker',
    },
    {
      id: 'task',
      from: 'master',
      to: 'worker',
      label: ['Task Assignment', '(micro-batch)'],
      ...EDGE.spark,
      style: 'solid',
      both: false,
      kind: 'data',
      cluster: 'spark',
    },
    {
      id: 'jdbc',
      from: 'worker',
      to: 'postgres',
      label: ['JDBC Write', '(foreachBatch)', 'Batch Insert'],
      ...EDGE.jdbc,
      style: 'bold',
      both: false,
      kind: 'data',
      cluster: 'docker',
    },
    {
      id: 'checkpoint',
      from: 'worker',
      to: 'checkpoints',
      label: ['State Management', 'Offset Tracking'],
      ...EDGE.checkpoint,
      style: 'dashed',
      both: true,
      kind: 'control',
      cluster: 'docker',
    },
    {
      id: 'monitoring',
      from: 'postgres',
      to: 'pgadmin',
      label: ['SQL Queries', 'Monitoring'],
      ...EDGE.monitoring,
      style: 'dashed',
      both: false,
      kind: 'control',
      cluster: 'storage',
    },
  ];

  const clusters: Cluster[] = [
    {
      id: 'docker',
      label: `Docker Environment (${compose.network.name}, ${compose.network.driver})`,
      palette: PALETTE.docker,
      dashed: true,
      parent: undefined,
    },
    { id: 'spark', label: 'Spark Cluster', palette: PALETTE.sparkCluster, dashed: false, parent: 'docker' },
    { id: 'storage', label: 'Data Storage & Management', palette: STORAGE_CLUSTER, dashed: false, parent: 'docker' },
  ];

  return {
    conflicts,
    title: 'Real-time E-commerce Event Streaming Pipeline',
    subtitle: 'Generated by `ecomstream diagram` from docker-compose.yml, src/config.ts and postgres/migrations/',
    clusters,
    components,
    connections,
    annotations: [
      {
        id: 'recovery',
        connection: 'checkpoint',
        lines: [
          line('Recovery after a crash', 'name', 'left'),
          ...wrapWords(
            'offsets/N is written before batch N, commits/N only after its rows are committed in PostgreSQL. On restart ' +
              'a batch with offsets/N but no commits/N is replayed from the log, and its batch id and the unique ' +
              'event_id keep the table free of duplicates.',
            NOTE_CHARS,
          ).map((t) => line(t, 'note')),
        ],
      },
    ],
    legends: [
      metricsLegend({ eventsPerFile, trigger: triggerText, cores, filesPerTrigger: maxFiles, composeFile: file, engines: inputs.engines }),
      {
        id: 'stack',
        title: 'Technology Stack',
        rows: [
          { key: 'Docker Compose:', value: '2.0+' },
          { key: 'Node.js:', value: nodeVersion ? `${nodeVersion} (generator)` : `${nodeImage} (generator)` },
          { key: 'Python:', value: v.python === '-' ? '-' : `${v.python} (PySpark job)` },
          { key: 'Spark:', value: v.spark },
          { key: 'PostgreSQL:', value: imageTag(pg.image) },
          { key: 'pgAdmin:', value: imageTag(pgadmin.image) === 'latest' ? 'Latest' : imageTag(pgadmin.image) },
          { key: 'Java:', value: v.java },
          { key: 'Scala:', value: v.scala },
        ],
        lines: [
          ...wrapWords(`Versions: image tags in ${file}`, 26).map((t) => line(t, 'muted', 'left')),
          ...(inputs.generatorImage.source === 'fallback' ? [line(`Generator image assumed: no ${gen.dockerfile ?? 'Dockerfile'}`, 'muted', 'left')] : []),
        ],
      },
      localLegend(config, bench),
      {
        id: 'security',
        title: 'Note: Development configuration',
        rows: [],
        lines: [
          line('Production requires:', 'note'),
          bullet('Encrypted connections (SSL/TLS)'),
          bullet('Secret management (Vault)'),
          bullet('Network policies'),
          bullet('Authentication & authorization'),
        ],
      },
    ],
  };
}

const base = (file: string): string => path.posix.basename(file);

/** `p50 13 / p99 28 ms`, or one of them, or undefined. */
function latencyText(p50: number | undefined, p99: number | undefined): string | undefined {
  if (p50 !== undefined && p99 !== undefined) return `p50 ${fmtMs(p50).replace(/ ms$/, '')} / p99 ${fmtMs(p99)}`;
  if (p50 !== undefined) return `p50 ${fmtMs(p50)}`;
  return p99 !== undefined ? `p99 ${fmtMs(p99)}` : undefined;
}
const CONFIG_SOURCE = 'config.ts';
/** The Compose file's row tag: its name without the `docker-` that every Compose file shares. */
const COMPOSE_TAG = 'compose';
/** Characters of 9 pt per footer line: the legends' width. */
const FOOTER_CHARS = 44;

const footer = (text: string): Line[] => wrapWords(text, FOOTER_CHARS).map((t) => line(t, 'muted', 'left'));

/** "engines.json = bench/results/engines.json, 2026-11-25, 2 cores, ...": what a row's tag stands for, and when. */
function measuredLines(file: string, when: { measuredAt?: string | undefined; machine?: string | undefined }): Line[] {
  return footer(`${base(file)} = ${file}, ${when.measuredAt ? when.measuredAt.slice(0, 10) : 'undated'}, ${when.machine ?? 'machine not recorded'}`);
}

/**
 * The Docker deployment's figures: configured values from the Compose file, and the Spark job's own
 * measured figures from `npm run bench:engines` (bench/results/engines.json); the spec's figures,
 * marked as such, where nothing was measured.
 */
function metricsLegend(f: {
  eventsPerFile: number;
  trigger: string;
  cores: string;
  filesPerTrigger: number;
  composeFile: string;
  engines: EnginesResults | undefined;
}): Legend {
  const compose = COMPOSE_TAG;
  const rows: LegendRow[] = [
    { key: 'Records/file:', value: String(f.eventsPerFile), source: compose },
    { key: 'Trigger:', value: f.trigger, source: compose },
    { key: 'Parallelism:', value: `${f.cores} cores`, source: compose },
    { key: 'Files/Trigger:', value: f.filesPerTrigger === 0 ? 'unlimited' : String(f.filesPerTrigger), source: compose },
  ];
  const spark = f.engines?.spark;
  const measured = base(INPUT_FILES.engines);
  const lines: Line[] = footer(`${compose} = ${f.composeFile}`);
  const spec = (key: string, value: string): LegendRow => ({ key, value, source: 'spec' });
  if (spark?.rowsPerSecond !== undefined) {
    const batches = spark.batches !== undefined ? `${spark.batches} batch${spark.batches === 1 ? '' : 'es'}` : '';
    rows.push({
      key: `Spark job, measured${spark.master || batches ? ` (${[spark.master, batches].filter(Boolean).join(', ')})` : ''}`,
      value: '',
      heading: true,
    });
    const batchMs = spark.processingMs !== undefined && spark.batches ? spark.processingMs / spark.batches : undefined;
    rows.push({ key: 'Throughput:', value: `${fmtInt(spark.rowsPerSecond)} rows/s`, source: measured });
    rows.push(
      spark.firstBatchDurationMs !== undefined
        ? { key: 'First batch:', value: fmtMs(spark.firstBatchDurationMs), source: measured }
        : spec('First batch:', `~${fmtInt(SPEC_FIGURES.firstBatchMs)}ms`),
    );
    if (batchMs !== undefined) rows.push({ key: 'Batch time:', value: fmtMs(batchMs), source: measured });
    else rows.push(spec('Batch time:', `~${fmtInt(SPEC_FIGURES.batchAvgMs)}ms (avg)`));
    const latency = latencyText(spark.latencyP50Ms, spark.latencyP99Ms);
    rows.push(latency !== undefined ? { key: 'Latency:', value: latency, source: measured } : spec('Latency:', SPEC_FIGURES.latency));
    lines.push(...measuredLines(INPUT_FILES.engines, f.engines ?? {}));
  } else {
    rows.push(
      { key: 'Spark job: spec figures, not measured here', value: '', heading: true },
      spec('Batch Time:', `~${fmtInt(SPEC_FIGURES.batchAvgMs)}ms (avg)`),
      spec('', `~${fmtInt(SPEC_FIGURES.firstBatchMs)}ms (first batch)`),
      spec('Latency:', SPEC_FIGURES.latency),
      spec('Warm-up:', SPEC_FIGURES.warmUp),
      spec('Peak Throughput:', SPEC_FIGURES.peak),
    );
    lines.push(...footer(`spec = the spec's figures; no ${INPUT_FILES.engines} yet`));
  }
  return { id: 'metrics', title: 'Performance Metrics', rows, lines };
}

/** The same pipeline without Docker, so the picture does not suggest Spark is the only way to run it. */
function localLegend(config: Config, bench: BenchResults | undefined): Legend {
  const rows: LegendRow[] = [
    { key: 'Engine:', value: 'TypeScript (default)', source: CONFIG_SOURCE },
    { key: 'Trigger:', value: `${formatTrigger(config.engine.trigger)}, ≤${config.engine.maxFilesPerTrigger} files`, source: CONFIG_SOURCE },
    { key: 'PostgreSQL:', value: `embedded, :${config.db.port}`, source: CONFIG_SOURCE },
    { key: 'Dashboard:', value: `${config.dashboard.host}:${config.dashboard.port}`, source: CONFIG_SOURCE },
  ];
  const lines: Line[] = footer(`${CONFIG_SOURCE} = src/config.ts, its defaults`);
  const e = bench?.engine;
  const src = base(INPUT_FILES.bench);
  const measured: LegendRow[] = [];
  if (e) {
    if (e.rowsPerSecond !== undefined) measured.push({ key: 'Throughput:', value: `${fmtInt(e.rowsPerSecond)} rows/s`, source: src });
    if (e.firstBatchMs !== undefined) measured.push({ key: 'First batch:', value: fmtMs(e.firstBatchMs), source: src });
    const latency = latencyText(e.latencyP50Ms, e.latencyP99Ms);
    if (latency !== undefined) measured.push({ key: 'Latency:', value: latency, source: src });
  }
  if (measured.length > 0) {
    rows.push({ key: 'TypeScript engine, measured', value: '', heading: true }, ...measured);
    lines.push(...measuredLines(INPUT_FILES.bench, bench ?? {}));
  } else lines.push(...footer(`not measured yet: no ${INPUT_FILES.bench}`));
  return { id: 'local', title: 'Without Docker: npm start', rows, lines };
}

/**
 * Families of two or more names sharing a prefix (`dash_events`, `dash_devices`, ...) collapse to
 * "9 dash_* tables": the box names the single tables and counts the families, so that a new table of a
 * family (stream_epochs beside stream_batches) does not cost the A4 page a line.
 */
function groupNames(names: string[]): string[] {
  const prefix = (n: string) => (n.includes('_') ? n.slice(0, n.indexOf('_')) : n);
  const counts = new Map<string, number>();
  for (const n of names) counts.set(prefix(n), (counts.get(prefix(n)) ?? 0) + 1);
  const out: string[] = [];
  const done = new Set<string>();
  for (const n of names) {
    const p = prefix(n);
    if ((counts.get(p) ?? 0) < 2) out.push(n);
    else if (!done.has(p)) {
      done.add(p);
      out.push(`${counts.get(p)} ${p}_* tables`);
    }
  }
  return out;
}

/** "Indexes: a, b," / "c, d" lines no wider than `width` characters, continuation lines indented. */
function wrapList(prefix: string, items: string[], width: number): string[] {
  if (items.length === 0) return [];
  const out: string[] = [];
  let cur = prefix;
  // Graphviz keeps runs of spaces (as no-break spaces): a small hanging indent marks a continuation.
  const indent = '\u00a0'.repeat(4);
  items.forEach((item, i) => {
    const piece = item + (i < items.length - 1 ? ',' : '');
    if (cur.trim() !== prefix.trim() && cur.replace(/\u00a0/g, '').length + 1 + piece.length > width) {
      out.push(cur);
      cur = indent + piece;
    } else {
      cur = cur === prefix ? prefix + piece : `${cur} ${piece}`;
    }
  });
  out.push(cur);
  return out;
}
