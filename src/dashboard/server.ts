/**
 * The live dashboard: a node:http server that serves one static page, a JSON API of fixed named queries
 * and a Server-Sent Events stream, reading PostgreSQL through a role that can only read.
 *
 * Terminology
 * - snapshot: everything the page shows for one chart window, computed from one read-only database
 *             snapshot (queries.ts) plus the landing folder and checkpoint (surroundings.ts), by
 *             snapshots.ts.
 * - refresh:  computing the snapshots that connected pages need and pushing them over SSE (pages.ts).
 *             Triggered by the NOTIFY every batch commit sends (coalesced, so a burst of batches costs
 *             one refresh), and by a slow poll as a fallback: a lost notification, files landing while
 *             the engine is stopped, and ages that grow with the clock all show up within POLL_MS.
 * - status:   whether the database answers (live.ts), plus the last query problem; pushed as its own
 *             SSE event so the page shows "database unavailable" and recovers without a reload.
 *
 * This file wires those parts together and owns the server's life; routes.ts answers the requests.
 */
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from '../config.js';
import { openPool } from '../db/client.js';
import { EcomstreamError } from '../errors.js';
import type { Logger } from '../log.js';
import { createLimitedServer } from '../ops/http-limits.js';
import { EngineHealthPoller, engineOpsUrl } from './engine-health.js';
import { DbWatcher } from './live.js';
import { LivePages } from './pages.js';
import { handle, sendJson, type StatusMessage } from './routes.js';
import { SnapshotSource } from './snapshots.js';
import { staticFiles } from './static.js';

export { ARCHITECTURE_SVG, PUBLIC_DIR } from './static.js';

export interface DashboardOptions {
  config: Readonly<Config>;
  /** The admin URL the rest of ecomstream uses; the dashboard swaps in the read-only role's credentials. */
  databaseUrl: string;
  log: Logger;
}

export interface Dashboard {
  url: string;
  close(): Promise<void>;
}

export class DashboardError extends EcomstreamError {}

/** The admin URL with the read-only role's user and password. */
export function readonlyUrl(adminUrl: string, user: string, password: string): string {
  const u = new URL(adminUrl);
  u.username = encodeURIComponent(user);
  u.password = encodeURIComponent(password);
  return u.href;
}

function isLoopback(host: string): boolean {
  return host === '127.0.0.1' || host === 'localhost' || host === '::1' || host.startsWith('127.');
}

export async function startDashboard(opts: DashboardOptions): Promise<Dashboard> {
  const { config, log } = opts;
  const { host, port } = config.dashboard;
  const roUrl = readonlyUrl(opts.databaseUrl, config.db.readonlyUser, config.db.readonlyPassword);
  // Idle clients die with the server; the watcher reports that, the pool must not crash the process.
  const pool = openPool(roUrl, 'dashboard');

  // The parts call one another back: each is reached through these once all exist.
  const snapshots = new SnapshotSource(pool, config, log, {
    problemChanged: () => pages.broadcastStatus(),
    connectionLost: (err) => watcher.reportLost(err),
  });
  const watcher = new DbWatcher(
    roUrl,
    config.db.readonlyUser,
    log,
    () => pages.requestRefresh(),
    (s) => {
      pages.broadcastStatus();
      if (s.state === 'ok') pages.requestRefresh(0);
    },
  );
  const engineHealth = new EngineHealthPoller(engineOpsUrl(config.ops.metricsHost, config.ops.metricsPort), () => pages.broadcastStatus());
  const status = (): StatusMessage => ({ db: watcher.status, problem: snapshots.problem, stream: engineHealth.state });
  const pages = new LivePages(snapshots, () => watcher.status.state === 'ok', status);

  const allowedHosts = isLoopback(host) ? new Set<string>() : undefined;
  const routes = { pages, snapshots, files: staticFiles(), status, readonlyUser: config.db.readonlyUser, allowedHosts };
  const server = createLimitedServer(config.http, (req, res) => {
    handle(routes, req, res).catch((err: unknown) => failed(log, req, res, err));
  });

  await listen(server, host, port).catch(async (err: unknown) => {
    pages.close();
    engineHealth.close();
    await pool.end().catch(() => undefined);
    throw err;
  });
  const bound = (server.address() as AddressInfo).port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  for (const name of ['127.0.0.1', 'localhost', '[::1]', shownHost]) allowedHosts?.add(`${name}:${bound}`);
  watcher.start();

  let closed = false;
  return {
    url: `http://${shownHost}:${bound}/`,
    async close() {
      if (closed) return;
      closed = true;
      pages.close();
      engineHealth.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await watcher.close();
      await snapshots.idle();
      await pool.end().catch(() => undefined);
    },
  };
}

/** Never a stack trace to the browser; the log gets the message. */
function failed(log: Logger, req: http.IncomingMessage, res: http.ServerResponse, err: unknown): void {
  log.error(`dashboard: ${req.method} ${req.url} failed: ${(err as Error).message}`);
  if (!res.headersSent) sendJson(res, 500, { error: 'internal error; see the dashboard log' });
  else res.end();
}

function listen(server: http.Server, host: string, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      const context = { code: err.code, option: '--port', cause: err };
      reject(
        err.code === 'EADDRINUSE'
          ? new DashboardError(`dashboard port ${port} on ${host} is in use; choose another with --port or ECOMSTREAM_DASHBOARD_PORT`, context)
          : new DashboardError(`dashboard could not listen on ${host}:${port}: ${err.message}`, context),
      );
    };
    server.once('error', onError);
    server.listen({ host, port }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
