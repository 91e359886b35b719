/**
 * `ecomstream up` (what `npm start` runs): embedded PostgreSQL + schema + stream engine + generator
 * (+ dashboard), one line per batch. Ctrl-C: finish the batch in flight, commit, stop the server.
 * Ctrl-C again: abort (the batch is replayed on the next start).
 */
import type { Command } from 'commander';
import { loadConfig, formatTrigger, type Config } from '../config.js';
import { addOpsOptions, opsOverrides, type OpsFlags } from './ops-options.js';
import { runGenerator } from '../generator/run.js';
import { startDashboardThread } from '../dashboard/thread.js';
import { consoleLogger, intOption, numberOption } from './common.js';
import { withEngineSession, type EngineSession } from './engine-session.js';
import type { Logger } from '../log.js';

interface UpOptions extends OpsFlags {
  files: number;
  eventsPerFile: number;
  interval: number;
  dashboard: boolean;
  dashboardPort: number;
  fileSettle: number;
}

/**
 * The dashboard runs in its own thread, so none of its clients can delay a batch. A dashboard that
 * fails to start (say, its port is taken) must not stop the pipeline.
 */
async function maybeStartDashboard(config: Readonly<Config>, url: string, log: Logger): Promise<{ url: string; close(): Promise<void> } | undefined> {
  try {
    return await startDashboardThread({ config, databaseUrl: url, log });
  } catch (err) {
    log.warn(`dashboard not started: ${(err as Error).message}`);
    return undefined;
  }
}

export function register(program: Command): void {
  const d = loadConfig();
  const cmd = program
    .command('up')
    .description('run everything on this machine: embedded PostgreSQL, stream engine, generator and dashboard')
    .option('--files <n>', 'files the generator writes (0 = unlimited)', intOption('--files', 0), d.generator.files)
    .option('--events-per-file <n>', 'events per file', intOption('--events-per-file', 1), d.generator.eventsPerFile)
    .option('--interval <seconds>', 'seconds between files', numberOption('--interval', 0, 86_400), d.generator.intervalSeconds)
    .option('--no-dashboard', 'do not serve the dashboard')
    .option('--dashboard-port <n>', 'dashboard port', intOption('--dashboard-port', 1, 65_535), d.dashboard.port)
    // Its own generator publishes atomically (complete files linked into place), so nothing needs to settle.
    .option(
      '--file-settle <seconds>',
      'plan a file only when unchanged this long (raise it if other producers write into the folder)',
      numberOption('--file-settle', 0, 3600),
      0,
    );
  addOpsOptions(cmd, d.ops)
    .addHelpText('after', '\nWith DATABASE_URL set, that PostgreSQL is used and no server is started.')
    .action(async (opts: UpOptions) => {
      const t0 = performance.now();
      const log = consoleLogger;
      const config = loadConfig({
        generator: { files: opts.files, eventsPerFile: opts.eventsPerFile, intervalSeconds: opts.interval },
        dashboard: { port: opts.dashboardPort },
        ops: opsOverrides(opts),
        engine: { fileSettleMillis: Math.round(opts.fileSettle * 1000) },
      });
      const started = { embedded: false }; // set in the session, read after it closed the server
      try {
        await withEngineSession(
          config,
          log,
          { stopping: 'the generator stops, the batch in flight commits, then the server stops', ops: true },
          async (session) => {
            started.embedded = session.db.embedded !== undefined;
            await runUp(session, config, opts.dashboard, log, t0);
          },
        );
      } finally {
        if (started.embedded) log.info('embedded PostgreSQL stopped');
      }
    });
}

/** The engine, the generator beside it and the dashboard, on the session's database, until the engine stops. */
async function runUp(session: EngineSession, config: Readonly<Config>, withDashboard: boolean, log: Logger, t0: number): Promise<void> {
  const { db } = session;
  const dashboard = withDashboard ? await maybeStartDashboard(config, db.url, log) : undefined;
  try {
    if (db.embedded) {
      const u = new URL(db.url);
      log.info(`connect with: psql "postgresql://${config.db.user}:${config.db.password}@127.0.0.1:${u.port}/${config.db.database}"`);
    }
    if (dashboard) log.info(`dashboard: ${dashboard.url}`);
    log.info(
      `generator: ${config.generator.files || 'unlimited'} files of ${config.generator.eventsPerFile} events every ${config.generator.intervalSeconds} s into ${config.engine.inputDir}; ` +
        `engine trigger ${formatTrigger(config.engine.trigger)}. Ctrl-C to stop.`,
    );
    let firstBatchLogged = false;
    const engineRun = session.runEngine({
      onProgress: () => {
        if (firstBatchLogged) return;
        firstBatchLogged = true;
        log.info(`first batch committed ${Math.round(performance.now() - t0)} ms after start`);
      },
    });
    const generatorRun = runGenerator({ outDir: config.engine.inputDir, config: config.generator, signal: session.signal }).then(
      (r) => log.info(`generator finished: ${r.files} files, ${r.events} events (the engine keeps watching; Ctrl-C to stop)`),
      (err: unknown) => log.error(`generator failed: ${(err as Error).message}`),
    );
    const summary = await engineRun;
    session.stop(); // the engine is done: stop the generator too
    await generatorRun;
    log.info(
      `stopped after ${summary.batches} batches: ${summary.insertedRows} rows inserted, ${summary.duplicateRows} duplicate, ${summary.rejectedRows} rejected`,
    );
  } finally {
    session.stop(); // also when the engine failed: the generator must not run on alone
    await dashboard?.close().catch(() => undefined);
  }
}
