/**
 * The dashboard's HTTP answers: read-only GET and HEAD, on this server's own Host names when it listens on
 * loopback. `/api/events` is the live stream, `/api/snapshot` one snapshot as JSON, `/api/health` the
 * status; every other path is a static file.
 */
import type http from 'node:http';
import { isConnectionError } from '../db/errors.js';
import { explainDbError, type DbStatus } from './live.js';
import type { LivePages } from './pages.js';
import { parseWindow, WINDOWS, type WindowKey } from './queries.js';
import type { SnapshotSource } from './snapshots.js';
import { readStatic, type StaticFiles } from './static.js';
import type { StreamHealth } from './engine-health.js';

/** An API caller gets a cached snapshot younger than this instead of new queries. */
const API_CACHE_MS = 500;

const SECURITY_HEADERS: Record<string, string> = {
  // Everything the page loads comes from this server; nothing inline, no frames, no forms.
  'Content-Security-Policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

export interface StatusMessage {
  db: DbStatus;
  /** A query failed for a reason other than the connection (for example a missing table). */
  problem: string | null;
  /** The engine's stall alarm (its /readyz): the page shows a red banner while stalled. */
  stream: StreamHealth;
}

export interface Routes {
  pages: LivePages;
  snapshots: SnapshotSource;
  files: StaticFiles;
  status(): StatusMessage;
  readonlyUser: string;
  /** `host:port` values a request's Host header may carry; undefined: any (the server is not on loopback). */
  allowedHosts: ReadonlySet<string> | undefined;
}

export async function handle(r: Routes, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
  // A page on another site could otherwise reach this loopback server through DNS rebinding.
  if (r.allowedHosts && !r.allowedHosts.has((req.headers.host ?? '').toLowerCase())) {
    sendJson(res, 421, { error: `unexpected Host header ${JSON.stringify(req.headers.host ?? '')}` });
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    sendJson(res, 405, { error: `${req.method} is not allowed; the dashboard is read-only` });
    return;
  }
  const url = new URL(req.url ?? '/', 'http://dashboard.invalid');
  switch (url.pathname) {
    case '/api/events':
      return withWindow(res, url, (w) => r.pages.open(req, res, w));
    case '/api/snapshot':
      return withWindow(res, url, (w) => snapshot(r, res, w));
    case '/api/health': {
      const s = r.status();
      sendJson(res, s.db.state === 'ok' && !s.problem ? 200 : 503, s);
      return;
    }
    case '/favicon.ico':
      res.writeHead(204);
      res.end();
      return;
    default:
      return staticFile(r, req, res, url.pathname);
  }
}

/** Run `then` with the request's `?window=`, or answer 400 when it names none. */
async function withWindow(res: http.ServerResponse, url: URL, then: (w: WindowKey) => void | Promise<void>): Promise<void> {
  const window = parseWindow(url.searchParams.get('window'));
  if (!window) {
    sendJson(res, 400, { error: windowError(url.searchParams.get('window')) });
    return;
  }
  await then(window);
}

async function snapshot(r: Routes, res: http.ServerResponse, window: WindowKey): Promise<void> {
  const db = r.status().db;
  if (db.state === 'unavailable') {
    sendJson(res, 503, { error: `database unavailable: ${db.message ?? 'no connection'}` });
    return;
  }
  const cached = r.snapshots.cached(window);
  if (cached && Date.now() - cached.atMs < API_CACHE_MS) {
    sendJson(res, 200, cached.snapshot);
    return;
  }
  try {
    const snapshots = await r.snapshots.compute([window]);
    sendJson(res, 200, snapshots.get(window));
  } catch (err) {
    const message = explainDbError(err, r.readonlyUser);
    sendJson(res, 503, { error: isConnectionError(err) ? `database unavailable: ${message}` : message });
  }
}

async function staticFile(r: Routes, req: http.IncomingMessage, res: http.ServerResponse, pathname: string): Promise<void> {
  const answer = await readStatic(pathname, r.files);
  if ('missing' in answer) {
    sendJson(res, 404, { error: answer.missing });
    return;
  }
  res.writeHead(200, {
    'Content-Type': answer.type,
    'Content-Length': answer.body.length,
    'Cache-Control': answer.immutable ? 'public, max-age=86400' : 'no-cache',
  });
  res.end(req.method === 'HEAD' ? undefined : answer.body);
}

function windowError(value: string | null): string {
  return `window ${JSON.stringify(value)} is not one of ${Object.keys(WINDOWS).join(', ')}`;
}

export function sendJson(res: http.ServerResponse, statusCode: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(statusCode, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}
