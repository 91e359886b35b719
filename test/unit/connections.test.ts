/**
 * The one connection factory (src/db/client.ts) and the checkpoint's independence from the database:
 * every connection carries an 'error' listener, nothing else in src/ constructs one, and src/checkpoint/
 * reads plain files only (`checkpoint verify` gets the recorded batches through its port).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { CONNECTIONS, newClient, openPool, type ConnectionPurpose } from '../../src/db/client.js';
import { Checkpoint } from '../../src/checkpoint/checkpoint.js';
import { verifyCheckpoint } from '../../src/checkpoint/verify.js';
import { PACKAGE_ROOT } from '../../src/db/migrate.js';
import { tempDir } from '../support/files.js';

const SRC = path.join(PACKAGE_ROOT, 'src');
const URL = 'postgresql://nobody:nothing@127.0.0.1:1/none';

/** Every .ts file under `dir`, as a path relative to the project. */
function sources(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => path.relative(PACKAGE_ROOT, path.join(dir, f)));
}

test('every pool and client of the factory survives an error event, and passes it to onError when given', () => {
  for (const purpose of Object.keys(CONNECTIONS) as ConnectionPurpose[]) {
    const seen: Error[] = [];
    const client = newClient(URL, purpose);
    assert.doesNotThrow(() => client.emit('error', new Error('lost')), `${purpose} client`);
    const told = newClient(URL, purpose, { onError: (err) => seen.push(err) });
    told.emit('error', new Error('told'));
    const pool = openPool(URL, purpose);
    assert.doesNotThrow(() => pool.emit('error', new Error('idle client lost')), `${purpose} pool`);
    assert.deepEqual(
      seen.map((e) => e.message),
      ['told'],
    );
    void pool.end();
  }
});

test('no module but src/db/client.ts constructs a pg Pool or Client', () => {
  const constructs = sources(SRC).filter((f) => /new pg\.(Pool|Client)\b/.test(fs.readFileSync(path.join(PACKAGE_ROOT, f), 'utf8')));
  assert.deepEqual(constructs, ['src/db/client.ts']);
});

test('src/checkpoint/ opens no database connection: it imports neither pg nor src/db/', () => {
  const offenders = sources(path.join(SRC, 'checkpoint')).filter((f) =>
    /from '(pg|\.\.\/db\/[^']*)'/.test(fs.readFileSync(path.join(PACKAGE_ROOT, f), 'utf8')),
  );
  assert.deepEqual(offenders, []);
});

test('checkpoint verify compares the checkpoint with the batches its port says were recorded', async () => {
  const dir = await tempDir();
  const cp = new Checkpoint(dir);
  await cp.open();
  await cp.createStream();
  for (const id of [0, 1]) {
    await cp.offsets.add(id, { batchId: id, batchTimestampMs: 0, files: [{ name: `f${id}.csv`, size: 1, mtimeMs: 0 }] });
    await cp.commits.add(id, { batchId: id, committedAtMs: 0 });
  }
  await cp.close();
  const asked: string[] = [];
  const v = await verifyCheckpoint(dir, (streamId) => {
    asked.push(streamId);
    return Promise.resolve([{ batchId: 0, files: ['other.csv'] }]);
  });
  assert.deepEqual(asked, [cp.streamId]);
  assert.deepEqual(v.mismatches, [
    'batch 1: commits/1 exists, but stream_batches has no row for it',
    'batch 0: offsets/0 planned f0.csv, stream_batches lists other.csv',
  ]);
});
