/**
 * The generator loop: make a file with the factory, publish it, wait for the next slot, until `files` are
 * written or the signal aborts.
 *
 * Pacing follows a fixed schedule from the start (file k is due at start + k * period), so time spent
 * generating and publishing does not add up into drift. The period is `eventsPerFile / rate` seconds when
 * `rate` > 0, else `intervalSeconds`; 0 means as fast as possible. The first file is written at once.
 *
 * Event timestamps are the moments the events happened, as a real-time source would report them: a file's
 * events lie between the previous file and this one, the first file's in the period before it (see
 * "window" in factory.ts). Unpaced, there is no period: every event is stamped with the moment of writing.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { GeneratorConfig } from '../config.js';
import { EventFactory, type ExpectedRejection } from './factory.js';
import { Publisher } from './publish.js';

export interface PublishedFile {
  /** Absolute path of the published file. */
  path: string;
  /** `events_YYYYMMDD_HHMMSS_N.csv`. */
  name: string;
  /** Event lines in the file (valid and bad), header not counted. */
  events: number;
  /** 1-based position of the file in this run. */
  index: number;
  bytes: number;
}

export interface RunGeneratorOptions {
  outDir: string;
  config: GeneratorConfig;
  signal?: AbortSignal;
  /** Clock for event timestamps and file names (epoch ms). Default `Date.now`. Pacing uses a monotonic clock. */
  now?: () => number;
  onFile?: (f: PublishedFile) => void;
}

const expectations = new WeakMap<PublishedFile, readonly ExpectedRejection[]>();

/**
 * The bad rows injected into a file published by `runGenerator` (the `PublishedFile` object passed to
 * `onFile`), each with its line number and the reason the engine must give. Empty when invalidRate is 0.
 */
export function expectedRejections(file: PublishedFile): readonly ExpectedRejection[] {
  return expectations.get(file) ?? [];
}

/** Throws a RangeError naming the config field when a generator setting is out of range. */
export function checkGeneratorConfig(c: GeneratorConfig): void {
  const bad = (field: string, rule: string, v: unknown) => new RangeError(`generator.${field} ${rule}, got ${String(v)}`);
  if (!Number.isSafeInteger(c.eventsPerFile) || c.eventsPerFile < 1) throw bad('eventsPerFile', 'must be an integer >= 1', c.eventsPerFile);
  if (!Number.isSafeInteger(c.files) || c.files < 0) throw bad('files', 'must be an integer >= 0 (0 = unlimited)', c.files);
  if (!Number.isFinite(c.intervalSeconds) || c.intervalSeconds < 0) throw bad('intervalSeconds', 'must be a number >= 0', c.intervalSeconds);
  if (!Number.isFinite(c.rate) || c.rate < 0) throw bad('rate', 'must be a number >= 0 (0 = not paced)', c.rate);
  if (!(c.invalidRate >= 0 && c.invalidRate <= 1)) throw bad('invalidRate', 'must be from 0 to 1', c.invalidRate);
  if (!(c.purchaseShare >= 0 && c.purchaseShare <= 1)) throw bad('purchaseShare', 'must be from 0 to 1', c.purchaseShare);
  if (c.seed !== undefined && !Number.isSafeInteger(c.seed)) throw bad('seed', 'must be an integer', c.seed);
}

/** Resolves false when aborted instead of throwing. */
async function wait(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  try {
    await sleep(ms, undefined, { signal });
    return true;
  } catch (err) {
    if (signal?.aborted) return false;
    throw err;
  }
}

export async function runGenerator(opts: RunGeneratorOptions): Promise<{ files: number; events: number }> {
  const { config, signal, onFile } = opts;
  checkGeneratorConfig(config);
  const now = opts.now ?? Date.now;
  const factory = new EventFactory({ seed: config.seed, purchaseShare: config.purchaseShare, invalidRate: config.invalidRate });
  const publisher = new Publisher(opts.outDir);
  const periodMs = config.rate > 0 ? (config.eventsPerFile / config.rate) * 1000 : config.intervalSeconds * 1000;
  const start = performance.now();
  let files = 0;
  let events = 0;
  let previous = 0;
  while (config.files === 0 || files < config.files) {
    if (signal?.aborted) break;
    if (files > 0 && periodMs > 0) {
      const delay = start + files * periodMs - performance.now();
      if (delay > 0 && !(await wait(delay, signal))) break;
    }
    const madeAt = now();
    const since = periodMs === 0 ? madeAt : files === 0 ? madeAt - periodMs : previous;
    previous = madeAt;
    const made = factory.generateFile(config.eventsPerFile, madeAt, since);
    // Publishing is not interrupted by the signal: a started file is finished (milliseconds) and its
    // temp file removed, so an abort never leaves a partial or temp file behind.
    const pub = await publisher.publish(made.content, now());
    files++;
    events += made.events;
    const file: PublishedFile = { path: pub.path, name: pub.name, events: made.events, index: files, bytes: pub.bytes };
    if (made.expected.length > 0) expectations.set(file, made.expected);
    onFile?.(file);
  }
  return { files, events };
}
