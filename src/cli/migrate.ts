/** `ecomstream migrate`: apply the pending migrations of postgres/migrations/ to the configured database. */
import type { Command } from 'commander';
import { loadConfig } from '../config.js';
import { openDatabase } from '../db/connect.js';
import { migrate } from '../db/migrate.js';
import { consoleLogger } from './common.js';

export function register(program: Command): void {
  program
    .command('migrate')
    .description('apply the pending migrations of postgres/migrations/ (one transaction each) to DATABASE_URL or the embedded server')
    .action(async () => {
      const db = await openDatabase(loadConfig(), consoleLogger, { migrate: false });
      try {
        const applied = await migrate(db.url, { onApply: (m) => consoleLogger.info(`applied ${m.file}`) });
        consoleLogger.info(applied.length ? `schema is up to date (${applied.length} migrations applied)` : 'schema is up to date (nothing to apply)');
      } finally {
        await db.close();
      }
    });
}
