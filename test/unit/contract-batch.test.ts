import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isPublished, qualityScore } from '../../src/contract/batch.js';

test('a published file ends in .csv, is longer than that, and is not hidden by "." or "_"', () => {
  for (const name of ['events_20260101_000000_1.csv', 'a.csv', Buffer.from([0xff, 0x2e, 0x63, 0x73, 0x76])])
    assert.equal(isPublished(name), true, String(name));
  for (const name of ['.csv', '.events_1.csv.tmp-1-ab', '.hidden.csv', '_spark_metadata.csv', 'events.CSV', 'events.csv.tmp', ''])
    assert.equal(isPublished(name), false, name);
});

test('the batch quality score is the mean over stored rows, rounded to 3 places half up, null with no row', () => {
  assert.equal(qualityScore(0, 0), null);
  assert.equal(qualityScore(2.7, 3), 0.9);
  assert.equal(qualityScore(11, 12), 0.917);
  assert.equal(qualityScore(1.0005, 1), 1.001);
});
