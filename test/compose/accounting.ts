/**
 * Exactly-once accounting of a landing folder against the database: every data line of every published
 * file is in user_events (by its event_id) or in rejected_events (by file and line), once, and
 * user_events holds nothing else.
 */
import fs from 'node:fs';
import path from 'node:path';
import { HEADER_LINE } from '../../src/contract/event.js';
import { sql } from './deployment.js';

export interface Ledger {
  files: number;
  lines: number;
  stored: number;
  rejected: number;
  /** Lines in neither table. */
  missing: string[];
  /** Lines rejected more than once. */
  doubled: string[];
  /** Rows of user_events that no unrejected line accounts for. */
  extra: number;
}

interface Line {
  file: string;
  line: number;
  eventId: string;
}

function dataLines(dir: string): { files: number; lines: Line[] } {
  const names = fs.readdirSync(dir).filter((n) => n.endsWith('.csv') && !n.startsWith('.'));
  const lines: Line[] = [];
  for (const file of names) {
    const text = fs.readFileSync(path.join(dir, file), 'utf8');
    text.split('\n').forEach((raw, i) => {
      const l = raw.replace(/\r$/, '');
      if (l === '' || (i === 0 && l === HEADER_LINE)) return;
      lines.push({ file, line: i + 1, eventId: (l.split(',')[0] ?? '').replace(/^"|"$/g, '') });
    });
  }
  return { files: names.length, lines };
}

export async function account(dir: string): Promise<Ledger> {
  const { files, lines } = dataLines(dir);
  const rejects = await sql<{ file: string; line: number; n: string }>(
    'SELECT source_file AS file, line_number AS line, count(*) AS n FROM rejected_events WHERE line_number > 0 GROUP BY 1, 2',
  );
  const rejected = new Map(rejects.map((r) => [`${path.basename(r.file)}:${r.line}`, Number(r.n)]));
  const ids = new Set((await sql<{ event_id: string }>('SELECT event_id FROM user_events')).map((r) => r.event_id));
  const missing: string[] = [];
  const doubled: string[] = [];
  let unrejected = 0;
  for (const l of lines) {
    const key = `${l.file}:${l.line}`;
    const n = rejected.get(key) ?? 0;
    if (n > 1) doubled.push(key);
    if (n > 0) continue;
    unrejected++;
    if (!ids.has(l.eventId)) missing.push(key);
  }
  return { files, lines: lines.length, stored: ids.size, rejected: rejected.size, missing, doubled, extra: ids.size - (unrejected - missing.length) };
}

/** True when every line is accounted for exactly once. */
export function balanced(l: Ledger): boolean {
  return l.missing.length === 0 && l.doubled.length === 0 && l.extra === 0 && l.stored + l.rejected === l.lines;
}

export function describe(l: Ledger): string {
  const some = (xs: string[]): string => (xs.length ? ` (${xs.slice(0, 5).join(', ')}${xs.length > 5 ? ', …' : ''})` : '');
  return (
    `${l.files} files, ${l.lines} lines: ${l.stored} stored, ${l.rejected} rejected, ` +
    `${l.missing.length} missing${some(l.missing)}, ${l.doubled.length} rejected twice${some(l.doubled)}, ${l.extra} extra rows`
  );
}
