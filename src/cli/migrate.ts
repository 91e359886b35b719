/** `ecomstream migrate`: apply postgres/init.sql to the configured database. */
import type { Command } from 'commander';
import { loadConfig } from '../config.js';
import { openDatabase } from '../db/connect.js';
import { consoleLogger } from './common.js';

export function register(program: Command): void {
  program
    .command('migrate')
    .description('apply postgres/init.sql (idempotent) to DATABASE_URL or the embedded server')
    .action(async () => {
      const db = await openDatabase(loadConfig(), consoleLogger);
      await db.close();
      consoleLogger.info('schema is up to date');
    });
}
