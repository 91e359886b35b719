/** `ecomstream query <name>`: the spec's sample queries, as a table or JSON. */
import type { Command } from 'commander';
import pg from 'pg';
import { newClient } from '../db/client.js';
import { loadConfig } from '../config.js';
import { openDatabase } from '../db/connect.js';
import { NAMED_QUERIES, QUERY_NAMES, type NamedQuery, type QueryName } from '../db/queries.js';
import { choiceOption, consoleLogger } from './common.js';
import { silentLogger, type Logger } from '../log.js';

/** A plain text table: columns padded to their widest value, numbers right-aligned. */
export function formatTable(fields: string[], rows: Record<string, unknown>[]): string {
  // A cell is whatever pg returned for the column (string, number, boolean, Date); String() is its text.
  // eslint-disable-next-line @typescript-eslint/no-base-to-string
  const cell = (v: unknown): string => (v === null || v === undefined ? '' : v instanceof Date ? v.toISOString().slice(0, 10) : String(v));
  const widths = fields.map((f) => Math.max(f.length, ...rows.map((r) => cell(r[f]).length)));
  const numeric = fields.map((f) => rows.length > 0 && rows.every((r) => r[f] === null || /^-?\d+(\.\d+)?$/.test(cell(r[f]))));
  const line = (vals: string[]): string =>
    vals
      .map((v, i) => (numeric[i] ? v.padStart(widths[i]!) : v.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(fields), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map((r) => line(fields.map((f) => cell(r[f]))))].join('\n');
}

const quietLog: Logger = { info: silentLogger.info, warn: consoleLogger.warn, error: consoleLogger.error };

export function register(program: Command): void {
  program
    .command('query')
    .description('run a sample query of the spec: events-by-type | revenue-by-category | latency | summary')
    .argument('<name>', QUERY_NAMES.join(' | '), choiceOption('query name', QUERY_NAMES))
    .option('--json', 'print JSON instead of a table')
    .action(async (name: QueryName, opts: { json?: boolean }) => {
      const db = await openDatabase(loadConfig(), quietLog);
      // Counts (int8) and sums (numeric) as JSON numbers: these values stay far below 2^53.
      const { INT8, NUMERIC } = pg.types.builtins;
      const types: pg.CustomTypesConfig = {
        getTypeParser: (oid, format): unknown => (oid === INT8 || oid === NUMERIC ? Number : pg.types.getTypeParser(oid, format)),
      };
      const client = newClient(db.url, 'command', opts.json ? { types } : {});
      try {
        await client.connect();
        const res = await client.query<Record<string, unknown>>(NAMED_QUERIES[name].sql);
        const fields = res.fields.map((f) => f.name);
        if (opts.json) process.stdout.write(`${JSON.stringify(res.rows, null, 2)}\n`);
        else {
          const q: NamedQuery = NAMED_QUERIES[name];
          const note = q.note === undefined ? '' : `\n${q.note}\n`;
          process.stdout.write(`${q.title}\n\n${formatTable(fields, res.rows)}\n(${res.rowCount} rows)\n${note}`);
        }
      } finally {
        await client.end().catch(() => undefined);
        await db.close();
      }
    });
}
