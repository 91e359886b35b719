/**
 * RFC 4180 field splitting for ONE line (no quoted line breaks), as Spark reads CSV with its default
 * `multiLine=false`: a malformed line spoils only itself, never the lines after it.
 *
 * Why not csv-parse here: measured on this machine it parses ~150,000 rows/s (the engine needs several
 * times that to keep up with COPY), and after a malformed record its recovery dropped the next valid
 * line. csv-parse stays in the test suite as the oracle this splitter is checked against.
 *
 * A failure is a code and a column, never text: the contract's `reader.malformed.detailSplit` holds the
 * detail templates (src/contract/event.ts), rendered by the reader only for a failing line.
 */
import type { SplitFailure } from '../contract/schema.js';

export type SplitResult = { ok: true; fields: string[] } | { ok: false; code: SplitFailure; column: number };

/** SEMANTICS.csv: the 1-based column in code points of the UTF-16 index `index` (failure path only). */
function column(line: string, index: number): number {
  let n = index + 1;
  for (let k = 0; k < index - 1; k++) {
    const c = line.charCodeAt(k);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = line.charCodeAt(k + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n--;
        k++;
      }
    }
  }
  return n;
}

export function splitCsvLine(line: string): SplitResult {
  // Fast path: most lines have no quotes at all.
  if (!line.includes('"')) return { ok: true, fields: line.split(',') };
  const fields: string[] = [];
  const n = line.length;
  let i = 0;
  for (;;) {
    if (i < n && line.charCodeAt(i) === 34 /* " */) {
      // Quoted field: runs to the closing quote; "" is an escaped quote.
      let value = '';
      let start = ++i;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q === -1) return { ok: false, code: 'unterminated_quote', column: column(line, start - 1) };
        if (line.charCodeAt(q + 1) === 34) {
          value += line.slice(start, q + 1);
          i = start = q + 2;
          continue;
        }
        value += line.slice(start, q);
        i = q + 1;
        break;
      }
      fields.push(value);
      if (i === n) return { ok: true, fields };
      if (line.charCodeAt(i) !== 44 /* , */) return { ok: false, code: 'after_closing_quote', column: column(line, i) };
      i++;
    } else {
      const comma = line.indexOf(',', i);
      const end = comma === -1 ? n : comma;
      const value = line.slice(i, end);
      const quote = value.indexOf('"');
      if (quote !== -1) return { ok: false, code: 'quote_in_unquoted', column: column(line, i + quote) };
      fields.push(value);
      if (comma === -1) return { ok: true, fields };
      i = comma + 1;
    }
  }
}
