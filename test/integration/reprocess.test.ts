/**
 * `ecomstream reprocess`, as a user runs it: a fixed file read again as a new batch. Rows already stored
 * count as already present, the files' earlier rejects are replaced, every line of the new version is in
 * exactly one of user_events and rejected_events — also when the reprocessing batch is SIGKILLed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { query, startTestDb, type TestDb } from '../support/pg.js';
import { cli } from '../support/cli.js';
import { selectReprocessFiles } from '../../src/engine/reprocess.js';
import { csv, publish, row, tempDir } from '../support/files.js';

let db: TestDb;
before(async () => {
  db = await startTestDb();
});
after(async () => {
  await (db as TestDb | undefined)?.close(); // undefined when before() failed
});

interface Setup {
  url: string;
  dir: string;
  input: string;
  args: string[];
  /** Lines of the fixed files, by file name, for the one-table-per-line check. */
  fixed: Map<string, string[]>;
}

/** Batch 0 reads orders.csv (3 good rows, 2 bad) and header.csv (a wrong header: all rows rejected); then both are fixed. */
async function setUp(): Promise<Setup> {
  const url = await db.freshDatabase();
  const dir = await tempDir();
  const input = path.join(dir, 'in');
  const good = [row(), row(), row()];
  const badType = row({ event_type: 'click' });
  const badPrice = row({ price: '-5.00' });
  await publish(input, 'orders.csv', csv(good[0]!, badType, good[1]!, badPrice, good[2]!));
  const headerRows = [row(), row()];
  await publish(input, 'header.csv', `event,user,type\n${headerRows.join('\n')}\n`);
  const common = ['--checkpoint', path.join(dir, 'ck'), '--input', input, '--progress-file', path.join(dir, 'p.jsonl')];
  const first = await cli(['process', ...common, '--trigger', 'available-now'], { DATABASE_URL: url });
  assert.equal(first.code, 0, first.stderr);
  assert.equal((await query(url, "SELECT 1 FROM rejected_events WHERE source_file = 'orders.csv'")).length, 2);
  assert.equal((await query(url, "SELECT 1 FROM rejected_events WHERE source_file = 'header.csv'")).length, 3, 'the header notice and both rows');

  // The fixes: orders.csv gets a corrected price (a new event) and keeps one bad row; header.csv its header.
  const fixedPrice = row({ event_id: crypto.randomUUID(), price: '5.00' });
  const orders = [good[0]!, badType, good[1]!, fixedPrice, good[2]!];
  await fsp.writeFile(path.join(input, 'orders.csv'), csv(...orders));
  await fsp.writeFile(path.join(input, 'header.csv'), csv(...headerRows));
  return {
    url,
    dir,
    input,
    args: ['reprocess', ...common, '--file', 'header.csv', 'orders.csv'],
    fixed: new Map([
      ['header.csv', headerRows],
      ['orders.csv', orders],
    ]),
  };
}

/** Every line of each fixed file is in exactly one table: its event in user_events, or a reject of that line. */
async function assertEachLineOnce(s: Setup): Promise<void> {
  const stored = new Set((await query<{ event_id: string }>(s.url, 'SELECT event_id FROM user_events')).map((r) => r.event_id));
  const rejects = await query<{ source_file: string; line_number: number; reason: string }>(
    s.url,
    'SELECT source_file, line_number, reason FROM rejected_events',
  );
  for (const [file, lines] of s.fixed) {
    lines.forEach((l, i) => {
      const inEvents = stored.has(l.slice(0, 36)) ? 1 : 0;
      const inRejects = rejects.filter((r) => r.source_file === file && r.line_number === i + 2).length;
      assert.equal(inEvents + inRejects, 1, `${file} line ${i + 2}: ${inEvents} in user_events, ${inRejects} in rejected_events`);
    });
  }
  assert.deepEqual(
    rejects.map((r) => `${r.source_file}:${r.line_number}:${r.reason}`),
    ['orders.csv:3:invalid_event_type'],
    'only the row still bad; no duplicate_event_id for stored rows',
  );
}

describe('reprocess', () => {
  test('fixed files as a new batch: stored rows already present, old rejects replaced, each line once', async () => {
    const s = await setUp();
    const r = await cli(s.args, { DATABASE_URL: s.url });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /batch 1 \(reprocessed\): 2 files: 7 rows -> 3 inserted, 0 duplicate, 1 rejected, 3 already present/);
    await assertEachLineOnce(s);
    assert.equal((await query(s.url, 'SELECT 1 FROM user_events')).length, 6);
    const [b] = await query<{ input_rows: number; inserted_rows: number; duplicate_rows: number; rejected_rows: number }>(
      s.url,
      'SELECT input_rows, inserted_rows, duplicate_rows, rejected_rows FROM stream_batches WHERE batch_id = 1',
    );
    assert.deepEqual(b, { input_rows: 7, inserted_rows: 3, duplicate_rows: 0, rejected_rows: 1 });
    const offsets = (await fsp.readFile(path.join(s.dir, 'ck', 'offsets', '1'), 'utf8')).split('\n')[1]!;
    assert.equal((JSON.parse(offsets) as { reprocess?: boolean }).reprocess, true, 'offsets/1 says it is a reprocessing batch');
    const missing = await cli([...s.args.slice(0, s.args.indexOf('--file')), '--file', 'nope.csv'], { DATABASE_URL: s.url });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /--file nope\.csv: not found in/);
  });

  test('SIGKILL in the middle of the reprocessing COPY: the restart replays it, same result', async () => {
    const s = await setUp();
    const killed = await cli(s.args, { DATABASE_URL: s.url, ECOMSTREAM_FAILPOINT: 'during-copy:1' });
    assert.equal(killed.signal, 'SIGKILL', killed.stderr);
    assert.equal((await query(s.url, "SELECT 1 FROM rejected_events WHERE source_file = 'orders.csv'")).length, 2, 'nothing of the killed batch is committed');
    const replayed = await cli(
      ['process', '--checkpoint', path.join(s.dir, 'ck'), '--input', s.input, '--progress-file', path.join(s.dir, 'p.jsonl'), '--trigger', 'available-now'],
      { DATABASE_URL: s.url },
    );
    assert.equal(replayed.code, 0, replayed.stderr);
    assert.match(replayed.stdout, /batch 1 \(replayed\) \(reprocessed\): 2 files: 7 rows -> 3 inserted, 0 duplicate, 1 rejected, 3 already present/);
    await assertEachLineOnce(s);
    assert.deepEqual(
      (await query<{ batch_id: string }>(s.url, 'SELECT batch_id FROM stream_batches ORDER BY 1')).map((r) => Number(r.batch_id)),
      [0, 1],
    );
  });

  test('names what is wrong: neither of --file and --since, a bad time, a new checkpoint; --since selects by modification time', async () => {
    const dir = await tempDir();
    const neither = await cli(['reprocess', '--checkpoint', path.join(dir, 'ck'), '--input', dir]);
    assert.equal(neither.code, 1);
    assert.match(neither.stderr, /exactly one of --file NAME… or --since ISO-TIME/);
    const badSince = await cli(['reprocess', '--checkpoint', dir, '--input', dir, '--since', 'yesterday']);
    assert.notEqual(badSince.code, 0);
    assert.match(badSince.stderr, /--since takes an ISO-8601 time/);
    const noStream = await cli(['reprocess', '--checkpoint', path.join(dir, 'ck'), '--input', dir, '--file', 'x.csv']);
    assert.match(noStream.stderr, /holds no stream \(no metadata file\)/);

    // --since: published files modified at or after the time, oldest first; temp files never.
    await publish(dir, 'old.csv', csv(row()));
    await publish(dir, 'new_b.csv', csv(row()));
    await publish(dir, 'new_a.csv', csv(row()));
    await fsp.writeFile(path.join(dir, '.tmp.csv'), 'x');
    const cut = (await fsp.stat(path.join(dir, 'new_b.csv'))).mtimeMs;
    assert.deepEqual(
      (await selectReprocessFiles(dir, { sinceMs: cut })).map((f) => f.name),
      ['new_b.csv', 'new_a.csv'],
    );
  });
});
