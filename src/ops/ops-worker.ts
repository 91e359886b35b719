/**
 * The operations endpoint's HTTP server, in its own thread (started by src/ops/server.ts, which says
 * why). `/livez` and `/readyz` are answered from the last health state the engine posted; `/metrics`
 * from the last rendering while it is younger than the minimum interval, else from a new one the
 * engine is asked for — one request at a time, however many scrapers wait for it — and no more than
 * `maxScrapesPerSecond` answers a second: the rest wait their turn, costing nothing while they wait.
 */
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import { createLimitedServer } from './http-limits.js';
import type { HealthState } from './health.js';
import type { MetricsText } from './metrics.js';
import type { FromOpsWorker, OpsWorkerData, ToOpsWorker } from './server.js';

const data = workerData as OpsWorkerData;
const port = parentPort!;
const post = (m: FromOpsWorker): void => port.postMessage(m);

let health: HealthState = { alive: true, readiness: { ready: false, reason: 'starting', detail: 'the engine has not reported yet' } };
let snapshot: MetricsText | undefined;
let waiting: { resolve(m: MetricsText): void; reject(err: Error): void }[] | undefined;

function metrics(): Promise<MetricsText> {
  if (snapshot && Date.now() - snapshot.renderedAtMs < data.minIntervalMillis) return Promise.resolve(snapshot);
  return new Promise((resolve, reject) => {
    if (!waiting) {
      waiting = [];
      post({ type: 'render' });
    }
    waiting.push({ resolve, reject });
  });
}

function settle(outcome: { metrics: MetricsText } | { error: Error }): void {
  const waiters = waiting ?? [];
  waiting = undefined;
  if ('metrics' in outcome) snapshot = outcome.metrics;
  for (const w of waiters) {
    if ('metrics' in outcome) w.resolve(outcome.metrics);
    else w.reject(outcome.error);
  }
}

/** When the next `/metrics` answer may go: one slot per 1/maxScrapesPerSecond s, handed out in order. */
let nextSlotMs = 0;

function waitForSlot(): Promise<void> {
  const now = Date.now();
  const at = Math.max(now, nextSlotMs);
  nextSlotMs = at + 1000 / data.maxScrapesPerSecond;
  // Unreferenced: a scrape still waiting does not hold the worker open once the server has closed.
  return at === now ? Promise.resolve() : new Promise((resolve) => setTimeout(resolve, at - now).unref());
}

const JSON_TYPE = 'application/json; charset=utf-8';

function send(res: http.ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

function readyz(res: http.ServerResponse): void {
  const r = health.readiness;
  const body = r.ready ? { status: 'ready' } : { status: 'not_ready', reason: r.reason, detail: r.detail };
  send(res, r.ready ? 200 : 503, JSON_TYPE, `${JSON.stringify(body)}\n`);
}

const server = createLimitedServer(data.limits, (req, res) => {
  const route = (req.url ?? '/').split('?')[0];
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, JSON_TYPE, '{"error":"method_not_allowed"}\n');
  if (route === '/livez') {
    return health.alive
      ? send(res, 200, JSON_TYPE, '{"status":"alive"}\n')
      : send(res, 503, JSON_TYPE, '{"status":"dead","reason":"the batch loop has ended"}\n');
  }
  if (route === '/readyz') return readyz(res);
  if (route === '/metrics') {
    waitForSlot()
      .then(metrics)
      .then(
        (m) => send(res, 200, m.contentType, m.text),
        (err: unknown) => {
          const message = (err as Error).message;
          post({ type: 'log', level: 'error', message: `/metrics failed: ${message}` });
          send(res, 500, 'text/plain; charset=utf-8', `${message}\n`);
        },
      );
    return;
  }
  send(res, 404, JSON_TYPE, '{"error":"not_found","paths":["/metrics","/livez","/readyz"]}\n');
});

port.on('message', (m: ToOpsWorker) => {
  if (m.type === 'health') health = m.state;
  else if (m.type === 'metrics') settle({ metrics: m.metrics });
  else if (m.type === 'metrics-error') settle({ error: new Error(m.message) });
  else {
    server.close(() => port.close());
    server.closeAllConnections();
  }
});

server.once('error', (err: NodeJS.ErrnoException) => {
  post({ type: 'listen-error', code: err.code, message: err.message });
  port.close();
});
server.listen(data.port, data.host, () => post({ type: 'listening', address: server.address() as AddressInfo }));
