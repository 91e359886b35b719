import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'csv-parse/sync';
import { splitCsvLine } from '../../src/engine/csv-line.js';
import { EVENT_CONTRACT } from '../../src/contract/event.js';
import { SPLIT_FAILURES } from '../../src/contract/schema.js';

test('plain, quoted, escaped-quote and empty fields', () => {
  assert.deepEqual(splitCsvLine('a,b,c'), { ok: true, fields: ['a', 'b', 'c'] });
  assert.deepEqual(splitCsvLine('a,"b,c",d'), { ok: true, fields: ['a', 'b,c', 'd'] });
  assert.deepEqual(splitCsvLine('"say ""hi""",,x'), { ok: true, fields: ['say "hi"', '', 'x'] });
  assert.deepEqual(splitCsvLine(',,'), { ok: true, fields: ['', '', ''] });
  assert.deepEqual(splitCsvLine('a,""'), { ok: true, fields: ['a', ''] });
});

test('malformed lines are a failure code and a 1-based column in code points, not exceptions', () => {
  const cases: [string, string, number][] = [
    ['a,"unterminated', 'unterminated_quote', 3],
    ['a,"x"y,b', 'after_closing_quote', 6],
    ['a,b"c,d', 'quote_in_unquoted', 4],
    ['"x""', 'unterminated_quote', 4],
    ['"x""y', 'unterminated_quote', 4],
    ['\u{1F600}\u{1F600},"x', 'unterminated_quote', 4],
    ['\u{1F600},"x"\u{1F600}', 'after_closing_quote', 6],
    ['é\u{1F600}b"', 'quote_in_unquoted', 4],
  ];
  for (const [bad, code, column] of cases) assert.deepEqual(splitCsvLine(bad), { ok: false, code, column }, bad);
});

test('every failure code has a template in the event contract, with a {column}', () => {
  for (const code of SPLIT_FAILURES) assert.match(EVENT_CONTRACT.reader.malformed.detailSplit[code], /\{column\}/, code);
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
