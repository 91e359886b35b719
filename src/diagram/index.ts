/**
 * Architecture diagrams as code: the model built from the project's configuration, laid out by
 * Graphviz, written as DOT, SVG, an A4 300-DPI PNG and an editable draw.io file, plus the three
 * use-case diagrams. `generateDiagrams` renders everything in memory; writing and comparing with the
 * committed files are separate so the CLI's `--check` and the tests share one rendering.
 */
import fs from 'node:fs';
import path from 'node:path';
import { checkLayout, checkTextPlacement, smallestText } from './check.js';
import { toDot } from './dot.js';
import { toDrawio } from './drawio.js';
import { readGeometry, type Geometry } from './geometry.js';
import { buildModel } from './architecture.js';
import { loadInputs, type ModelInputs } from './inputs.js';
import type { ArchitectureModel } from './model.js';
import { layout, normalizeSvg, pageSvg, renderPng, type PagePlacement } from './render.js';
import { GRAPH_ATTRS, MIN_PRINT_SCALE, PAGE } from './style.js';
import { buildUseCases, useCaseDot } from './usecases.js';

export const BASE_NAME = 'ecommerce_streaming_architecture';
export const DEFAULT_OUT_DIR = 'docs/diagrams';

export interface DiagramFile {
  /** File name inside the output folder. */
  name: string;
  data: string | Buffer;
}

export interface DiagramSet {
  files: DiagramFile[];
  model: ArchitectureModel;
  geometry: Geometry;
  /** How the drawing sits on the A4 page. */
  placement: PagePlacement;
  /** Layout problems (overlaps, text off its box, ...); empty when the checklist passes. */
  problems: string[];
  /** Smallest text: in the drawing (points), and as printed on the A4 page (points at 300 DPI). */
  smallestText: { drawingPt: number; printedPt: number };
  /** Printed size / drawing size on the A4 page (1 = full size); at least MIN_PRINT_SCALE. */
  printScale: number;
}

/** Render every diagram from `inputs` (or from the project at `root`), in memory. */
export async function generateDiagrams(from: { root: string } | { inputs: ModelInputs }): Promise<DiagramSet> {
  const inputs = 'inputs' in from ? from.inputs : loadInputs(from.root);
  const model = buildModel(inputs);
  const dot = toDot(model);
  const svg = normalizeSvg(await layout(dot, 'svg', `${BASE_NAME}.dot`));
  const geometry = readGeometry(await layout(dot, 'json', `${BASE_NAME}.dot`));
  const problems = [...model.conflicts, ...checkLayout(geometry, model)];
  const page = pageSvg(svg, Number(GRAPH_ATTRS.pad) * 72, geometry);
  const png = renderPng(page.svg, PAGE.dpi);

  const files: DiagramFile[] = [
    { name: `${BASE_NAME}.dot`, data: dot },
    { name: `${BASE_NAME}.svg`, data: svg },
    { name: `${BASE_NAME}.png`, data: png },
    { name: `${BASE_NAME}.drawio`, data: toDrawio(model, geometry) },
  ];
  for (const uc of buildUseCases(inputs)) {
    const ucDot = useCaseDot(uc);
    files.push({ name: `${uc.file}.dot`, data: ucDot });
    files.push({ name: `${uc.file}.svg`, data: normalizeSvg(await layout(ucDot, 'svg', `${uc.file}.dot`)) });
    const ucGeo = readGeometry(await layout(ucDot, 'json', `${uc.file}.dot`));
    problems.push(...checkTextPlacement(ucGeo).map((p) => `${uc.file}: ${p}`));
  }
  const drawingPt = smallestText(geometry);
  // placement.scale is pixels per point; 300 DPI is 300/72 pixels per printed point.
  const printScale = (page.placement.scale * 72) / PAGE.dpi;
  const printedPt = drawingPt * printScale;
  if (printScale < MIN_PRINT_SCALE) {
    problems.push(
      `the A4 page shows the drawing at ${printScale.toFixed(3)} of its size, below ${MIN_PRINT_SCALE}: ${drawingPt} pt text prints at ${printedPt.toFixed(1)} pt`,
    );
  }
  return { files, model, geometry, placement: page.placement, problems, smallestText: { drawingPt, printedPt }, printScale };
}

export function writeDiagrams(outDir: string, files: DiagramFile[]): string[] {
  try {
    fs.mkdirSync(outDir, { recursive: true });
  } catch (err) {
    throw new Error(`cannot create ${outDir}: ${(err as Error).message}`, { cause: err });
  }
  return files.map((f) => {
    const file = path.join(outDir, f.name);
    try {
      fs.writeFileSync(file, f.data);
    } catch (err) {
      throw new Error(`cannot write ${file}: ${(err as Error).message}`, { cause: err });
    }
    return file;
  });
}

/** Files in `outDir` that are missing or differ from `files`. */
export function staleDiagrams(outDir: string, files: DiagramFile[]): string[] {
  return files
    .filter((f) => {
      const file = path.join(outDir, f.name);
      if (!fs.existsSync(file)) return true;
      const want = typeof f.data === 'string' ? Buffer.from(f.data) : f.data;
      return !fs.readFileSync(file).equals(want);
    })
    .map((f) => path.join(outDir, f.name));
}

export { buildModel, loadInputs, toDot, toDrawio, readGeometry, checkLayout, MIN_PRINT_SCALE };
export type { ArchitectureModel, ModelInputs };
