/**
 * The operations endpoint of `process` and `up`: `GET /metrics` (Prometheus text format), `GET /livez`
 * and `GET /readyz`, the paths Kubernetes and Redpanda Connect use. Bound to 127.0.0.1 unless
 * `--metrics-host` says otherwise.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from '../log.js';
import type { HealthMonitor } from './health.js';

export interface OpsServer {
  url: string;
  close(): Promise<void>;
}

export class OpsServerError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OpsServerError';
  }
}

function send(res: http.ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

const JSON_TYPE = 'application/json; charset=utf-8';

export async function startOpsServer(opts: { host: string; port: number; registry: Registry; health: HealthMonitor; log: Logger }): Promise<OpsServer> {
  const { registry, health, log } = opts;
  const server = http.createServer((req, res) => {
    const route = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, JSON_TYPE, '{"error":"method_not_allowed"}\n');
    if (route === '/metrics') {
      registry.metrics().then(
        (text) => send(res, 200, registry.contentType, text),
        (err: unknown) => {
          const message = (err as Error).message;
          log.error(`/metrics failed: ${message}`);
          send(res, 500, 'text/plain; charset=utf-8', `${message}\n`);
        },
      );
      return;
    }
    if (route === '/livez') {
      return health.alive
        ? send(res, 200, JSON_TYPE, '{"status":"alive"}\n')
        : send(res, 503, JSON_TYPE, '{"status":"dead","reason":"the batch loop has ended"}\n');
    }
    if (route === '/readyz') {
      health.readiness().then(
        (r) =>
          send(
            res,
            r.ready ? 200 : 503,
            JSON_TYPE,
            `${JSON.stringify(r.ready ? { status: 'ready' } : { status: 'not_ready', reason: r.reason, detail: r.detail })}\n`,
          ),
        (err: unknown) =>
          send(res, 503, JSON_TYPE, `${JSON.stringify({ status: 'not_ready', reason: 'database_unreachable', detail: (err as Error).message })}\n`),
      );
      return;
    }
    send(res, 404, JSON_TYPE, '{"error":"not_found","paths":["/metrics","/livez","/readyz"]}\n');
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (cause: NodeJS.ErrnoException) =>
      reject(
        new OpsServerError(
          `metrics endpoint: cannot listen on ${opts.host}:${opts.port} (${cause.code ?? cause.message}); choose another --metrics-port, or 0 to turn it off`,
          { cause },
        ),
      ),
    );
    server.listen(opts.port, opts.host, resolve);
  });
  server.unref();
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${host}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
