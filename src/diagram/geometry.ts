/**
 * Graphviz's JSON layout (`-Tjson`) read into plain geometry: boxes of nodes and clusters, edge
 * polylines, and one box per line of text. The draw.io export and the overlap checks both use it, so
 * they see exactly the positions the SVG and PNG were drawn from.
 *
 * Coordinates are Graphviz points with the origin at the top left of the drawing (Graphviz's own
 * y axis points up; it is flipped here once so nothing downstream has to think about it).
 */

export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface Point {
  x: number;
  y: number;
}

export interface TextBox extends Box {
  text: string;
  /** Font size in points. */
  size: number;
  bold: boolean;
  italic: boolean;
  /** The node, cluster or graph (`""`) whose label this text belongs to. */
  owner: string;
  ownerKind: 'node' | 'cluster' | 'graph';
}

export interface NodeGeom extends Box {
  name: string;
}

export interface ClusterGeom extends Box {
  name: string;
  /** Clusters drawn with `style=invis` only steer the layout. */
  visible: boolean;
  nodes: string[];
}

export interface EdgeGeom {
  /** The Graphviz `id` attribute, e.g. `edge_csv_in`. */
  id: string;
  tail: string;
  head: string;
  /** The routed line, vertex by vertex (ortho routes are straight segments). */
  points: Point[];
  /** Arrow-head polygons at either end. */
  arrows: Point[][];
  visible: boolean;
}

export interface Geometry {
  width: number;
  height: number;
  nodes: NodeGeom[];
  clusters: ClusterGeom[];
  edges: EdgeGeom[];
  texts: TextBox[];
}

/** Arimo's (and Helvetica's) ascent and descent, as fractions of the font size. */
const ASCENT = 0.905;
const DESCENT = 0.212;

type Op =
  | { op: 'F'; size: number; face: string }
  | { op: 't'; fontchar: number }
  | { op: 'T'; pt: [number, number]; align: 'l' | 'c' | 'r'; width: number; text: string }
  | { op: 'b' | 'B' | 'P' | 'p' | 'L'; points: [number, number][] }
  | { op: string };

interface GvObject {
  _gvid: number;
  name: string;
  bb?: string;
  pos?: string;
  width?: string;
  height?: string;
  style?: string;
  nodes?: number[];
  _draw_?: Op[];
  _ldraw_?: Op[];
}

interface GvEdge {
  _gvid: number;
  tail: number;
  head: number;
  id?: string;
  style?: string;
  _draw_?: Op[];
  _hdraw_?: Op[];
  _tdraw_?: Op[];
}

interface GvGraph {
  bb: string;
  _ldraw_?: Op[];
  objects?: GvObject[];
  edges?: GvEdge[];
}

function nums(s: string): number[] {
  return s.split(',').map(Number);
}

/** Graphviz's point (y up, from the bottom of the drawing) as one of ours (y down, from the top). */
type Flip = (x: number, y: number) => Point;

/** Read Graphviz `-Tjson` output. */
export function readGeometry(json: string): Geometry {
  const g = JSON.parse(json) as GvGraph;
  const [, , bbW, bbH] = nums(g.bb) as [number, number, number, number];
  const flip: Flip = (x, y) => ({ x, y: bbH - y });
  const texts: TextBox[] = readTexts(g._ldraw_, '', 'graph', flip);
  const { nodes, clusters, byGvid } = readObjects(g.objects ?? [], flip, texts);
  const edges = (g.edges ?? []).map((e) => readEdge(e, byGvid, flip));
  return { width: bbW, height: bbH, nodes, clusters, edges, texts };
}

/** One box per line of text that `ops` draws, in the font size and face last set before it. */
function readTexts(ops: Op[] | undefined, owner: string, ownerKind: TextBox['ownerKind'], flip: Flip): TextBox[] {
  const texts: TextBox[] = [];
  let size = 14;
  let fontchar = 0;
  for (const op of ops ?? []) {
    if (op.op === 'F') size = (op as { size: number }).size;
    else if (op.op === 't') fontchar = (op as { fontchar: number }).fontchar;
    else if (op.op === 'T') {
      const t = op as Extract<Op, { op: 'T' }>;
      const left = t.align === 'l' ? t.pt[0] : t.align === 'r' ? t.pt[0] - t.width : t.pt[0] - t.width / 2;
      const base = flip(left, t.pt[1]);
      texts.push({
        text: t.text,
        size,
        bold: (fontchar & 1) !== 0,
        italic: (fontchar & 2) !== 0,
        owner,
        ownerKind,
        x: left,
        y: base.y - ASCENT * size,
        width: t.width,
        height: (ASCENT + DESCENT) * size,
      });
    }
  }
  return texts;
}

/** Nodes and clusters, in Graphviz's order; their label texts are appended to `texts`. */
function readObjects(objects: GvObject[], flip: Flip, texts: TextBox[]): { nodes: NodeGeom[]; clusters: ClusterGeom[]; byGvid: Map<number, string> } {
  const byGvid = new Map<number, string>();
  const nodes: NodeGeom[] = [];
  const clusters: ClusterGeom[] = [];
  for (const o of objects) {
    byGvid.set(o._gvid, o.name);
    if (o.bb && o.name.startsWith('cluster')) {
      const [x1, y1, x2, y2] = nums(o.bb) as [number, number, number, number];
      const tl = flip(x1, y2);
      clusters.push({ name: o.name, x: tl.x, y: tl.y, width: x2 - x1, height: y2 - y1, visible: o._draw_ !== undefined, nodes: [] });
      texts.push(...readTexts(o._ldraw_, o.name, 'cluster', flip));
    } else if (o.pos) {
      const [cx, cy] = nums(o.pos) as [number, number];
      const w = Number(o.width) * 72;
      const h = Number(o.height) * 72;
      const c = flip(cx, cy);
      nodes.push({ name: o.name, x: c.x - w / 2, y: c.y - h / 2, width: w, height: h });
      texts.push(...readTexts(o._ldraw_, o.name, 'node', flip));
    }
  }
  for (const o of objects) {
    const cl = clusters.find((c) => c.name === o.name);
    if (cl) cl.nodes = (o.nodes ?? []).map((id) => byGvid.get(id) ?? String(id));
  }
  return { nodes, clusters, byGvid };
}

function readEdge(e: GvEdge, byGvid: Map<number, string>, flip: Flip): EdgeGeom {
  const line = (e._draw_ ?? []).find((op) => op.op === 'b' || op.op === 'B') as { points: [number, number][] } | undefined;
  const pts = line?.points ?? [];
  // A Bezier list is p0 c c p1 c c p2 ...; ortho routes put the controls on the segments, so the
  // on-curve points are the polyline.
  const points = pts.filter((_, i) => i % 3 === 0).map(([x, y]) => flip(x, y));
  const arrows = [...(e._hdraw_ ?? []), ...(e._tdraw_ ?? [])]
    .filter((op) => op.op === 'P' || op.op === 'p')
    .map((op) => (op as { points: [number, number][] }).points.map(([x, y]) => flip(x, y)));
  return {
    id: e.id ?? `edge${e._gvid}`,
    tail: byGvid.get(e.tail) ?? String(e.tail),
    head: byGvid.get(e.head) ?? String(e.head),
    points,
    arrows,
    visible: !(e.style ?? '').includes('invis'),
  };
}

// ---------------------------------------------------------------------------------------------------
// Small geometry helpers for the checks and the draw.io export.

export function overlaps(a: Box, b: Box, tolerance = 0): boolean {
  return a.x + tolerance < b.x + b.width && b.x + tolerance < a.x + a.width && a.y + tolerance < b.y + b.height && b.y + tolerance < a.y + a.height;
}

export function contains(outer: Box, inner: Box, tolerance = 0): boolean {
  return (
    inner.x >= outer.x - tolerance &&
    inner.y >= outer.y - tolerance &&
    inner.x + inner.width <= outer.x + outer.width + tolerance &&
    inner.y + inner.height <= outer.y + outer.height + tolerance
  );
}

/** Does segment p-q pass through the interior of `box` (shrunk by `inset`)? */
export function segmentHitsBox(p: Point, q: Point, box: Box, inset = 0): boolean {
  const b = { x: box.x + inset, y: box.y + inset, width: box.width - 2 * inset, height: box.height - 2 * inset };
  if (b.width <= 0 || b.height <= 0) return false;
  // Liang-Barsky clipping: the segment hits the box when a non-empty part of it survives.
  let t0 = 0;
  let t1 = 1;
  const dx = q.x - p.x;
  const dy = q.y - p.y;
  const checks: [number, number][] = [
    [-dx, p.x - b.x],
    [dx, b.x + b.width - p.x],
    [-dy, p.y - b.y],
    [dy, b.y + b.height - p.y],
  ];
  for (const [pp, qq] of checks) {
    if (pp === 0) {
      if (qq < 0) return false;
    } else {
      const r = qq / pp;
      if (pp < 0) t0 = Math.max(t0, r);
      else t1 = Math.min(t1, r);
      if (t0 > t1) return false;
    }
  }
  return t1 - t0 > 1e-9;
}

/** Distance from a point to a box (0 inside or on it). */
export function distanceToBox(p: Point, b: Box): number {
  const dx = Math.max(b.x - p.x, 0, p.x - (b.x + b.width));
  const dy = Math.max(b.y - p.y, 0, p.y - (b.y + b.height));
  return Math.hypot(dx, dy);
}
