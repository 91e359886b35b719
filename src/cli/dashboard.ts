/** `ecomstream dashboard`: serve the live dashboard alone, against DATABASE_URL or the embedded server. */
import type { Command } from 'commander';
import { loadConfig } from '../config.js';
import { openDatabase } from '../db/connect.js';
import { startDashboard } from '../dashboard/server.js';
import { consoleLogger, intOption } from './common.js';

export function register(program: Command): void {
  program
    .command('dashboard')
    .description('serve the live, read-only dashboard for DATABASE_URL or the embedded server (default http://127.0.0.1:3000)')
    .option('--port <N>', 'port to listen on; 0 takes a free one (default 3000, env ECOMSTREAM_DASHBOARD_PORT)', intOption('--port', 0, 65535))
    .option('--host <H>', 'address to bind; anything but 127.0.0.1 exposes the data to the network (default 127.0.0.1, env ECOMSTREAM_DASHBOARD_HOST)')
    .action(async (opts: { port?: number; host?: string }) => {
      const config = loadConfig({ dashboard: { port: opts.port, host: opts.host } });
      const db = await openDatabase(config, consoleLogger);
      let dashboard: Awaited<ReturnType<typeof startDashboard>>;
      try {
        dashboard = await startDashboard({ config, databaseUrl: db.url, log: consoleLogger });
      } catch (err) {
        await db.close();
        throw err;
      }
      if (!['127.0.0.1', 'localhost', '::1'].includes(config.dashboard.host)) {
        consoleLogger.warn(`the dashboard listens on ${config.dashboard.host}: anyone who can reach it can read the pipeline's data`);
      }
      consoleLogger.info(`dashboard at ${dashboard.url} (Ctrl-C to stop)`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
      await dashboard.close();
      await db.close();
    });
}
