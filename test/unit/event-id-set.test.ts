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
