/**
 * Helpers for the dashboard's tests (integration and browser): commit a batch the way the engine's sink
 * does (src/sink/postgres.ts: COPY the valid rows, fall back to INSERT ... ON CONFLICT DO NOTHING on a
 * unique violation, COPY the rejects, INSERT the batch record, one transaction), read an SSE stream, and
 * launch Debian's Chromium for playwright-core.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { COLUMN_NAMES, DEVICE_TYPES, PRODUCT_CATEGORIES, type Reason } from '../../src/contract/event.js';
import { chromium, type BrowserContext } from 'playwright-core';

export interface EventRow {
  event_id: string;
  user_id: string;
  event_type: string;
  product_id: string;
  product_name: string | null;
  product_category: string | null;
  price: string | null;
  event_timestamp: string;
  session_id: string | null;
  device_type: string | null;
}

export interface RejectRow {
  file: string;
  line: number;
  raw: string | null;
  reason: Reason;
  detail: string;
}

export interface FileEntry {
  name: string;
  size: number;
  mtimeMs: number;
}

export interface TestBatch {
  streamId: string;
  batchId: number;
  events: EventRow[];
  rejects: RejectRow[];
  files: FileEntry[];
  qualityScore?: number | null;
  durationsMs?: Record<string, number>;
}

export const EVENT_COLUMNS = COLUMN_NAMES;

/** A small deterministic PRNG, so a failing test can be rerun with the same rows. */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Events with every shape the aggregates must handle: both types, NULL category / device / price. */
export function makeEvents(n: number, rand: () => number, nowMs = Date.now()): EventRow[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  return Array.from({ length: n }, () => {
    const product = Math.floor(rand() * 25);
    const purchase = rand() < 0.25;
    return {
      event_id: crypto.randomUUID(),
      user_id: `U${String(Math.floor(rand() * 50)).padStart(6, '0')}`,
      event_type: purchase ? 'purchase' : 'view',
      product_id: `P${String(product).padStart(5, '0')}`,
      product_name: rand() < 0.05 ? null : `Product ${product}`,
      product_category: rand() < 0.05 ? null : PRODUCT_CATEGORIES[product % PRODUCT_CATEGORIES.length]!,
      price: rand() < 0.05 ? null : (5 + Math.floor(rand() * 50000) / 100).toFixed(2),
      event_timestamp: new Date(nowMs - Math.floor(rand() * 600_000)).toISOString(),
      session_id: rand() < 0.05 ? null : `S${Math.floor(rand() * 100)}`,
      device_type: rand() < 0.05 ? null : pick(DEVICE_TYPES),
    };
  });
}

function copyField(v: string | number | null): string {
  if (v === null) return '\\N';
  return String(v).replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r');
}

async function copyRows(client: pg.ClientBase, sql: string, lines: string[]): Promise<void> {
  await pipeline(Readable.from(lines.length ? [lines.join('')] : []), client.query(copyFrom(sql)));
}

/**
 * Commits one batch in one transaction, as the sink does. Returns the rows actually inserted (events
 * already stored by an earlier batch are dropped and recorded as duplicate_event_id rejects).
 */
export async function commitBatch(url: string, batch: TestBatch): Promise<{ inserted: number; duplicates: number }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('BEGIN');
    const eventLines = batch.events.map((e) => `${EVENT_COLUMNS.map((c) => copyField(e[c])).join('\t')}\n`);
    const rejects = [...batch.rejects];
    let inserted = batch.events.length;
    await client.query('SAVEPOINT fast_path');
    try {
      await copyRows(client, `COPY user_events (${EVENT_COLUMNS.join(', ')}) FROM STDIN`, eventLines);
    } catch (err) {
      if ((err as { code?: string }).code !== '23505') throw err;
      await client.query('ROLLBACK TO SAVEPOINT fast_path');
      await client.query('CREATE TEMP TABLE staging (LIKE user_events INCLUDING DEFAULTS) ON COMMIT DROP');
      await copyRows(client, `COPY staging (${EVENT_COLUMNS.join(', ')}) FROM STDIN`, eventLines);
      const res = await client.query<{ event_id: string }>(
        `INSERT INTO user_events (${EVENT_COLUMNS.join(', ')}) SELECT ${EVENT_COLUMNS.join(', ')} FROM staging ORDER BY id
         ON CONFLICT (event_id) DO NOTHING RETURNING event_id`,
      );
      inserted = res.rowCount ?? 0;
      const stored = new Set(res.rows.map((r) => r.event_id));
      batch.events.forEach((e, i) => {
        if (!stored.has(e.event_id)) {
          rejects.push({
            file: batch.files[0]?.name ?? 'x.csv',
            line: i + 2,
            raw: e.event_id,
            reason: 'duplicate_event_id',
            detail: 'already stored by an earlier batch',
          });
        }
      });
    }
    const rejectLines = rejects.map(
      (r) => `${[batch.streamId, batch.batchId, r.file, r.line, r.raw, r.reason, r.detail].map((v) => copyField(v)).join('\t')}\n`,
    );
    await copyRows(client, 'COPY rejected_events (stream_id, batch_id, source_file, line_number, raw_line, reason, detail) FROM STDIN', rejectLines);
    const duplicates = rejects.filter((r) => r.reason === 'duplicate_event_id').length;
    const notices = rejects.filter((r) => r.reason === 'empty_file' || r.reason === 'missing_header').length;
    const mtimes = batch.files.map((f) => f.mtimeMs);
    await client.query(
      `INSERT INTO stream_batches (stream_id, batch_id, engine, files, batch_timestamp, input_rows, inserted_rows,
         duplicate_rows, rejected_rows, quality_score, oldest_file_mtime, newest_file_mtime, durations_ms)
       VALUES ($1, $2, 'typescript', $3, now(), $4, $5, $6, $7, $8, $9, $10, $11)`,
      [
        batch.streamId,
        batch.batchId,
        JSON.stringify(batch.files),
        batch.events.length + batch.rejects.filter((r) => r.reason !== 'empty_file' && r.reason !== 'missing_header').length,
        inserted,
        duplicates,
        rejects.length - duplicates - notices,
        batch.qualityScore === undefined ? 0.95 : batch.qualityScore,
        mtimes.length ? new Date(Math.min(...mtimes)) : null,
        mtimes.length ? new Date(Math.max(...mtimes)) : null,
        JSON.stringify(batch.durationsMs ?? { read: 3, write: 5, commit: 1 }),
      ],
    );
    await client.query('COMMIT');
    return { inserted, duplicates };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    await client.end();
  }
}

// ---- Server-Sent Events ----

export interface SseEvent {
  event: string;
  data: unknown;
  atMs: number;
}

/** Connects to an SSE endpoint and collects events; `next(pred)` waits for the first matching one. */
export function openSse(url: string): {
  events: SseEvent[];
  next(pred: (e: SseEvent) => boolean, timeoutMs?: number): Promise<SseEvent>;
  close(): void;
} {
  const events: SseEvent[] = [];
  const waiters: { pred: (e: SseEvent) => boolean; resolve: (e: SseEvent) => void }[] = [];
  let buffer = '';
  const req = http.get(url, (res) => {
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buffer += chunk;
      let i: number;
      while ((i = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, i);
        buffer = buffer.slice(i + 2);
        let event = 'message';
        const data: string[] = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event: ')) event = line.slice(7);
          else if (line.startsWith('data: ')) data.push(line.slice(6));
        }
        if (!data.length) continue;
        const e = { event, data: JSON.parse(data.join('\n')) as unknown, atMs: Date.now() };
        events.push(e);
        for (const w of [...waiters]) {
          if (w.pred(e)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(e);
          }
        }
      }
    });
  });
  req.on('error', () => undefined);
  return {
    events,
    next(pred, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching SSE event within ${timeoutMs} ms`)), timeoutMs);
        waiters.push({
          pred,
          resolve: (e) => {
            clearTimeout(timer);
            resolve(e);
          },
        });
      });
    },
    close() {
      req.destroy();
    },
  };
}

// ---- Chromium ----

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Arguments for Debian's Chromium in a container: no sandbox (root), no GPU, no network chatter. */
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Headless Chromium with a profile folder of its own, which `close` removes again. */
export async function launchChromium(
  prefix: string,
  options: { viewport: { width: number; height: number }; deviceScaleFactor?: number },
): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const userDataDir = await tempDir(prefix);
  // Playwright passes the profile folder itself; everything else is our fixed set of flags.
  const context = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS, ...options });
  return {
    context,
    async close() {
      await context.close();
      await fsp.rm(userDataDir, { recursive: true, force: true });
    },
  };
}

export async function tempDir(prefix: string): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), prefix));
}

/** Why a browser test cannot run here, or undefined: the `skip` option of such a test. */
export function chromiumMissing(): string | undefined {
  return fs.existsSync(CHROMIUM) ? undefined : `no Chromium at ${CHROMIUM}; run scripts/install-chromium.sh`;
}
