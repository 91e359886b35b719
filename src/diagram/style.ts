/**
 * The spec's visual language, in one place: colour table, connection styles, text sizes and graph
 * attributes (spec "Color Scheme", "Connections", "Text Requirements", "Graph Attributes"). The DOT,
 * draw.io and test code all read these constants, so a colour can only be wrong everywhere at once.
 */

export interface Palette {
  fill: string;
  stroke: string;
  text: string;
}

/** Spec "Color Scheme" table, keyed by component. */
export const PALETTE = {
  docker: { fill: '#ECEFF1', stroke: '#37474F', text: '#000000' },
  generator: { fill: '#E3F2FD', stroke: '#1976D2', text: '#000000' },
  volume: { fill: '#F5F5F5', stroke: '#616161', text: '#000000' },
  sparkCluster: { fill: '#FFE0B2', stroke: '#F57C00', text: '#000000' },
  master: { fill: '#FFE0B2', stroke: '#F57C00', text: '#000000' },
  worker: { fill: '#FFCC80', stroke: '#EF6C00', text: '#000000' },
  postgres: { fill: '#E8F5E9', stroke: '#388E3C', text: '#000000' },
  pgadmin: { fill: '#F3E5F5', stroke: '#7B1FA2', text: '#000000' },
  checkpoints: { fill: '#FFF9C4', stroke: '#F9A825', text: '#000000' },
} as const satisfies Record<string, Palette>;

/**
 * The storage cluster's colours are given in "Clustering" (border #388E3C, background #E8F5E9), not in
 * the table; they equal the PostgreSQL row.
 */
export const STORAGE_CLUSTER: Palette = { fill: '#E8F5E9', stroke: '#388E3C', text: '#000000' };

/** Legend and note boxes are not in the spec's table: neutral white boxes with the Docker border. */
export const LEGEND: Palette = { fill: '#FFFFFF', stroke: '#37474F', text: '#000000' };
export const NOTE: Palette = { fill: '#FFFDE7', stroke: '#9E9E9E', text: '#000000' };

/**
 * Legend titles are component-label size (12 pt); the security note's is annotation size (10 pt): the
 * spec asks for a "small disclaimer", and its column has no room for a 12 pt title.
 */
export function legendTitleSize(legendId: string): number {
  return legendId === 'security' ? FONT.annotation : FONT.label;
}

/** Secondary text (container names, sources of figures): dark enough for print, visibly secondary. */
export const MUTED_TEXT = '#455A64';
/** Scalability annotations: the spec asks for them to stand out; a dark teal reads on every fill. */
export const SCALE_TEXT = '#00695C';

/** Connection colours and widths (spec "Connections"). */
export const EDGE = {
  csv: { color: '#1976D2', width: 2 },
  spark: { color: '#F57C00', width: 2 },
  jdbc: { color: '#388E3C', width: 3 },
  checkpoint: { color: '#616161', width: 1 },
  monitoring: { color: '#7B1FA2', width: 1 },
} as const;

/** Spec "Text Requirements", in points. */
export const FONT = {
  family: 'Helvetica',
  title: 16,
  label: 12,
  annotation: 10,
  port: 9,
} as const;

/**
 * The family written into SVG output. Arimo (shipped, Helvetica/Arial metrics) renders the PNG; a
 * browser without Arimo falls back to Helvetica or Arial, which have the same advance widths, so the
 * text fits the boxes Graphviz measured either way.
 */
export const SVG_FONT_FAMILY = 'Arimo,Helvetica,Arial,sans-serif';

/** Spec "Graph Attributes", verbatim (dot.ts's LAYOUT departs from nodesep and ranksep, and says why). */
export const GRAPH_ATTRS = {
  fontsize: '12',
  fontname: 'Helvetica',
  bgcolor: 'white',
  pad: '0.5',
  nodesep: '1.0',
  ranksep: '1.5',
  splines: 'ortho',
  rankdir: 'LR',
  concentrate: 'false',
} as const;

/**
 * The smallest scale at which the A4 page may show the drawing (issue 11): 9 pt ports print at 7.2 pt
 * or more, the 16 pt title at 12.8 pt or more. `ecomstream diagram` reports the scale; a test holds it.
 */
export const MIN_PRINT_SCALE = 0.8;

/** Spec "Image Specifications": A4 landscape at 300 DPI with 0.5 in margins. */
export const PAGE = {
  dpi: 300,
  widthInches: 11.69,
  heightInches: 8.27,
  marginInches: 0.5,
  /** 3508 x 2480 px: A4 (297 x 210 mm) at 300 DPI, rounded as print software does. */
  widthPx: 3508,
  heightPx: 2480,
} as const;
