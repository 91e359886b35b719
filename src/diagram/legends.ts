/**
 * The boxes of text beside the architecture: the legends (performance figures of each engine, the
 * technology stack, the security note) and the recovery note on the checkpoint arrow. Each figure
 * names where it comes from: the Compose file, src/config.ts, a benchmark's results, or the spec.
 */
import path from 'node:path';
import { formatTrigger, type Config } from '../config.js';
import { imageTag, sparkVersions, SPEC_FIGURES, type Deployment } from './deployment.js';
import type { BenchResults, EngineRun, EnginesResults } from './facts.js';
import { INPUT_FILES, type ModelInputs } from './inputs.js';
import type { Annotation, Legend, LegendRow, Line } from './model.js';
import { approxMs, bullet, fmtInt, fmtMs, line, wrapWords } from './text.js';

/** Characters of 10 pt text per line in the notes and legend footers of the lower-left column. */
const NOTE_CHARS = 31;
/** Characters of 9 pt per footer line: the legends' width. */
const FOOTER_CHARS = 44;
/** Characters of 9 pt per line under the technology stack. */
const STACK_CHARS = 26;
const CONFIG_SOURCE = 'config.ts';
/** The Compose file's row tag: its name without the `docker-` that every Compose file shares. */
const COMPOSE_TAG = 'compose';

/** The legends, in the order the drawing declares them. */
export function legends(d: Deployment, inputs: ModelInputs): Legend[] {
  return [metricsLegend(d, inputs.engines), stackLegend(d, inputs.generatorImage), localLegend(inputs.config, inputs.bench), securityLegend()];
}

/** Spec "Fault Tolerance Highlights": the recovery, beside the arrow it explains. */
export function recoveryNote(): Annotation {
  return {
    id: 'recovery',
    connection: 'checkpoint',
    lines: [
      line('Recovery after a crash', 'name', 'left'),
      ...wrapWords(
        'offsets/N is written before batch N, commits/N only after its rows are committed in PostgreSQL. On restart ' +
          'a batch with offsets/N but no commits/N is replayed from the log, and its batch id and the unique ' +
          'event_id keep the table free of duplicates.',
        NOTE_CHARS,
      ).map((t) => line(t, 'note')),
    ],
  };
}

const base = (file: string): string => path.posix.basename(file);

/** `p50 13 / p99 28 ms`, or one of them, or undefined. */
function latencyText(p50: number | undefined, p99: number | undefined): string | undefined {
  if (p50 !== undefined && p99 !== undefined) return `p50 ${fmtMs(p50).replace(/ ms$/, '')} / p99 ${fmtMs(p99)}`;
  if (p50 !== undefined) return `p50 ${fmtMs(p50)}`;
  return p99 !== undefined ? `p99 ${fmtMs(p99)}` : undefined;
}

const footer = (text: string): Line[] => wrapWords(text, FOOTER_CHARS).map((t) => line(t, 'muted', 'left'));

/** "engines.json = bench/results/engines.json, 2026-11-25, 2 cores, ...": what a row's tag stands for, and when. */
function measuredLines(file: string, when: { measuredAt?: string | undefined; machine?: string | undefined }): Line[] {
  return footer(`${base(file)} = ${file}, ${when.measuredAt ? when.measuredAt.slice(0, 10) : 'undated'}, ${when.machine ?? 'machine not recorded'}`);
}

const specRow = (key: string, value: string): LegendRow => ({ key, value, source: 'spec' });

/**
 * The Docker deployment's figures: configured values from the Compose file, and the Spark job's own
 * measured figures from `npm run bench:engines` (bench/results/engines.json); the spec's figures,
 * marked as such, where nothing was measured.
 */
function metricsLegend(d: Deployment, engines: EnginesResults | undefined): Legend {
  const compose = COMPOSE_TAG;
  const rows: LegendRow[] = [
    { key: 'Records/file:', value: String(d.eventsPerFile), source: compose },
    { key: 'Trigger:', value: d.trigger.kind === 'interval' ? `Every ${d.trigger.seconds} seconds` : formatTrigger(d.trigger), source: compose },
    { key: 'Parallelism:', value: `${d.cores} cores`, source: compose },
    { key: 'Files/Trigger:', value: d.maxFilesPerTrigger === 0 ? 'unlimited' : String(d.maxFilesPerTrigger), source: compose },
  ];
  const lines: Line[] = footer(`${compose} = ${d.file}`);
  const spark = engines?.spark;
  if (spark?.rowsPerSecond !== undefined) {
    rows.push(...sparkMeasuredRows({ ...spark, rowsPerSecond: spark.rowsPerSecond }));
    lines.push(...measuredLines(INPUT_FILES.engines, engines ?? {}));
  } else {
    rows.push(
      { key: 'Spark job: spec figures, not measured here', value: '', heading: true },
      specRow('Batch Time:', `${approxMs(SPEC_FIGURES.batchAvgMs)} (avg)`),
      specRow('', `${approxMs(SPEC_FIGURES.firstBatchMs)} (first batch)`),
      specRow('Latency:', SPEC_FIGURES.latency),
      specRow('Warm-up:', SPEC_FIGURES.warmUp),
      specRow('Peak Throughput:', SPEC_FIGURES.peak),
    );
    lines.push(...footer(`spec = the spec's figures; no ${INPUT_FILES.engines} yet`));
  }
  return { id: 'metrics', title: 'Performance Metrics', rows, lines };
}

/** The Spark job's measured rows, with the spec's figure in place of one it did not measure. */
function sparkMeasuredRows(spark: EngineRun & { rowsPerSecond: number }): LegendRow[] {
  const measured = base(INPUT_FILES.engines);
  const batches = spark.batches !== undefined ? `${spark.batches} batch${spark.batches === 1 ? '' : 'es'}` : '';
  const rows: LegendRow[] = [
    {
      key: `Spark job, measured${spark.master || batches ? ` (${[spark.master, batches].filter(Boolean).join(', ')})` : ''}`,
      value: '',
      heading: true,
    },
  ];
  const batchMs = spark.processingMs !== undefined && spark.batches ? spark.processingMs / spark.batches : undefined;
  rows.push({ key: 'Throughput:', value: `${fmtInt(spark.rowsPerSecond)} rows/s`, source: measured });
  rows.push(
    spark.firstBatchDurationMs !== undefined
      ? { key: 'First batch:', value: fmtMs(spark.firstBatchDurationMs), source: measured }
      : specRow('First batch:', approxMs(SPEC_FIGURES.firstBatchMs)),
  );
  if (batchMs !== undefined) rows.push({ key: 'Batch time:', value: fmtMs(batchMs), source: measured });
  else rows.push(specRow('Batch time:', `${approxMs(SPEC_FIGURES.batchAvgMs)} (avg)`));
  const latency = latencyText(spark.latencyP50Ms, spark.latencyP99Ms);
  rows.push(latency !== undefined ? { key: 'Latency:', value: latency, source: measured } : specRow('Latency:', SPEC_FIGURES.latency));
  return rows;
}

/** Versions from the image tags the Compose file runs. */
function stackLegend(d: Deployment, generatorImage: ModelInputs['generatorImage']): Legend {
  const v = sparkVersions(d.master.image ?? d.worker.image);
  const nodeImage = generatorImage.image;
  const nodeVersion = /^node:(\d+)/.exec(nodeImage)?.[1];
  const pgadminTag = imageTag(d.pgadmin.image);
  return {
    id: 'stack',
    title: 'Technology Stack',
    rows: [
      { key: 'Docker Compose:', value: '2.0+' },
      { key: 'Node.js:', value: nodeVersion ? `${nodeVersion} (generator)` : `${nodeImage} (generator)` },
      { key: 'Python:', value: v.python === '-' ? '-' : `${v.python} (PySpark job)` },
      { key: 'Spark:', value: v.spark },
      { key: 'PostgreSQL:', value: imageTag(d.postgres.image) },
      { key: 'pgAdmin:', value: pgadminTag === 'latest' ? 'Latest' : pgadminTag },
      { key: 'Java:', value: v.java },
      { key: 'Scala:', value: v.scala },
    ],
    lines: [
      ...wrapWords(`Versions: image tags in ${d.file}`, STACK_CHARS).map((t) => line(t, 'muted', 'left')),
      ...(generatorImage.source === 'fallback' ? [line(`Generator image assumed: no ${d.generator.dockerfile ?? 'Dockerfile'}`, 'muted', 'left')] : []),
    ],
  };
}

/** The same pipeline without Docker, so the picture does not suggest Spark is the only way to run it. */
function localLegend(config: Config, bench: BenchResults | undefined): Legend {
  const rows: LegendRow[] = [
    { key: 'Engine:', value: 'TypeScript (default)', source: CONFIG_SOURCE },
    { key: 'Trigger:', value: `${formatTrigger(config.engine.trigger)}, ≤${config.engine.maxFilesPerTrigger} files`, source: CONFIG_SOURCE },
    { key: 'PostgreSQL:', value: `embedded, :${config.db.port}`, source: CONFIG_SOURCE },
    { key: 'Dashboard:', value: `${config.dashboard.host}:${config.dashboard.port}`, source: CONFIG_SOURCE },
  ];
  const lines: Line[] = footer(`${CONFIG_SOURCE} = src/config.ts, its defaults`);
  const e = bench?.engine;
  const src = base(INPUT_FILES.bench);
  const measured: LegendRow[] = [];
  if (e) {
    if (e.rowsPerSecond !== undefined) measured.push({ key: 'Throughput:', value: `${fmtInt(e.rowsPerSecond)} rows/s`, source: src });
    if (e.firstBatchMs !== undefined) measured.push({ key: 'First batch:', value: fmtMs(e.firstBatchMs), source: src });
    const latency = latencyText(e.latencyP50Ms, e.latencyP99Ms);
    if (latency !== undefined) measured.push({ key: 'Latency:', value: latency, source: src });
  }
  if (measured.length > 0) {
    rows.push({ key: 'TypeScript engine, measured', value: '', heading: true }, ...measured);
    lines.push(...measuredLines(INPUT_FILES.bench, bench ?? {}));
  } else lines.push(...footer(`not measured yet: no ${INPUT_FILES.bench}`));
  return { id: 'local', title: 'Without Docker: npm start', rows, lines };
}

function securityLegend(): Legend {
  return {
    id: 'security',
    title: 'Note: Development configuration',
    rows: [],
    lines: [
      line('Production requires:', 'note'),
      bullet('Encrypted connections (SSL/TLS)'),
      bullet('Secret management (Vault)'),
      bullet('Network policies'),
      bullet('Authentication & authorization'),
    ],
  };
}
