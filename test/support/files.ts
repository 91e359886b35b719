/** Hand-made CSV input for tests: exact rows, so each test states what it feeds the engine. */
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { HEADER_LINE } from '../../src/contract/event.js';

export const HEADER = HEADER_LINE;

export function iso(msAgo = 60_000, now = Date.now()): string {
  return new Date(now - msAgo).toISOString();
}

export interface RowOverrides {
  event_id?: string;
  user_id?: string;
  event_type?: string;
  product_id?: string;
  product_name?: string;
  product_category?: string;
  price?: string;
  event_timestamp?: string;
  session_id?: string;
  device_type?: string;
}

export function row(o: RowOverrides = {}): string {
  const v = {
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
  return [v.event_id, v.user_id, v.event_type, v.product_id, v.product_name, v.product_category, v.price, v.event_timestamp, v.session_id, v.device_type].map(q).join(',');
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
