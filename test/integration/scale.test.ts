/**
 * Regression tests of issue 18, items 3, 6 and 7 (memory flat at any batch size, symlinks that point out
 * of the input folder, a backlog's cost per batch), against a real PostgreSQL. Each fails without its fix.
 * Nothing here is timed: memory is counted in the key set's bytes, cost in operations.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { loadConfig, type DeepPartial, type EngineConfig } from '../../src/config.js';
import type { FileEntry } from '../../src/checkpoint/checkpoint.js';
import type { BatchCommitted } from '../../src/engine/observer.js';
import { StreamEngine } from '../../src/engine/stream.js';
import { silentLogger } from '../../src/log.js';
import { query as q, startTestDb, type TestDb } from '../support/pg.js';
import { csv, publish, row, tempDir } from '../support/files.js';

let db: TestDb;
before(async () => {
  db = await startTestDb();
});
after(async () => {
  await (db as TestDb | undefined)?.close(); // undefined when before() failed
});

interface Run {
  url: string;
  batches: BatchCommitted[];
}

async function runEngine(url: string, dir: string, over: DeepPartial<EngineConfig>, reprocess?: FileEntry[]): Promise<Run> {
  const config = loadConfig({
    engine: {
      inputDir: path.join(dir, 'in'),
      checkpointDir: path.join(dir, `ck-${url.slice(url.lastIndexOf('/') + 1)}`),
      progressFile: path.join(dir, 'progress.jsonl'),
      trigger: { kind: 'available-now' },
      fileSettleMillis: 0,
      ...over,
    },
  });
  const batches: BatchCommitted[] = [];
  await new StreamEngine({ engine: config.engine, databaseUrl: url, log: silentLogger, observer: { batchCommitted: (b) => batches.push(b) }, reprocess }).run();
  return { url, batches };
}

/** Everything a batch decides, in a form two databases can be compared by. */
async function outcome(url: string): Promise<unknown> {
  return {
    events: await q(url, 'SELECT event_id, product_name, price::text, session_id FROM user_events ORDER BY event_id'),
    rejects: await q(
      url,
      // A refused row's detail quotes its serial id and insert time, which differ between two databases.
      `SELECT batch_id, source_file, line_number, raw_line, reason, regexp_replace(detail, 'Failing row contains .*', '') AS detail
       FROM rejected_events ORDER BY batch_id, source_file, line_number, reason`,
    ),
    batches: await q(
      url,
      'SELECT batch_id, input_rows, inserted_rows, duplicate_rows, rejected_rows, quality_score::text FROM stream_batches ORDER BY batch_id',
    ),
  };
}

describe('3. the in-batch duplicate check within a fixed memory budget', () => {
  /**
   * 300 new ids in two files, then repeats of ids a 64-key set holds (0-2 and 250-251: the first keys of
   * each batch), of ids it cannot hold (290, 299), of a stored id and of an id that is no UUID.
   */
  async function input(dir: string): Promise<void> {
    const inDir = path.join(dir, 'in');
    const stored = Array.from({ length: 5 }, () => crypto.randomUUID());
    await publish(inDir, 'events_0.csv', csv(...stored.map((event_id) => row({ event_id, product_name: 'stored' }))));
    const ids = Array.from({ length: 300 }, () => crypto.randomUUID());
    // Quality varies (empty optional fields), so a wrong count of valid rows changes the batch's score.
    const session = (i: number): string => (i === 299 ? 'longer session' : i % 3 ? `S${i}` : '');
    const first = ids.map((event_id, i) => row({ event_id, product_name: `first ${i}`, session_id: session(i) }));
    const repeats = [
      ...[0, 1, 2].map((i) => row({ event_id: ids[i]!, product_name: `early repeat ${i}` })),
      ...[250, 251, 299, 250, 290].map((i, n) => row({ event_id: ids[i]!, product_name: `late repeat ${n}`, session_id: session(i) })),
      row({ event_id: stored[0]!, product_name: 'stored repeat' }),
      row({ event_id: 'not-a-uuid-1', product_name: 'other key' }),
      row({ event_id: 'not-a-uuid-1', product_name: 'other key repeat' }),
      row({ event_type: 'bogus' }),
    ];
    await publish(inDir, 'events_1.csv', csv(...first.slice(0, 200)));
    await publish(inDir, 'events_2.csv', csv(...first.slice(200), ...repeats));
  }

  async function compare(setup?: (url: string) => Promise<void>, over: DeepPartial<EngineConfig> = {}): Promise<Run> {
    const dir = await tempDir();
    await input(dir);
    const unbounded = await db.freshDatabase();
    const bounded = await db.freshDatabase();
    await setup?.(unbounded);
    await setup?.(bounded);
    await runEngine(unbounded, dir, { maxFilesPerTrigger: 1, keySetBytes: Infinity, ...over });
    const small = await runEngine(bounded, dir, { maxFilesPerTrigger: 1, keySetBytes: 2048, ...over });
    assert.deepEqual(await outcome(bounded), await outcome(unbounded));
    // And reprocessing the two files on purpose: in-batch repeats are duplicates, stored rows already present.
    const files = small.batches.slice(1).flatMap((b) => b.files.map((f) => ({ name: f.name, size: f.size, mtimeMs: f.mtimeMs })));
    await runEngine(unbounded, dir, { keySetBytes: Infinity, ...over }, files);
    const again = await runEngine(bounded, dir, { keySetBytes: 2048, ...over }, files);
    assert.deepEqual(await outcome(bounded), await outcome(unbounded));
    const batches = [...small.batches, ...again.batches];
    for (const b of batches) assert.ok(b.keySet.peakBytes <= 2048, `key set peak ${b.keySet.peakBytes} bytes`);
    return { url: bounded, batches };
  }

  test('a key set of 2 KiB gives every row the outcome an unbounded one gives, and never holds more', async () => {
    const { batches } = await compare();
    // events_1.csv (200 new keys) and events_2.csv (100 new keys and their repeats), then both reprocessed.
    assert.deepEqual(
      batches.map((b) => [b.keySet.uncheckedKeys > 0, b.record.usedFallback]),
      [
        [false, false],
        [true, false],
        [true, true],
        [true, true],
      ],
      'the key set was full past its 64th key; the repeats it could not see were found in SQL',
    );
  });

  test('the same when the server refuses rows: the first occurrence of a key wins even when it is refused', async () => {
    await compare(async (url) => {
      // Both keys are past the set's 64. 290: refused by a CHECK, its repeat is not. 299: its long session
      // id is refused already by the COPY into the staging table, and so is its repeat's.
      await q(url, "ALTER TABLE user_events ADD CONSTRAINT test_refused CHECK (product_name <> 'first 290')");
      await q(url, 'ALTER TABLE user_events ALTER COLUMN session_id TYPE VARCHAR(5)');
    });
  });
});

describe('7. a backlog costs each batch the same, however long it is', () => {
  /** Planning and bookkeeping work per batch over a backlog of `files` 10-row files, one per batch. */
  async function perBatch(files: number): Promise<Record<string, number>> {
    const url = await db.freshDatabase();
    const dir = await tempDir();
    for (let i = 0; i < files; i++)
      await publish(path.join(dir, 'in'), `events_${String(i).padStart(4, '0')}.csv`, csv(...Array.from({ length: 10 }, () => row())));
    const { batches } = await runEngine(url, dir, { maxFilesPerTrigger: 1 });
    assert.equal(batches.length, files);
    const work = batches[batches.length - 1]!.work;
    return Object.fromEntries(Object.entries(work).map(([k, v]) => [k, v / files]));
  }

  test('4x the backlog: at most 1.3x the listings, entries listed, stat calls, files queued and seen-log bytes per batch', async () => {
    const small = await perBatch(40);
    const large = await perBatch(160);
    for (const [what, n] of Object.entries(large)) assert.ok(n <= 1.3 * small[what]! + 1e-9, `${what} per batch: ${small[what]} at 40 files, ${n} at 160`);
    assert.ok(large.seenLogBytes! > 0 && large.statCalls! > 0, 'the counters count');
  });
});

describe('6. a symlink to a file outside the input folder', () => {
  test('is read, by absolute or relative path, through a chain of links, on another file system, and when it appears while the engine runs', async () => {
    const url = await db.freshDatabase();
    const dir = await tempDir();
    const input = path.join(dir, 'in');
    const other = path.join(dir, 'other');
    const elsewhere = await tempDir(); // a folder outside `dir`; /dev/shm when there, another file system
    const shm = fs.existsSync('/dev/shm') ? await fsp.mkdtemp('/dev/shm/ecomstream-test-') : elsewhere;
    await fsp.mkdir(input);
    await publish(other, 'outside.csv', csv(...Array.from({ length: 3 }, () => row())));
    await publish(other, 'relative.data', csv(...Array.from({ length: 4 }, () => row())));
    await publish(other, 'chained.csv', csv(...Array.from({ length: 5 }, () => row())));
    await fsp.symlink(path.join(other, 'chained.csv'), path.join(elsewhere, 'hop.csv'));
    await publish(shm, 'shm.csv', csv(...Array.from({ length: 6 }, () => row())));
    await fsp.symlink(path.join(other, 'outside.csv'), path.join(input, 'link_outside.csv'));
    await fsp.symlink('../other/relative.data', path.join(input, 'link_relative.csv'));
    await fsp.symlink(path.join(elsewhere, 'hop.csv'), path.join(input, 'link_chain.csv'));
    await fsp.symlink(path.join(shm, 'shm.csv'), path.join(input, 'link_shm.csv'));
    try {
      const s = await runEngine(url, dir, {});
      assert.equal(
        s.batches.reduce((n, b) => n + b.record.insertedRows, 0),
        3 + 4 + 5 + 6,
      );
      // An on-arrival engine that has listed the folder already learns of the link from the watcher.
      await publish(other, 'late.csv', csv(...Array.from({ length: 7 }, () => row())));
      const stop = new AbortController();
      const config = loadConfig({
        engine: { inputDir: input, checkpointDir: path.join(dir, `ck-${url.slice(url.lastIndexOf('/') + 1)}`), progressFile: path.join(dir, 'p.jsonl') },
      });
      let inserted = 0;
      const run = new StreamEngine({
        engine: { ...config.engine, trigger: { kind: 'on-arrival' }, fileSettleMillis: 0, pollMillis: 60_000 },
        databaseUrl: url,
        log: silentLogger,
        signal: stop.signal,
        observer: { batchCommitted: (b) => void (inserted += b.record.insertedRows) },
      }).run();
      await new Promise((r) => setTimeout(r, 300));
      await fsp.symlink(path.join(other, 'late.csv'), path.join(input, 'link_late.csv'));
      for (let i = 0; i < 200 && inserted < 7; i++) await new Promise((r) => setTimeout(r, 50));
      stop.abort();
      await run;
      assert.equal(inserted, 7);
      assert.equal(Number((await q<{ n: string }>(url, 'SELECT COUNT(*) n FROM rejected_events'))[0]!.n), 0, 'no notice, no reject');
    } finally {
      if (shm !== elsewhere) await fsp.rm(shm, { recursive: true, force: true });
    }
  });
});
