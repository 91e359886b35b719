/**
 * The architecture model: what the diagram says, before anything decides how it looks. DOT, draw.io and
 * the checklist tests all read this one model; architecture.ts builds it from the system's own
 * configuration.
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
import type { PortMapping } from './facts.js';
import type { Palette } from './style.js';

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
