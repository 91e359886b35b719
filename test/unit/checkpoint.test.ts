import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { BatchLog } from '../../src/checkpoint/log.js';
import { Checkpoint, type SeenFile } from '../../src/checkpoint/checkpoint.js';
import { kernelLists } from '../../src/checkpoint/lock.js';
import { engineState } from '../../src/dashboard/surroundings.js';
import { tempDir } from '../support/files.js';

test('batch log: versioned, never overwritten, listed in order', async () => {
  const dir = await tempDir();
  const log = new BatchLog<{ x: number }>(path.join(dir, 'offsets'));
  await log.init();
  await log.add(0, { x: 1 });
  await log.add(2, { x: 3 });
  await assert.rejects(log.add(0, { x: 9 }), /already written/);
  assert.deepEqual(await log.get(0), { x: 1 });
  assert.equal(await log.latest(), 2);
  assert.equal(fs.readFileSync(path.join(dir, 'offsets', '0'), 'utf8').split('\n')[0], 'v1');
  assert.deepEqual(fs.readdirSync(path.join(dir, 'offsets')).sort(), ['0', '2'], 'no temp files left');
  fs.writeFileSync(path.join(dir, 'offsets', '5'), 'v9\n{}\n');
  await assert.rejects(log.get(5), /unsupported log version/);
});

test('a second engine on the same checkpoint is refused while the first holds it; the lock file stays, and its content decides nothing', async () => {
  const dir = await tempDir();
  const a = new Checkpoint(dir);
  await a.open();
  await a.createStream();
  // Another open file of the same lock: refused, whatever the file says (a pid of ours, a dead pid).
  await assert.rejects(new Checkpoint(dir).open(), { name: 'CheckpointError', code: 'LOCKED', message: new RegExp(`pid ${process.pid} on host`) });
  fs.writeFileSync(path.join(dir, 'lock'), '999999999\n');
  await assert.rejects(new Checkpoint(dir).open(), { name: 'CheckpointError', code: 'LOCKED' });
  await a.close();
  assert.ok(fs.existsSync(path.join(dir, 'lock')), 'close() leaves the lock file: deleting it would let a second engine lock a new inode');
  // Free now: a lock file naming a live process that is not us (our parent) does not block.
  fs.writeFileSync(path.join(dir, 'lock'), `${process.ppid}\n`);
  const c = new Checkpoint(dir);
  await c.open();
  assert.equal(c.streamId, a.streamId, 'stream id persists');
  assert.equal(
    (JSON.parse(fs.readFileSync(path.join(dir, 'lock'), 'utf8')) as { pid: number }).pid,
    process.pid,
    'the holder writes itself into the file, for information',
  );
  await c.close();
});

test('seen files survive compaction and purge; restart after 100,000 files reads in well under a second', async () => {
  const dir = await tempDir();
  const cp = new Checkpoint(dir);
  await cp.open();
  const seen = new Map<string, SeenFile>();
  let n = 0;
  for (let b = 0; b < 100; b++) {
    const files = Array.from({ length: 1000 }, () => ({ name: `events_${n++}.csv`, size: 10, mtimeMs: n }));
    await cp.addSourceEntry(b, files, seen, 10);
    for (const f of files) seen.set(f.name, { size: f.size, mtimeMs: f.mtimeMs });
    if ((b + 1) % 10 === 0) await cp.purge(b, 100);
  }
  await cp.close();
  const again = new Checkpoint(dir);
  await again.open();
  const t0 = performance.now();
  const loaded = await again.loadSeenFiles();
  const ms = performance.now() - t0;
  assert.equal(loaded.size, 100_000);
  assert.ok(loaded.has('events_0.csv') && loaded.has('events_99999.csv'));
  assert.ok(fs.readdirSync(path.join(dir, 'sources', '0')).length <= 10, 'old deltas purged after compaction');
  // Not a timing assertion on the hot path: a generous bound that only a per-file read would break.
  assert.ok(ms < 5000, `loading took ${ms} ms`);
  await again.close();
});

test("the dashboard's view of a checkpoint: unknown, idle while an engine holds it, in flight, stopped", async () => {
  const dir = await tempDir();
  assert.equal((await engineState(path.join(dir, 'none'), null)).state, 'unknown');
  const cp = new Checkpoint(dir);
  await cp.open();
  assert.deepEqual(await engineState(dir, 2), { state: 'idle', detail: '2 files waiting' });
  await cp.offsets.add(0, { batchId: 0, batchTimestampMs: Date.now(), files: [] });
  assert.deepEqual(await engineState(dir, null), { state: 'processing', detail: 'batch 0 in flight' });
  await cp.close();
  assert.equal((await engineState(dir, null)).state, 'stopped');
});

test('/proc/locks is read by device and inode, granted locks only (a waiter is no holder)', () => {
  // st_dev 0xfe00 is device fe:00 as /proc/locks prints it (hex major:minor).
  const table = [
    '1: FLOCK  ADVISORY  WRITE 2928 fe:00:779014 0 EOF',
    '2: -> FLOCK  ADVISORY  WRITE 3001 fe:00:779015 0 EOF',
    '3: POSIX  ADVISORY  WRITE 12 103:12:42 0 EOF',
  ].join('\n');
  assert.equal(kernelLists(table, 0xfe00n, 779014n), true);
  assert.equal(kernelLists(table, 0xfe00n, 779015n), false, 'only waiting for it');
  assert.equal(kernelLists(table, 0xfe01n, 779014n), false, 'another device');
  // major 0x103 = bits 8..19 of st_dev, minor 0x12 = bits 0..7.
  assert.equal(kernelLists(table, 0x10312n, 42n), true);
  assert.equal(kernelLists('', 0xfe00n, 779014n), false);
});
