/** Hand-made CSV input for tests: exact rows, so each test states what it feeds the engine. */
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { COLUMN_NAMES, HEADER_LINE, type EventColumn } from '../../src/contract/event.js';
import type { ProgressRecord } from '../../src/engine/progress.js';

export const HEADER = HEADER_LINE;

export function iso(msAgo = 60_000, now = Date.now()): string {
  return new Date(now - msAgo).toISOString();
}

export type RowOverrides = Partial<Record<EventColumn, string>>;

export function row(o: RowOverrides = {}): string {
  const v: Record<EventColumn, string> = {
    event_id: crypto.randomUUID(),
    user_id: 'U000001',
    event_type: 'view',
    product_id: 'P00001',
    product_name: 'Wireless Mouse',
    product_category: 'Electronics',
    price: '29.99',
    event_timestamp: iso(),
    session_id: 'S0001',
    device_type: 'mobile',
    ...o,
  };
  const q = (x: string): string => (/[",]/.test(x) ? `"${x.replace(/"/g, '""')}"` : x);
  return COLUMN_NAMES.map((c) => q(v[c])).join(',');
}

export async function tempDir(prefix = 'ecomstream-test-'): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), prefix));
}

/** Writes a file atomically (temp + rename) with an mtime `order` ms apart, so file order is explicit. */
let mtimeBase = Date.now() - 3_600_000;
export async function publish(dir: string, name: string, content: string | Buffer): Promise<string> {
  await fsp.mkdir(dir, { recursive: true });
  const file = path.join(dir, name);
  const tmp = path.join(dir, `.${name}.tmp`);
  await fsp.writeFile(tmp, content);
  const t = new Date((mtimeBase += 1000));
  fs.utimesSync(tmp, t, t);
  await fsp.rename(tmp, file);
  return file;
}

export function csv(...lines: string[]): string {
  return `${[HEADER, ...lines].join('\n')}\n`;
}

/** The records of a progress log (one JSON line per committed batch, src/engine/progress.ts). */
export async function readProgress(file: string): Promise<ProgressRecord[]> {
  return (await fsp.readFile(file, 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as ProgressRecord);
}
