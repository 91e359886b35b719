import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'csv-parse/sync';
import { splitCsvLine } from '../../src/engine/csv-line.js';

test('plain, quoted, escaped-quote and empty fields', () => {
  assert.deepEqual(splitCsvLine('a,b,c'), { ok: true, fields: ['a', 'b', 'c'] });
  assert.deepEqual(splitCsvLine('a,"b,c",d'), { ok: true, fields: ['a', 'b,c', 'd'] });
  assert.deepEqual(splitCsvLine('"say ""hi""",,x'), { ok: true, fields: ['say "hi"', '', 'x'] });
  assert.deepEqual(splitCsvLine(',,'), { ok: true, fields: ['', '', ''] });
  assert.deepEqual(splitCsvLine('a,""'), { ok: true, fields: ['a', ''] });
});

test('malformed lines are errors, not exceptions', () => {
  for (const bad of ['a,"unterminated', 'a,"x"y,b', 'a,b"c,d', '"x""']) {
    const r = splitCsvLine(bad);
    assert.equal(r.ok, false, bad);
  }
});

// csv-parse is the oracle: on every well-formed line both must give the same fields.
test('agrees with csv-parse on generated well-formed lines', () => {
  let seed = 42;
  const rnd = (n: number): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
  const alphabet = ['a', 'b', ' ', ',', '"', 'é', '\t', '1'];
  for (let i = 0; i < 2000; i++) {
    const fields: string[] = [];
    const nf = 1 + rnd(12);
    for (let f = 0; f < nf; f++) {
      let v = '';
      const len = rnd(6);
      for (let k = 0; k < len; k++) v += alphabet[rnd(alphabet.length)]!;
      fields.push(v);
    }
    const line = fields.map((v) => (/[",]/.test(v) || rnd(4) === 0 ? `"${v.replace(/"/g, '""')}"` : v)).join(',');
    const ours = splitCsvLine(line);
    const theirs = parse(line, { relax_column_count: true })[0];
    assert.ok(ours.ok, line);
    assert.deepEqual(ours.fields, theirs ?? [''], line);
  }
});
