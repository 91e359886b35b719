import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { EventIdSet } from '../../src/engine/event-id-set.js';

test('detects repeats among 200,000 UUIDs and other ids, across table growth', () => {
  const set = new EventIdSet();
  const ids = Array.from({ length: 200_000 }, () => crypto.randomUUID());
  for (const id of ids) assert.equal(set.add(id), true);
  for (let i = 0; i < ids.length; i += 997) assert.equal(set.add(ids[i]!), false);
  assert.equal(set.add('not-a-uuid'), true);
  assert.equal(set.add('not-a-uuid'), false);
  assert.equal(set.add('00000000-0000-0000-0000-000000000000'), true);
  assert.equal(set.add('00000000-0000-0000-0000-000000000000'), false);
  assert.equal(set.size, 200_002);
});

test('upper- and lower-case UUIDs are different ids, as in PostgreSQL', () => {
  const set = new EventIdSet();
  const id = crypto.randomUUID();
  assert.equal(set.add(id), true);
  assert.equal(set.add(id.toUpperCase()), true);
});

test('within a budget: never holds more bytes, still finds repeats of the keys it holds, counts the rest as unchecked', () => {
  const set = new EventIdSet(48 * 1024); // tables of 16 KiB, then 32 KiB (both alive while it grows): 1,024 keys
  const ids = Array.from({ length: 5000 }, () => crypto.randomUUID());
  for (const id of ids) assert.equal(set.add(id), true);
  assert.equal(set.size, 1024);
  assert.equal(set.unchecked, 5000 - 1024);
  assert.ok(set.peakBytes <= 48 * 1024, `peak ${set.peakBytes}`);
  assert.equal(set.peakBytes, 48 * 1024);
  for (const id of ids.slice(0, 1024)) assert.equal(set.add(id), false, 'a held key repeated is a duplicate');
  assert.equal(set.add(ids[4000]!), true, 'a key it had no room for cannot be judged here');
  assert.equal(set.unchecked, 5000 - 1024 + 1);
  // Other keys are strings, held while the budget has room left beside the table.
  assert.equal(set.add('not-a-uuid'), true);
  assert.equal(set.add('not-a-uuid'), false);
  for (let i = 0; i < 1000; i++) set.add(`key-${i}`);
  assert.ok(set.bytes <= 48 * 1024 && set.unchecked > 5000 - 1024 + 1, `${set.bytes} bytes, ${set.unchecked} unchecked`);
});
