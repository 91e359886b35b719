/**
 * The spec's "No overlapping text" and "All text readable", checked on the layout Graphviz actually
 * produced (not on the DOT we hoped for). Returns problems as sentences; an empty list is a pass.
 */
import { annotationNodeId, edgeIds, labelNodeId } from './dot.js';
import { contains, distanceToBox, overlaps, segmentHitsBox, type Box, type Geometry, type TextBox } from './geometry.js';
import type { ArchitectureModel } from './model.js';
import { FONT } from './style.js';

/** Half a point: Graphviz rounds positions to 1/100 pt, and anti-aliasing alone needs no more room. */
const EPS = 0.5;
/** An edge piece must end within this many points of its label's box to count as "next to" it. */
const LABEL_GAP = 3;

function describe(t: TextBox): string {
  return `"${t.text}" (${t.ownerKind === 'graph' ? 'title' : t.owner})`;
}

function segmentsOf(points: { x: number; y: number }[]): [{ x: number; y: number }, { x: number; y: number }][] {
  const out: [{ x: number; y: number }, { x: number; y: number }][] = [];
  for (let i = 1; i < points.length; i++) out.push([points[i - 1]!, points[i]!]);
  return out;
}

function polygonBox(pts: { x: number; y: number }[]): Box {
  const xs = pts.map((p) => p.x);
  const ys = pts.map((p) => p.y);
  return { x: Math.min(...xs), y: Math.min(...ys), width: Math.max(...xs) - Math.min(...xs), height: Math.max(...ys) - Math.min(...ys) };
}

/** Every text-placement rule of the checklist; `model` supplies which label belongs to which edge. */
export function checkLayout(geo: Geometry, model: ArchitectureModel): string[] {
  const problems = checkTextPlacement(geo);
  // Every connection's label sits on its own edge: both pieces end at the label's box.
  for (const c of model.connections) {
    const label = geo.nodes.find((n) => n.name === labelNodeId(c));
    if (!label) {
      problems.push(`connection ${c.id} has no label in the layout`);
      continue;
    }
    for (const id of edgeIds(c)) {
      const e = geo.edges.find((x) => x.id === id);
      if (!e || e.points.length < 2) {
        problems.push(`connection ${c.id}: edge piece ${id} is missing from the layout`);
        continue;
      }
      const ends = [e.points[0]!, e.points[e.points.length - 1]!];
      const gap = Math.min(...ends.map((p) => distanceToBox(p, label)));
      if (gap > LABEL_GAP) problems.push(`connection ${c.id}: label is ${gap.toFixed(1)} pt away from edge piece ${id}`);
    }
  }
  for (const a of model.annotations) {
    if (!geo.nodes.some((n) => n.name === annotationNodeId(a))) problems.push(`annotation ${a.id} is missing from the layout`);
  }
  return problems;
}

/**
 * Text rules that need no model: no text overlaps text, a box it does not belong to, an edge or an
 * arrow head; no text leaves the canvas, its own box, or straddles a cluster border; nothing under 9 pt.
 * Boxes do not overlap, and edges do not run through boxes they do not connect.
 */
export function checkTextPlacement(geo: Geometry): string[] {
  const problems: string[] = [];
  const texts = geo.texts.filter((t) => t.text.trim() !== '');
  const canvas: Box = { x: 0, y: 0, width: geo.width, height: geo.height };
  const visibleEdges = geo.edges.filter((e) => e.visible);
  const visibleClusters = geo.clusters.filter((c) => c.visible);

  for (const t of texts) {
    if (t.size < FONT.port) problems.push(`text ${describe(t)} is ${t.size} pt, below the ${FONT.port} pt minimum`);
    if (!contains(canvas, t, EPS)) problems.push(`text ${describe(t)} leaves the canvas`);
    if (t.ownerKind === 'node') {
      const own = geo.nodes.find((n) => n.name === t.owner);
      if (own && !contains(own, t, EPS)) problems.push(`text ${describe(t)} sticks out of its box`);
    }
    for (const n of geo.nodes) {
      if (n.name !== t.owner && overlaps(t, n, EPS)) problems.push(`text ${describe(t)} overlaps the box of ${n.name}`);
    }
    for (const c of visibleClusters) {
      if (overlaps(t, c, EPS) && !contains(c, t, EPS)) problems.push(`text ${describe(t)} straddles the border of ${c.name}`);
    }
    for (const e of visibleEdges) {
      if (segmentsOf(e.points).some(([p, q]) => segmentHitsBox(p, q, t, EPS))) problems.push(`text ${describe(t)} is crossed by edge ${e.id}`);
      if (e.arrows.some((a) => overlaps(polygonBox(a), t, EPS))) problems.push(`text ${describe(t)} is covered by an arrow head of ${e.id}`);
    }
  }
  for (let i = 0; i < texts.length; i++) {
    for (let j = i + 1; j < texts.length; j++) {
      if (overlaps(texts[i]!, texts[j]!, EPS)) problems.push(`text ${describe(texts[i]!)} overlaps text ${describe(texts[j]!)}`);
    }
  }

  // Boxes must not overlap, and edges must not run through boxes they do not connect.
  for (let i = 0; i < geo.nodes.length; i++) {
    for (let j = i + 1; j < geo.nodes.length; j++) {
      if (overlaps(geo.nodes[i]!, geo.nodes[j]!, EPS)) problems.push(`box ${geo.nodes[i]!.name} overlaps box ${geo.nodes[j]!.name}`);
    }
  }
  for (const e of visibleEdges) {
    for (const n of geo.nodes) {
      if (n.name === e.tail || n.name === e.head) continue;
      if (segmentsOf(e.points).some(([p, q]) => segmentHitsBox(p, q, n, 1))) problems.push(`edge ${e.id} runs through box ${n.name}`);
    }
  }

  return problems;
}

/** The smallest text size in the layout, in points. */
export function smallestText(geo: Geometry): number {
  return Math.min(...geo.texts.filter((t) => t.text.trim() !== '').map((t) => t.size));
}
