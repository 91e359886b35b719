/**
 * The event generator: seeded factory, catalogue, bad-row injection, atomic publisher, runner and CLI.
 * Run alone: node --import tsx --test test/unit/generator.test.ts
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';
import { defaults, type GeneratorConfig } from '../../src/config.js';
import { COLUMNS, COLUMN_NAMES, DEVICE_TYPES, EVENT_TYPES, HEADER_LINE, PRODUCT_CATEGORIES, REASONS } from '../../src/contract/event.js';
import { CATALOG, CATALOG_SIZE, productById } from '../../src/generator/catalog.js';
import { EventFactory, INJECTED_REASONS, formatTimestamp, type ExpectedRejection, type GeneratedFile } from '../../src/generator/factory.js';
import { PUBLISHED_NAME, Publisher, TEMP_NAME, fileStamp, publishedName } from '../../src/generator/publish.js';
import { expectedRejections, runGenerator, type PublishedFile } from '../../src/generator/run.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const NOW = Date.UTC(2026, 10, 25, 17, 3, 4, 123);
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const ISO_MS_Z = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

let tmpRoot: string;
let dirCount = 0;
before(async () => {
  tmpRoot = await fsp.mkdtemp(path.join(os.tmpdir(), 'ecomstream-generator-test-'));
});
after(async () => {
  await fsp.rm(tmpRoot, { recursive: true, force: true });
});
function freshDir(): string {
  return path.join(tmpRoot, `out-${++dirCount}`);
}

function config(over: Partial<GeneratorConfig> = {}): GeneratorConfig {
  return { ...defaults().generator, intervalSeconds: 0, ...over };
}

const PERIOD_MS = 5000;
/** Files from one factory, `now` advancing 5 s per file and each file's events in the 5 s before it, as runGenerator does. */
function makeFiles(opts: ConstructorParameters<typeof EventFactory>[0], files: number, events: number, start = NOW): (GeneratedFile & { now: number })[] {
  const f = new EventFactory(opts);
  return Array.from({ length: files }, (_, i) => {
    const now = start + i * PERIOD_MS;
    return { ...f.generateFile(events, now, now - PERIOD_MS), now };
  });
}

interface Row {
  fields: string[];
  now: number;
}
function rowsOf(files: (GeneratedFile & { now: number })[]): Row[] {
  const rows: Row[] = [];
  for (const file of files) {
    const records = parse(file.content, { relax_column_count: false });
    assert.deepEqual(records[0], [...COLUMN_NAMES]);
    for (const fields of records.slice(1)) rows.push({ fields, now: file.now });
  }
  return rows;
}
const col = (name: string) => (COLUMN_NAMES as readonly string[]).indexOf(name);

/**
 * An independent judge of a line, written from the contract rather than from the generator: what reason
 * the engine must give, or 'ok'. `seen` carries valid event ids across the files of one run.
 */
function judge(lineBytes: Buffer, now: number, seen: Set<string>): string {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(lineBytes);
  } catch {
    return 'invalid_encoding';
  }
  let fields: string[];
  try {
    const rec = parse(text, { relax_column_count: true });
    fields = rec[0] ?? [];
  } catch {
    return 'malformed_csv';
  }
  if (fields.length !== COLUMN_NAMES.length) return 'wrong_column_count';
  for (const c of COLUMNS) if (c.required && fields[col(c.name)] === '') return 'missing_required';
  const get = (n: (typeof COLUMN_NAMES)[number]) => fields[col(n)]!;
  if (!(EVENT_TYPES as readonly string[]).includes(get('event_type'))) return 'invalid_event_type';
  if (get('device_type') !== '' && !(DEVICE_TYPES as readonly string[]).includes(get('device_type'))) return 'invalid_device_type';
  const price = get('price');
  if (price !== '') {
    if (!/^-?\d{1,8}(\.\d{1,2})?$/.test(price)) return 'invalid_price';
    if (Number(price) < 0) return 'negative_price';
  }
  const ts = Date.parse(get('event_timestamp'));
  if (!ISO_MS_Z.test(get('event_timestamp')) || Number.isNaN(ts)) return 'invalid_timestamp';
  if (ts < now - 24 * 3600_000) return 'stale_timestamp';
  if (ts > now + 300_000) return 'future_timestamp';
  for (const c of COLUMNS) if (c.length !== undefined && fields[col(c.name)]!.length > c.length) return 'field_too_long';
  if (seen.has(get('event_id'))) return 'duplicate_event_id';
  seen.add(get('event_id'));
  return 'ok';
}

/** Lines of a file as Buffers, header and the final empty piece dropped. */
function dataLines(content: Buffer): Buffer[] {
  const lines: Buffer[] = [];
  let start = 0;
  for (let i = content.indexOf(10); i !== -1; i = content.indexOf(10, start)) {
    lines.push(content.subarray(start, i));
    start = i + 1;
  }
  assert.equal(start, content.length, 'file ends with a line break');
  assert.equal(lines[0]?.toString(), HEADER_LINE);
  return lines.slice(1);
}

/** Checks every line of a run's files against the judge: bad rows exactly where `expected` says. */
function assertJudged(files: { content: Buffer; now: number; expected: readonly ExpectedRejection[] }[]): Map<string, number> {
  const seen = new Set<string>();
  const counts = new Map<string, number>();
  for (const [fi, file] of files.entries()) {
    const byLine = new Map(file.expected.map((e) => [e.line, e.reason]));
    const lines = dataLines(file.content);
    for (const [i, line] of lines.entries()) {
      const verdict = judge(line, file.now, seen);
      assert.equal(verdict, byLine.get(i + 2) ?? 'ok', `file ${fi + 1} line ${i + 2}: ${line.toString('latin1')}`);
      if (verdict === 'malformed_csv') assert.equal(i, lines.length - 1, 'an unterminated quote only on the last line');
      counts.set(verdict, (counts.get(verdict) ?? 0) + 1);
    }
  }
  return counts;
}

describe('catalogue', () => {
  test('200 products, 25 per category, unique ids and names, prices with two decimals', () => {
    assert.equal(CATALOG.length, CATALOG_SIZE);
    assert.equal(new Set(CATALOG.map((p) => p.id)).size, CATALOG_SIZE);
    assert.equal(new Set(CATALOG.map((p) => p.name)).size, CATALOG_SIZE);
    for (const c of PRODUCT_CATEGORIES) assert.equal(CATALOG.filter((p) => p.category === c).length, 25, c);
    for (const [i, p] of CATALOG.entries()) {
      assert.equal(p.id, `P${String(i + 1).padStart(5, '0')}`);
      assert.match(p.price, /^\d+\.\d{2}$/);
      assert.equal(Math.round(Number(p.price) * 100), p.priceCents);
      assert.ok(p.priceCents >= 100 && p.priceCents < 1_000_000, `${p.id} ${p.price}`);
      assert.match(p.name, /^[\x20-\x7e]+$/, 'names are printable ASCII');
      assert.ok(p.name.length <= 200);
      assert.equal(productById(p.id), p);
    }
    assert.equal(productById('P99999'), undefined);
  });

  test('prices are realistic per category', () => {
    const median = (c: string) => {
      const v = CATALOG.filter((p) => p.category === c)
        .map((p) => p.priceCents)
        .sort((a, b) => a - b);
      return v[12]! / 100;
    };
    assert.ok(median('Electronics') > median('Books') * 5, 'electronics cost more than books');
    assert.ok(median('Books') < 40);
    assert.ok(CATALOG.filter((p) => p.category === 'Books').every((p) => p.priceCents < 5000));
  });

  test('every event carries the catalogue name, category and price of its product, whatever the seed', () => {
    for (const seed of [1, 2, 99]) {
      for (const { fields } of rowsOf(makeFiles({ seed }, 3, 500))) {
        const p = productById(fields[col('product_id')]!);
        assert.ok(p, fields.join(','));
        assert.equal(fields[col('product_name')], p.name);
        assert.equal(fields[col('product_category')], p.category);
        assert.equal(fields[col('price')], p.price);
      }
    }
  });
});

describe('event factory', () => {
  test('view 85 % / purchase 15 % within 1 % over 100,000 events (and another share)', () => {
    for (const [seed, share] of [
      [1, 0.15],
      [2, 0.15],
      [3, 0.3],
    ] as const) {
      const rows = rowsOf(makeFiles({ seed, purchaseShare: share }, 10, 10_000));
      assert.equal(rows.length, 100_000);
      const purchases = rows.filter((r) => r.fields[col('event_type')] === 'purchase').length;
      assert.ok(Math.abs(purchases / rows.length - share) <= 0.01, `seed ${seed}: ${purchases} purchases`);
    }
  });

  test('device types mobile 55 / desktop 35 / tablet 10 by session', () => {
    const bySession = new Map<string, string>();
    for (const { fields } of rowsOf(makeFiles({ seed: 4 }, 10, 10_000))) bySession.set(fields[col('session_id')]!, fields[col('device_type')]!);
    const n = bySession.size;
    const share = (d: string) => [...bySession.values()].filter((v) => v === d).length / n;
    assert.ok(n > 5000);
    assert.ok(Math.abs(share('mobile') - 0.55) < 0.03, `mobile ${share('mobile')}`);
    assert.ok(Math.abs(share('desktop') - 0.35) < 0.03, `desktop ${share('desktop')}`);
    assert.ok(Math.abs(share('tablet') - 0.1) < 0.02, `tablet ${share('tablet')}`);
  });

  test('same seed and now give identical bytes; another seed gives other bytes', () => {
    const a = makeFiles({ seed: 42 }, 3, 200);
    const b = makeFiles({ seed: 42 }, 3, 200);
    const c = makeFiles({ seed: 43 }, 3, 200);
    for (let i = 0; i < 3; i++) {
      assert.ok(a[i]!.content.equals(b[i]!.content), `file ${i}`);
      assert.ok(!a[i]!.content.equals(c[i]!.content), `file ${i}`);
    }
    assert.equal(typeof new EventFactory().seed, 'number', 'a random seed is reported');
  });

  test('the seeded output is pinned: these bytes change only with a deliberate change of the generator', () => {
    // Benchmarks and fault tests compare runs of the same seed across commits. A deliberate change
    // updates these digests in the same commit and says so.
    const digest = (opts: ConstructorParameters<typeof EventFactory>[0]): string => {
      const h = crypto.createHash('sha256');
      for (const f of makeFiles(opts, 4, 300)) h.update(f.content).update(JSON.stringify(f.expected));
      return h.digest('hex');
    };
    assert.equal(digest({ seed: 42 }), '4b2152baaa95935d08e4fe362cfa08c1aaf53c074800f6fdf9e6065afca36663');
    assert.equal(digest({ seed: 9, invalidRate: 1 }), '97de1d458695276192081e7b414cc564ccc07f5320f54e477609a2f68c4edea4');
    assert.equal(digest({ seed: 11, invalidRate: 0.2 }), '9f7d859185a4a169f8b3c034fd87cc973ee5f1d7cb14bf053c76c41bf25dfed0');
  });

  test('with invalidRate 0 every event is valid per the contract', () => {
    const files = makeFiles({ seed: 5 }, 20, 1000);
    const ids = new Set<string>();
    for (const file of files) {
      assert.deepEqual(file.expected, []);
      const text = file.content.toString('utf8');
      assert.ok(text.startsWith(`${HEADER_LINE}\n`));
      assert.ok(!text.includes('\r'));
    }
    for (const { fields, now } of rowsOf(files)) {
      assert.equal(fields.length, 10);
      const get = (n: (typeof COLUMN_NAMES)[number]) => fields[col(n)]!;
      assert.match(get('event_id'), UUID_V4);
      ids.add(get('event_id'));
      assert.match(get('user_id'), /^U\d{6}$/);
      assert.ok((EVENT_TYPES as readonly string[]).includes(get('event_type')));
      assert.match(get('product_id'), /^P\d{5}$/);
      assert.ok((PRODUCT_CATEGORIES as readonly string[]).includes(get('product_category')));
      assert.match(get('price'), /^\d+\.\d{2}$/);
      assert.match(get('event_timestamp'), ISO_MS_Z);
      const t = Date.parse(get('event_timestamp'));
      assert.ok(t <= now, `${get('event_timestamp')} is after now`);
      assert.ok(t >= now - PERIOD_MS, `${get('event_timestamp')} is before the file's window`);
      assert.match(get('session_id'), /^S[0-9a-f]{16}$/);
      assert.ok((DEVICE_TYPES as readonly string[]).includes(get('device_type')));
      for (const c of COLUMNS) {
        assert.ok(c.required ? fields[col(c.name)] !== '' : true, c.name);
        if (c.length !== undefined) assert.ok(fields[col(c.name)]!.length <= c.length, c.name);
      }
    }
    assert.equal(ids.size, 20_000, 'event ids are unique');
  });

  test('sessions: one user and one device, several events, timestamps never go back, sessions interleave', () => {
    const rows = rowsOf(makeFiles({ seed: 6 }, 10, 1000));
    const sessions = new Map<string, { user: string; device: string; events: number; last: number; firstRow: number; lastRow: number }>();
    for (const [i, { fields }] of rows.entries()) {
      const id = fields[col('session_id')]!;
      const t = Date.parse(fields[col('event_timestamp')]!);
      const s = sessions.get(id);
      if (!s) {
        sessions.set(id, { user: fields[col('user_id')]!, device: fields[col('device_type')]!, events: 1, last: t, firstRow: i, lastRow: i });
        continue;
      }
      assert.equal(fields[col('user_id')], s.user);
      assert.equal(fields[col('device_type')], s.device);
      assert.ok(t >= s.last, `session ${id} went back in time`);
      s.events++;
      s.last = t;
      s.lastRow = i;
    }
    const all = [...sessions.values()];
    const mean = rows.length / all.length;
    assert.ok(mean > 3 && mean < 12, `mean session length ${mean}`);
    assert.ok(all.filter((s) => s.lastRow - s.firstRow > s.events).length > all.length / 2, 'sessions interleave');
  });

  test('timestamps: the moment each event happened, spread over the window since the previous file, in row order', () => {
    const f = new EventFactory({ seed: 11 });
    const stamps = (file: GeneratedFile) => rowsOf([{ ...file, now: 0 }]).map((r) => Date.parse(r.fields[col('event_timestamp')]!));
    let previous = -Infinity;
    for (let i = 0; i < 20; i++) {
      const now = NOW + i * PERIOD_MS;
      const t = stamps(f.generateFile(1000, now, now - PERIOD_MS));
      for (const [k, v] of t.entries()) {
        assert.ok(v >= now - PERIOD_MS && v <= now, `row ${k} at ${v - now} ms`);
        assert.ok(v >= previous, `row ${k} earlier than the row before`);
        previous = v;
      }
      // 1000 rows in equal slices of 5 s: the first in the first 5 ms, the last in the last 5 ms, mean age 2.5 s.
      assert.ok(t[0]! - (now - PERIOD_MS) <= 5 && now - t[999]! <= 5, `first ${t[0]! - now}, last ${t[999]! - now}`);
      const meanAge = t.reduce((a, v) => a + (now - v), 0) / t.length;
      assert.ok(Math.abs(meanAge - PERIOD_MS / 2) < 50, `mean age ${meanAge} ms`);
    }
  });

  test('timestamps: never before the previous file nor after now; since defaults to now (the moment of writing)', () => {
    const f = new EventFactory({ seed: 12 });
    const stampsOf = (file: GeneratedFile) => new Set(rowsOf([{ ...file, now: 0 }]).map((r) => Date.parse(r.fields[col('event_timestamp')]!)));
    assert.deepEqual(stampsOf(f.generateFile(50, NOW)), new Set([NOW]), 'no since: all at now');
    // A window reaching back before the previous file is cut at the previous file's moment.
    const t = [...stampsOf(f.generateFile(200, NOW + 1000, NOW - 60_000))];
    assert.ok(
      t.every((v) => v >= NOW && v <= NOW + 1000),
      `${Math.min(...t) - NOW}..${Math.max(...t) - NOW}`,
    );
    // A since after now is no licence for the future.
    assert.deepEqual(stampsOf(f.generateFile(20, NOW + 2000, NOW + 9000)), new Set([NOW + 2000]));
    assert.throws(() => f.generateFile(1, NOW, Number.NaN), RangeError);
  });

  test('purchases are only of products the same session viewed before', () => {
    const viewed = new Map<string, Set<string>>();
    let purchases = 0;
    for (const { fields } of rowsOf(makeFiles({ seed: 7 }, 10, 5000))) {
      const s = fields[col('session_id')]!;
      const p = fields[col('product_id')]!;
      const set = viewed.get(s) ?? new Set<string>();
      viewed.set(s, set);
      if (fields[col('event_type')] === 'view') set.add(p);
      else {
        purchases++;
        assert.ok(set.has(p), `session ${s} bought ${p} without viewing it`);
      }
    }
    assert.ok(purchases > 5000);
  });

  test('event ids are UUID v4 and unique over 100,000 events', () => {
    const ids = new Set<string>();
    for (const { fields } of rowsOf(makeFiles({ seed: 8 }, 10, 10_000))) {
      assert.match(fields[0]!, UUID_V4);
      ids.add(fields[0]!);
    }
    assert.equal(ids.size, 100_000);
  });

  test('timestamps format like toISOString', () => {
    let ms = NOW - 5 * 60_000;
    for (let i = 0; i < 20_000; i++) {
      ms += (i * 7919) % 997;
      assert.equal(formatTimestamp(ms), new Date(ms).toISOString());
    }
    for (const edge of [Date.UTC(2026, 11, 31, 23, 59, 59, 999), Date.UTC(2027, 0, 1), Date.UTC(2028, 1, 29, 12)]) {
      assert.equal(formatTimestamp(edge), new Date(edge).toISOString());
    }
  });
});

describe('bad rows', () => {
  test('invalidRate 1 produces every row-level reason, each row exactly as the contract judges it', () => {
    const files = makeFiles({ seed: 9, invalidRate: 1 }, 4, 30);
    const counts = assertJudged(files);
    for (const reason of INJECTED_REASONS) {
      assert.ok(reason in REASONS, reason);
      assert.ok((counts.get(reason) ?? 0) > 0, `no ${reason} row`);
    }
    // Only the originals that duplicate_event_id needs are valid.
    assert.ok((counts.get('ok') ?? 0) <= 1, `${counts.get('ok')} valid rows`);
    const expected = files.flatMap((f) => f.expected);
    const missing = files.flatMap((f) => dataLines(f.content)).filter((l) => judge(l, NOW, new Set()) === 'missing_required');
    assert.ok(missing.length >= 5);
    assert.ok(expected.every((e) => e.line >= 2));
    assert.ok(
      files.flatMap((f) => dataLines(f.content)).some((l) => l.includes(0xe9)),
      'a Latin-1 byte is written',
    );
  });

  test("missing_required rows empty the contract's required columns, each in turn", () => {
    const emptied = new Set<string>();
    for (const f of makeFiles({ seed: 9, invalidRate: 1 }, 4, 60)) {
      for (const line of dataLines(f.content)) {
        if (judge(line, f.now, new Set()) !== 'missing_required') continue;
        const fields = parse(line)[0]!;
        for (const c of COLUMNS) if (fields[col(c.name)] === '') emptied.add(c.name);
      }
    }
    assert.deepEqual(
      [...emptied].sort(),
      COLUMNS.filter((c) => c.required)
        .map((c) => c.name)
        .sort(),
    );
  });

  test('a low invalid rate: bad rows of every kind over a longer run, duplicates also across files', () => {
    const files = makeFiles({ seed: 10, invalidRate: 0.05 }, 40, 100);
    const counts = assertJudged(files);
    const bad = [...counts].filter(([k]) => k !== 'ok').reduce((a, [, v]) => a + v, 0);
    assert.ok(bad / 4000 > 0.03 && bad / 4000 < 0.08, `${bad} bad rows of 4000`);
    for (const reason of INJECTED_REASONS) assert.ok((counts.get(reason) ?? 0) > 0, `no ${reason} row`);
    // A duplicate whose original is in an earlier file.
    const firstFileOf = new Map<string, number>();
    let crossFile = 0;
    for (const [i, f] of files.entries()) {
      for (const line of dataLines(f.content)) {
        const id = line.toString('latin1').split(',')[0]!;
        if (!firstFileOf.has(id)) firstFileOf.set(id, i);
      }
      for (const e of f.expected) if (e.reason === 'duplicate_event_id' && firstFileOf.get(e.eventId)! < i) crossFile++;
    }
    assert.ok(crossFile > 0, 'no duplicate of an earlier file');
  });

  test('purchase share and session rules still hold for the valid rows when bad rows are mixed in', () => {
    const files = makeFiles({ seed: 11, invalidRate: 0.2 }, 10, 2000);
    const seen = new Set<string>();
    const viewed = new Map<string, Set<string>>();
    let valid = 0;
    let purchases = 0;
    for (const f of files) {
      for (const line of dataLines(f.content)) {
        if (judge(line, f.now, seen) !== 'ok') continue;
        const fields = parse(line)[0]!;
        valid++;
        const set = viewed.get(fields[col('session_id')]!) ?? new Set<string>();
        viewed.set(fields[col('session_id')]!, set);
        if (fields[col('event_type')] === 'view') set.add(fields[col('product_id')]!);
        else {
          purchases++;
          assert.ok(set.has(fields[col('product_id')]!));
        }
      }
    }
    assert.ok(Math.abs(purchases / valid - 0.15) <= 0.01, `${purchases}/${valid}`);
  });
});

describe('publisher', () => {
  test('file names: UTC stamp of publishing and N', () => {
    assert.equal(fileStamp(NOW), '20261125_170304');
    assert.equal(publishedName('20261125_170304', 3), 'events_20261125_170304_3.csv');
    assert.match(publishedName(fileStamp(NOW), 12), PUBLISHED_NAME);
  });

  test('a clash with an existing file takes the next N and leaves the existing file alone', async () => {
    const dir = freshDir();
    await fsp.mkdir(dir, { recursive: true });
    const taken = path.join(dir, publishedName(fileStamp(NOW), 1));
    await fsp.writeFile(taken, 'not ours\n');
    const pub = new Publisher(dir);
    const a = await pub.publish(Buffer.from('a\n'), NOW);
    const b = await pub.publish(Buffer.from('b\n'), NOW);
    assert.equal(a.name, 'events_20261125_170304_2.csv');
    assert.equal(b.name, 'events_20261125_170304_3.csv');
    assert.equal(await fsp.readFile(taken, 'utf8'), 'not ours\n');
    assert.equal(await fsp.readFile(a.path, 'utf8'), 'a\n');
    // Another second starts again at 1; a second publisher in the same second probes past the taken names.
    assert.equal((await pub.publish(Buffer.from('c\n'), NOW + 1000)).name, 'events_20261125_170305_1.csv');
    assert.equal((await new Publisher(dir).publish(Buffer.from('d\n'), NOW)).name, 'events_20261125_170304_4.csv');
    assert.deepEqual(
      (await fsp.readdir(dir)).filter((n) => TEMP_NAME.test(n) || n.startsWith('.')),
      [],
    );
  });

  test('creates a missing output folder', async () => {
    const dir = path.join(freshDir(), 'deep', 'er');
    const r = await runGenerator({ outDir: dir, config: config({ files: 1, seed: 1 }), now: () => NOW });
    assert.equal(r.files, 1);
    assert.deepEqual(await fsp.readdir(dir), ['events_20261125_170304_1.csv']);
  });
});

describe('runGenerator', () => {
  test('same seed and now: the same names and bytes; another seed: other bytes', async () => {
    const dirs = [freshDir(), freshDir(), freshDir()];
    const seeds = [21, 21, 22];
    for (const [i, dir] of dirs.entries()) {
      let t = NOW;
      await runGenerator({ outDir: dir, config: config({ files: 4, eventsPerFile: 50, seed: seeds[i] }), now: () => (t += 700) });
    }
    const read = async (dir: string) => Promise.all((await fsp.readdir(dir)).sort().map(async (n) => [n, await fsp.readFile(path.join(dir, n))] as const));
    const [a, b, c] = await Promise.all(dirs.map(read));
    assert.equal(a!.length, 4);
    assert.deepEqual(
      a!.map(([n]) => n),
      b!.map(([n]) => n),
    );
    for (let i = 0; i < 4; i++) {
      assert.ok(a![i]![1].equals(b![i]![1]));
      assert.ok(!a![i]![1].equals(c![i]![1]));
    }
  });

  test('reports each file and the totals; expectedRejections gives the bad rows of a file', async () => {
    const dir = freshDir();
    const seen: PublishedFile[] = [];
    const r = await runGenerator({
      outDir: dir,
      config: config({ files: 5, eventsPerFile: 40, seed: 3, invalidRate: 0.3 }),
      now: () => NOW,
      onFile: (f) => seen.push(f),
    });
    assert.deepEqual(r, { files: 5, events: 200 });
    assert.deepEqual(
      seen.map((f) => f.index),
      [1, 2, 3, 4, 5],
    );
    const judged: { content: Buffer; now: number; expected: readonly ExpectedRejection[] }[] = [];
    for (const f of seen) {
      assert.equal(f.events, 40);
      assert.equal(path.basename(f.path), f.name);
      assert.match(f.name, PUBLISHED_NAME);
      const content = await fsp.readFile(f.path);
      assert.equal(content.length, f.bytes);
      judged.push({ content, now: NOW, expected: expectedRejections(f) });
    }
    assert.ok(judged.some((j) => j.expected.length > 0));
    assertJudged(judged);
    assert.deepEqual(expectedRejections({ path: '', name: '', events: 0, index: 0, bytes: 0 }), []);
  });

  test('two concurrent runs into one folder: every file published, none overwritten, no partial .csv ever visible', async () => {
    const dir = freshDir();
    await fsp.mkdir(dir, { recursive: true });
    const perRun = 40;
    const events = 50;
    let running = true;
    let checks = 0;
    const checked = new Set<string>();
    // Watches the folder while both runs publish: any *.csv it can see must already be complete.
    const watcher = (async () => {
      // Cleared once both runs are done, while this loop awaits; TypeScript's narrowing does not see that.
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
      while (running) {
        for (const name of await fsp.readdir(dir)) {
          if (!name.endsWith('.csv')) continue;
          assert.match(name, PUBLISHED_NAME);
          if (checked.has(name)) continue;
          const content = await fsp.readFile(path.join(dir, name), 'utf8');
          assert.equal(content.split('\n').length, events + 2, `${name} is incomplete`);
          assert.ok(content.endsWith('\n'));
          checked.add(name);
          checks++;
        }
        await new Promise((r) => setImmediate(r));
      }
    })();
    // A fixed clock puts every file of both runs in the same second: the worst case for name clashes.
    const runs = await Promise.all(
      [31, 32].map((seed) => runGenerator({ outDir: dir, config: config({ files: perRun, eventsPerFile: events, seed }), now: () => NOW })),
    );
    running = false;
    await watcher;
    assert.deepEqual(runs, [
      { files: perRun, events: perRun * events },
      { files: perRun, events: perRun * events },
    ]);
    const names = await fsp.readdir(dir);
    assert.equal(names.length, 2 * perRun, `left: ${names.filter((n) => !n.endsWith('.csv')).join(' ')}`);
    assert.deepEqual(
      names.map((n) => Number(/_(\d+)\.csv$/.exec(n)?.[1])).sort((a, b) => a - b),
      Array.from({ length: 2 * perRun }, (_, i) => i + 1),
    );
    const ids = new Set<string>();
    for (const n of names) for (const line of (await fsp.readFile(path.join(dir, n), 'utf8')).trim().split('\n').slice(1)) ids.add(line.slice(0, 36));
    assert.equal(ids.size, 2 * perRun * events, 'no file was overwritten');
    assert.ok(checks > 0);
  });

  test('abort: during an unpaced run, during the wait, and before the start; no temp file left', async () => {
    const dir = freshDir();
    const ac = new AbortController();
    const r = await runGenerator({
      outDir: dir,
      config: config({ files: 0, eventsPerFile: 100, seed: 1 }),
      signal: ac.signal,
      onFile: (f) => f.index === 7 && ac.abort(),
    });
    assert.deepEqual(r, { files: 7, events: 700 });
    assert.equal((await fsp.readdir(dir)).length, 7);

    const dir2 = freshDir();
    const ac2 = new AbortController();
    const t0 = performance.now();
    setTimeout(() => ac2.abort(), 100);
    const r2 = await runGenerator({ outDir: dir2, config: config({ files: 5, intervalSeconds: 30, seed: 1 }), signal: ac2.signal });
    assert.deepEqual(r2, { files: 1, events: 10 });
    assert.ok(performance.now() - t0 < 2000, 'the wait is interrupted');
    assert.deepEqual(
      (await fsp.readdir(dir2)).filter((n) => !PUBLISHED_NAME.test(n)),
      [],
    );

    const dir3 = freshDir();
    const r3 = await runGenerator({ outDir: dir3, config: config({ files: 5, seed: 1 }), signal: AbortSignal.abort() });
    assert.deepEqual(r3, { files: 0, events: 0 });

    // Abort at random moments of many short runs: whatever the moment, nothing but published files remain.
    const dir4 = freshDir();
    let total = 0;
    for (let i = 0; i < 20; i++) {
      const ac4 = new AbortController();
      setTimeout(() => ac4.abort(), i % 5);
      total += (await runGenerator({ outDir: dir4, config: config({ files: 0, eventsPerFile: 500, seed: i }), signal: ac4.signal })).files;
    }
    const left = await fsp.readdir(dir4).catch(() => []);
    assert.equal(left.length, total);
    assert.ok(left.every((n) => PUBLISHED_NAME.test(n)));
  });

  test('rate paces by events per second on a steady schedule; interval spaces files', async () => {
    const stamps: number[] = [];
    const t0 = performance.now();
    // 10 events per file at 400 events/s: a file every 25 ms, 9 gaps = 225 ms.
    await runGenerator({
      outDir: freshDir(),
      config: config({ files: 10, eventsPerFile: 10, rate: 400, intervalSeconds: 60 }),
      onFile: () => stamps.push(performance.now() - t0),
    });
    assert.equal(stamps.length, 10);
    assert.ok(stamps[0]! < 150, 'the first file is written at once');
    // The schedule runs from the start, not from the first file (which may publish late on a busy machine).
    const total = stamps[9]!;
    assert.ok(total >= 215 && total < 1500, `10 files took ${total} ms from the start`);
    for (let k = 1; k < 10; k++) assert.ok(stamps[k]! >= k * 25 - 5, `file ${k} early at ${stamps[k]} ms`);

    const s2: number[] = [];
    const t1 = performance.now();
    await runGenerator({ outDir: freshDir(), config: config({ files: 3, intervalSeconds: 0.1 }), onFile: () => s2.push(performance.now() - t1) });
    assert.ok(s2[2]! >= 195 && s2[2]! < 1500, `3 files at 0.1 s took ${s2[2]} ms`);
  });

  test('timestamps: paced, each file since the previous one (the first: one period before); unpaced, the moment of writing', async () => {
    const stampsIn = async (dir: string) => {
      const out: number[][] = [];
      for (const n of (await fsp.readdir(dir)).sort()) {
        const records = parse(await fsp.readFile(path.join(dir, n)), {});
        out.push(records.slice(1).map((r) => Date.parse(r[col('event_timestamp')]!)));
      }
      return out;
    };
    /** A clock moving `step` ms per call; runGenerator reads it once to make a file (kept in `made`) and once to publish it. */
    const recordingClock = (step: number) => {
      const made: number[] = [];
      let t = NOW;
      let calls = 0;
      const clock = () => {
        t += step;
        if (calls++ % 2 === 0) made.push(t);
        return t;
      };
      return { made, clock };
    };
    for (const [over, periodMs] of [
      [{ intervalSeconds: 0.02 }, 20],
      [{ rate: 2000 }, 50],
    ] as const) {
      const dir = freshDir();
      const { made, clock } = recordingClock(3000);
      await runGenerator({ outDir: dir, config: config({ files: 3, eventsPerFile: 100, seed: 13, ...over }), now: clock });
      const files = await stampsIn(dir);
      assert.equal(files.length, 3);
      for (const [k, stamps] of files.entries()) {
        const since = k === 0 ? made[0]! - periodMs : made[k - 1]!;
        assert.ok(
          stamps.every((v) => v >= since && v <= made[k]!),
          `file ${k + 1}: ${Math.min(...stamps) - since}..${Math.max(...stamps) - made[k]!}`,
        );
        assert.ok(Math.max(...stamps) - Math.min(...stamps) > (made[k]! - since) / 2, `file ${k + 1} spreads over its window`);
      }
    }
    const dir = freshDir();
    const { made, clock } = recordingClock(700);
    await runGenerator({ outDir: dir, config: config({ files: 3, eventsPerFile: 20, seed: 14 }), now: clock });
    assert.deepEqual(
      (await stampsIn(dir)).map((s) => [...new Set(s)]),
      made.map((m) => [m]),
    );
  });

  test('out-of-range settings are refused with the field named', async () => {
    const dir = freshDir();
    await assert.rejects(runGenerator({ outDir: dir, config: config({ eventsPerFile: 0 }) }), /generator\.eventsPerFile/);
    await assert.rejects(runGenerator({ outDir: dir, config: config({ invalidRate: 1.5 }) }), /generator\.invalidRate/);
    await assert.rejects(runGenerator({ outDir: dir, config: config({ rate: -1 }) }), /generator\.rate/);
    await assert.rejects(runGenerator({ outDir: dir, config: config({ files: 1.5 }) }), /generator\.files/);
    assert.equal(fs.existsSync(dir), false, 'nothing written');
  });
});

describe('generate CLI (subprocess)', () => {
  const script = [
    "import { Command } from 'commander';",
    "import { register } from './src/cli/generate.ts';",
    "const p = new Command('ecomstream').exitOverride();",
    'register(p);',
    'for (const c of p.commands) c.exitOverride();',
    "try { await p.parseAsync(process.argv.slice(1), { from: 'user' }); } catch (e) { process.exitCode = e.exitCode ?? 1; }",
  ].join('\n');

  function cli(args: string[], onStdout?: (text: string, child: ReturnType<typeof spawn>) => void) {
    return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, ...args], {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        onStdout?.(stdout, child);
      });
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  }

  test('writes the files with one plain line per file, names the bad flag, and stops cleanly on SIGINT', async () => {
    const dir = freshDir();
    const ok = await cli(['generate', '--out', dir, '--files', '3', '--events-per-file', '5', '--interval', '0', '--seed', '1']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout.match(/published events_\d{8}_\d{6}_\d+\.csv \(5 events\)/g)?.length, 3, ok.stdout);
    assert.match(ok.stdout, /seed 1/);
    assert.equal((await fsp.readdir(dir)).length, 3);

    const help = await cli(['generate', '--help']);
    assert.equal(help.code, 0);
    for (const flag of ['--out', '--files', '--events-per-file', '--interval', '--seed', '--invalid-rate', '--rate'])
      assert.ok(help.stdout.includes(flag), flag);
    assert.match(help.stdout, /\(default: 10\)/);
    assert.match(help.stdout, /data\/input/);

    const bad = await cli(['generate', '--out', dir, '--invalid-rate', '1.5']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--invalid-rate/);

    const dir2 = freshDir();
    let sent = false;
    const stopped = await cli(['generate', '--out', dir2, '--files', '0', '--interval', '0.05'], (out, child) => {
      if (!sent && (out.match(/published/g)?.length ?? 0) >= 2) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.match(stopped.stdout, /stopped: wrote \d+ files/);
    const written = Number(/wrote (\d+) files/.exec(stopped.stdout)?.[1]);
    const names = await fsp.readdir(dir2);
    assert.equal(names.length, written);
    assert.ok(names.every((n) => PUBLISHED_NAME.test(n)));
  });
});
