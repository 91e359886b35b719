/**
 * The drawing's boxes and arrows: the spec's seven components (plus any further Compose service), its
 * six connections and the clusters around them, each filled in with the deployment's facts.
 */
import { imageTag, SPEC_FIGURES, type Deployment } from './deployment.js';
import { HELPER_KEYS, SERVICE_KEYS, flagValue, type ComposeFacts, type PortMapping, type ServiceFacts } from './facts.js';
import type { ModelInputs } from './inputs.js';
import type { Cluster, ClusterId, Component, ComponentRole, Connection, Line } from './model.js';
import { EDGE, PALETTE, STORAGE_CLUSTER } from './style.js';
import { approxMs, bullet, line } from './text.js';

/** What each well-known container port is, for the port lines. */
const PORT_ROLES: Record<number, string> = {
  8080: 'Web UI',
  7077: 'Cluster',
  4040: 'App UI, while a job runs',
  8081: 'Web UI',
  5432: 'SQL',
  80: 'HTTP',
};

/** Characters of 9 pt italic that fit the Spark boxes' width. */
const PORT_LINE_CHARS = 32;

/** Characters of a note line in the PostgreSQL box. */
const POSTGRES_NOTE_CHARS = 26;

/** The boxes, in the order the drawing declares them. */
export function components(d: Deployment, inputs: ModelInputs): Component[] {
  return [
    generatorBox(d, inputs.generatorImage.image),
    volumeBox(d),
    masterBox(d),
    workerBox(d),
    postgresBox(d, inputs),
    pgadminBox(d),
    checkpointsBox(d),
    ...otherServices(inputs.compose),
  ];
}

function box(role: Exclude<ComponentRole, 'service'>, name: string, cluster: ClusterId, ports: PortMapping[], lines: Line[]): Component {
  return { id: role, role, name, cluster, palette: PALETTE[role], ports, lines };
}

function generatorBox(d: Deployment, nodeImage: string): Component {
  const gen = d.generator;
  return box('generator', 'Data Generator', 'docker', gen.ports, [
    line('(Node.js/TypeScript Container)', 'note', 'center'),
    line(`${gen.containerName} · ${nodeImage}`, 'muted'),
    bullet('Creates CSV files'),
    bullet(`${d.eventsPerFile} events/file`),
    bullet(`${d.intervalSeconds}s intervals${d.files > 0 ? `, ${d.files} files` : ''}`),
    bullet('Atomic writes (.tmp → .csv)'),
    bullet('Isolated container'),
    line('Can run multiple instances', 'scale'),
  ]);
}

function volumeBox(d: Deployment): Component {
  const f = d.folders;
  return box(
    'volume',
    'Shared Volume',
    'docker',
    [],
    [
      line(f.inputHost, 'port'),
      line(`generator: ${f.generatorInput}`, 'muted'),
      line(`Spark: ${f.sparkInput}`, 'muted'),
      bullet('CSV file storage'),
      bullet('Monitored by Spark'),
      bullet('Shared between containers'),
      ...(d.init ? [line('folders prepared by', 'muted'), line(d.init.containerName, 'muted')] : []),
    ],
  );
}

function masterBox(d: Deployment): Component {
  const master = d.master;
  return box('master', 'Spark Master', 'spark', master.ports, [
    line(master.containerName, 'muted'),
    ...portLines(master),
    bullet('Coordinates cluster'),
    bullet('Manages streaming query'),
    bullet('Assigns tasks to workers'),
    bullet('Monitors checkpoints'),
    ...(d.submit ? driverLines(d.submit, master) : []),
  ]);
}

function workerBox(d: Deployment): Component {
  const worker = d.worker;
  return box('worker', worker.replicas > 1 ? `Spark Worker ×${worker.replicas}` : 'Spark Worker', 'spark', worker.ports, [
    line(worker.containerName, 'muted'),
    ...portLines(worker),
    bullet(`${d.cores} cores, ${d.memory} RAM`),
    bullet('Parse CSV files'),
    bullet(`Transform data (${d.shufflePartitions} partitions)`),
    bullet('Filter nulls'),
    bullet('Validate ranges'),
    // The executors COPY into staging (psycopg); only the driver's batch transaction uses JDBC.
    bullet('COPY write to staging'),
    bullet(`${approxMs(SPEC_FIGURES.batchAvgMs)} per batch (spec)`),
    line('Horizontally scalable', 'scale'),
  ]);
}

function postgresBox(d: Deployment, inputs: ModelInputs): Component {
  const { schema, config } = inputs;
  const pg = d.postgres;
  const pgVersion = imageTag(pg.image).split('-')[0] ?? '';
  // An empty POSTGRES_DB is unset, as the postgres image treats it: `||`, not `??`.
  // eslint-disable-next-line @typescript-eslint/prefer-nullish-coalescing
  const database = pg.environment.POSTGRES_DB || config.db.database;
  const eventsTable = schema.tables.includes('user_events') ? 'user_events' : (schema.tables[0] ?? 'user_events');
  const indexes = schema.indexedColumns[eventsTable] ?? [];
  const otherTables = schema.tables.filter((t) => t !== eventsTable);
  const notes = (lines: string[]) => lines.map((t) => line(t, 'note'));
  return box('postgres', `PostgreSQL ${pgVersion}`.trim(), 'storage', pg.ports, [
    line(pg.containerName, 'muted'),
    ...pg.ports.map((p) => line(`:${p.host}`, 'port')),
    line(`Database: ${database}`, 'note'),
    line(`Table: ${eventsTable}`, 'note'),
    ...notes(wrapList('Indexes: ', indexes, POSTGRES_NOTE_CHARS)),
    ...(schema.views.length ? [line(`View: ${schema.views.join(', ')}`, 'note')] : []),
    ...notes(wrapList('Also: ', groupNames(otherTables), POSTGRES_NOTE_CHARS)),
  ]);
}

function pgadminBox(d: Deployment): Component {
  const pgadmin = d.pgadmin;
  return box('pgadmin', 'pgAdmin', 'storage', pgadmin.ports, [
    line(pgadmin.containerName, 'muted'),
    ...pgadmin.ports.map((p) => line(`:${p.host}`, 'port')),
    bullet('Web UI'),
    bullet('Database management'),
    bullet('Query editor'),
    bullet('Monitoring'),
  ]);
}

function checkpointsBox(d: Deployment): Component {
  return box(
    'checkpoints',
    'Checkpoint Storage',
    'docker',
    [],
    [
      line(d.folders.checkpointHost, 'port'),
      line(`Spark: ${d.folders.sparkCheckpoint}`, 'muted'),
      bullet('Fault tolerance'),
      bullet('Offset tracking'),
      bullet('Exactly-once semantics'),
      bullet('State recovery'),
    ],
  );
}

/**
 * A service the diagram has no role for is still a container on the network: show it plainly. The
 * diagram is the deployment `docker compose up` starts, so services under a profile (off unless asked
 * for, like the observability profile's Prometheus and Grafana) are not drawn.
 */
function otherServices(compose: ComposeFacts): Component[] {
  const known = new Set<string>([...Object.values(SERVICE_KEYS), ...Object.values(HELPER_KEYS)]);
  return compose.services
    .filter((x) => !known.has(x.key) && x.profiles.length === 0)
    .map((s) => ({
      id: `service_${s.key.replace(/\W/g, '_')}`,
      role: 'service',
      name: s.key,
      cluster: 'docker',
      palette: PALETTE.volume,
      ports: s.ports,
      lines: [line(s.containerName, 'muted'), ...(s.image ? [line(s.image, 'muted')] : []), ...portLines(s)],
    }));
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

/** The streaming job's driver, where it runs and how it reaches the cluster. */
function driverLines(submit: ServiceFacts, master: ServiceFacts): Line[] {
  const mode = flagValue(submit.command, '--deploy-mode') ?? 'client';
  const shares = submit.networkMode === `service:${master.key}`;
  return [line(`driver: ${submit.containerName}`, 'muted'), line(`(${mode} mode${shares ? ', in this network' : ''})`, 'muted')];
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

/** The spec's six arrows. */
export function connections(d: Deployment): Connection[] {
  return [
    connection('csv', 'generator', 'volume', ['CSV Files', '(events_*.csv)'], EDGE.csv, 'solid', 'docker'),
    connection('read', 'volume', 'master', ['readStream', `(maxFilesPerTrigger=${d.maxFilesPerTrigger})`], EDGE.spark, 'solid', 'docker'),
    connection('task', 'master', 'worker', ['Task Assignment', '(micro-batch)'], EDGE.spark, 'solid', 'spark'),
    connection('jdbc', 'worker', 'postgres', ['JDBC Write', '(foreachBatch)', 'Batch Insert'], EDGE.jdbc, 'bold', 'docker'),
    connection('checkpoint', 'worker', 'checkpoints', ['State Management', 'Offset Tracking'], EDGE.checkpoint, 'dashed', 'docker', true),
    connection('monitoring', 'postgres', 'pgadmin', ['SQL Queries', 'Monitoring'], EDGE.monitoring, 'dashed', 'storage'),
  ];
}

function connection(
  id: string,
  from: string,
  to: string,
  label: string[],
  edge: { color: string; width: number },
  style: Connection['style'],
  cluster: ClusterId,
  both = false,
): Connection {
  // Spec "Control Connections (Dashed Arrows)": a dashed arrow is control, the others carry data.
  return { id, from, to, label, ...edge, style, both, kind: style === 'dashed' ? 'control' : 'data', cluster };
}

export function clusters(compose: ComposeFacts): Cluster[] {
  return [
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
}
