/**
 * The pages connected over Server-Sent Events, and what is pushed to them: each page's snapshot when a
 * batch commits or the slow poll comes round (coalesced, rate-limited, never two refreshes at once),
 * the status whenever it changes, and a keepalive comment so that nothing between closes the stream.
 */
import type http from 'node:http';
import type { WindowKey } from './queries.js';
import type { SnapshotSource } from './snapshots.js';

/** Let a burst of commits land before refreshing once. */
const COALESCE_MS = 40;
/** At most this often, however fast batches commit: bounds the dashboard's database load. */
const MIN_REFRESH_INTERVAL_MS = 200;
const POLL_MS = 5000;
const KEEPALIVE_MS = 15_000;

interface SseClient {
  res: http.ServerResponse;
  window: WindowKey;
}

export function sendEvent(res: http.ServerResponse, event: string, data: unknown): void {
  res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

export class LivePages {
  private readonly clients = new Set<SseClient>();
  private readonly poll: NodeJS.Timeout;
  private readonly keepalive: NodeJS.Timeout;
  private scheduled: NodeJS.Timeout | undefined;
  private running = false;
  private dirty = false;
  private lastRunMs = 0;
  private closed = false;

  constructor(
    private readonly snapshots: SnapshotSource,
    /** Whether the database answers: no refresh is tried while it does not. */
    private readonly databaseUp: () => boolean,
    private readonly status: () => unknown,
  ) {
    this.poll = setInterval(() => {
      if (this.clients.size > 0) this.requestRefresh(0);
    }, POLL_MS);
    this.keepalive = setInterval(() => {
      for (const c of this.clients) c.res.write(': keepalive\n\n');
    }, KEEPALIVE_MS);
    this.poll.unref();
    this.keepalive.unref();
  }

  /** Turn `res` into an event stream for `window`: the status and the last snapshot at once, a fresh one soon. */
  open(req: http.IncomingMessage, res: http.ServerResponse, window: WindowKey): void {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    res.write('retry: 2000\n\n');
    const client: SseClient = { res, window };
    this.clients.add(client);
    req.socket.setNoDelay(true);
    res.on('close', () => this.clients.delete(client));
    sendEvent(res, 'status', this.status());
    const cached = this.snapshots.cached(window);
    if (cached) sendEvent(res, 'snapshot', cached.snapshot);
    this.requestRefresh(0);
  }

  broadcastStatus(): void {
    const msg = this.status();
    for (const c of this.clients) sendEvent(c.res, 'status', msg);
  }

  requestRefresh(delayMs = COALESCE_MS): void {
    this.dirty = true;
    if (this.scheduled || this.running || this.closed) return;
    const wait = Math.max(delayMs, this.lastRunMs + MIN_REFRESH_INTERVAL_MS - Date.now());
    this.scheduled = setTimeout(() => {
      this.scheduled = undefined;
      void this.pushRefresh();
    }, wait);
  }

  /** Stop pushing and end every stream. */
  close(): void {
    this.closed = true;
    clearTimeout(this.scheduled);
    clearInterval(this.poll);
    clearInterval(this.keepalive);
    for (const c of this.clients) c.res.end();
    this.clients.clear();
  }

  private async pushRefresh(): Promise<void> {
    this.dirty = false;
    const windows = [...new Set([...this.clients].map((c) => c.window))];
    if (windows.length === 0 || !this.databaseUp()) return;
    this.running = true;
    this.lastRunMs = Date.now();
    try {
      const snapshots = await this.snapshots.compute(windows);
      for (const c of this.clients) {
        const s = snapshots.get(c.window);
        if (s) sendEvent(c.res, 'snapshot', s);
      }
    } catch {
      // Reported through the status event (the snapshot source did that); the poll or the reconnect retries.
    } finally {
      this.running = false;
      // A request during the refresh's awaits sets it; TypeScript's narrowing does not see that.
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
      if (this.dirty) this.requestRefresh(0);
    }
  }
}
