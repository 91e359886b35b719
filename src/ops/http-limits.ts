/**
 * The limits every HTTP server of ecomstream applies (the metrics port and the dashboard port): a
 * client that never finishes its headers (Slowloris) is closed after `headersTimeoutMillis`, one that
 * never finishes its request after `requestTimeoutMillis`, and past `maxConnections` a new connection
 * is closed at once instead of queued. A response streamed for long (the dashboard's live updates) is
 * not a request still arriving, so these never cut it.
 */
import http from 'node:http';
import type { HttpLimitsConfig } from '../config.js';

/** How often Node looks for requests past their time; its default (30 s) would let a slow client stay 35 s. */
const CHECK_INTERVAL_MS = 1000;
/** An idle keep-alive connection is closed after this long (Prometheus reconnects every scrape interval anyway). */
const KEEP_ALIVE_MS = 5000;

export function createLimitedServer(limits: Readonly<HttpLimitsConfig>, handler: http.RequestListener): http.Server {
  const server = http.createServer(
    { headersTimeout: limits.headersTimeoutMillis, requestTimeout: limits.requestTimeoutMillis, connectionsCheckingInterval: CHECK_INTERVAL_MS },
    handler,
  );
  server.maxConnections = limits.maxConnections;
  server.keepAliveTimeout = KEEP_ALIVE_MS;
  return server;
}
