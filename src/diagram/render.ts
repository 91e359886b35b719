/**
 * DOT -> SVG and layout JSON (Graphviz compiled to WebAssembly, so no system Graphviz), SVG -> A4 PNG
 * at 300 DPI (resvg, with the shipped Arimo font files and no system fonts, so every machine renders
 * the same bytes).
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { Graphviz } from '@hpcc-js/wasm-graphviz';
import { Resvg } from '@resvg/resvg-js';
import { withPhys } from './png.js';
import { PAGE, SVG_FONT_FAMILY } from './style.js';
import { EcomstreamError } from '../errors.js';

let graphviz: Promise<Graphviz> | undefined;

function loadGraphviz(): Promise<Graphviz> {
  graphviz ??= Graphviz.load();
  return graphviz;
}

export class DiagramRenderError extends EcomstreamError {}

/** Lay out `dot` with the dot engine; `format` as Graphviz names it (svg, json). */
export async function layout(dot: string, format: 'svg' | 'json', what: string): Promise<string> {
  const gv = await loadGraphviz();
  try {
    return gv.layout(dot, format, 'dot');
  } catch (err) {
    throw new DiagramRenderError(`Graphviz could not lay out ${what}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Graphviz writes `font-family="Helvetica,sans-Serif"`. Arimo comes first so the PNG uses the shipped
 * font; Helvetica and Arial follow for browsers, all three with the same advance widths.
 */
export function normalizeSvg(svg: string): string {
  return svg.replace(/font-family="[^"]*"/g, `font-family="${SVG_FONT_FAMILY}"`);
}

const require = createRequire(import.meta.url);

/** The Arimo TTFs (SIL OFL 1.1; metric-compatible with Helvetica and Arial) from their npm package. */
export function fontFiles(): string[] {
  let dir: string;
  try {
    dir = path.dirname(require.resolve('@expo-google-fonts/arimo/package.json'));
  } catch (err) {
    throw new DiagramRenderError('the font package @expo-google-fonts/arimo is not installed (run npm install)', { cause: err });
  }
  return [
    '400Regular/Arimo_400Regular.ttf',
    '700Bold/Arimo_700Bold.ttf',
    '400Regular_Italic/Arimo_400Regular_Italic.ttf',
    '700Bold_Italic/Arimo_700Bold_Italic.ttf',
  ].map((f) => path.join(dir, f));
}

/** Width and height of an SVG's viewBox, in its user units (points, for Graphviz output). */
export function svgViewBox(svg: string): { x: number; y: number; width: number; height: number } {
  const m = /viewBox="([-\d.]+)[ ,]+([-\d.]+)[ ,]+([-\d.]+)[ ,]+([-\d.]+)"/.exec(svg);
  if (!m) throw new DiagramRenderError('the SVG has no viewBox');
  return { x: Number(m[1]), y: Number(m[2]), width: Number(m[3]), height: Number(m[4]) };
}

export interface PagePlacement {
  /** Drawing units (points) -> pixels. */
  scale: number;
  /** Top-left of the drawing on the page, in pixels. */
  x: number;
  y: number;
}

/**
 * Where a drawing of `width` x `height` points (Graphviz's pad already removed) lands on the A4 page:
 * as large as fits inside the 0.5 in margins, centred.
 */
export function placeOnPage(width: number, height: number): PagePlacement {
  const margin = PAGE.marginInches * PAGE.dpi;
  const availW = PAGE.widthPx - 2 * margin;
  const availH = PAGE.heightPx - 2 * margin;
  const scale = Math.min(availW / width, availH / height);
  return { scale, x: margin + (availW - width * scale) / 2, y: margin + (availH - height * scale) / 2 };
}

/**
 * The A4 page as SVG: white, the Graphviz drawing (without its pad, which the page margin replaces)
 * scaled to fit and centred. `drawing` is the layout's size in points (Graphviz's bounding box).
 */
export function pageSvg(svg: string, padPoints: number, drawing?: { width: number; height: number }): { svg: string; placement: PagePlacement } {
  const vb = svgViewBox(svg);
  // Graphviz rounds the viewBox to whole points; the layout's own size (when given) is exact.
  const inner = {
    x: vb.x + padPoints,
    y: vb.y + padPoints,
    width: drawing?.width ?? vb.width - 2 * padPoints,
    height: drawing?.height ?? vb.height - 2 * padPoints,
  };
  const placement = placeOnPage(inner.width, inner.height);
  const body = svg.replace(/^[\s\S]*?<svg\b[^>]*>/, '').replace(/<\/svg>\s*$/, '');
  const r = (n: number) => Number(n.toFixed(3));
  const page =
    `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${PAGE.widthPx}" height="${PAGE.heightPx}" viewBox="0 0 ${PAGE.widthPx} ${PAGE.heightPx}">` +
    `<rect width="100%" height="100%" fill="#ffffff"/>` +
    `<svg x="${r(placement.x)}" y="${r(placement.y)}" width="${r(inner.width * placement.scale)}" height="${r(inner.height * placement.scale)}" viewBox="${r(inner.x)} ${r(inner.y)} ${r(inner.width)} ${r(inner.height)}">` +
    body +
    `</svg></svg>`;
  return { svg: page, placement };
}

/** Render an SVG to PNG with the shipped fonts only; `dpi` is recorded in a pHYs chunk. */
export function renderPng(svg: string, dpi: number): Buffer {
  let png: Buffer;
  try {
    const resvg = new Resvg(svg, {
      background: '#ffffff',
      fitTo: { mode: 'original' },
      font: {
        loadSystemFonts: false,
        fontFiles: fontFiles(),
        defaultFontFamily: 'Arimo',
        sansSerifFamily: 'Arimo',
      },
      shapeRendering: 2,
      textRendering: 1,
      logLevel: 'off',
    });
    png = resvg.render().asPng();
  } catch (err) {
    throw new DiagramRenderError(`resvg could not render the SVG: ${(err as Error).message}`, { cause: err });
  }
  return withPhys(png, dpi);
}
