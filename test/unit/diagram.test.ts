/**
 * The spec's validation checklist, automated on the rendered diagrams: one layout of the real project
 * (Graphviz JSON for positions and text boxes, the PNG, the draw.io file), and the committed files in
 * docs/diagrams/ compared byte for byte with a fresh regeneration.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateDiagrams, staleDiagrams, BASE_NAME, DEFAULT_OUT_DIR, type DiagramSet } from '../../src/diagram/index.js';
import { labelNodeId } from '../../src/diagram/dot.js';
import { contains, type TextBox } from '../../src/diagram/geometry.js';
import { pngInfo } from '../../src/diagram/png.js';
import { MIN_PRINT_SCALE, PAGE } from '../../src/diagram/style.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const OUT = path.join(ROOT, DEFAULT_OUT_DIR);
let set: DiagramSet;

before(async () => {
  set = await generateDiagrams({ root: ROOT });
});

const file = (name: string): string | Buffer => {
  const f = set.files.find((x) => x.name === name);
  assert.ok(f, `${name} is generated`);
  return f.data;
};
const textsOf = (owner: string): TextBox[] => set.geometry.texts.filter((t) => t.owner === owner);
const textOf = (owner: string): string =>
  textsOf(owner)
    .map((t) => t.text)
    .join('\n');
const nodeBox = (name: string) => {
  const n = set.geometry.nodes.find((x) => x.name === name);
  assert.ok(n, `node ${name} is in the layout`);
  return n;
};
const clusterBox = (name: string) => {
  const c = set.geometry.clusters.find((x) => x.name === name);
  assert.ok(c, `cluster ${name} is in the layout`);
  return c;
};

test('the committed diagrams in docs/diagrams/ equal a fresh regeneration, byte for byte (run `npm run diagram`)', () => {
  assert.deepEqual(
    staleDiagrams(OUT, set.files).map((f) => path.relative(ROOT, f)),
    [],
    'stale or missing: regenerate with `npm run diagram` and commit docs/diagrams/',
  );
});

test('files: PNG, DOT, draw.io and SVG of the architecture, and the three use cases, all in docs/diagrams/', () => {
  for (const ext of ['png', 'dot', 'drawio', 'svg']) assert.ok(fs.existsSync(path.join(OUT, `${BASE_NAME}.${ext}`)), `${BASE_NAME}.${ext}`);
  for (const uc of ['use_case_1_normal_operation', 'use_case_2_fault_recovery', 'use_case_3_duplicate_handling']) {
    assert.ok(fs.existsSync(path.join(OUT, `${uc}.svg`)), `${uc}.svg`);
  }
});

test('PNG: A4 landscape at 300 DPI (3508 x 2480, pHYs 11811 px/m), drawing inside the 0.5 in margins', () => {
  const info = pngInfo(file(`${BASE_NAME}.png`) as Buffer);
  assert.deepEqual(info, { width: 3508, height: 2480, ppmX: 11811, ppmY: 11811, unit: 1 });
  const margin = PAGE.marginInches * PAGE.dpi;
  const p = set.placement;
  const drawing = { x: p.x, y: p.y, width: set.geometry.width * p.scale, height: set.geometry.height * p.scale };
  assert.ok(contains({ x: margin, y: margin, width: PAGE.widthPx - 2 * margin, height: PAGE.heightPx - 2 * margin }, drawing, 0.01));
  assert.ok(Math.abs(p.x - margin) < 0.01 || Math.abs(p.y - margin) < 0.01, 'as large as the margins allow');
});

test('checklist, components: each visible and labelled, with its path, ports and resources', () => {
  assert.match(textOf('generator'), /^Data Generator$/m);
  assert.match(textOf('generator'), /Node\.js\/TypeScript Container/);
  assert.match(textOf('volume'), /^Shared Volume\n\.\/data\/input$/m);
  assert.match(textOf('master'), /^Spark Master$/m);
  for (const port of [':8080 (Web UI)', ':7077 (Cluster)', ':4040']) assert.ok(textOf('master').includes(port), port);
  assert.match(textOf('worker'), /^Spark Worker$/m);
  assert.match(textOf('worker'), /:8081 \(Web UI\)/);
  assert.match(textOf('worker'), /2 cores, 2GB RAM/);
  assert.match(textOf('postgres'), /^PostgreSQL 15\n.*\n:5432$/m);
  assert.match(textOf('pgadmin'), /^pgAdmin\n.*\n:5050$/m);
  assert.match(textOf('checkpoints'), /^Checkpoint Storage\n\.\/data\/checkpoints$/m);
});

test('checklist, labels: every port of the Compose file is shown; processing steps are listed', () => {
  for (const c of set.model.components) {
    for (const p of c.ports) assert.ok(textOf(c.id).includes(`:${p.host}`), `${c.id} shows :${p.host}`);
  }
  for (const step of ['Parse CSV files', 'Transform data', 'Filter nulls', 'Validate ranges', 'COPY write to staging']) {
    assert.ok(textOf('worker').includes(`• ${step}`), step);
  }
  assert.match(textOf('worker'), /Horizontally scalable/);
  assert.match(textOf('generator'), /Can run multiple instances/);
});

test('checklist, connections: the six arrows, each through its own label, between the right boxes', () => {
  const expected: Record<string, [string, string, string]> = {
    csv: ['generator', 'volume', 'CSV Files\n(events_*.csv)'],
    read: ['volume', 'master', 'readStream\n(maxFilesPerTrigger='],
    task: ['master', 'worker', 'Task Assignment\n(micro-batch)'],
    jdbc: ['worker', 'postgres', 'JDBC Write\n(foreachBatch)\nBatch Insert'],
    checkpoint: ['worker', 'checkpoints', 'State Management\nOffset Tracking'],
    monitoring: ['postgres', 'pgadmin', 'SQL Queries\nMonitoring'],
  };
  assert.deepEqual(set.model.connections.map((c) => c.id).sort(), Object.keys(expected).sort());
  for (const [id, [from, to, label]] of Object.entries(expected)) {
    const l = labelNodeId({ id } as never);
    assert.ok(textOf(l).startsWith(label), `${id} label: ${textOf(l)}`);
    const pieces = set.geometry.edges.filter((e) => e.id.startsWith(`edge_${id}_`));
    assert.equal(pieces.length, 2, `${id} has two edge pieces`);
    const ends = new Set(pieces.flatMap((e) => [e.tail, e.head]));
    assert.deepEqual([...ends].sort(), [from, to, l].sort(), `${id} joins ${from} and ${to} through its label`);
    const arrows = pieces.reduce((n, e) => n + e.arrows.length, 0);
    assert.equal(arrows, id === 'checkpoint' ? 2 : 1, `${id} arrow heads`);
  }
});

test('checklist, visual: Docker boundary around every component, Spark cluster grouped (master above worker), spec layout', () => {
  const docker = clusterBox('cluster_docker');
  const spark = clusterBox('cluster_spark');
  const storage = clusterBox('cluster_storage');
  assert.ok(docker.visible && spark.visible && storage.visible);
  for (const c of set.model.components) assert.ok(contains(docker, nodeBox(c.id)), `${c.id} inside the Docker network`);
  assert.ok(contains(spark, nodeBox('master')) && contains(spark, nodeBox('worker')));
  assert.ok(contains(storage, nodeBox('postgres')) && contains(storage, nodeBox('pgadmin')));
  for (const id of ['generator', 'volume', 'checkpoints']) assert.ok(!contains(spark, nodeBox(id)) && !contains(storage, nodeBox(id)));
  assert.match(textOf('cluster_docker'), /^Docker Environment \(spark_network/);
  assert.equal(textOf('cluster_spark'), 'Spark Cluster');
  assert.equal(textOf('cluster_storage'), 'Data Storage & Management');

  const cx = (id: string) => nodeBox(id).x + nodeBox(id).width / 2;
  const cy = (id: string) => nodeBox(id).y + nodeBox(id).height / 2;
  assert.ok(cx('generator') < cx('volume') && cx('volume') < cx('master') && cx('master') < cx('postgres'), 'left to right');
  assert.ok(cy('master') < cy('worker'), 'master above worker');
  assert.ok(nodeBox('checkpoints').y > spark.y + spark.height, 'checkpoints below the Spark cluster');
  assert.ok(Math.abs(cx('checkpoints') - cx('worker')) < 1, 'checkpoints under the worker (bottom centre)');
  assert.ok(cy('pgadmin') > cy('postgres'), 'pgAdmin below PostgreSQL (bottom right)');
  // Legends and the recovery note fill the Docker boundary's lower left (under the generator and the
  // volume) and lower right (under the storage cluster) instead of taking a row of the page.
  for (const [legend, under] of [
    ['legend_metrics', 'generator'],
    ['legend_local', 'legend_metrics'],
    ['note_recovery', 'volume'],
    ['legend_security', 'note_recovery'],
    ['legend_stack', 'cluster_storage'],
  ] as const) {
    const box = nodeBox(legend);
    const above = under.startsWith('cluster_') ? clusterBox(under) : nodeBox(under);
    assert.ok(contains(docker, box), `${legend} inside the Docker boundary`);
    assert.ok(box.y > above.y + above.height, `${legend} below ${under}`);
  }
  assert.ok(nodeBox('legend_metrics').x + nodeBox('legend_metrics').width < nodeBox('master').x, 'the legends keep clear of the Spark column');
});

test('checklist, visual: no overlapping text, every edge label next to its edge, nothing off the canvas', () => {
  assert.deepEqual(set.problems, []);
});

test('text sizes: title 16 pt bold, component labels 12 pt regular, annotations 10 pt, ports 9 pt italic, nothing smaller', () => {
  const title = set.geometry.texts.find((t) => t.ownerKind === 'graph' && t.text === set.model.title);
  assert.ok(title?.size === 16 && title.bold);
  for (const c of set.model.components) {
    const name = textsOf(c.id).find((t) => t.text === c.name);
    assert.ok(name?.size === 12 && !name.bold && !name.italic, `${c.id} label`);
  }
  const port = textsOf('master').find((t) => t.text.startsWith(':8080'));
  assert.ok(port?.size === 9 && port.italic);
  const bullet = textsOf('master').find((t) => t.text === '• Coordinates cluster');
  assert.equal(bullet?.size, 10);
  assert.equal(set.smallestText.drawingPt, 9);
});

test('A4 print scale: the page shows the drawing at 0.8 of its size or more, so 9 pt ports print at 7.2 pt or more', () => {
  // More content, or more air, that shrinks the drawing on the page fails here (and in `npm run diagram`).
  assert.ok(set.printScale >= MIN_PRINT_SCALE, `print scale ${set.printScale.toFixed(3)}`);
  assert.equal(MIN_PRINT_SCALE, 0.8);
  assert.ok(set.smallestText.printedPt >= 7.2, `smallest printed text ${set.smallestText.printedPt.toFixed(2)} pt`);
  const title = set.geometry.texts.find((t) => t.ownerKind === 'graph' && t.text === set.model.title)!;
  assert.ok(title.size * set.printScale >= 12.8, 'the 16 pt title prints at 12.8 pt or more');
  // The scale is what the PNG really shows: the drawing's width or height fills the page inside the margins.
  const margin = PAGE.marginInches * PAGE.dpi;
  const fill = Math.max(
    (set.geometry.width * set.placement.scale) / (PAGE.widthPx - 2 * margin),
    (set.geometry.height * set.placement.scale) / (PAGE.heightPx - 2 * margin),
  );
  assert.ok(Math.abs(fill - 1) < 1e-3, `the drawing fills ${fill} of the page`);
  assert.ok(Math.abs(set.printScale - (set.placement.scale * 72) / PAGE.dpi) < 1e-12);
});

test('SVG: Arimo first, then Helvetica and Arial; every component and label present', () => {
  const svg = file(`${BASE_NAME}.svg`) as string;
  assert.doesNotMatch(svg, /font-family="Helvetica,sans-Serif"/);
  assert.match(svg, /font-family="Arimo,Helvetica,Arial,sans-serif"/);
  for (const t of [
    'Data Generator',
    'Shared Volume',
    'Spark Master',
    'Spark Worker',
    'PostgreSQL 15',
    'pgAdmin',
    'Checkpoint Storage',
    'Performance Metrics',
    'Technology Stack',
    'Note: Development configuration',
  ]) {
    assert.ok(svg.includes(`>${t}</text>`), t);
  }
});

test('draw.io: an uncompressed mxfile with clusters as containers, positions from the layout, styled edges', () => {
  const xml = file(`${BASE_NAME}.drawio`) as string;
  assert.match(xml, /^<mxfile [^>]*>\s*<diagram [^>]*>\s*<mxGraphModel /, 'uncompressed: the model is XML, not base64');
  const cell = (id: string): string => {
    const m = new RegExp(`<mxCell id="${id}"[^>]*>(?:<mxGeometry[^>]*/>|<mxGeometry[^>]*>.*?</mxGeometry>)`).exec(xml);
    assert.ok(m, `cell ${id}`);
    return m[0];
  };
  const attr = (c: string, name: string) => new RegExp(`\\b${name}="([^"]*)"`).exec(c)?.[1];
  for (const id of ['cluster_docker', 'cluster_spark', 'cluster_storage']) assert.match(attr(cell(id), 'style')!, /container=1/);
  assert.equal(attr(cell('cluster_spark'), 'parent'), 'cluster_docker');
  assert.equal(attr(cell('cluster_storage'), 'parent'), 'cluster_docker');
  assert.match(attr(cell('cluster_docker'), 'style')!, /dashed=1;.*/);
  for (const id of ['master', 'worker']) assert.equal(attr(cell(id), 'parent'), 'cluster_spark', id);
  for (const id of ['postgres', 'pgadmin']) assert.equal(attr(cell(id), 'parent'), 'cluster_storage', id);
  for (const id of ['generator', 'volume', 'checkpoints']) assert.equal(attr(cell(id), 'parent'), 'cluster_docker', id);
  // Children are placed relative to their container, at Graphviz's positions.
  const spark = clusterBox('cluster_spark');
  const master = nodeBox('master');
  assert.equal(Number(attr(cell('master'), 'x')), Math.round((master.x - spark.x) * 100) / 100);
  assert.equal(Number(attr(cell('master'), 'width')), Math.round(master.width * 100) / 100);

  const edge = (id: string) => {
    const c = cell(id);
    assert.match(c, /edge="1"/);
    return { style: attr(c, 'style')!, source: attr(c, 'source'), target: attr(c, 'target'), value: attr(c, 'value') };
  };
  const ck = edge('checkpoint');
  assert.deepEqual([ck.source, ck.target], ['worker', 'checkpoints']);
  assert.match(ck.style, /endArrow=block;/);
  assert.match(ck.style, /startArrow=block;/);
  assert.match(ck.style, /strokeColor=#616161;strokeWidth=1;dashed=1;/);
  assert.match(edge('monitoring').style, /startArrow=none;.*strokeColor=#7B1FA2;strokeWidth=1;dashed=1;/);
  assert.match(edge('jdbc').style, /strokeColor=#388E3C;strokeWidth=3;dashed=0;/);
  assert.match(edge('csv').style, /strokeColor=#1976D2;strokeWidth=2;dashed=0;/);
  assert.equal(edge('jdbc').value, 'JDBC Write&lt;br&gt;(foreachBatch)&lt;br&gt;Batch Insert');
  assert.deepEqual([edge('task').source, edge('task').target], ['master', 'worker']);
  // Annotations and legends are text cells the user can edit.
  assert.match(cell('recovery'), /Recovery after a crash/);
  assert.match(cell('metrics'), /Performance Metrics/);
});
