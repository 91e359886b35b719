/**
 * Architecture model -> Graphviz DOT.
 *
 * Two Graphviz behaviours shape this file:
 * - With `splines=ortho`, dot does not place edge labels (a plain `label` lands away from its edge, an
 *   `xlabel` on top of nodes). So every labelled connection is routed through a small label node: the
 *   label is part of the layout, cannot overlap anything, and sits on its own edge by construction.
 * - Bold text must be `<B>` in an HTML label: a `Helvetica-Bold` font name is measured with regular
 *   widths by Graphviz's built-in metrics, and the bold glyphs then overflow their boxes.
 */
import type { Annotation, ArchitectureModel, Cluster, Component, Connection, Legend, Line } from './model.js';
import { FONT, GRAPH_ATTRS, LEGEND, MUTED_TEXT, NOTE, SCALE_TEXT, legendTitleSize } from './style.js';

/** Points between a legend's key, value and source columns. */
export const LEGEND_COLUMN_GAP = 4;

/** Node id of a connection's label node. */
export const labelNodeId = (c: Connection): string => `label_${c.id}`;
/** Node id of an annotation box. */
export const annotationNodeId = (a: Annotation): string => `note_${a.id}`;
/** Node id of a legend box. */
export const legendNodeId = (l: Legend): string => `legend_${l.id}`;

export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function attrs(a: Record<string, string | number | undefined>): string {
  return Object.entries(a)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => {
      const s = String(v);
      // HTML labels are passed as <...>; everything else is a quoted string.
      return `${k}=${s.startsWith('<') && s.endsWith('>') ? s : JSON.stringify(s)}`;
    })
    .join(', ');
}

/** One text line as HTML-label markup: size, weight, slant and colour by its kind. */
export function span(l: Line): string {
  const t = escapeHtml(l.text);
  switch (l.kind) {
    case 'title':
      return `<FONT POINT-SIZE="${FONT.title}"><B>${t}</B></FONT>`;
    case 'name':
      return `<FONT POINT-SIZE="${FONT.label}">${t}</FONT>`;
    case 'port':
      return `<FONT POINT-SIZE="${FONT.port}"><I>${t}</I></FONT>`;
    case 'muted':
      return `<FONT POINT-SIZE="${FONT.port}" COLOR="${MUTED_TEXT}">${t}</FONT>`;
    case 'scale':
      return `<FONT POINT-SIZE="${FONT.annotation}" COLOR="${SCALE_TEXT}"><B>${t}</B></FONT>`;
    case 'note':
      return `<FONT POINT-SIZE="${FONT.annotation}">${t}</FONT>`;
  }
}

/**
 * Lines as table rows, one per line. Graphviz sets `<BR/>`-separated lines of mixed sizes at a leading
 * of 1.0 (descenders touch the next line's capitals); table rows get the usual 1.2.
 */
function rows(lines: Line[]): string {
  return lines
    .map((l, i) => {
      const align = l.align === 'left' ? 'LEFT' : 'CENTER';
      // A little air after a box's name, and before the highlighted scalability line.
      const gapAfterName = l.kind === 'name' && i === 0 && lines.length > 1 ? '<TR><TD HEIGHT="3"></TD></TR>' : '';
      // Graphviz sets italic text about 0.2 em higher in its row than upright text, so an italic line
      // right under an upright one would touch it.
      const italicAfterUpright = l.kind === 'port' && i > 0 && lines[i - 1]!.kind !== 'port';
      const gapBefore = l.kind === 'scale' ? '<TR><TD HEIGHT="3"></TD></TR>' : italicAfterUpright ? '<TR><TD HEIGHT="2"></TD></TR>' : '';
      return `${gapBefore}<TR><TD ALIGN="${align}">${span(l)}</TD></TR>${gapAfterName}`;
    })
    .join('');
}

interface BoxStyle {
  border: number;
  color?: string;
  fill?: string;
  rounded?: boolean;
  /** Points between the border and the text. */
  pad: number;
}

/** An HTML-label table: an optional (rounded) box around rows of text. */
export function textTable(lines: Line[], box: BoxStyle): string {
  const outer = [
    `BORDER="${box.border}"`,
    box.color ? `COLOR="${box.color}"` : '',
    box.fill ? `BGCOLOR="${box.fill}"` : '',
    box.rounded ? 'STYLE="ROUNDED"' : '',
    'CELLBORDER="0" CELLSPACING="0"',
    `CELLPADDING="${box.pad}"`,
  ]
    .filter(Boolean)
    .join(' ');
  return `<TABLE ${outer}><TR><TD><TABLE BORDER="0" CELLSPACING="0" CELLPADDING="0">${rows(lines)}</TABLE></TD></TR></TABLE>`;
}

function componentNode(c: Component, indent: string): string {
  const label = textTable([{ text: c.name, kind: 'name', align: 'center' }, ...c.lines], {
    border: 2,
    color: c.palette.stroke,
    fill: c.palette.fill,
    rounded: true,
    pad: 7,
  });
  return `${indent}${c.id} [${attrs({ label: `<${label}>`, shape: 'plain', fontcolor: c.palette.text, tooltip: c.name })}];`;
}

function labelNode(c: Connection, indent: string): string {
  const lines = c.label.map((text): Line => ({ text, kind: 'note', align: 'center' }));
  // Text without outline; the edge pieces end at the padded box, a few points clear of the text.
  return `${indent}${labelNodeId(c)} [${attrs({ label: `<${textTable(lines, { border: 0, pad: 4 })}>`, shape: 'plain', tooltip: c.label.join(' ') })}];`;
}

/**
 * Connections drawn downwards inside one column (rank). In rankdir=LR, inside a cluster, dot puts the
 * tail of a flat edge below its head (see toDot), so these are written "to -> label -> from" with their
 * arrow heads swapped by `dir`, which puts `from` on top as the spec's layout wants.
 */
export const DOWNWARD_CONNECTIONS: ReadonlySet<string> = new Set(['task', 'checkpoint', 'monitoring']);

/** Graphviz ids of a connection's two edge pieces: from the source to the label, label to the target. */
export const edgeIds = (c: Connection): [string, string] => [`edge_${c.id}_in`, `edge_${c.id}_out`];

function connectionEdges(c: Connection): string[] {
  const style = c.style === 'dashed' ? 'dashed' : c.style === 'bold' ? 'bold' : 'solid';
  const common = { color: c.color, penwidth: c.width, style, arrowsize: 0.9 };
  const l = labelNodeId(c);
  const [inId, outId] = edgeIds(c);
  const tooltip = `${c.from} -> ${c.to}`;
  if (DOWNWARD_CONNECTIONS.has(c.id)) {
    return [
      `  ${c.to} -> ${l} [${attrs({ ...common, id: outId, dir: 'back', arrowtail: 'normal', arrowhead: 'none', tooltip })}];`,
      `  ${l} -> ${c.from} [${attrs({ ...common, id: inId, dir: c.both ? 'forward' : 'none', arrowhead: c.both ? 'normal' : 'none', tooltip })}];`,
    ];
  }
  return [
    `  ${c.from} -> ${l} [${attrs({ ...common, id: inId, dir: c.both ? 'back' : 'none', arrowtail: c.both ? 'normal' : 'none', arrowhead: 'none', tooltip })}];`,
    `  ${l} -> ${c.to} [${attrs({ ...common, id: outId, arrowhead: 'normal', tooltip })}];`,
  ];
}

function annotationNode(a: Annotation, indent: string): string {
  return `${indent}${annotationNodeId(a)} [${attrs({
    label: `<${textTable(a.lines, { border: 0, pad: 0 })}>`,
    shape: 'note',
    style: 'filled',
    fillcolor: NOTE.fill,
    color: NOTE.stroke,
    fontcolor: NOTE.text,
    margin: '0.15,0.08',
    tooltip: a.lines[0]?.text,
  })}];`;
}

function legendNode(l: Legend, indent: string): string {
  // Key, value and (when rows name one) source columns, with a spacer between columns: cell padding
  // would add to every row's height as well.
  const sourced = l.rows.some((r) => r.source !== undefined);
  const cols = sourced ? 5 : 3;
  const gap = `<TD WIDTH="${LEGEND_COLUMN_GAP}"></TD>`;
  const rows = l.rows
    .map((r) =>
      r.heading
        ? `<TR><TD ALIGN="LEFT" COLSPAN="${cols}"><FONT POINT-SIZE="${FONT.port}" COLOR="${MUTED_TEXT}"><B>${escapeHtml(r.key)}</B></FONT></TD></TR>`
        : `<TR><TD ALIGN="LEFT">${escapeHtml(r.key)}</TD>${gap}<TD ALIGN="LEFT">${escapeHtml(r.value)}</TD>` +
          (sourced ? `${gap}<TD ALIGN="LEFT"><FONT POINT-SIZE="${FONT.port}" COLOR="${MUTED_TEXT}">${escapeHtml(r.source ?? '')}</FONT></TD>` : '') +
          `</TR>`,
    )
    .join('');
  const lines = l.lines.map((x) => `<TR><TD ALIGN="${x.align === 'left' ? 'LEFT' : 'CENTER'}" COLSPAN="${cols}">${span(x)}</TD></TR>`).join('');
  const palette = l.id === 'security' ? NOTE : LEGEND;
  // Outer table: the box and its title; inner table: the rows, padded away from the rounded border.
  const table =
    `<TABLE BORDER="1" COLOR="${palette.stroke}" BGCOLOR="${palette.fill}" CELLBORDER="0" CELLSPACING="0" CELLPADDING="5" STYLE="ROUNDED">` +
    `<TR><TD ALIGN="LEFT"><FONT POINT-SIZE="${legendTitleSize(l.id)}"><B>${escapeHtml(l.title)}</B></FONT></TD></TR><HR/>` +
    `<TR><TD ALIGN="LEFT"><FONT POINT-SIZE="${FONT.annotation}"><TABLE BORDER="0" CELLSPACING="0" CELLPADDING="1">${rows}${lines}</TABLE></FONT></TD></TR>` +
    `</TABLE>`;
  return `${indent}${legendNodeId(l)} [${attrs({ label: `<${table}>`, shape: 'plain', tooltip: l.title })}];`;
}

function clusterOpen(c: Cluster, indent: string): string[] {
  return [
    `${indent}subgraph cluster_${c.id} {`,
    `${indent}  graph [${attrs({
      label: `<<FONT POINT-SIZE="${FONT.label}">${escapeHtml(c.label)}</FONT>>`,
      labeljust: 'l',
      style: c.dashed ? 'dashed,filled' : 'filled',
      fillcolor: c.palette.fill,
      color: c.palette.stroke,
      fontcolor: c.palette.text,
      penwidth: c.dashed ? 2 : 1.5,
      margin: LAYOUT.clusterMargin,
    })}];`,
  ];
}

/**
 * Layout knobs that depart from the spec's graph attributes (docs/diagrams.md). The spec's
 * nodesep 1.0 in and ranksep 1.5 in put 1 in of air between every two boxes of a column and 1.5 in
 * between columns; with its content the drawing is then about 22 x 17 in, printed on A4 at 0.44, which
 * makes 9 pt text 3.9 pt on paper. The page must print at 0.8 or more (`MIN_PRINT_SCALE`), so the drawing
 * may be at most 962 x 654 pt: every point of air is paid for in type size. These values keep 11 pt
 * between boxes in a column and 8 pt plus the labels' own padding between columns.
 */
export const LAYOUT = {
  nodesep: '0.15',
  ranksep: '0.02',
  /** Points between a cluster's border and what it holds (Graphviz's default is 8). */
  clusterMargin: 6,
} as const;

/**
 * Where things go, as far as dot lets us say it. In rankdir=LR one rank is one column, and:
 * - inside a cluster, a flat edge (both ends in one rank) puts its tail *below* its head;
 * - sibling clusters in one rank stack in declaration order, the first at the bottom.
 * So the checkpoint storage sits in an invisible, layout-only cluster declared before the Spark cluster
 * (below it, under the worker), the readStream label above the shared volume (its column is wide
 * enough, and a column of its own would cost its width), and the legends and the recovery note in the
 * empty lower-left of the Docker boundary, held under the generator and the volume by invisible flat edges.
 */
const CHECKPOINT_COLUMN = 'cluster_layout_checkpoint';

function layoutCluster(id: string, indent: string): string {
  return `${indent}subgraph ${id} {\n${indent}  graph [label="", style="invis", margin=0];`;
}

/** Which legends stack under which box, top to bottom (the lower-left of the Docker boundary). */
export const LEGEND_COLUMNS: readonly { under: string; items: readonly string[] }[] = [
  { under: 'generator', items: ['legend_metrics', 'legend_local'] },
  { under: 'volume', items: ['note_recovery', 'legend_security'] },
];

export function toDot(model: ArchitectureModel): string {
  const byId = new Map(model.connections.map((c) => [c.id, c]));
  const conn = (id: string): Connection => {
    const c = byId.get(id);
    if (!c) throw new Error(`the architecture model has no connection "${id}"`);
    return c;
  };
  const out = [
    ...graphHeader(model),
    '',
    ...model.clusters.filter((c) => c.parent === undefined).flatMap((root) => clusterLines(model, conn, root, '  ')),
    '',
    ...model.connections.flatMap(connectionEdges),
    // An annotation's dotted leader runs to the label of the connection it explains.
    ...model.annotations.map(
      (a) =>
        `  ${annotationNodeId(a)} -> ${labelNodeId(conn(a.connection))} [${attrs({ id: `edge_${a.id}`, style: 'dotted', color: NOTE.stroke, arrowhead: 'none', penwidth: 1 })}];`,
    ),
    '',
    ...placementLines(model, conn),
    '}',
  ];
  return `${out.join('\n')}\n`;
}

function graphHeader(model: ArchitectureModel): string[] {
  const title = `<${textTable(
    [
      { text: model.title, kind: 'title', align: 'center' },
      { text: model.subtitle, kind: 'muted', align: 'center' },
    ],
    { border: 0, pad: 2 },
  )}>`;
  return [
    '// Generated by `ecomstream diagram` from docker-compose.yml, src/config.ts and postgres/migrations/.',
    '// Do not edit: change the configuration and regenerate (npm run diagram).',
    'digraph ecommerce_streaming_architecture {',
    `  graph [${attrs({ ...GRAPH_ATTRS, nodesep: LAYOUT.nodesep, ranksep: LAYOUT.ranksep, newrank: 'true', labelloc: 't', labeljust: 'c', label: title })}];`,
    `  node [${attrs({ fontname: FONT.family, fontsize: FONT.label })}];`,
    `  edge [${attrs({ fontname: FONT.family, fontsize: FONT.annotation })}];`,
  ];
}

/** A cluster with its boxes, labels and child clusters; the Docker cluster also holds the layout-only column and the legends. */
function clusterLines(model: ArchitectureModel, conn: (id: string) => Connection, c: Cluster, indent: string): string[] {
  const inColumn = new Set(['checkpoints', labelNodeId(conn('checkpoint'))]);
  const inner = `${indent}  `;
  const out = clusterOpen(c, indent);
  if (c.id === 'docker') {
    out.push(layoutCluster(CHECKPOINT_COLUMN, inner));
    out.push(
      componentNode(
        model.components.find((x) => x.id === 'checkpoints')!,
        `${inner}  `,
      ),
    );
    out.push(labelNode(conn('checkpoint'), `${inner}  `));
    out.push(`${inner}}`);
    for (const a of model.annotations) out.push(annotationNode(a, inner));
    for (const l of model.legends) out.push(legendNode(l, inner));
  }
  for (const comp of model.components.filter((x) => x.cluster === c.id && !inColumn.has(x.id))) out.push(componentNode(comp, inner));
  for (const cn of model.connections.filter((x) => x.cluster === c.id && !inColumn.has(labelNodeId(x)))) out.push(labelNode(cn, inner));
  for (const child of model.clusters.filter((x) => x.parent === c.id)) out.push(...clusterLines(model, conn, child, inner));
  out.push(`${indent}}`);
  return out;
}

/** Spec layout: master above worker, checkpoints below the Spark cluster, pgAdmin below PostgreSQL; the legends in their columns. */
function placementLines(model: ArchitectureModel, conn: (id: string) => Connection): string[] {
  const out = [
    `  { rank=same; master; ${labelNodeId(conn('task'))}; worker; ${labelNodeId(conn('checkpoint'))}; checkpoints; }`,
    `  { rank=same; postgres; ${labelNodeId(conn('monitoring'))}; pgadmin; }`,
    `  { rank=same; volume; ${labelNodeId(conn('read'))}; }`,
  ];
  // Legends and notes in the lower left, each column held in order by invisible flat edges (tail below head).
  const present = new Set([...model.legends.map(legendNodeId), ...model.annotations.map(annotationNodeId)]);
  for (const col of LEGEND_COLUMNS) {
    const items = col.items.filter((i) => present.has(i));
    if (items.length === 0) continue;
    out.push(`  { rank=same; ${[col.under, ...items].join('; ')}; }`);
    [col.under, ...items].forEach((above, i, all) => {
      const below = all[i + 1];
      if (below) out.push(`  ${below} -> ${above} [${attrs({ style: 'invis', id: `layout_${below}` })}];`);
    });
  }
  // The technology stack above the storage cluster, whose column is empty above PostgreSQL.
  if (present.has('legend_stack')) {
    out.push(`  { rank=same; postgres; legend_stack; }`);
    out.push(`  legend_stack -> postgres [${attrs({ style: 'invis', id: 'layout_legend_stack' })}];`);
  }
  return out;
}
