/**
 * Differential test of the two evaluators, without Spark or a database (Python is the machine's python3): thousands of seeded random lines —
 * valid rows with one or more random faults, odd quoting, odd timestamps and prices, bad bytes, headers
 * right and wrong, BOMs, CRLF, blank lines, empty files — go through the TypeScript engine's reader
 * (src/engine/read-batch.ts scanBatch) and the Spark job's (spark/ecomstream_spark/rows.py scan_file, with
 * the job's first-occurrence dedup). Every line must get the same verdict, the same raw text and, when
 * valid, the same values for PostgreSQL. A failure prints the first differing lines.
 *
 * The conformance test proves the engines end to end on hand-written fixtures; this one searches the
 * corners those fixtures do not name. ECOMSTREAM_DIFF_SEED / ECOMSTREAM_DIFF_FILES vary it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { HEADER_LINE } from '../../src/contract/event.js';
import { pythonMissing, runPython, runTypescript, writeFiles, type Verdict } from '../support/evaluators.js';

const SEED = Number(process.env.ECOMSTREAM_DIFF_SEED ?? 20261125);
const FILES = Number(process.env.ECOMSTREAM_DIFF_FILES ?? 80);
const NOW = Date.parse('2026-11-25T12:00:00.000Z');

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rnd = mulberry32(SEED);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
const chance = (p: number): boolean => rnd() < p;
const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

function isoAt(ms: number): string {
  return new Date(ms).toISOString();
}

function randomTimestamp(): string {
  const ago = pick([60_000, 3_600_000, 23.9 * 3_600_000, 24 * 3_600_000, 24 * 3_600_000 + 1, 25 * 3_600_000, -200_000, -300_000, -301_000, -3_600_000]);
  const ms = NOW - ago + Math.floor(rnd() * 1000);
  const d = new Date(ms);
  const base = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
  const time = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  const frac = pick(['', '', `.${pad(d.getUTCMilliseconds(), 3)}`, '.5', '.123456', '.123456789', '.1234567891']);
  const form = Math.floor(rnd() * 12);
  switch (form) {
    case 0:
      return isoAt(ms);
    case 1:
      return `${base} ${time}${frac}`;
    case 2:
      return `${base}T${time}${frac}Z`;
    case 3: {
      const off = pick(['+02:00', '-03:30', '+0530', '+00:00', '-0000', '+14:00', '+24:00', '+05:60', '+5:00']);
      return `${base}T${time}${frac}${off}`;
    }
    case 4:
      return `${base}t${time}z`;
    case 5:
      return pick([
        '2026-02-29T10:00:00Z',
        '2024-02-29T10:00:00Z',
        '2026-04-31T00:00:00Z',
        '2026-13-01T00:00:00Z',
        '2026-11-25T24:00:00Z',
        '2026-11-25T23:60:00Z',
        '2026-11-25T23:59:60Z',
        '0000-01-01T00:00:00Z',
        '0099-12-31T00:00:00Z',
      ]);
    case 6:
      return pick([
        'yesterday',
        '1764072000',
        '2026/11/25 10:00:00',
        '２０２６-11-25T10:00:00Z',
        ' 2026-11-25T10:00:00Z',
        '2026-11-25T10:00:00Z ',
        '2026-11-25',
      ]);
    default:
      return isoAt(ms);
  }
}

const PRICES = [
  '29.99',
  '0',
  '0.00',
  '-0',
  '-0.01',
  '-5',
  '12.345',
  '1e2',
  '1E-2',
  '.5',
  '5.',
  '+3.25',
  '99999999.99',
  '99999999.994',
  '99999999.995',
  '100000000',
  '-100000000',
  '1e8',
  '1e400',
  'abc',
  '1,5',
  ' 1.5',
  'NaN',
  'Infinity',
  '0x10',
  '١٢',
];
const TYPES = ['view', 'purchase', 'click', 'VIEW', ' view', 'view ', 'purchase\u00a0'];
const DEVICES = ['mobile', 'desktop', 'tablet', '', 'phone', 'Mobile', 'tablet '];
const IDS = Array.from({ length: 40 }, (_, i) => `00000000-0000-4000-a000-${String(i).padStart(12, '0')}`);
const TEXTS = [
  'Mouse',
  'Café crème',
  '',
  'a,b',
  'say "hi"',
  '\u{1F600}\u{1F600}',
  'x'.repeat(200),
  'x'.repeat(201),
  'é'.repeat(200),
  '\u{1F600}'.repeat(101),
  '\t tab',
  'back\\slash',
];

function quote(v: string): string {
  return /[",]/.test(v) || chance(0.1) ? `"${v.replace(/"/g, '""')}"` : v;
}

function randomFields(): string[] {
  const f = [
    chance(0.9) ? pick(IDS) : pick(['', 'x'.repeat(36), 'x'.repeat(37), 'ABC']),
    chance(0.95) ? `U${Math.floor(rnd() * 100)}` : pick(['', 'u'.repeat(51)]),
    chance(0.8) ? pick(TYPES.slice(0, 2)) : pick(TYPES),
    chance(0.95) ? `P${Math.floor(rnd() * 100)}` : '',
    chance(0.8) ? pick(TEXTS.slice(0, 2)) : pick(TEXTS),
    chance(0.9) ? pick(['Electronics', 'Books', 'Home & Kitchen']) : pick(['', 'c'.repeat(101)]),
    chance(0.7) ? pick(PRICES.slice(0, 2)) : pick(PRICES),
    chance(0.7) ? isoAt(NOW - Math.floor(rnd() * 3_600_000)) : randomTimestamp(),
    chance(0.9) ? `S${Math.floor(rnd() * 100)}` : pick(['', 's'.repeat(101)]),
    chance(0.8) ? pick(DEVICES.slice(0, 3)) : pick(DEVICES),
  ];
  if (chance(0.04)) f.splice(Math.floor(rnd() * f.length), 1);
  if (chance(0.04)) f.push('extra');
  return f;
}

function randomLine(): Buffer {
  const kind = rnd();
  let text: string;
  if (kind < 0.04) text = '';
  else if (kind < 0.07)
    text = pick(['"unterminated,a,b', 'a,b"c,d', 'a,"b"c,d', '"a""', ' "a",b', 'just one field', ',,,,,,,,,', '\u{1F6D2},"a""b', '\u{1F6D2}\u{1F6D2}x"y']);
  else text = randomFields().map(quote).join(',');
  let buf = Buffer.from(text, 'utf8');
  const r = rnd();
  if (r < 0.03) buf = Buffer.concat([buf, Buffer.from([0xff])]);
  else if (r < 0.05) buf = Buffer.concat([buf.subarray(0, Math.floor(buf.length / 2)), Buffer.from([0x00]), buf.subarray(Math.floor(buf.length / 2))]);
  else if (r < 0.06) buf = Buffer.concat([buf, Buffer.from([0xc3])]);
  else if (r < 0.07) buf = Buffer.concat([Buffer.from([0xed, 0xa0, 0x80]), buf]); // an encoded surrogate
  if (chance(0.1)) buf = Buffer.concat([buf, Buffer.from('\r')]);
  return buf;
}

function randomFile(): Buffer {
  if (chance(0.04)) return Buffer.alloc(0);
  const parts: Buffer[] = [];
  if (chance(0.1)) parts.push(Buffer.from([0xef, 0xbb, 0xbf]));
  if (chance(0.05)) parts.push(Buffer.from('\n'));
  const h = rnd();
  const crlf = chance(0.15);
  const nl = Buffer.from(crlf ? '\r\n' : '\n');
  if (h < 0.7) parts.push(Buffer.from(HEADER_LINE), nl);
  else if (h < 0.76) parts.push(Buffer.from(HEADER_LINE.split(',').join(' , ')), nl);
  else if (h < 0.8)
    parts.push(
      Buffer.from(
        HEADER_LINE.split(',')
          .map((c) => `"${c}"`)
          .join(','),
      ),
      nl,
    );
  else if (h < 0.86) parts.push(Buffer.from(HEADER_LINE.replace('user_id', pick(['user', 'USER_ID', 'user id', 'user-id']))), nl);
  else if (h < 0.88) parts.push(Buffer.from(HEADER_LINE.replace('device_type', 'device_type,extra')), nl);
  else if (h < 0.9) parts.push(Buffer.from([0xff]), Buffer.from(HEADER_LINE), nl);
  // else: no header, the first line is data
  const n = Math.floor(rnd() * 40);
  for (let i = 0; i < n; i++) parts.push(randomLine(), nl);
  if (chance(0.3) && parts.length) parts.pop(); // no newline after the last line
  return Buffer.concat(parts);
}

const key = (v: Verdict): string => `${v.file}\u0000${String(v.line).padStart(6, '0')}\u0000${v.reason ?? ''}`;

test('the TypeScript and Spark readers agree line by line on seeded random input', { skip: pythonMissing() }, async () => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ecomstream-diff-'));
  try {
    const files = writeFiles(
      dir,
      Array.from({ length: FILES }, (_, i) => ({ name: `events_${String(i).padStart(3, '0')}.csv`, content: randomFile() })),
    );

    const batch = [{ dir, files, batchTimestampMs: NOW }];
    const [{ verdicts: ts }, { verdicts: py }] = await Promise.all([runTypescript(batch), runPython(batch)]);

    // Notices carry no raw line in either engine; compare everything else.
    ts.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
    py.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
    const diffs: string[] = [];
    for (let i = 0; i < Math.max(ts.length, py.length) && diffs.length < 10; i++) {
      const a = JSON.stringify(ts[i] ?? null);
      const b = JSON.stringify(py[i] ?? null);
      if (a !== b) diffs.push(`#${i}\n  typescript: ${a}\n  spark:      ${b}`);
    }
    const reasons = new Set(py.map((v) => v.reason ?? 'valid'));
    assert.deepEqual(diffs, [], `seed ${SEED}: the readers differ`);
    assert.equal(py.length, ts.length);
    assert.ok(ts.length > 1000, `enough lines (${ts.length})`);
    assert.ok(reasons.size >= 15, `the input reaches most verdicts (${[...reasons].sort().join(', ')})`);
  } finally {
    if (!process.env.KEEP_TEST_OUTPUT) await fsp.rm(dir, { recursive: true, force: true });
  }
});
