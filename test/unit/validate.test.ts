import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateRow, parseTimestamp, type RowRules } from '../../src/engine/validate.js';
import { splitCsvLine } from '../../src/engine/csv-line.js';
import { CopyEncoder } from '../../src/sink/copy.js';
import { row, iso } from '../support/files.js';

const NOW = Date.parse('2026-11-25T12:00:00Z');
const rules: RowRules = { batchTimestampMs: NOW };
const check = (line: string) => {
  const s = splitCsvLine(line);
  assert.ok(s.ok);
  return validateRow(s.fields, rules);
};
const at = (msAgo: number) => iso(msAgo, NOW);
/** The row's values as the sink's encoder writes them for COPY (direct layout, without the newline). */
async function copyLine(values: readonly string[]): Promise<string> {
  let out = '';
  const encoder = new CopyEncoder(false, (lines) => {
    out = lines.join('');
  });
  encoder.row(values, 1, 0, '');
  await encoder.flush();
  return out.slice(0, -1);
}

test('a complete row is valid with quality 1.0 and a COPY line of 10 tab-separated fields', async () => {
  const r = check(row({ event_timestamp: at(1000) }));
  assert.ok(r.ok);
  assert.equal(r.quality, 1.0);
  assert.equal(r.values[7], '2026-11-25 11:59:59.000');
  const line = await copyLine(r.values);
  assert.equal(line.split('\t').length, 10);
  assert.match(line, /\t2026-11-25 11:59:59\.000\t/);
});

test('quality score: one optional field missing 0.9, more 0.8; empty optional -> \\N', async () => {
  const one = check(row({ session_id: '', event_timestamp: at(1000) }));
  assert.ok(one.ok);
  assert.equal(one.quality, 0.9);
  assert.match(await copyLine(one.values), /\t\\N\t/);
  const two = check(row({ session_id: '', price: '', event_timestamp: at(1000) }));
  assert.ok(two.ok);
  assert.equal(two.quality, 0.8);
});

test('every rule gives its reason code', () => {
  const cases: [string, string][] = [
    [row({ user_id: '' }), 'missing_required'],
    [row({ event_id: '' }), 'missing_required'],
    [row({ event_timestamp: '' }), 'missing_required'],
    [row({ event_type: 'click', event_timestamp: at(1) }), 'invalid_event_type'],
    [row({ device_type: 'watch', event_timestamp: at(1) }), 'invalid_device_type'],
    [row({ price: 'abc', event_timestamp: at(1) }), 'invalid_price'],
    [row({ price: '100000000', event_timestamp: at(1) }), 'invalid_price'],
    [row({ price: '-0.01', event_timestamp: at(1) }), 'negative_price'],
    [row({ event_timestamp: 'not-a-time' }), 'invalid_timestamp'],
    [row({ event_timestamp: '2026-02-30T10:00:00Z' }), 'invalid_timestamp'],
    [row({ event_timestamp: at(25 * 3600_000) }), 'stale_timestamp'],
    [row({ event_timestamp: at(-3600_000) }), 'future_timestamp'],
    [row({ product_name: 'x'.repeat(201), event_timestamp: at(1) }), 'field_too_long'],
    [`${row({ event_timestamp: at(1) })},extra`, 'wrong_column_count'],
  ];
  for (const [line, reason] of cases) {
    const r = check(line);
    assert.equal(r.ok, false, line);
    assert.equal(r.reason, reason, line);
  }
});

test('the first failing check wins, in contract order', () => {
  const r = check(row({ user_id: '', event_type: 'click', price: '-1' }));
  assert.ok(!r.ok && r.reason === 'missing_required');
  const r2 = check(row({ event_type: 'click', price: '-1', event_timestamp: at(1) }));
  assert.ok(!r2.ok && r2.reason === 'invalid_event_type');
});

test('timestamps: zones are converted to UTC, no zone means UTC, microseconds kept', () => {
  assert.equal(parseTimestamp('2026-11-25T13:00:00+01:00').ms, Date.parse('2026-11-25T12:00:00Z'));
  assert.equal(parseTimestamp('2026-11-25T13:00:00+01:00').copy, '2026-11-25 12:00:00');
  assert.equal(parseTimestamp('2026-11-25T13:00:00.123456+01:00').copy, '2026-11-25 12:00:00.123456');
  assert.equal(parseTimestamp('2026-11-25 12:00:00').ms, Date.parse('2026-11-25T12:00:00Z'));
  assert.equal(parseTimestamp('2026-11-25T12:00:00.123456Z').copy, '2026-11-25 12:00:00.123456');
  assert.ok(Number.isNaN(parseTimestamp('2026-13-01T00:00:00Z').ms));
});

test('the 24-hour window is relative to the batch timestamp, not the wall clock', () => {
  const old = row({ event_timestamp: '2020-01-01T00:00:00Z' });
  const then: RowRules = { ...rules, batchTimestampMs: Date.parse('2020-01-01T01:00:00Z') };
  const s = splitCsvLine(old);
  assert.ok(s.ok);
  assert.ok(validateRow(s.fields, then).ok);
});

test('tabs and backslashes are escaped for COPY', async () => {
  const r = check(row({ product_name: 'a\\b\tc', event_timestamp: at(1) }));
  assert.ok(r.ok);
  assert.ok((await copyLine(r.values)).includes('a\\\\b\\tc'));
});
