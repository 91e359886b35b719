/**
 * Which PostgreSQL a command talks to: `DATABASE_URL` when set (start nothing), else the embedded server
 * in `data/postgres`, started on demand and migrated.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { startEmbedded, type EmbeddedServer } from './embedded.js';
import { migrate } from './migrate.js';
import { retryWhileUnavailable } from './retry.js';

export interface Database {
  url: string;
  /** Set when this process started the embedded server (and so must stop it). */
  embedded: EmbeddedServer | undefined;
  close(): Promise<void>;
}

/** Written next to the embedded data so other commands (query, dashboard) find the running server. */
export const EMBEDDED_URL_FILE = 'ecomstream-url';

/** `data/postgres.ecomstream-url`: beside the data folder, not in it (the server owns that folder). */
function embeddedUrlFile(config: Readonly<Config>): string {
  return path.join(config.db.embeddedDir, '..', `${path.basename(config.db.embeddedDir)}.${EMBEDDED_URL_FILE}`);
}

/**
 * `waitForServer`: a long-running command (process, up) waits, within `startupRetrySeconds`, for a
 * server that does not answer yet; a one-shot command (query, migrate) fails at once.
 */
export async function openDatabase(config: Readonly<Config>, log: Logger, opts: { migrate?: boolean; waitForServer?: boolean } = {}): Promise<Database> {
  if (config.db.url) {
    const url = config.db.url;
    // A server still starting (or restarting) is waited for, like a batch waits for it, for a bounded time.
    const e = config.engine;
    if (opts.migrate !== false && !opts.waitForServer) await migrate(url);
    else if (opts.migrate !== false) {
      await retryWhileUnavailable(
        {
          log,
          what: 'start-up',
          initialMillis: e.retryInitialMillis,
          maxMillis: e.retryMaxMillis,
          deadlineMillis: e.startupRetrySeconds * 1000,
          deadlineOption: '--startup-timeout',
        },
        () => migrate(url),
      );
    }
    return { url: config.db.url, embedded: undefined, close: () => Promise.resolve() };
  }
  // A running `ecomstream up` has the server already: connect to it instead of starting a second one.
  const running = runningEmbeddedUrl(config);
  if (running) return { url: running, embedded: undefined, close: () => Promise.resolve() };

  const server = await startEmbedded({
    dataDir: config.db.embeddedDir,
    port: config.db.port,
    user: config.db.user,
    password: config.db.password,
    database: config.db.database,
  });
  log.info(`embedded PostgreSQL 15 started on port ${server.port} (data in ${path.relative(process.cwd(), server.dataDir) || '.'})`);
  const urlFile = embeddedUrlFile(config);
  fs.writeFileSync(urlFile, `${server.pid} ${server.url}\n`);
  try {
    if (opts.migrate !== false) await migrate(server.url);
  } catch (err) {
    await server.stop();
    throw err;
  }
  return {
    url: server.url,
    embedded: server,
    async close() {
      await server.stop();
      fs.rmSync(urlFile, { force: true });
    },
  };
}

/** The URL of an embedded server another ecomstream process runs on this data folder, if alive. */
export function runningEmbeddedUrl(config: Readonly<Config>): string | undefined {
  const urlFile = embeddedUrlFile(config);
  let text: string;
  try {
    text = fs.readFileSync(urlFile, 'utf8').trim();
  } catch {
    return undefined;
  }
  const [pidText, url] = text.split(' ');
  try {
    process.kill(Number(pidText), 0);
    return url;
  } catch {
    return undefined;
  }
}
