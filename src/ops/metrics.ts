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
  const m = declareMetrics(registry);
  return {
    registry,
    observer: observe(m),
    setStalled: (s) => m.stalled.set(s ? 1 : 0),
    render: throttledRender(registry, m.renders, opts.minIntervalMillis),
  };
}

type Metrics = ReturnType<typeof declareMetrics>;

function declareMetrics(registry: client.Registry) {
  const registers = [registry];
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) => new client.Counter({ name, help, labelNames, registers });
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) => new client.Gauge({ name, help, labelNames, registers });
  const histogram = <L extends string>(name: string, help: string, buckets: number[], labelNames: readonly L[] = []) =>
    new client.Histogram({ name, help, buckets, labelNames, registers });
  const m = {
    rows: counter('ecomstream_rows_total', 'Input rows by outcome (inserted, duplicate, rejected, already_present).', ['outcome']),
    rejected: counter('ecomstream_rejected_rows_total', 'Rows and file notices written to rejected_events, by reason code of the event contract.', ['reason']),
    batches: counter('ecomstream_batches_total', 'Micro-batches committed (replays included).'),
    replays: counter('ecomstream_replays_total', 'Batches replayed from the offsets log after a restart.'),
    retries: counter(
      'ecomstream_db_retries_total',
      'Batch writes retried after a lost connection or a database out of connection slots or disk space, by SQLSTATE or Node error code.',
      ['code'],
    ),
    duration: histogram(
      'ecomstream_batch_duration_seconds',
      'Time per batch phase (plan, read, write, commit) as the progress records measure it.',
      [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      ['phase'],
    ),
    latency: histogram(
      'ecomstream_publish_to_commit_seconds',
      'Per file: its publication (mtime) to the commit of its batch.',
      [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600],
    ),
    backlog: gauge('ecomstream_backlog_files', 'Published files not yet planned into a batch.'),
    lastCommit: gauge('ecomstream_last_commit_timestamp_seconds', 'Unix time of the last committed batch (0 = none since start).'),
    stalled: gauge('ecomstream_stalled', '1 while files wait and no batch has committed for --stall-after seconds.'),
    renders: counter('ecomstream_metrics_renders_total', 'Renderings of this registry for /metrics: scrapes within a second of one another share one.'),
    info: gauge('ecomstream_stream_info', 'The stream id of the checkpoint this engine runs (value always 1).', ['stream_id']),
  };
  // Every label value known in advance is exported at zero, so a rate() over it exists before the first event.
  for (const outcome of ROW_OUTCOMES) m.rows.inc({ outcome }, 0);
  for (const reason of Object.keys(REASONS) as Reason[]) m.rejected.inc({ reason }, 0);
  for (const phase of BATCH_PHASES) m.duration.zero({ phase });
  m.backlog.set(0);
  m.lastCommit.set(0);
  m.stalled.set(0);
  return m;
}

function observe(m: Metrics): EngineObserver {
  return {
    started: ({ streamId }) => m.info.set({ stream_id: streamId }, 1),
    backlog: (n) => m.backlog.set(n),
    // Batch writes only: a start-up retry is no write (and /readyz reports both).
    dbRetry: ({ batchId, error }) => {
      if (batchId !== undefined) m.retries.inc({ code: errorCode(error) ?? 'unknown' });
    },
    batchCommitted: ({ record, files, rejectsByReason }) => {
      m.batches.inc();
      if (record.replay) m.replays.inc();
      m.rows.inc({ outcome: 'inserted' }, record.insertedRows);
      m.rows.inc({ outcome: 'duplicate' }, record.duplicateRows);
      m.rows.inc({ outcome: 'rejected' }, record.rejectedRows);
      m.rows.inc({ outcome: 'already_present' }, record.alreadyPresentRows ?? 0);
      for (const [reason, n] of rejectsByReason) m.rejected.inc({ reason }, n);
      for (const phase of BATCH_PHASES) m.duration.observe({ phase }, record.durationMs[phase] / 1000);
      const committedAt = Date.parse(record.committedAt);
      for (const f of files) m.latency.observe(Math.max(0, committedAt - f.mtimeMs) / 1000);
      m.lastCommit.set(committedAt / 1000);
    },
  };
}

/** EngineMetrics.render: at most one rendering per `minIntervalMillis`, never two at once. */
function throttledRender(registry: client.Registry, renders: client.Counter, minIntervalMillis: number): () => Promise<MetricsText> {
  let last: MetricsText | undefined;
  let inFlight: Promise<MetricsText> | undefined;
  return () => {
    if (last && Date.now() - last.renderedAtMs < minIntervalMillis) return Promise.resolve(last);
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
}
