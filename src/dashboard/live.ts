/**
 * The dashboard's ear on the database: one connection that LISTENs on the ledger's BATCH_CHANNEL (the batch
 * trigger NOTIFYs at commit), and that doubles as the health signal. When it drops, the dashboard says
 * "database unavailable" and reconnects with backoff until the server is back.
 */
import type pg from 'pg';
import type { Logger } from '../log.js';
import { newClient } from '../db/client.js';
import { describePgError } from '../db/errors.js';
import { BATCH_CHANNEL, listenForBatches } from '../db/ledger.js';

export type DbState = 'connecting' | 'ok' | 'unavailable';

export interface DbStatus {
  state: DbState;
  /** Why it is unavailable (one line, never a stack). */
  message: string | undefined;
  sinceMs: number;
}

export interface BatchNotice {
  streamId?: string;
  batchId?: number;
  batches?: number;
}

const BACKOFF_INITIAL_MS = 250;
const BACKOFF_MAX_MS = 3000;

/** A one-line, user-facing reason for a database error, with a hint where there is an obvious fix. */
export function explainDbError(err: unknown, readonlyUser: string): string {
  const code = (err as { code?: string }).code;
  const text = describePgError(err);
  if (code === '28P01' || code === '28000') return `cannot log in as ${readonlyUser} (${text}); run \`ecomstream migrate\` to create the read-only role`;
  if (code === '42P01' || code === '42883') return `${text}; the dashboard tables are missing, run \`ecomstream migrate\``;
  if (code === '3D000') return `${text}; the database does not exist (yet)`;
  return text;
}

export class DbWatcher {
  status: DbStatus = { state: 'connecting', message: undefined, sinceMs: Date.now() };
  private client: pg.Client | undefined;
  private timer: NodeJS.Timeout | undefined;
  private backoffMs = BACKOFF_INITIAL_MS;
  private closed = false;

  constructor(
    private readonly url: string,
    private readonly readonlyUser: string,
    private readonly log: Logger,
    private readonly onBatch: (notice: BatchNotice) => void,
    private readonly onStatus: (status: DbStatus) => void,
  ) {}

  start(): void {
    void this.connect();
  }

  /** A query on the pool failed with a connection error: do not wait for the listener to notice. */
  reportLost(err: unknown): void {
    if (this.status.state === 'ok') this.lost(err);
  }

  private setStatus(state: DbState, message?: string): void {
    if (this.status.state === state && this.status.message === message) return;
    const was = this.status.state;
    this.status = { state, message, sinceMs: Date.now() };
    if (state === 'unavailable' && was !== 'unavailable') this.log.warn(`dashboard: database unavailable (${message}); retrying`);
    if (state === 'ok' && was === 'unavailable') this.log.info('dashboard: database connection restored');
    this.onStatus(this.status);
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    // A lost connection is expected here: its 'error' event starts the reconnection.
    const client = newClient(this.url, 'listen', { onError: (err) => this.lost(err, client) });
    this.client = client;
    client.on('end', () => this.lost(new Error('connection to the database ended'), client));
    client.on('notification', (msg) => {
      if (msg.channel !== BATCH_CHANNEL) return;
      let notice: BatchNotice = {};
      try {
        notice = JSON.parse(msg.payload ?? '{}') as BatchNotice;
      } catch {
        // The payload is informative only; any notification means "a batch committed".
      }
      this.onBatch(notice);
    });
    try {
      await client.connect();
      await listenForBatches(client);
    } catch (err) {
      this.lost(err, client);
      return;
    }
    // close() may have run during the awaits above; TypeScript's narrowing does not see that.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
    if (this.closed || this.client !== client) return;
    this.backoffMs = BACKOFF_INITIAL_MS;
    this.setStatus('ok');
  }

  private lost(err: unknown, client = this.client): void {
    if (this.closed || client !== this.client) return;
    this.client = undefined;
    client?.removeAllListeners('end');
    client?.removeAllListeners('notification');
    client?.on('error', () => undefined);
    client?.end().catch(() => undefined);
    this.setStatus('unavailable', explainDbError(err, this.readonlyUser));
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.connect(), this.backoffMs);
    this.backoffMs = Math.min(BACKOFF_MAX_MS, this.backoffMs * 2);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    const client = this.client;
    this.client = undefined;
    if (client) {
      client.removeAllListeners('end');
      client.on('error', () => undefined);
      await client.end().catch(() => undefined);
    }
  }
}
