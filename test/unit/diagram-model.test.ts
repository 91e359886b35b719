/**
 * The architecture model and its DOT/draw.io output, without rendering: truth over copy (facts come
 * from the configuration, the Compose file and the schema), the readers of those files, and the
 * spec's styles. Fast: no Graphviz layout except where a test says so.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { defaults } from '../../src/config.js';
import {
  DiagramInputError,
  interpolateDefaults,
  parseBench,
  parseCompose,
  parseEngines,
  parseDockerfileBase,
  parseSchema,
  readText,
  type ComposeFacts,
} from '../../src/diagram/facts.js';
import { listMigrations } from '../../src/db/migrate.js';
import { buildModel } from '../../src/diagram/architecture.js';
import { loadInputs, type ModelInputs } from '../../src/diagram/inputs.js';
import type { ArchitectureModel } from '../../src/diagram/model.js';
import { LAYOUT, toDot } from '../../src/diagram/dot.js';
import { checkTextPlacement } from '../../src/diagram/check.js';
import type { Geometry } from '../../src/diagram/geometry.js';
import { crc32, pixelsPerMetre, pngInfo, readChunks, withPhys } from '../../src/diagram/png.js';
import { EDGE, GRAPH_ATTRS, PALETTE } from '../../src/diagram/style.js';
import { buildUseCases, useCaseDot } from '../../src/diagram/usecases.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const COMPOSE_TEXT = readText(path.join(ROOT, 'docker-compose.yml'));
const SCHEMA_TEXT = listMigrations(path.join(ROOT, 'postgres', 'migrations'))
  .map((m) => m.sql)
  .join('\n');

/** The inputs of a fresh clone, in memory, with parts replaced. */
function inputs(over: Partial<ModelInputs> = {}): ModelInputs {
  return {
    config: defaults('/project'),
    root: '/project',
    compose: parseCompose(COMPOSE_TEXT),
    schema: parseSchema(SCHEMA_TEXT),
    bench: undefined,
    generatorImage: { image: 'node:20-alpine', source: 'generator.Dockerfile' },
    ...over,
  };
}

/** The lines of box `id`, one text. */
function boxText(m: ArchitectureModel, id: string): string {
  return m.components
    .find((c) => c.id === id)!
    .lines.map((l) => l.text)
    .join('\n');
}

/** The Compose file with one text replacement, parsed. */
function composeWith(from: string | RegExp, to: string): ComposeFacts {
  const text = COMPOSE_TEXT.replace(from, to);
  assert.notEqual(text, COMPOSE_TEXT, `the Compose file no longer contains ${from}`);
  return parseCompose(text);
}

test('truth over copy: a changed host port changes the diagram', () => {
  const before = toDot(buildModel(inputs()));
  const after = toDot(buildModel(inputs({ compose: composeWith('"5432:5432"', '"15432:5432"') })));
  assert.match(before, />:5432</);
  assert.match(after, />:15432</);
  assert.doesNotMatch(after, />:5432</);
  const pgadmin = toDot(buildModel(inputs({ compose: composeWith('"5050:80"', '"8888:80"') })));
  assert.match(pgadmin, />:8888</);
});

test("truth over copy: the worker's cores and memory come from SPARK_WORKER_CORES / SPARK_WORKER_MEMORY", () => {
  const dot = toDot(buildModel(inputs({ compose: composeWith(/SPARK_WORKER_CORES: "2"/, 'SPARK_WORKER_CORES: "6"') })));
  assert.doesNotMatch(dot, /2 cores, 2GB RAM/);
  assert.match(dot, /6 cores, 2GB RAM/);
  assert.match(dot, /Parallelism:.*6 cores/);
  const mem = toDot(buildModel(inputs({ compose: composeWith(/SPARK_WORKER_MEMORY: 2G/, 'SPARK_WORKER_MEMORY: 4096m') })));
  assert.match(mem, /2 cores, 4GB RAM/);
});

test('truth over copy: trigger, files per trigger, partitions and events per file are what Compose runs', () => {
  const m = buildModel(inputs({ compose: composeWith('${SPARK_TRIGGER:-10s}', '${SPARK_TRIGGER:-30s}') }));
  const dot = toDot(m);
  assert.match(dot, /Every 30 seconds/);
  assert.deepEqual(m.conflicts, ["docker-compose.yml: the Spark job's --trigger (seconds) is 30, but src/config.ts deployment.sparkTriggerSeconds is 10"]);
  const files = buildModel(inputs({ compose: composeWith('${SPARK_MAX_FILES_PER_TRIGGER:-1000}', '${SPARK_MAX_FILES_PER_TRIGGER:-7}') }));
  assert.match(toDot(files), /\(maxFilesPerTrigger=7\)/);
  assert.equal(files.conflicts.length, 1);
  const parts = buildModel(inputs({ compose: composeWith('spark.sql.shuffle.partitions=8', 'spark.sql.shuffle.partitions=16') }));
  assert.match(toDot(parts), /Transform data \(16 partitions\)/);
  const perFile = buildModel(inputs({ compose: composeWith('${GENERATOR_EVENTS_PER_FILE:-10}', '${GENERATOR_EVENTS_PER_FILE:-25}') }));
  assert.match(toDot(perFile), /• 25 events\/file/);
  assert.match(perFile.conflicts.join('\n'), /--events-per-file is 25, but src\/config\.ts generator\.eventsPerFile is 10/);
  // The shipped Compose file and src/config.ts agree.
  assert.deepEqual(buildModel(inputs()).conflicts, []);
});

test('truth over copy: without a Spark job service, trigger and files per trigger come from src/config.ts', () => {
  const compose = parseCompose(COMPOSE_TEXT);
  const noSubmit = { ...compose, services: compose.services.filter((s) => s.key !== 'spark-submit') };
  const config = defaults('/project');
  const changed = { ...config, deployment: { ...config.deployment, sparkTriggerSeconds: 30, sparkMaxFilesPerTrigger: 7 } };
  const m = buildModel(inputs({ compose: noSubmit, config: changed }));
  const dot = toDot(m);
  assert.match(dot, /\(maxFilesPerTrigger=7\)/);
  assert.match(dot, /Every 30 seconds/);
  assert.deepEqual(m.conflicts, []);
});

test('helper containers are shown in the box they serve: the job driver with the master, data-init with the volume', () => {
  const m = buildModel(inputs());
  const text = (id: string) => boxText(m, id);
  assert.match(text('master'), /driver: ecommerce_spark_submit\n\(client mode, in this network\)/);
  assert.match(text('volume'), /folders prepared by\necommerce_data_init/);
  assert.equal(m.components.length, 7, 'no extra boxes for helpers');
  // Any other service is still a box of its own: the diagram never hides a container.
  const extra = parseCompose(
    COMPOSE_TEXT.replace(/^services:\n/m, 'services:\n  redis:\n    container_name: ecommerce_cache\n    image: redis:7\n    ports: ["6379:6379"]\n'),
  );
  const withExtra = buildModel(inputs({ compose: extra }));
  const box = withExtra.components.find((c) => c.id === 'service_redis');
  assert.ok(box);
  assert.deepEqual(
    box.lines.map((l) => l.text),
    ['ecommerce_cache', 'redis:7', ':6379 (container port 6379)'],
  );
  // Under a profile it is not started by `docker compose up`, so it is not drawn.
  const optional = parseCompose(
    COMPOSE_TEXT.replace(/^services:\n/m, 'services:\n  redis:\n    profiles: [cache]\n    container_name: ecommerce_cache\n    image: redis:7\n'),
  );
  assert.equal(buildModel(inputs({ compose: optional })).components.length, 7);
});

test('truth over copy: paths, container names, images and schema come from the project files', () => {
  const m = buildModel(inputs());
  const text = (id: string) => boxText(m, id);
  assert.match(text('volume'), /^\.\/data\/input$/m);
  assert.match(text('volume'), /generator: \/app\/data\/input/);
  assert.match(text('volume'), /Spark: \/opt\/spark-data\/input/);
  assert.match(text('checkpoints'), /^\.\/data\/checkpoints$/m);
  assert.match(text('master'), /ecommerce_spark_master/);
  assert.match(text('postgres'), /Database: ecommerce_events/);
  assert.match(text('postgres'), /Indexes: event_id,\n\s+user_id, event_type,\n\s+event_timestamp/);
  assert.match(text('postgres'), /View: event_summary/);
  assert.equal(m.components.find((c) => c.id === 'postgres')!.name, 'PostgreSQL 15');
  assert.match(text('generator'), /Node\.js\/TypeScript Container/);
  const stack = m.legends.find((l) => l.id === 'stack')!;
  const row = (k: string) => stack.rows.find((r) => r.key === k)?.value;
  assert.equal(row('Spark:'), '3.5.0');
  assert.equal(row('Java:'), '11');
  assert.equal(row('Scala:'), '2.12');
  assert.equal(row('PostgreSQL:'), '15-alpine');
  assert.equal(row('Node.js:'), '20 (generator)');

  // A checkpoint folder that Compose does not mount is an error naming the file and the service.
  const config = defaults('/project');
  const moved = { ...config, engine: { ...config.engine, checkpointDir: '/project/state/ckpt' } };
  assert.throws(() => buildModel(inputs({ config: moved })), /docker-compose\.yml: services\.spark-worker does not mount \.\/state\/ckpt/);
});

test('the generator image comes from its Dockerfile, or is marked as assumed', () => {
  const fromFile = buildModel(inputs({ generatorImage: { image: 'node:22-alpine', source: 'generator.Dockerfile' } }));
  assert.equal(fromFile.legends.find((l) => l.id === 'stack')!.rows.find((r) => r.key === 'Node.js:')!.value, '22 (generator)');
  const fallback = buildModel(inputs({ generatorImage: { image: 'node:20-alpine', source: 'fallback' } }));
  assert.match(
    fallback.legends
      .find((l) => l.id === 'stack')!
      .lines.map((l) => l.text)
      .join(' '),
    /Generator image assumed/,
  );
  assert.equal(parseDockerfileBase('FROM node:22-alpine AS build\nRUN x\nFROM build AS run\nCMD y\n'), 'node:22-alpine');
  assert.equal(parseDockerfileBase('# syntax=docker/dockerfile:1\nFROM --platform=linux/amd64 node:20-slim\n'), 'node:20-slim');
  assert.equal(parseDockerfileBase('RUN nothing\n'), undefined);
});

test("performance legend: the Spark job's figures from engines.json, the spec's marked as such, each row naming its source", () => {
  const legend = (over: Partial<ModelInputs>, id: string) => buildModel(inputs(over)).legends.find((l) => l.id === id)!;
  const rowsOf = (l: { rows: { key: string; value: string; source?: string; heading?: boolean }[] }) =>
    Object.fromEntries(l.rows.filter((r) => !r.heading).map((r) => [r.key, `${r.value} [${r.source}]`]));
  const footer = (l: { lines: { text: string }[] }) => l.lines.map((x) => x.text).join(' ');

  // No bench:engines results: the spec's figures, each tagged "spec".
  const spec = legend({}, 'metrics');
  assert.equal(spec.title, 'Performance Metrics');
  assert.ok(
    spec.rows.filter((r) => !r.heading).every((r) => r.source !== undefined),
    'every row names its source',
  );
  assert.equal(rowsOf(spec)['Records/file:'], '10 [compose]');
  assert.equal(rowsOf(spec)['Trigger:'], 'Every 10 seconds [compose]');
  assert.equal(rowsOf(spec)['Parallelism:'], '2 cores [compose]');
  assert.equal(rowsOf(spec)['Latency:'], '10-15 seconds [spec]');
  assert.match(footer(spec), /no bench\/results\/engines\.json yet/);

  const engines = parseEngines(
    JSON.stringify({
      measuredAt: '2026-01-02T03:04:05Z',
      machine: 'ci box',
      spark: { master: 'local[2]', rows: 1000, batches: 2, rowsPerSecond: 17489.4, processingMs: 900, firstBatchDurationMs: 4929, latencyP50Ms: 'slow' },
      typescript: { rowsPerSecond: 62478 },
    }),
  );
  const measured = legend({ engines }, 'metrics');
  const rows = rowsOf(measured);
  assert.equal(rows['Throughput:'], '17,489 rows/s [engines.json]');
  assert.equal(rows['First batch:'], '4,929 ms [engines.json]');
  assert.equal(rows['Batch time:'], '450 ms [engines.json]', 'processing time per batch');
  assert.equal(rows['Latency:'], '10-15 seconds [spec]', 'a field of the wrong type is left out, not shown as NaN');
  assert.equal(rows['Records/file:'], '10 [compose]', 'configured values stay');
  assert.match(JSON.stringify(measured), /Spark job, measured \(local\[2\], 2 batches\)/);
  assert.match(footer(measured), /engines\.json = bench\/results\/engines\.json, 2026-01-02, ci box/);
  assert.match(footer(measured), /compose = docker-compose\.yml/);
  assert.doesNotMatch(JSON.stringify(measured), /62,478/, "the TypeScript engine's figures are not in the Spark legend");

  // The TypeScript engine's figures go in the "Without Docker" box, from latest.json.
  const bench = parseBench(
    JSON.stringify({
      measuredAt: '2026-03-04T00:00:00Z',
      machine: 'dev box',
      engine: { rowsPerSecond: 68491, firstBatchMs: 362, latencyP50Ms: 12.5, latencyP99Ms: 27.9 },
    }),
  );
  const local = legend({ bench, engines }, 'local');
  assert.equal(rowsOf(local)['Throughput:'], '68,491 rows/s [latest.json]');
  assert.equal(rowsOf(local)['Latency:'], 'p50 13 / p99 28 ms [latest.json]');
  assert.equal(rowsOf(local)['Engine:'], 'TypeScript (default) [config.ts]');
  assert.match(footer(local), /latest\.json = bench\/results\/latest\.json, 2026-03-04, dev box/);
  assert.ok(local.rows.filter((r) => !r.heading).every((r) => r.source !== undefined));
  assert.match(footer(legend({}, 'local')), /not measured yet/);
});

test('Compose reader: ports, interpolation defaults, volumes, network; errors name the file and keep the cause', () => {
  const c = parseCompose(COMPOSE_TEXT);
  const svc = (k: string) => c.services.find((s) => s.key === k)!;
  assert.deepEqual(svc('pgadmin').ports, [{ host: 5050, container: 80 }]);
  assert.equal(svc('postgres').environment.POSTGRES_DB, 'ecommerce_events');
  assert.deepEqual(c.network, { name: 'spark_network', driver: 'bridge' });
  assert.equal(interpolateDefaults('${A:-x}/${B-y}/${C}/$$HOME'), 'x/y//$HOME');
  assert.deepEqual(parseCompose('services:\n  a:\n    ports: ["127.0.0.1:81:80/tcp", 9000]\nnetworks:\n  n: {}\n').services[0]!.ports, [
    { host: 81, container: 80 },
    { host: 9000, container: 9000 },
  ]);
  const err = (() => {
    try {
      parseCompose('services: [unclosed', 'compose.override.yml');
    } catch (e) {
      return e as DiagramInputError;
    }
    return undefined;
  })();
  assert.ok(err instanceof DiagramInputError);
  assert.match(err.message, /^compose\.override\.yml: not valid YAML/);
  assert.ok(err.cause, 'the YAML error is kept as cause');
  assert.throws(() => parseCompose('services:\n  a:\n    ports: ["x:y"]\nnetworks:\n  n: {}\n'), /services\.a\.ports\[0\]: cannot read port "x:y"/);
  assert.throws(() => buildModel(inputs({ compose: parseCompose('services: {}\nnetworks:\n  n: {}\n') })), /docker-compose\.yml: no service "generator"/);
});

test('schema reader: tables, views and indexed columns of postgres/migrations/', () => {
  const s = parseSchema(SCHEMA_TEXT);
  assert.ok(s.tables.includes('user_events'));
  assert.ok(s.views.includes('event_summary'));
  assert.deepEqual(s.indexedColumns.user_events, ['event_id', 'user_id', 'event_type', 'event_timestamp']);
  assert.deepEqual(parseSchema('-- CREATE TABLE nope (x int);\nCREATE TABLE "t" (a int); CREATE INDEX i ON t (a DESC, b);').indexedColumns, { t: ['a+b'] });
});

test('bench reader: invalid JSON names the file', () => {
  assert.throws(
    () => parseBench('{', 'bench/results/latest.json'),
    (e: Error) => e.message.startsWith('bench/results/latest.json: not valid JSON') && e.cause !== undefined,
  );
});

test('DOT: the spec graph attributes, the clusters with their colours, and the six connections with their styles', () => {
  const dot = toDot(buildModel(inputs()));
  for (const [k, v] of Object.entries(GRAPH_ATTRS)) {
    if (k === 'ranksep' || k === 'nodesep') continue;
    assert.match(dot, new RegExp(`\\b${k}="${v.replace('.', '\\.')}"`), `graph attribute ${k}=${v}`);
  }
  // nodesep and ranksep depart from the spec so that A4 prints at 0.8 or more (dot.ts LAYOUT, docs/diagrams.md).
  assert.match(dot, new RegExp(`nodesep="${LAYOUT.nodesep}", ranksep="${LAYOUT.ranksep}"`));
  assert.match(
    dot,
    /subgraph cluster_docker \{\n\s+graph \[label=<<FONT POINT-SIZE="12">Docker Environment \(spark_network, bridge\)<\/FONT>>, labeljust="l", style="dashed,filled", fillcolor="#ECEFF1", color="#37474F"/,
  );
  assert.match(
    dot,
    /subgraph cluster_spark \{\n\s+graph \[label=<<FONT POINT-SIZE="12">Spark Cluster<\/FONT>>, labeljust="l", style="filled", fillcolor="#FFE0B2", color="#F57C00"/,
  );
  assert.match(
    dot,
    /subgraph cluster_storage \{\n\s+graph \[label=<<FONT POINT-SIZE="12">Data Storage &amp; Management<\/FONT>>, labeljust="l", style="filled", fillcolor="#E8F5E9", color="#388E3C"/,
  );
  const colours: Record<string, { fill: string; stroke: string }> = {
    generator: PALETTE.generator,
    volume: PALETTE.volume,
    master: PALETTE.master,
    worker: PALETTE.worker,
    postgres: PALETTE.postgres,
    pgadmin: PALETTE.pgadmin,
    checkpoints: PALETTE.checkpoints,
  };
  for (const [id, p] of Object.entries(colours)) {
    assert.match(dot, new RegExp(`\\n\\s+${id} \\[label=<<TABLE BORDER="2" COLOR="${p.stroke}" BGCOLOR="${p.fill}"`), `${id} colours`);
  }
  const edge = (id: string) => dot.split('\n').filter((l) => l.includes(`id="edge_${id}_`));
  const expect: Record<string, { color: string; width: number; style: string }> = {
    csv: { ...EDGE.csv, style: 'solid' },
    read: { ...EDGE.spark, style: 'solid' },
    task: { ...EDGE.spark, style: 'solid' },
    jdbc: { ...EDGE.jdbc, style: 'bold' },
    checkpoint: { ...EDGE.checkpoint, style: 'dashed' },
    monitoring: { ...EDGE.monitoring, style: 'dashed' },
  };
  for (const [id, e] of Object.entries(expect)) {
    const lines = edge(id);
    assert.equal(lines.length, 2, `connection ${id} is two edge pieces through its label`);
    for (const l of lines) assert.match(l, new RegExp(`color="${e.color}", penwidth="${e.width}", style="${e.style}"`), `${id}: ${l}`);
  }
  assert.equal(EDGE.csv.color, '#1976D2');
  assert.equal(EDGE.jdbc.width, 3);
  // Both arrow heads on the checkpoint connection, one on every other.
  const heads = (id: string) =>
    edge(id)
      .join('\n')
      .match(/arrow(head|tail)="normal"/g)?.length ?? 0;
  assert.equal(heads('checkpoint'), 2);
  for (const id of ['csv', 'read', 'task', 'jdbc', 'monitoring']) assert.equal(heads(id), 1, id);
});

test('the checker is not vacuous: overlapping text, text on an edge and text across a cluster border are found', () => {
  const text = (t: string, x: number, y: number, owner = 'a') => ({
    text: t,
    size: 10,
    bold: false,
    italic: false,
    owner,
    ownerKind: 'node' as const,
    x,
    y,
    width: 40,
    height: 11,
  });
  const geo: Geometry = {
    width: 300,
    height: 200,
    nodes: [
      { name: 'a', x: 0, y: 0, width: 100, height: 50 },
      { name: 'b', x: 150, y: 0, width: 100, height: 50 },
    ],
    clusters: [{ name: 'cluster_x', x: 140, y: 100, width: 100, height: 90, visible: true, nodes: [] }],
    edges: [
      {
        id: 'e',
        tail: 'a',
        head: 'b',
        points: [
          { x: 10, y: 30 },
          { x: 290, y: 30 },
        ],
        arrows: [],
        visible: true,
      },
    ],
    texts: [text('one', 10, 5), text('two', 20, 8), text('on the edge', 160, 25, 'b'), text('border', 120, 120, ''), text('tiny', 10, 60, '')],
  };
  geo.texts[4]!.size = 7;
  const problems = checkTextPlacement(geo).join('\n');
  assert.match(problems, /"one" \(a\) overlaps text "two" \(a\)/);
  assert.match(problems, /"on the edge" \(b\) is crossed by edge e/);
  assert.match(problems, /"border" .* straddles the border of cluster_x/);
  assert.match(problems, /"tiny" .* is 7 pt, below the 9 pt minimum/);
});

test('PNG pHYs chunk: 300 DPI is 11811 px/m, inserted after IHDR with a valid CRC', () => {
  assert.equal(pixelsPerMetre(300), 11811);
  assert.equal(crc32(Buffer.from('IEND')), 0xae426082);
  // A 1x1 RGBA PNG: signature, IHDR, IDAT, IEND.
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.from([0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0]);
  const tiny = Buffer.concat([
    Buffer.from('89504e470d0a1a0a', 'hex'),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(Buffer.from([0, 255, 255, 255, 255]))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
  const out = withPhys(withPhys(tiny, 300), 300);
  assert.deepEqual(
    readChunks(out).map((c) => c.type),
    ['IHDR', 'pHYs', 'IDAT', 'IEND'],
    'exactly one pHYs, before the image data',
  );
  assert.deepEqual(pngInfo(out), { width: 1, height: 1, ppmX: 11811, ppmY: 11811, unit: 1 });
  let off = 8;
  while (off < out.length) {
    const len = out.readUInt32BE(off);
    assert.equal(out.readUInt32BE(off + 8 + len), crc32(out.subarray(off + 4, off + 8 + len)), `CRC of chunk at ${off}`);
    off += 12 + len;
  }
});

test('use cases: the spec three, numbered, facts from the configuration', () => {
  const ucs = buildUseCases(inputs());
  assert.deepEqual(
    ucs.map((u) => u.title),
    ['Use case 1: Normal operation', 'Use case 2: Fault recovery', 'Use case 3: Duplicate handling'],
  );
  assert.match(ucs[0]!.steps[0]!.text, /Writes 10 events/);
  assert.match(ucs[0]!.steps[2]!.text, /every 10 s/);
  assert.ok(
    ucs[1]!.steps.some((s) => s.failure),
    'the crash is marked',
  );
  assert.match(useCaseDot(ucs[2]!), /duplicate_event_id/);
  assert.match(useCaseDot(ucs[1]!), /step3 -> step4/);
});

test('use cases: events per file and the Spark trigger are what Compose runs, as in the architecture diagram', () => {
  const compose = parseCompose(
    COMPOSE_TEXT.replace('${GENERATOR_EVENTS_PER_FILE:-10}', '${GENERATOR_EVENTS_PER_FILE:-25}').replace('${SPARK_TRIGGER:-10s}', '${SPARK_TRIGGER:-30s}'),
  );
  const [normal] = buildUseCases(inputs({ compose }));
  assert.match(normal!.steps[0]!.text, /Writes 25 events/);
  assert.match(normal!.steps[2]!.text, /Spark: every 30 s/);
  const once = buildUseCases(inputs({ compose: composeWith('${SPARK_TRIGGER:-10s}', 'once') }));
  assert.match(once[0]!.steps[2]!.text, /Spark: once;/);
});

test('the real project files load (the inputs of `ecomstream diagram`)', () => {
  const real = loadInputs(ROOT);
  assert.equal(real.compose.services.length >= 5, true);
  assert.ok(['fallback', 'generator.Dockerfile'].includes(real.generatorImage.source));
});
