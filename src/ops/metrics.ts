/**
 * Prometheus metrics of the stream engine (prom-client), fed by the engine's observer events. Names
 * follow Prometheus conventions: `_total` counters, `_seconds` units, one registry per engine so tests
 * and `up` never share state through prom-client's global registry.
 */
import client from 'prom-client';
import { REASONS, type Reason } from '../contract/event.js';
import type { EngineObserver } from '../engine/observer.js';
import { errorCode } from '../errors.js';
import type { ProgressRecord } from '../engine/progress.js';
import { collectProcessMetrics } from './process-metrics.js';

/** The phases a progress record measures (`durationMs` less its `total`). */
export const BATCH_PHASES = ['plan', 'read', 'write', 'commit'] as const satisfies readonly (keyof ProgressRecord['durationMs'])[];

/** `already_present`: rows of a reprocessed file whose event was stored before (not duplicates). */
export const ROW_OUTCOMES = ['inserted', 'duplicate', 'rejected', 'already_present'] as const;

/** One rendering of the registry, in the Prometheus text format. */
export interface MetricsText {
  text: string;
  contentType: string;
  renderedAtMs: number;
}

export interface EngineMetrics {
  registry: client.Registry;
  observer: EngineObserver;
  /** Set by the stall monitor (src/ops/health.ts). */
  setStalled(stalled: boolean): void;
  /**
   * The registry as text, rendered at most once per `minIntervalMillis` (the renderings in between
   * are this one) and never twice at once: rendering costs the batch loop milliseconds, so how often
   * it happens must not be up to the scrapers.
   */
  render(): Promise<MetricsText>;
}

export function createEngineMetrics(opts: { defaultMetrics?: boolean; minIntervalMillis: number }): EngineMetrics {
  const registry = new client.Registry();
  if (opts.defaultMetrics !== false) collectProcessMetrics(registry);
  const registers = [registry];

  const rows = new client.Counter({
    name: 'ecomstream_rows_total',
    help: 'Input rows by outcome (inserted, duplicate, rejected, already_present).',
    labelNames: ['outcome'],
    registers,
  });
  const rejected = new client.Counter({
    name: 'ecomstream_rejected_rows_total',
    help: 'Rows and file notices written to rejected_events, by reason code of the event contract.',
    labelNames: ['reason'],
    registers,
  });
  const batches = new client.Counter({ name: 'ecomstream_batches_total', help: 'Micro-batches committed (replays included).', registers });
  const replays = new client.Counter({ name: 'ecomstream_replays_total', help: 'Batches replayed from the offsets log after a restart.', registers });
  const retries = new client.Counter({
    name: 'ecomstream_db_retries_total',
    help: 'Batch writes retried after a lost connection or a database out of connection slots or disk space, by SQLSTATE or Node error code.',
    labelNames: ['code'],
    registers,
  });
  const duration = new client.Histogram({
    name: 'ecomstream_batch_duration_seconds',
    help: 'Time per batch phase (plan, read, write, commit) as the progress records measure it.',
    labelNames: ['phase'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers,
  });
  const latency = new client.Histogram({
    name: 'ecomstream_publish_to_commit_seconds',
    help: 'Per file: its publication (mtime) to the commit of its batch.',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600],
    registers,
  });
  const backlog = new client.Gauge({ name: 'ecomstream_backlog_files', help: 'Published files not yet planned into a batch.', registers });
  const lastCommit = new client.Gauge({
    name: 'ecomstream_last_commit_timestamp_seconds',
    help: 'Unix time of the last committed batch (0 = none since start).',
    registers,
  });
  const stalled = new client.Gauge({ name: 'ecomstream_stalled', help: '1 while files wait and no batch has committed for --stall-after seconds.', registers });
  const renders = new client.Counter({
    name: 'ecomstream_metrics_renders_total',
    help: 'Renderings of this registry for /metrics: scrapes within a second of one another share one.',
    registers,
  });
  const info = new client.Gauge({
    name: 'ecomstream_stream_info',
    help: 'The stream id of the checkpoint this engine runs (value always 1).',
    labelNames: ['stream_id'],
    registers,
  });

  // Every label value known in advance is exported at zero, so a rate() over it exists before the first event.
  for (const outcome of ROW_OUTCOMES) rows.inc({ outcome }, 0);
  for (const reason of Object.keys(REASONS) as Reason[]) rejected.inc({ reason }, 0);
  for (const phase of BATCH_PHASES) duration.zero({ phase });
  backlog.set(0);
  lastCommit.set(0);
  stalled.set(0);

  const observer: EngineObserver = {
    started: ({ streamId }) => info.set({ stream_id: streamId }, 1),
    backlog: (n) => backlog.set(n),
    // Batch writes only: a start-up retry is no write (and /readyz reports both).
    dbRetry: ({ batchId, error }) => {
      if (batchId !== undefined) retries.inc({ code: errorCode(error) ?? 'unknown' });
    },
    batchCommitted: ({ record, files, rejectsByReason }) => {
      batches.inc();
      if (record.replay) replays.inc();
      rows.inc({ outcome: 'inserted' }, record.insertedRows);
      rows.inc({ outcome: 'duplicate' }, record.duplicateRows);
      rows.inc({ outcome: 'rejected' }, record.rejectedRows);
      rows.inc({ outcome: 'already_present' }, record.alreadyPresentRows ?? 0);
      for (const [reason, n] of rejectsByReason) rejected.inc({ reason }, n);
      for (const phase of BATCH_PHASES) duration.observe({ phase }, record.durationMs[phase] / 1000);
      const committedAt = Date.parse(record.committedAt);
      for (const f of files) latency.observe(Math.max(0, committedAt - f.mtimeMs) / 1000);
      lastCommit.set(committedAt / 1000);
    },
  };
  let last: MetricsText | undefined;
  let inFlight: Promise<MetricsText> | undefined;
  const render = (): Promise<MetricsText> => {
    if (last && Date.now() - last.renderedAtMs < opts.minIntervalMillis) return Promise.resolve(last);
    inFlight ??= (async () => {
      try {
        renders.inc();
        const renderedAtMs = Date.now();
        last = { text: await registry.metrics(), contentType: registry.contentType, renderedAtMs };
        return last;
      } finally {
        inFlight = undefined;
      }
    })();
    return inFlight;
  };
  return { registry, observer, setStalled: (s) => stalled.set(s ? 1 : 0), render };
}
