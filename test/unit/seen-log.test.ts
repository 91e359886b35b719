/**
 * The seen-files log (src/checkpoint/seen-log.ts): one line appended per batch, a torn last line cut off,
 * the layout before issue 18 read and folded in, a new generation only when half the log is superseded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { BatchLog } from '../../src/checkpoint/log.js';
import { SeenFilesLog } from '../../src/checkpoint/seen-log.js';
import type { FileEntry, SeenFile } from '../../src/checkpoint/checkpoint.js';
import { tempDir } from '../support/files.js';

function file(i: number, size = 10): FileEntry {
  return { name: `events_${i}.csv`, size, mtimeMs: 1000 + i };
}

/** Appends batch N's files as the engine does: the set holds them before the append. */
async function append(log: SeenFilesLog, seen: Map<string, SeenFile>, batchId: number, files: FileEntry[]): Promise<void> {
  for (const f of files) seen.set(f.name, { size: f.size, mtimeMs: f.mtimeMs });
  await log.append(batchId, files, seen);
}

test('one line per batch after the first; a restart reads the set back; a replayed batch adds nothing', async () => {
  const dir = await tempDir();
  const log = new SeenFilesLog(dir);
  const seen = await log.load();
  for (let b = 0; b < 50; b++) await append(log, seen, b, [file(b)]);
  const first = log.bytesWritten;
  await append(log, seen, 50, [file(50)]);
  const line = log.bytesWritten - first;
  await append(log, seen, 51, [file(51)]);
  assert.equal(log.bytesWritten - first, 2 * line, 'the 52nd batch writes what the 51st did');
  assert.deepEqual(fs.readdirSync(dir), ['0.log']);
  await log.append(51, [file(51, 99)], seen);
  assert.equal(log.bytesWritten - first, 2 * line, 'a replay of batch 51 is already logged');
  const again = await new SeenFilesLog(dir).load();
  assert.deepEqual([...again.entries()], [...seen.entries()]);
});

test('a torn last line (a crash mid-append) is skipped, then cut off by the next append', async () => {
  const dir = await tempDir();
  const log = new SeenFilesLog(dir);
  const seen = await log.load();
  for (let b = 0; b < 3; b++) await append(log, seen, b, [file(b)]);
  fs.appendFileSync(path.join(dir, '0.log'), '{"batchId":3,"files":[{"name":"events_3.c');
  const reopened = new SeenFilesLog(dir);
  const loaded = await reopened.load();
  assert.equal(loaded.size, 3);
  await append(reopened, loaded, 3, [file(3)]);
  await append(reopened, loaded, 4, [file(4)]);
  const text = fs.readFileSync(path.join(dir, '0.log'), 'utf8');
  assert.ok(!text.includes('events_3.c"') && text.endsWith('\n'));
  assert.equal((await new SeenFilesLog(dir).load()).size, 5);
});

test('a corrupt line before the last: the log is damaged, and says where', async () => {
  const dir = await tempDir();
  const log = new SeenFilesLog(dir);
  const seen = await log.load();
  for (let b = 0; b < 3; b++) await append(log, seen, b, [file(b)]);
  const f = path.join(dir, '0.log');
  fs.writeFileSync(f, fs.readFileSync(f, 'utf8').replace('{"batchId":1', '{"batchId":1x'));
  await assert.rejects(new SeenFilesLog(dir).load(), { code: 'CORRUPT_LOG_FILE', message: /0\.log: line 3 is corrupt/ });
});

test('the layout before issue 18 (N.compact and deltas) is read, and folded into a generation at the first append', async () => {
  const dir = await tempDir();
  const old = new BatchLog<FileEntry[]>(dir);
  await old.add(9, [file(1), file(2)], true);
  await old.add(10, [file(3)]);
  await old.add(11, [file(2, 20)]);
  await old.add(5, [file(99)]); // older than the compact entry: already in it or purged
  const log = new SeenFilesLog(dir);
  const seen = await log.load();
  assert.deepEqual([...seen.keys()].sort(), ['events_1.csv', 'events_2.csv', 'events_3.csv']);
  assert.equal(seen.get('events_2.csv')!.size, 20);
  await log.append(11, [file(2, 20)], seen); // a replay of the last old batch
  assert.equal(log.bytesWritten, 0);
  await append(log, seen, 12, [file(4)]);
  assert.deepEqual(fs.readdirSync(dir), ['12.log']);
  assert.deepEqual([...(await new SeenFilesLog(dir).load()).entries()], [...seen.entries()]);
});

test('a file read again and again: a new generation starts once the log holds twice the set, and the set stays right', async () => {
  const dir = await tempDir();
  const log = new SeenFilesLog(dir);
  const seen = await log.load();
  for (let b = 0; b < 1100; b++) await append(log, seen, b, [file(b % 3, b)]);
  const names = fs.readdirSync(dir);
  assert.equal(names.length, 1);
  assert.notEqual(names[0], '0.log', 'a later generation replaced the first');
  assert.ok(fs.statSync(path.join(dir, names[0]!)).size < 80_000, 'no more than the slack of superseded lines');
  assert.deepEqual([...(await new SeenFilesLog(dir).load()).entries()].sort(), [...seen.entries()].sort());
});
