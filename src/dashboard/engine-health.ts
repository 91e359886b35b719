/**
 * Whether the stream is stalled, as the engine itself says on `/readyz` (src/ops/health.ts decides; the
 * dashboard only asks). Polled, so the standalone `ecomstream dashboard` sees the engine `up` or `process`
 * runs as well as `up`'s own dashboard does. An engine that does not answer is "unknown", not stalled:
 * the page already says when the database is away.
 */
export interface StreamHealth {
  stalled: boolean;
  /** What is stuck, as the engine says it (one line), when stalled. */
  detail: string | null;
}

const POLL_MS = 2000;

export class EngineHealthPoller {
  state: StreamHealth = { stalled: false, detail: null };
  private readonly timer: NodeJS.Timeout | undefined;
  private busy = false;

  /** `baseUrl` undefined (the metrics endpoint is off): never stalled. */
  constructor(
    private readonly baseUrl: string | undefined,
    private readonly onChange: (s: StreamHealth) => void,
  ) {
    if (!baseUrl) return;
    this.timer = setInterval(() => void this.poll(), POLL_MS);
    this.timer.unref();
    void this.poll();
  }

  private async poll(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    let next: StreamHealth = { stalled: false, detail: null };
    try {
      const res = await fetch(`${this.baseUrl}/readyz`, { signal: AbortSignal.timeout(POLL_MS - 500) });
      const body = (await res.json()) as { reason?: string; detail?: string };
      if (body.reason === 'stalled') next = { stalled: true, detail: body.detail ?? null };
    } catch {
      // No engine answering: not a stall the dashboard can vouch for.
    } finally {
      this.busy = false;
    }
    if (next.stalled !== this.state.stalled || next.detail !== this.state.detail) {
      this.state = next;
      this.onChange(next);
    }
  }

  close(): void {
    clearInterval(this.timer);
  }
}

/** The engine's ops endpoint as a client reaches it (a wildcard bind is reached on loopback). */
export function engineOpsUrl(host: string, port: number): string | undefined {
  if (port === 0) return undefined;
  const h = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return `http://${h}:${port}`;
}
