/**
 * A contract's table as SQL: what a new feed's table looks like (`ecomstream contract --ddl`), and what
 * test/integration/contract-feeds.test.ts compares the migrated user_events with.
 *
 * Besides the contract's columns the table has `id` (insertion order) and `inserted_at` (the commit
 * time, for latency), and a unique index on the conflict key, which the sink's ON CONFLICT uses.
 */
import type { ColumnSpec, ContractSpec } from './schema.js';

export function sqlType(c: ColumnSpec): string {
  switch (c.type) {
    case 'varchar':
      return `VARCHAR(${c.length})`;
    case 'decimal':
      return `DECIMAL(${c.precision},${c.scale})`;
    case 'timestamp':
      return 'TIMESTAMP';
  }
}

export function tableDdl(spec: ContractSpec): string {
  const cols = spec.columns.map((c) => `    ${c.name} ${sqlType(c)}${c.required ? ' NOT NULL' : ''},`);
  return [
    `CREATE TABLE IF NOT EXISTS ${spec.table} (`,
    '    id BIGSERIAL PRIMARY KEY,',
    ...cols,
    '    inserted_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP',
    ');',
    `CREATE UNIQUE INDEX IF NOT EXISTS ${spec.table}_${spec.conflictKey}_key ON ${spec.table} (${spec.conflictKey});`,
    '',
  ].join('\n');
}
