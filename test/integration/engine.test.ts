/**
 * The engine against a real PostgreSQL: duplicates, every bad-input kind, and the row accounting rule
 * (every data line ends in user_events or rejected_events).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { loadConfig, type TriggerSpec } from '../../src/config.js';
import { StreamEngine } from '../../src/engine/stream.js';
import { silentLogger } from '../../src/log.js';
import { count, startTestDb, type TestDb } from '../support/pg.js';
import { csv, HEADER, publish, readProgress, row, tempDir } from '../support/files.js';

let db: TestDb;
before(async () => {
  db = await startTestDb();
});
after(async () => {
  await (db as TestDb | undefined)?.close(); // undefined when before() failed
});

async function runEngine(
  url: string,
  input: string,
  checkpoint: string,
  over: { trigger?: TriggerSpec; maxFilesPerTrigger?: number; cleanSource?: 'off' | 'archive' | 'delete' } = {},
) {
  const config = loadConfig({
    engine: {
      inputDir: input,
      checkpointDir: checkpoint,
      progressFile: path.join(checkpoint, '..', 'progress.jsonl'),
      archiveDir: path.join(checkpoint, '..', 'archive'),
      trigger: over.trigger ?? { kind: 'available-now' },
      maxFilesPerTrigger: over.maxFilesPerTrigger ?? 1000,
      cleanSource: over.cleanSource ?? 'off',
    },
  });
  return new StreamEngine({ engine: config.engine, databaseUrl: url, log: silentLogger }).run();
}

describe('engine', () => {
  test('valid rows land with their values; the batch is recorded', async () => {
    const url = await db.freshDatabase();
    const dir = await tempDir();
    const id = '2b6c4c1e-8f5e-4c1a-9a51-0c1f7d3e9a10';
    await publish(
      path.join(dir, 'in'),
      'events_1.csv',
      csv(row({ event_id: id, product_name: 'Mouse, "Pro"', price: '12.5', event_timestamp: new Date(Date.now() - 5000).toISOString() }), row(), row()),
    );
    const s = await runEngine(url, path.join(dir, 'in'), path.join(dir, 'ck'));
    assert.equal(s.insertedRows, 3);
    const c = new (await import('pg')).default.Client({ connectionString: url });
    await c.connect();
    const r = await c.query<{ product_name: string; price: string }>(
      'SELECT product_name, price::text, event_timestamp, inserted_at FROM user_events WHERE event_id = $1',
      [id],
    );
    assert.equal(r.rows[0]!.product_name, 'Mouse, "Pro"');
    assert.equal(r.rows[0]!.price, '12.50');
    const b = await c.query('SELECT input_rows, inserted_rows, duplicate_rows, rejected_rows, quality_score::float AS q, engine FROM stream_batches');
    assert.deepEqual(b.rows, [{ input_rows: 3, inserted_rows: 3, duplicate_rows: 0, rejected_rows: 0, q: 1, engine: 'typescript' }]);
    await c.end();
  });

  test('duplicates within one file, across files of one batch, and across batches: one row each', async () => {
    const url = await db.freshDatabase();
    const dir = await tempDir();
    const input = path.join(dir, 'in');
    const a = row();
    const b = row();
    await publish(input, 'events_1.csv', csv(a, a, b)); // in-file duplicate
    await publish(input, 'events_2.csv', csv(b, row())); // cross-file, same batch
    let s = await runEngine(url, input, path.join(dir, 'ck'));
    assert.deepEqual([s.insertedRows, s.duplicateRows], [3, 2]);
    await publish(input, 'events_3.csv', csv(a, row())); // across batches: the fallback path
    s = await runEngine(url, input, path.join(dir, 'ck'));
    assert.deepEqual([s.insertedRows, s.duplicateRows], [1, 1]);
    assert.equal(await count(url, 'SELECT COUNT(*) n FROM user_events'), 4); // a, b and one new per file
    assert.equal(await count(url, "SELECT COUNT(*) n FROM rejected_events WHERE reason = 'duplicate_event_id'"), 3);
    assert.equal(
      await count(url, "SELECT COUNT(*) n FROM rejected_events WHERE reason = 'duplicate_event_id' AND source_file = 'events_3.csv' AND line_number = 2"),
      1,
    );
  });

  test('every bad-input kind lands in rejected_events with its reason; no line is lost', async () => {
    const url = await db.freshDatabase();
    const dir = await tempDir();
    const input = path.join(dir, 'in');
    const latin1 = Buffer.concat([
      Buffer.from(`${HEADER}\n${row()}\n`),
      Buffer.from(row({ product_name: 'Caf' }).replace('Caf', 'Caf\xe9'), 'latin1'),
      Buffer.from('\n'),
    ]);
    const nul = Buffer.concat([Buffer.from(`${HEADER}\n`), Buffer.from(row({ product_name: 'a\u0000b' })), Buffer.from('\n')]);
    await publish(
      input,
      'a_malformed.csv',
      csv(row(), '1,"unterminated', `${row()},extra`, row().split(',').slice(0, 9).join(','), 'x,y"z,1,2,3,4,5,6,7,8', row()),
    );
    await publish(
      input,
      'b_values.csv',
      csv(
        row({ price: 'abc' }),
        row({ price: '-3' }),
        row({ event_timestamp: 'yesterday' }),
        row({ event_type: 'click' }),
        row({ device_type: 'fridge' }),
        row({ user_id: '' }),
        row({ session_id: 'x'.repeat(101) }),
        row({ event_timestamp: '2000-01-01T00:00:00Z' }),
        row({ event_timestamp: new Date(Date.now() + 86_400_000).toISOString() }),
      ),
    );
    await publish(input, 'c_latin1.csv', latin1);
    await publish(input, 'd_nul.csv', nul);
    await publish(input, 'e_bom_crlf.csv', Buffer.from(`\ufeff${HEADER}\r\n${row()}\r\n\r\n${row()}\r\n`));
    await publish(input, 'f_empty.csv', '');
    await publish(input, 'g_header_only.csv', `${HEADER}\n`);
    await publish(input, 'h_no_header.csv', `${row()}\n${row()}\n`);
    await publish(input, 'i_bad_header.csv', `id,user,type,product,name,category,price,ts,session,device\n${row()}\n${row()}\n`);
    await publish(input, 'j_no_final_newline.csv', `${HEADER}\n${row()}`);
    await publish(input, 'k_long_line.csv', `${HEADER}\n${'z'.repeat(3 << 20)}\n${row()}\n`);
    await fsp.mkdir(path.join(input, 'subfolder'));
    await publish(path.join(input, 'subfolder'), 'ignored.csv', csv(row()));
    await publish(input, '.hidden.csv', csv(row()));
    await publish(input, 'events.csv.tmp', csv(row()));

    const s = await runEngine(url, input, path.join(dir, 'ck'));
    const reasons = async (file: string) => {
      const pg = (await import('pg')).default;
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      const r = await c.query<{ line_number: number; reason: string }>(
        'SELECT line_number, reason FROM rejected_events WHERE source_file = $1 ORDER BY line_number, reason',
        [file],
      );
      await c.end();
      return r.rows.map((x) => `${x.line_number}:${x.reason}`);
    };
    assert.deepEqual(await reasons('a_malformed.csv'), ['3:malformed_csv', '4:wrong_column_count', '5:wrong_column_count', '6:malformed_csv']);
    assert.deepEqual(await reasons('b_values.csv'), [
      '2:invalid_price',
      '3:negative_price',
      '4:invalid_timestamp',
      '5:invalid_event_type',
      '6:invalid_device_type',
      '7:missing_required',
      '8:field_too_long',
      '9:stale_timestamp',
      '10:future_timestamp',
    ]);
    assert.deepEqual(await reasons('c_latin1.csv'), ['3:invalid_encoding']);
    assert.deepEqual(await reasons('d_nul.csv'), ['2:invalid_encoding']);
    assert.deepEqual(await reasons('e_bom_crlf.csv'), []);
    assert.deepEqual(await reasons('f_empty.csv'), ['0:empty_file']);
    assert.deepEqual(await reasons('g_header_only.csv'), ['0:empty_file']);
    assert.deepEqual(await reasons('h_no_header.csv'), ['0:missing_header']);
    assert.deepEqual(await reasons('i_bad_header.csv'), ['0:bad_header', '2:bad_header', '3:bad_header']);
    assert.deepEqual(await reasons('j_no_final_newline.csv'), []);
    assert.deepEqual(await reasons('k_long_line.csv'), ['2:wrong_column_count']);
    // Inserted: 2 (a) + 1 (c) + 2 (e) + 2 (h) + 1 (j) + 1 (k) = 9; nothing from the ignored files.
    assert.equal(s.insertedRows, 9);
    assert.equal(await count(url, 'SELECT COUNT(*) n FROM user_events'), 9);
    // Accounting: every data line is a stored row or a reject with a line number.
    const lines = await count(url, 'SELECT SUM(input_rows) n FROM stream_batches');
    const stored = await count(url, 'SELECT (SELECT COUNT(*) FROM user_events) + (SELECT COUNT(*) FROM rejected_events WHERE line_number > 0) n');
    assert.equal(lines, stored);
    const nulRaw = await count(url, "SELECT COUNT(*) n FROM rejected_events WHERE source_file = 'd_nul.csv' AND raw_line LIKE '%a\uFFFDb%'");
    assert.equal(nulRaw, 1, 'the raw line is kept, with the NUL byte made visible');
  });

  test('a file that vanishes after planning is recorded as file_missing; the batch still commits', async () => {
    const url = await db.freshDatabase();
    const dir = await tempDir();
    const input = path.join(dir, 'in');
    await publish(input, 'events_1.csv', csv(row()));
    // Plan a batch by hand (as a crashed run would have left it), then remove its file.
    const { Checkpoint } = await import('../../src/checkpoint/checkpoint.js');
    const cp = new Checkpoint(path.join(dir, 'ck'));
    await cp.open();
    await cp.createStream();
    const st = await fsp.stat(path.join(input, 'events_1.csv'));
    await cp.offsets.add(0, { batchId: 0, batchTimestampMs: Date.now(), files: [{ name: 'events_1.csv', size: st.size, mtimeMs: st.mtimeMs }] });
    await cp.close();
    await fsp.rm(path.join(input, 'events_1.csv'));
    const s = await runEngine(url, input, path.join(dir, 'ck'));
    assert.equal(s.replayed, 1);
    assert.equal(await count(url, "SELECT COUNT(*) n FROM rejected_events WHERE reason = 'file_missing' AND line_number = 0"), 1);
    assert.equal(await count(url, 'SELECT COUNT(*) n FROM stream_batches'), 1);
  });

  test('max files per trigger splits batches; clean-source archive moves files only after commit', async () => {
    const url = await db.freshDatabase();
    const dir = await tempDir();
    const input = path.join(dir, 'in');
    for (let i = 0; i < 5; i++) await publish(input, `events_${i}.csv`, csv(row(), row()));
    const s = await runEngine(url, input, path.join(dir, 'ck'), { maxFilesPerTrigger: 2, cleanSource: 'archive' });
    assert.equal(s.batches, 3);
    assert.equal(s.insertedRows, 10);
    assert.deepEqual(await fsp.readdir(input), []);
    assert.equal((await fsp.readdir(path.join(dir, 'archive'))).length, 5);
    const progress = await readProgress(path.join(dir, 'progress.jsonl'));
    assert.deepEqual(
      progress.map((p) => p.files.length),
      [2, 2, 1],
    );
    assert.ok(progress.every((p) => p.engine === 'typescript' && typeof p.durationMs.total === 'number'));
    // The phases are measured, not placeholders, and do not add up to more than the whole batch.
    for (const p of progress) {
      const { plan, read, write, commit, total } = p.durationMs;
      assert.ok(
        [plan, read, write, commit].every((v) => Number.isInteger(v) && v >= 0),
        JSON.stringify(p.durationMs),
      );
      assert.ok(plan + read + write + commit <= total + 4, JSON.stringify(p.durationMs));
    }
  });

  test('restart resumes: files already processed are not read again', async () => {
    const url = await db.freshDatabase();
    const dir = await tempDir();
    const input = path.join(dir, 'in');
    await publish(input, 'events_1.csv', csv(row()));
    await runEngine(url, input, path.join(dir, 'ck'));
    await publish(input, 'events_2.csv', csv(row()));
    const s = await runEngine(url, input, path.join(dir, 'ck'));
    assert.equal(s.batches, 1);
    assert.equal(s.inputRows, 1);
    assert.equal(await count(url, 'SELECT COUNT(*) n FROM stream_batches'), 2);
  });

  // Regression (found by the Spark differential test): a file holding only a UTF-8 BOM read as one
  // empty data row (missing_header + wrong_column_count) instead of an empty file.
  test('regression: a BOM-only file is empty_file, also when the BOM arrives in a read of its own', async () => {
    const url = await db.freshDatabase();
    const dir = await tempDir();
    const input = path.join(dir, 'in');
    await publish(input, 'bom_only.csv', Buffer.from([0xef, 0xbb, 0xbf]));
    await publish(input, 'bom_crlf.csv', Buffer.from([0xef, 0xbb, 0xbf, 0x0d, 0x0a]));
    const s = await runEngine(url, input, path.join(dir, 'ck'));
    assert.equal(s.inputRows, 0);
    assert.equal(await count(url, "SELECT COUNT(*) n FROM rejected_events WHERE reason = 'empty_file' AND line_number = 0"), 2);
    assert.equal(await count(url, 'SELECT COUNT(*) n FROM rejected_events'), 2);
  });
});
