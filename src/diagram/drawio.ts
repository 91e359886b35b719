/**
 * Architecture model + Graphviz layout -> an editable draw.io file (uncompressed `mxfile`).
 *
 * Positions are Graphviz's (1 pt = 1 draw.io unit), so the file opens looking like the PNG. Clusters
 * become containers that hold their children (moving "Spark Cluster" moves master and worker), every
 * text is an ordinary HTML label the user can edit, and each connection is one edge from its source to
 * its target with the routed waypoints, its colour, dash, width and arrow heads, and its label where
 * Graphviz put the label node.
 */
import { LEGEND_COLUMN_GAP, annotationNodeId, edgeIds, labelNodeId, legendNodeId } from './dot.js';
import type { Box, Geometry, NodeGeom, Point } from './geometry.js';
import type { ArchitectureModel, ClusterId, Connection, Legend, Line } from './model.js';
import { FONT, LEGEND, MUTED_TEXT, NOTE, SCALE_TEXT, legendTitleSize } from './style.js';

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/\n/g, '&#10;');
}

function htmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const r2 = (n: number): number => Math.round(n * 100) / 100;

function style(parts: Record<string, string | number>): string {
  return `${Object.entries(parts)
    .map(([k, v]) => `${k}=${v}`)
    .join(';')};`;
}

/** One line of a label as draw.io HTML, styled like its DOT counterpart. */
function lineHtml(l: Line): string {
  const t = htmlEscape(l.text);
  const align = `text-align:${l.align === 'left' ? 'left' : 'center'}`;
  switch (l.kind) {
    case 'title':
      return `<div style="${align};font-size:${FONT.title}px"><b>${t}</b></div>`;
    case 'name':
      return `<div style="${align};font-size:${FONT.label}px">${t}</div>`;
    case 'port':
      return `<div style="${align};font-size:${FONT.port}px"><i>${t}</i></div>`;
    case 'muted':
      return `<div style="${align};font-size:${FONT.port}px;color:${MUTED_TEXT}">${t}</div>`;
    case 'scale':
      return `<div style="${align};font-size:${FONT.annotation}px;color:${SCALE_TEXT}"><b>${t}</b></div>`;
    case 'note':
      return `<div style="${align};font-size:${FONT.annotation}px">${t}</div>`;
  }
}

function legendHtml(l: Legend): string {
  const sourced = l.rows.some((r) => r.source !== undefined);
  const cols = sourced ? 3 : 2;
  const muted = `font-size:${FONT.port}px;color:${MUTED_TEXT}`;
  // Room between columns, as the DOT's spacer cells give (dot.ts LEGEND_COLUMN_GAP).
  const gap = `padding:0 ${LEGEND_COLUMN_GAP}px 0 0`;
  const rows = l.rows
    .map((r) =>
      r.heading
        ? `<tr><td colspan="${cols}" style="${muted}"><b>${htmlEscape(r.key)}</b></td></tr>`
        : `<tr><td style="${gap}">${htmlEscape(r.key)}</td><td style="${gap}">${htmlEscape(r.value)}</td>${sourced ? `<td style="${muted}">${htmlEscape(r.source ?? '')}</td>` : ''}</tr>`,
    )
    .join('');
  const titleSize = legendTitleSize(l.id);
  return (
    `<div style="font-size:${titleSize}px"><b>${htmlEscape(l.title)}</b></div><hr>` +
    (rows ? `<table style="font-size:${FONT.annotation}px;border-collapse:collapse">${rows}</table>` : '') +
    l.lines.map(lineHtml).join('')
  );
}

/** Point where the last segment (prev -> p), continued, meets the border of `box`. */
function snapToBorder(p: Point, prev: Point, box: Box): Point {
  if (Math.abs(p.x - prev.x) < 0.01) return { x: p.x, y: p.y > prev.y ? box.y : box.y + box.height };
  if (Math.abs(p.y - prev.y) < 0.01) return { x: p.x > prev.x ? box.x : box.x + box.width, y: p.y };
  return p;
}

/** The point halfway along a polyline, by length: where draw.io puts an edge label at x=0. */
function midpoint(points: Point[]): Point {
  const seg = points.slice(1).map((q, i) => Math.hypot(q.x - points[i]!.x, q.y - points[i]!.y));
  let half = seg.reduce((a, b) => a + b, 0) / 2;
  for (let i = 0; i < seg.length; i++) {
    const len = seg[i]!;
    if (half <= len && len > 0) {
      const a = points[i]!;
      const b = points[i + 1]!;
      return { x: a.x + ((b.x - a.x) * half) / len, y: a.y + ((b.y - a.y) * half) / len };
    }
    half -= len;
  }
  return points[points.length - 1]!;
}

export function toDrawio(model: ArchitectureModel, geo: Geometry): string {
  const sheet = new Sheet(geo);
  addTitle(sheet, model);
  addClusters(sheet, model);
  addComponents(sheet, model);
  addAnnotations(sheet, model);
  addLegends(sheet, model);
  for (const c of model.connections) sheet.cells.push(edgeCell(c, geo, sheet.node, model));
  return mxfile(geo, sheet.cells);
}

/** The cells of the page, each vertex placed relative to the container that holds it. */
class Sheet {
  readonly cells: string[] = ['<mxCell id="0"/>', '<mxCell id="1" parent="0"/>'];
  /** Absolute top-left of each container, to make its children's geometry relative. */
  private readonly origin = new Map<string, Point>();

  constructor(readonly geo: Geometry) {}

  readonly node = (name: string): NodeGeom => {
    const n = this.geo.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`the layout has no node "${name}"`);
    return n;
  };

  clusterBox(id: ClusterId): Box {
    const c = this.geo.clusters.find((x) => x.name === `cluster_${id}`);
    if (!c) throw new Error(`the layout has no cluster "${id}"`);
    return c;
  }

  vertex(id: string, value: string, st: string, box: Box, parent = '1'): void {
    const o = this.origin.get(parent) ?? { x: 0, y: 0 };
    this.cells.push(
      `<mxCell id="${id}" value="${xmlEscape(value)}" style="${xmlEscape(st)}" vertex="1" parent="${parent}">` +
        `<mxGeometry x="${r2(box.x - o.x)}" y="${r2(box.y - o.y)}" width="${r2(box.width)}" height="${r2(box.height)}" as="geometry"/></mxCell>`,
    );
  }

  /** A vertex that holds others: their geometry is relative to its top-left. */
  container(id: string, value: string, st: string, box: Box, parent: string): void {
    this.vertex(id, value, st, box, parent);
    this.origin.set(id, { x: box.x, y: box.y });
  }
}

/** The start of a rounded box's style: components and legends share it. */
const ROUNDED_BOX = { rounded: 1, absoluteArcSize: 1, arcSize: 14, whiteSpace: 'nowrap', html: 1 } as const;

/** Title: the box around the graph label's text. */
function addTitle(sheet: Sheet, model: ArchitectureModel): void {
  const titleTexts = sheet.geo.texts.filter((t) => t.ownerKind === 'graph');
  if (titleTexts.length === 0) return;
  const x1 = Math.min(...titleTexts.map((t) => t.x));
  const y1 = Math.min(...titleTexts.map((t) => t.y));
  const x2 = Math.max(...titleTexts.map((t) => t.x + t.width));
  const y2 = Math.max(...titleTexts.map((t) => t.y + t.height));
  const value = lineHtml({ text: model.title, kind: 'title', align: 'center' }) + lineHtml({ text: model.subtitle, kind: 'muted', align: 'center' });
  const st = style({
    text: '',
    html: 1,
    strokeColor: 'none',
    fillColor: 'none',
    align: 'center',
    verticalAlign: 'middle',
    whiteSpace: 'nowrap',
    fontFamily: FONT.family,
  });
  sheet.vertex('title', value, st, { x: x1 - 4, y: y1 - 2, width: x2 - x1 + 8, height: y2 - y1 + 4 });
}

/** Clusters, parents before children, as containers. */
function addClusters(sheet: Sheet, model: ArchitectureModel): void {
  const ordered = [...model.clusters].sort((a, b) => depth(model, a.id) - depth(model, b.id));
  for (const c of ordered) {
    const st = style({
      rounded: 0,
      whiteSpace: 'wrap',
      html: 1,
      container: 1,
      collapsible: 0,
      recursiveResize: 0,
      fillColor: c.palette.fill,
      strokeColor: c.palette.stroke,
      fontColor: c.palette.text,
      strokeWidth: c.dashed ? 2 : 1.5,
      dashed: c.dashed ? 1 : 0,
      verticalAlign: 'top',
      align: 'left',
      spacingLeft: 8,
      spacingTop: 2,
      fontFamily: FONT.family,
    });
    const label = `<div style="font-size:${FONT.label}px">${htmlEscape(c.label)}</div>`;
    sheet.container(`cluster_${c.id}`, label, st, sheet.clusterBox(c.id), c.parent ? `cluster_${c.parent}` : '1');
  }
}

/** Boxes keep Graphviz's line breaks (`nowrap`): draw.io must not re-wrap text that Graphviz measured. */
function addComponents(sheet: Sheet, model: ArchitectureModel): void {
  for (const comp of model.components) {
    const value = [lineHtml({ text: comp.name, kind: 'name', align: 'center' }), ...comp.lines.map(lineHtml)].join('');
    const st = style({
      ...ROUNDED_BOX,
      fillColor: comp.palette.fill,
      strokeColor: comp.palette.stroke,
      fontColor: comp.palette.text,
      strokeWidth: 2,
      verticalAlign: 'middle',
      spacingLeft: 6,
      spacingRight: 6,
      fontFamily: FONT.family,
      fontSize: FONT.label,
    });
    sheet.vertex(comp.id, value, st, sheet.node(comp.id), `cluster_${comp.cluster}`);
  }
}

/** Each note, with a dotted leader to the label of the connection it explains. */
function addAnnotations(sheet: Sheet, model: ArchitectureModel): void {
  for (const a of model.annotations) {
    const box = sheet.node(annotationNodeId(a));
    const st = style({
      shape: 'note',
      size: 10,
      whiteSpace: 'nowrap',
      html: 1,
      fillColor: NOTE.fill,
      strokeColor: NOTE.stroke,
      fontColor: NOTE.text,
      align: 'left',
      spacingLeft: 8,
      fontFamily: FONT.family,
    });
    sheet.vertex(a.id, a.lines.map(lineHtml).join(''), st, box, 'cluster_docker');
    const label = sheet.node(labelNodeId(model.connections.find((c) => c.id === a.connection)!));
    const from: Point = { x: box.x + box.width, y: box.y + box.height / 2 };
    const to: Point = { x: label.x, y: label.y + label.height / 2 };
    const leader = style({ endArrow: 'none', html: 1, dashed: 1, dashPattern: '1 3', strokeColor: NOTE.stroke, exitX: 1, exitY: 0.5, exitDx: 0, exitDy: 0 });
    sheet.cells.push(
      `<mxCell id="${a.id}_leader" style="${xmlEscape(leader)}" edge="1" parent="1" source="${a.id}">` +
        `<mxGeometry relative="1" as="geometry"><mxPoint x="${r2(from.x)}" y="${r2(from.y)}" as="sourcePoint"/><mxPoint x="${r2(to.x)}" y="${r2(to.y)}" as="targetPoint"/></mxGeometry></mxCell>`,
    );
  }
}

function addLegends(sheet: Sheet, model: ArchitectureModel): void {
  for (const l of model.legends) {
    const st = style({
      ...ROUNDED_BOX,
      fillColor: l.id === 'security' ? NOTE.fill : LEGEND.fill,
      strokeColor: l.id === 'security' ? NOTE.stroke : LEGEND.stroke,
      align: 'left',
      verticalAlign: 'top',
      spacingLeft: 8,
      spacingTop: 4,
      fontFamily: FONT.family,
      fontSize: FONT.annotation,
    });
    sheet.vertex(l.id, legendHtml(l), st, sheet.node(legendNodeId(l)), 'cluster_docker');
  }
}

function mxfile(geo: Geometry, cells: string[]): string {
  const body = cells.join('\n        ');
  return (
    `<mxfile host="ecomstream" agent="ecomstream diagram" version="24.0.0" type="device">\n` +
    `  <diagram id="ecommerce_streaming_architecture" name="Architecture">\n` +
    `    <mxGraphModel dx="${Math.ceil(geo.width)}" dy="${Math.ceil(geo.height)}" grid="1" gridSize="10" guides="1" tooltips="1" connect="1" arrows="1" fold="1" page="1" pageScale="1" pageWidth="${Math.ceil(geo.width)}" pageHeight="${Math.ceil(geo.height)}" background="#ffffff" math="0" shadow="0">\n` +
    `      <root>\n        ${body}\n      </root>\n` +
    `    </mxGraphModel>\n  </diagram>\n</mxfile>\n`
  );
}

function depth(model: ArchitectureModel, id: ClusterId): number {
  const c = model.clusters.find((x) => x.id === id);
  return c?.parent ? 1 + depth(model, c.parent) : 0;
}

function edgeCell(c: Connection, geo: Geometry, node: (name: string) => NodeGeom, model: ArchitectureModel): string {
  const label = labelNodeId(c);
  const piece = (id: string, start: string): Point[] => {
    const e = geo.edges.find((x) => x.id === id);
    if (!e) throw new Error(`the layout has no edge "${id}"`);
    // Downward connections are laid out reversed (see dot.ts); draw.io gets them source to target.
    return e.tail === start ? e.points : [...e.points].reverse();
  };
  const [inId, outId] = edgeIds(c);
  const first = piece(inId, c.from);
  const second = piece(outId, label);
  const src = node(c.from);
  const dst = node(c.to);
  const start = snapToBorder(first[0]!, first[1] ?? first[0]!, src);
  const end = snapToBorder(second[second.length - 1]!, second[second.length - 2] ?? second[second.length - 1]!, dst);
  const path = [start, ...first.slice(1), ...second.slice(0, -1), end];
  // Drop repeated points (each piece repeats the vertex where two segments meet).
  const pts = path.filter((p, i) => i === 0 || Math.hypot(p.x - path[i - 1]!.x, p.y - path[i - 1]!.y) > 0.01);
  const waypoints = pts.slice(1, -1);
  const lb = node(label);
  const mid = midpoint(pts);
  const offset = { x: lb.x + lb.width / 2 - mid.x, y: lb.y + lb.height / 2 - mid.y };
  const fill = model.clusters.find((x) => x.id === c.cluster)?.palette.fill ?? '#ffffff';
  const st = style({
    html: 1,
    rounded: 0,
    endArrow: 'block',
    endFill: 1,
    startArrow: c.both ? 'block' : 'none',
    startFill: 1,
    strokeColor: c.color,
    strokeWidth: c.width,
    dashed: c.style === 'dashed' ? 1 : 0,
    fontFamily: FONT.family,
    fontSize: FONT.annotation,
    labelBackgroundColor: fill,
    exitX: r2((start.x - src.x) / src.width),
    exitY: r2((start.y - src.y) / src.height),
    exitDx: 0,
    exitDy: 0,
    entryX: r2((end.x - dst.x) / dst.width),
    entryY: r2((end.y - dst.y) / dst.height),
    entryDx: 0,
    entryDy: 0,
  });
  const points = waypoints.map((p) => `<mxPoint x="${r2(p.x)}" y="${r2(p.y)}"/>`).join('');
  return (
    `<mxCell id="${c.id}" value="${xmlEscape(c.label.map(htmlEscape).join('<br>'))}" style="${xmlEscape(st)}" edge="1" parent="1" source="${c.from}" target="${c.to}">` +
    `<mxGeometry relative="1" as="geometry">${points ? `<Array as="points">${points}</Array>` : ''}<mxPoint x="${r2(offset.x)}" y="${r2(offset.y)}" as="offset"/></mxGeometry></mxCell>`
  );
}
