/**
 * The live dashboard: a node:http server that serves one static page, a JSON API of fixed named queries
 * and a Server-Sent Events stream, reading PostgreSQL through a role that can only read.
 *
 * Terminology
 * - snapshot: everything the page shows for one chart window, computed from one read-only database
 *             snapshot (queries.ts) plus the landing folder and checkpoint (surroundings.ts).
 * - refresh:  computing the snapshots that connected pages need and pushing them over SSE. Triggered by
 *             the NOTIFY every batch commit sends (coalesced, so a burst of batches costs one refresh),
 *             and by a slow poll as a fallback: a lost notification, files landing while the engine is
 *             stopped, and ages that grow with the clock all show up within POLL_MS.
 * - status:   whether the database answers (live.ts), plus the last query problem; pushed as its own
 *             SSE event so the page shows "database unavailable" and recovers without a reload.
 */
import { EngineHealthPoller, engineOpsUrl, type StreamHealth } from './engine-health.js';
import fsp from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { createRequire } from 'node:module';
import pg from 'pg';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { PACKAGE_ROOT } from '../db/migrate.js';
import { isConnectionError, withClient } from '../db/errors.js';
import { DbWatcher, explainDbError, type DbStatus } from './live.js';
import { buildSnapshot, parseWindow, readDbRows, WINDOWS, type Snapshot, type WindowKey } from './queries.js';
import { BacklogTracker, engineState } from './surroundings.js';
import { EcomstreamError } from '../errors.js';
import { createLimitedServer } from '../ops/http-limits.js';

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

/** Let a burst of commits land before refreshing once. */
const COALESCE_MS = 40;
/** At most this often, however fast batches commit: bounds the dashboard's database load. */
const MIN_REFRESH_INTERVAL_MS = 200;
const POLL_MS = 5000;
const KEEPALIVE_MS = 15_000;
/** An API caller gets a cached snapshot younger than this instead of new queries. */
const API_CACHE_MS = 500;

export const PUBLIC_DIR = path.join(PACKAGE_ROOT, 'src', 'dashboard', 'public');
export const ARCHITECTURE_SVG = path.join(PACKAGE_ROOT, 'docs', 'diagrams', 'ecommerce_streaming_architecture.svg');

/** The admin URL with the read-only role's user and password. */
export function readonlyUrl(adminUrl: string, user: string, password: string): string {
  const u = new URL(adminUrl);
  u.username = encodeURIComponent(user);
  u.password = encodeURIComponent(password);
  return u.href;
}

interface StaticFile {
  file: string;
  type: string;
  /** Vendor files change only with a dependency upgrade; the page's own files on every edit. */
  immutable?: boolean;
}

function staticFiles(): Map<string, StaticFile> {
  const require = createRequire(import.meta.url);
  const uplotDir = path.dirname(require.resolve('uplot/dist/uPlot.iife.min.js'));
  return new Map<string, StaticFile>([
    ['/', { file: path.join(PUBLIC_DIR, 'index.html'), type: 'text/html; charset=utf-8' }],
    ['/index.html', { file: path.join(PUBLIC_DIR, 'index.html'), type: 'text/html; charset=utf-8' }],
    ['/app.js', { file: path.join(PUBLIC_DIR, 'app.js'), type: 'text/javascript; charset=utf-8' }],
    ['/style.css', { file: path.join(PUBLIC_DIR, 'style.css'), type: 'text/css; charset=utf-8' }],
    ['/vendor/uPlot.iife.min.js', { file: path.join(uplotDir, 'uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8', immutable: true }],
    ['/vendor/uPlot.min.css', { file: path.join(uplotDir, 'uPlot.min.css'), type: 'text/css; charset=utf-8', immutable: true }],
    ['/architecture.svg', { file: ARCHITECTURE_SVG, type: 'image/svg+xml' }],
  ]);
}

const SECURITY_HEADERS: Record<string, string> = {
  // Everything the page loads comes from this server; nothing inline, no frames, no forms.
  'Content-Security-Policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

interface SseClient {
  res: http.ServerResponse;
  window: WindowKey;
}

interface StatusMessage {
  db: DbStatus;
  /** A query failed for a reason other than the connection (for example a missing table). */
  problem: string | null;
  /** The engine's stall alarm (its /readyz): the page shows a red banner while stalled. */
  stream: StreamHealth;
}

function sendEvent(res: http.ServerResponse, event: string, data: unknown): void {
  res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

function isLoopback(host: string): boolean {
  return host === '127.0.0.1' || host === 'localhost' || host === '::1' || host.startsWith('127.');
}

export async function startDashboard(opts: { config: Readonly<Config>; databaseUrl: string; log: Logger }): Promise<{ url: string; close(): Promise<void> }> {
  const { config, log } = opts;
  const { host, port } = config.dashboard;
  const roUrl = readonlyUrl(opts.databaseUrl, config.db.readonlyUser, config.db.readonlyPassword);
  const files = staticFiles();

  const pool = new pg.Pool({
    connectionString: roUrl,
    application_name: 'ecomstream-dashboard',
    max: 2,
    connectionTimeoutMillis: 3000,
    idleTimeoutMillis: 10_000,
  });
  // Idle clients die with the server; the watcher reports that, the pool must not crash the process.
  pool.on('error', () => undefined);

  const clients = new Set<SseClient>();
  const cache = new Map<WindowKey, { snapshot: Snapshot; atMs: number }>();
  const backlog = new BacklogTracker(config.engine.inputDir);
  let problem: string | null = null;
  let closed = false;

  const status = (): StatusMessage => ({ db: watcher.status, problem, stream: engineHealth.state });
  const broadcastStatus = (): void => {
    const msg = status();
    for (const c of clients) sendEvent(c.res, 'status', msg);
  };

  // Snapshots are computed one at a time (API calls and pushes share the chain), so the dashboard
  // never holds more than one query connection busy however many pages are open.
  let chain: Promise<unknown> = Promise.resolve();
  const compute = (windows: WindowKey[]): Promise<Map<WindowKey, Snapshot>> => {
    const run = async (): Promise<Map<WindowKey, Snapshot>> => {
      const out = new Map<WindowKey, Snapshot>();
      try {
        // withClient handles the client's 'error' event: a connection killed mid-query (server crash,
        // pg_terminate_backend) is a ConnectionLostError here, never a crash of the dashboard.
        await withClient(pool, async (client) => {
          const backlogFiles = await backlog.count(client);
          const [engine, architecture] = await Promise.all([
            engineState(config.engine.checkpointDir, backlogFiles),
            fsp.access(ARCHITECTURE_SVG).then(
              () => true,
              () => false,
            ),
          ]);
          for (const w of windows) {
            const { rows } = await readDbRows(client, w);
            const snapshot = buildSnapshot(rows, w, { backlogFiles, engine, architecture });
            out.set(w, snapshot);
            cache.set(w, { snapshot, atMs: Date.now() });
          }
        });
        if (problem !== null) {
          problem = null;
          broadcastStatus();
        }
        return out;
      } catch (err) {
        if (isConnectionError(err)) {
          watcher.reportLost(err);
        } else {
          const message = explainDbError(err, config.db.readonlyUser);
          if (message !== problem) {
            problem = message;
            log.warn(`dashboard: query failed: ${message}`);
            broadcastStatus();
          }
        }
        throw err;
      }
    };
    const p = chain.then(run, run);
    chain = p.catch(() => undefined);
    return p;
  };

  // Push refreshes to connected pages: coalesced, rate-limited, never two at once.
  let scheduled: NodeJS.Timeout | undefined;
  let running = false;
  let dirty = false;
  let lastRunMs = 0;
  const requestRefresh = (delayMs = COALESCE_MS): void => {
    dirty = true;
    if (scheduled || running || closed) return;
    const wait = Math.max(delayMs, lastRunMs + MIN_REFRESH_INTERVAL_MS - Date.now());
    scheduled = setTimeout(() => {
      scheduled = undefined;
      void pushRefresh();
    }, wait);
  };
  const pushRefresh = async (): Promise<void> => {
    dirty = false;
    const windows = [...new Set([...clients].map((c) => c.window))];
    if (windows.length === 0 || watcher.status.state !== 'ok') return;
    running = true;
    lastRunMs = Date.now();
    try {
      const snapshots = await compute(windows);
      for (const c of clients) {
        const s = snapshots.get(c.window);
        if (s) sendEvent(c.res, 'snapshot', s);
      }
    } catch {
      // Reported through the status event (compute did that); the poll or the reconnect retries.
    } finally {
      running = false;
      // A request during the refresh's awaits sets it; TypeScript's narrowing does not see that.
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
      if (dirty) requestRefresh(0);
    }
  };

  const watcher = new DbWatcher(
    roUrl,
    config.db.readonlyUser,
    log,
    () => requestRefresh(),
    (s) => {
      broadcastStatus();
      if (s.state === 'ok') requestRefresh(0);
    },
  );

  const engineHealth = new EngineHealthPoller(engineOpsUrl(config.ops.metricsHost, config.ops.metricsPort), () => broadcastStatus());

  const poll = setInterval(() => {
    if (clients.size > 0) requestRefresh(0);
  }, POLL_MS);
  const keepalive = setInterval(() => {
    for (const c of clients) c.res.write(': keepalive\n\n');
  }, KEEPALIVE_MS);
  poll.unref();
  keepalive.unref();

  const allowedHosts = new Set<string>();
  const checkHost = isLoopback(host);

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
    // A page on another site could otherwise reach this loopback server through DNS rebinding.
    if (checkHost && !allowedHosts.has((req.headers.host ?? '').toLowerCase())) {
      sendJson(res, 421, { error: `unexpected Host header ${JSON.stringify(req.headers.host ?? '')}` });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      sendJson(res, 405, { error: `${req.method} is not allowed; the dashboard is read-only` });
      return;
    }
    const url = new URL(req.url ?? '/', 'http://dashboard.invalid');

    if (url.pathname === '/api/events') {
      const window = parseWindow(url.searchParams.get('window'));
      if (!window) {
        sendJson(res, 400, { error: windowError(url.searchParams.get('window')) });
        return;
      }
      res.writeHead(200, {
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-store',
        Connection: 'keep-alive',
        'X-Accel-Buffering': 'no',
      });
      res.write('retry: 2000\n\n');
      const client: SseClient = { res, window };
      clients.add(client);
      req.socket.setNoDelay(true);
      res.on('close', () => clients.delete(client));
      sendEvent(res, 'status', status());
      const cached = cache.get(window);
      if (cached) sendEvent(res, 'snapshot', cached.snapshot);
      requestRefresh(0);
      return;
    }
    if (url.pathname === '/api/snapshot') {
      const window = parseWindow(url.searchParams.get('window'));
      if (!window) {
        sendJson(res, 400, { error: windowError(url.searchParams.get('window')) });
        return;
      }
      if (watcher.status.state === 'unavailable') {
        sendJson(res, 503, { error: `database unavailable: ${watcher.status.message ?? 'no connection'}` });
        return;
      }
      const cached = cache.get(window);
      if (cached && Date.now() - cached.atMs < API_CACHE_MS) {
        sendJson(res, 200, cached.snapshot);
        return;
      }
      try {
        const snapshots = await compute([window]);
        sendJson(res, 200, snapshots.get(window));
        return;
      } catch (err) {
        const unavailable = isConnectionError(err);
        const message = unavailable ? `database unavailable: ${explainDbError(err, config.db.readonlyUser)}` : explainDbError(err, config.db.readonlyUser);
        sendJson(res, 503, { error: message });
        return;
      }
    }
    if (url.pathname === '/api/health') {
      const s = status();
      sendJson(res, s.db.state === 'ok' && !s.problem ? 200 : 503, s);
      return;
    }
    if (url.pathname === '/favicon.ico') {
      res.writeHead(204);
      res.end();
      return;
    }
    const file = files.get(url.pathname);
    if (!file) {
      sendJson(res, 404, { error: `no such page: ${url.pathname}` });
      return;
    }
    let body: Buffer;
    try {
      body = await fsp.readFile(file.file);
    } catch {
      const what = url.pathname === '/architecture.svg' ? 'the architecture diagram has not been generated yet' : `${url.pathname} is missing`;
      sendJson(res, 404, { error: what });
      return;
    }
    res.writeHead(200, {
      'Content-Type': file.type,
      'Content-Length': body.length,
      'Cache-Control': file.immutable ? 'public, max-age=86400' : 'no-cache',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  };

  const server = createLimitedServer(config.http, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      // Never a stack trace to the browser; the log gets the message.
      log.error(`dashboard: ${req.method} ${req.url} failed: ${(err as Error).message}`);
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error; see the dashboard log' });
      else res.end();
    });
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(
        err.code === 'EADDRINUSE'
          ? new DashboardError(`dashboard port ${port} on ${host} is in use; choose another with --port or ECOMSTREAM_DASHBOARD_PORT`, { cause: err })
          : new DashboardError(`dashboard could not listen on ${host}:${port}: ${err.message}`, { cause: err }),
      );
    };
    server.once('error', onError);
    server.listen({ host, port }, () => {
      server.off('error', onError);
      resolve();
    });
  }).catch(async (err: unknown) => {
    clearInterval(poll);
    clearInterval(keepalive);
    await pool.end().catch(() => undefined);
    throw err;
  });

  const bound = (server.address() as import('node:net').AddressInfo).port;
  for (const name of ['127.0.0.1', 'localhost', '[::1]', host.includes(':') ? `[${host}]` : host]) allowedHosts.add(`${name}:${bound}`);
  watcher.start();

  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shownHost}:${bound}/`,
    async close() {
      if (closed) return;
      closed = true;
      clearTimeout(scheduled);
      clearInterval(poll);
      clearInterval(keepalive);
      engineHealth.close();
      for (const c of clients) c.res.end();
      clients.clear();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await watcher.close();
      await chain;
      await pool.end().catch(() => undefined);
    },
  };
}

function windowError(value: string | null): string {
  return `window ${JSON.stringify(value)} is not one of ${Object.keys(WINDOWS).join(', ')}`;
}

function sendJson(res: http.ServerResponse, statusCode: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(statusCode, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}
