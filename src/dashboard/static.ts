/** The files the dashboard serves as they are: the page, its script and styles, uPlot, and the architecture diagram. */
import fsp from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { PACKAGE_ROOT } from '../db/migrate.js';

export const PUBLIC_DIR = path.join(PACKAGE_ROOT, 'src', 'dashboard', 'public');
export const ARCHITECTURE_SVG = path.join(PACKAGE_ROOT, 'docs', 'diagrams', 'ecommerce_streaming_architecture.svg');

interface StaticFile {
  file: string;
  type: string;
  /** Vendor files change only with a dependency upgrade; the page's own files on every edit. */
  immutable?: boolean;
}

export type StaticFiles = ReadonlyMap<string, StaticFile>;

/** The files by URL path. */
export function staticFiles(): StaticFiles {
  const require = createRequire(import.meta.url);
  const uplotDir = path.dirname(require.resolve('uplot/dist/uPlot.iife.min.js'));
  return new Map<string, StaticFile>([
    ['/', { file: path.join(PUBLIC_DIR, 'index.html'), type: 'text/html; charset=utf-8' }],
    ['/index.html', { file: path.join(PUBLIC_DIR, 'index.html'), type: 'text/html; charset=utf-8' }],
    ['/app.js', { file: path.join(PUBLIC_DIR, 'app.js'), type: 'text/javascript; charset=utf-8' }],
    ['/style.css', { file: path.join(PUBLIC_DIR, 'style.css'), type: 'text/css; charset=utf-8' }],
    ['/vendor/uPlot.iife.min.js', { file: path.join(uplotDir, 'uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8', immutable: true }],
    ['/vendor/uPlot.min.css', { file: path.join(uplotDir, 'uPlot.min.css'), type: 'text/css; charset=utf-8', immutable: true }],
    ['/architecture.svg', { file: ARCHITECTURE_SVG, type: 'image/svg+xml' }],
  ]);
}

/** A file's body and type, or what is missing. */
export type StaticAnswer = { body: Buffer; type: string; immutable: boolean } | { missing: string };

export async function readStatic(pathname: string, files: StaticFiles): Promise<StaticAnswer> {
  const file = files.get(pathname);
  if (!file) return { missing: `no such page: ${pathname}` };
  try {
    return { body: await fsp.readFile(file.file), type: file.type, immutable: file.immutable === true };
  } catch {
    return { missing: pathname === '/architecture.svg' ? 'the architecture diagram has not been generated yet' : `${pathname} is missing` };
  }
}
