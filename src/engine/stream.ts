/**
 * The micro-batch stream engine (modelled on Spark's MicroBatchExecution).
 *
 * Terminology
 * - batch N:      the files planned together under id N; ids count up from 0 per checkpoint.
 * - batch timestamp: "now" for the 24-hour rule, fixed when N is planned and stored in offsets/N.
 * - planned:      offsets/N written (the write-ahead log). Nothing is read before that.
 * - committed:    the database transaction recorded N in stream_batches; then commits/N is written.
 * - replay:       on start, the newest offsets/N without commits/N is run again from the log — same
 *                 files, same timestamp — never re-planned. The sink skips it if the database already
 *                 has it (crash between database commit and commits/N).
 * - seen files:   every file ever planned (sources/0 log), with the size and mtime it was read at;
 *                 never planned twice, unless it changes and `rereadModified` asks for the new version.
 * - settled:      a file is planned only when it stopped changing (see src/engine/source.ts); a file
 *                 that changes while its batch reads it is read again, in the same batch, once settled.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { EngineConfig } from '../config.js';
import { formatTrigger } from '../config.js';
import { Checkpoint, fileKey, type FileEntry, type OffsetEntry, type SeenFile } from '../checkpoint/checkpoint.js';
import { processStartedAt } from '../checkpoint/lock.js';
import { claimEpoch, FencedError, type EpochHolder } from '../db/epoch.js';
import type pg from 'pg';
import { openPool } from '../db/client.js';
import { describePgError, withClient } from '../db/errors.js';
import { streamsHoldingFiles } from '../db/ledger.js';
import { DatabaseUnavailableError, retryWhileUnavailable, type RetryOptions } from '../db/retry.js';
import { CheckpointError } from '../checkpoint/log.js';
import { addCounts, emptyCounts, type BatchCounts } from '../contract/records.js';
import { EcomstreamError } from '../errors.js';
import type { Logger } from '../log.js';
import { writeBatch, SinkError, type BatchResult } from '../sink/postgres.js';
import { sleep } from '../sleep.js';
import { failpoint } from './failpoint.js';
import { batchSource, FileChangedError } from './read-batch.js';
import { EVENTS, type CompiledContract } from './validate.js';
import { FileSource, filePath } from './source.js';
import { Trigger } from './trigger.js';
import { ProgressLog, type ProgressRecord } from './progress.js';
import type { EngineObserver, WorkCounters } from './observer.js';

export interface StreamOptions {
  engine: Readonly<EngineConfig>;
  databaseUrl: string;
  log: Logger;
  /** Abort = stop gracefully: the batch in flight finishes and commits, then the engine stops. */
  signal?: AbortSignal;
  onProgress?: (p: ProgressRecord) => void;
  /** The feed's contract, compiled (`--contract FILE`); the event contract when omitted. */
  contract?: CompiledContract;
  /** Metrics, health and the stall alarm listen here (src/ops/). */
  observer?: EngineObserver;
  /** `ecomstream reprocess`: after recovery, plan these files as one new batch, run it, and stop. */
  reprocess?: FileEntry[];
}

/** A run's batches and the sum of their counts. */
export interface RunSummary extends BatchCounts {
  streamId: string;
  batches: number;
  replayed: number;
}

type Pool = pg.Pool;

export class StreamEngine {
  private readonly checkpoint: Checkpoint;
  private readonly progress: ProgressLog;
  private seen = new Map<string, SeenFile>();
  private source: FileSource | undefined;
  private lastBacklogWarning = 0;
  /** This engine's epoch for the stream (src/db/epoch.ts), claimed at start. */
  private epoch = 0;

  constructor(private readonly opts: StreamOptions) {
    this.checkpoint = new Checkpoint(opts.engine.checkpointDir);
    this.progress = new ProgressLog(opts.engine.progressFile);
  }

  async run(): Promise<RunSummary> {
    const { engine, log } = this.opts;
    await this.checkpoint.open();
    const observer = this.opts.observer ?? {};
    observer.started?.({ streamId: this.checkpoint.streamId, checkpointDir: this.checkpoint.dir });
    const pool = openPool(this.opts.databaseUrl, 'batch', { onError: (err) => log.warn(`database connection lost: ${err.message}`) });
    // available-now and once: exactly the files present at start (waiting for those still settling).
    const source = (this.source = new FileSource({
      inputDir: engine.inputDir,
      settleMs: engine.fileSettleMillis,
      rereadModified: engine.rereadModified,
      contract: (this.opts.contract ?? EVENTS).spec,
      listOnce: this.bounded,
      relistMillis: engine.pollMillis,
    }));
    const trigger = new Trigger(engine.trigger, engine.inputDir, engine.pollMillis, (name) => source.touch(name));
    const summary: RunSummary = { streamId: this.checkpoint.streamId, batches: 0, replayed: 0, ...emptyCounts() };
    try {
      const nextBatchId = await this.start(pool, summary);
      observer.running?.();
      if (this.opts.reprocess) {
        const entry: OffsetEntry = { batchId: nextBatchId, batchTimestampMs: Date.now(), files: this.opts.reprocess, reprocess: true };
        await this.checkpoint.offsets.add(entry.batchId, entry);
        failpoint('after-offsets', entry.batchId);
        await this.runPlanned(pool, entry, summary, 0);
      } else await this.loop(pool, source, trigger, summary, nextBatchId);
      return summary;
    } finally {
      trigger.close();
      await pool.end().catch(() => undefined);
      await this.checkpoint.close();
      observer.stopped?.();
    }
  }

  /** Start-up: wait for the database, guard a new stream, claim the epoch, replay a planned batch. Returns the next batch id. */
  private async start(pool: Pool, summary: RunSummary): Promise<number> {
    const { engine, log, signal } = this.opts;
    const startup: RetryOptions = {
      log,
      what: 'start-up',
      initialMillis: engine.retryInitialMillis,
      maxMillis: engine.retryMaxMillis,
      deadlineMillis: engine.startupRetrySeconds * 1000,
      deadlineOption: '--startup-timeout',
      signal,
    };
    const onRetry = (error: unknown): void => this.opts.observer?.dbRetry?.({ batchId: undefined, error });
    await retryWhileUnavailable(startup, () => withClient(pool, (c) => c.query('SELECT 1')), onRetry);
    if (this.checkpoint.isNew) {
      await this.guardNewStream(pool);
      await this.checkpoint.createStream();
    }
    const holder: EpochHolder = {
      engine: 'typescript',
      host: os.hostname(),
      pid: process.pid,
      startedAt: processStartedAt(),
      source: path.resolve(engine.inputDir),
    };
    this.epoch = await retryWhileUnavailable(startup, () => withClient(pool, (c) => claimEpoch(c, this.checkpoint.streamId, holder)), onRetry);
    this.seen = await this.checkpoint.loadSeenFiles();
    const nextBatchId = await this.recover(pool, summary);
    log.info(
      `stream ${this.checkpoint.streamId}: watching ${engine.inputDir} (trigger ${formatTrigger(engine.trigger)}, ` +
        `max ${engine.maxFilesPerTrigger || 'all'} files per batch, file settle ${engine.fileSettleMillis} ms, ` +
        `${this.seen.size} files already seen, next batch ${nextBatchId})`,
    );
    return nextBatchId;
  }

  /** The batch loop: wait for the trigger, plan the ready files (offsets/N first), run the batch; until stopped or, bounded, done. */
  private async loop(pool: Pool, source: FileSource, trigger: Trigger, summary: RunSummary, firstBatchId: number): Promise<void> {
    const { engine, signal } = this.opts;
    const bounded = this.bounded;
    let moreReady = false;
    for (let nextBatchId = firstBatchId; !signal?.aborted;) {
      // on-arrival with files still waiting after the last batch: go on at once, not at the next event.
      if (!(moreReady && engine.trigger.kind === 'on-arrival')) await trigger.wait(signal, source.nextSettleMs);
      if (signal?.aborted) break;
      await source.refresh(this.seen, trigger.watching);
      const ready = source.readyCount;
      const settling = source.settlingCount;
      this.opts.observer?.backlog?.(ready + settling);
      if (bounded && settling > 0 && (engine.trigger.kind === 'once' || ready === 0)) {
        await sleep(source.nextSettleMs ?? engine.pollMillis, signal); // once: one batch of all, so wait for all
        continue;
      }
      moreReady = false;
      if (ready === 0) {
        if (bounded) break;
        continue;
      }
      const limit = engine.trigger.kind === 'once' || engine.maxFilesPerTrigger === 0 ? ready : engine.maxFilesPerTrigger;
      const take = source.take(limit);
      moreReady = source.readyCount > 0;
      const backlog = source.readyCount + settling;
      this.warnBacklog(backlog);
      const entry: OffsetEntry = { batchId: nextBatchId, batchTimestampMs: Date.now(), files: take };
      await this.checkpoint.offsets.add(entry.batchId, entry);
      failpoint('after-offsets', entry.batchId);
      for (const f of take) this.seen.set(fileKey(f), { size: f.size, mtimeMs: f.mtimeMs });
      await this.runPlanned(pool, entry, summary, backlog);
      nextBatchId++;
      if (engine.trigger.kind === 'once') break;
    }
  }

  /**
   * A new checkpoint on a folder whose files the database already holds under another stream id means
   * the checkpoint was lost: starting afresh would read every file again and reject each row as a
   * duplicate. Refuse, unless the user asked for a new stream. A file counts as already held when a batch
   * recorded one of the same name, size and modification time (to the millisecond, as Spark records it):
   * the identity the seen-files set gives a file. Names alone are not the source: two landing folders
   * into one database (two regions, two generators) produce the same names.
   */
  private async guardNewStream(pool: Pool): Promise<void> {
    const { engine, log } = this.opts;
    const names = await fsp.readdir(engine.inputDir).catch(() => [] as string[]);
    const files: { name: string; size: number; mtime: number }[] = [];
    for (const name of names) {
      const st = await fsp.stat(path.join(engine.inputDir, name)).catch(() => undefined);
      if (st?.isFile()) files.push({ name, size: st.size, mtime: Math.floor(st.mtimeMs) });
    }
    if (files.length === 0) return;
    const rows = await withClient(pool, (c) => streamsHoldingFiles(c, files, this.checkpoint.streamId));
    if (rows.length === 0) return;
    const held = rows.reduce((n, r) => n + r.files, 0);
    const streams = rows.map((r) => `${r.streamId} (${r.batches} batches)`).join(', ');
    if (!engine.newStream) {
      throw new EcomstreamError(
        `the checkpoint ${this.checkpoint.dir} is new, but the database already holds ${held} files of ${engine.inputDir} (same name, size and modification time) from stream ${streams}: ` +
          'the checkpoint was probably lost. Restore it, point --checkpoint at it, or pass --new-stream to read the folder again as a new stream',
        { code: 'STREAM_EXISTS', file: this.checkpoint.dir, option: '--new-stream' },
      );
    }
    log.warn(
      `--new-stream: starting stream ${this.checkpoint.streamId}; ${held} files already stored by stream ${streams} are read again, and their rows are rejected as duplicate_event_id`,
    );
  }

  /** Replays the newest planned-but-uncommitted batch, if any; returns the next batch id to plan. */
  private async recover(pool: Pool, summary: RunSummary): Promise<number> {
    const latestOffset = await this.checkpoint.offsets.latest();
    if (latestOffset === undefined) return 0;
    const latestCommit = await this.checkpoint.commits.latest();
    if (latestCommit === undefined || latestCommit < latestOffset) {
      const entry = await this.checkpoint.offsets.get(latestOffset);
      if (!entry)
        throw new CheckpointError(`offsets/${latestOffset} is listed but unreadable in ${this.checkpoint.dir}`, {
          batch: latestOffset,
          file: this.checkpoint.offsets.dir,
        });
      this.opts.log.info(`replaying batch ${latestOffset} from the offsets log (${entry.files.length} files, planned but not committed)`);
      await this.runPlanned(pool, entry, summary, 0, true);
    } else {
      // Files of the last committed batch may still await archiving if we stopped right after commit.
      const entry = await this.checkpoint.offsets.get(latestOffset);
      if (entry) await this.cleanSource(entry.files);
    }
    return latestOffset + 1;
  }

  private async runPlanned(pool: Pool, entry: OffsetEntry, summary: RunSummary, backlog: number, replay = false): Promise<void> {
    const { engine } = this.opts;
    const tPlan = performance.now();
    this.opts.observer?.batchStarted?.({ batchId: entry.batchId, files: entry.files, replay });
    // What is read: the planned files, with size and mtime updated when one had to be re-read.
    const files = entry.files.map((f) => ({ ...f }));
    const planMs = performance.now() - tPlan;
    const result = await this.writeWithRetry(pool, entry, files);
    const tCommitDb = performance.now();
    // The seen-files entry records each file as it was read, so only a later change counts as modified.
    for (const f of files) this.seen.set(fileKey(f), { size: f.size, mtimeMs: f.mtimeMs });
    await this.checkpoint.addSourceEntry(entry.batchId, files, this.seen);
    await this.checkpoint.commits.add(entry.batchId, { batchId: entry.batchId, committedAtMs: Date.now() });
    const committedAt = Date.now();
    await this.cleanSource(entry.files);
    if ((entry.batchId + 1) % engine.compactInterval === 0) await this.checkpoint.purge(entry.batchId, engine.minBatchesToRetain);

    summary.batches++;
    if (replay) summary.replayed++;
    addCounts(summary, result.counts);
    const record = this.progressRecord(entry, result, { replay, backlog, committedAt, tPlan, planMs, tCommitDb });
    await this.progress.append(record);
    this.opts.observer?.backlog?.(backlog);
    this.opts.observer?.batchCommitted?.({
      record,
      files: entry.files.filter((f) => f.read !== false),
      rejectsByReason: result.rejectsByReason,
      keySet: { peakBytes: result.read.keySetPeakBytes, uncheckedKeys: result.read.uncheckedKeys },
      work: this.work(),
    });
    this.opts.onProgress?.(record);
  }

  /** The batch's progress record: the sink's counts and quality score as they are, with this run's timings. */
  private progressRecord(
    entry: OffsetEntry,
    result: BatchResult,
    at: { replay: boolean; backlog: number; committedAt: number; tPlan: number; planMs: number; tCommitDb: number },
  ): ProgressRecord {
    const latencies = entry.files
      .filter((f) => f.read !== false)
      .map((f) => Math.round(at.committedAt - f.mtimeMs))
      .sort((a, b) => a - b);
    const totalMs = performance.now() - at.tPlan;
    const { inputRows, ...counts } = result.counts;
    return {
      engine: 'typescript',
      streamId: this.checkpoint.streamId,
      batchId: entry.batchId,
      batchTimestamp: new Date(entry.batchTimestampMs).toISOString(),
      committedAt: new Date(at.committedAt).toISOString(),
      replay: at.replay,
      alreadyCommitted: result.alreadyCommitted,
      files: entry.files.map((f) => f.name),
      numInputRows: inputRows,
      ...counts,
      qualityScore: result.qualityScore,
      processedRowsPerSecond: totalMs > 0 ? Math.round((inputRows / totalMs) * 1000) : 0,
      durationMs: {
        plan: Math.round(at.planMs),
        read: result.durationsMs.read,
        write: result.durationsMs.write,
        // The database COMMIT plus writing commits/N and cleaning the source.
        commit: result.durationsMs.commit + Math.round(performance.now() - at.tCommitDb),
        total: Math.round(totalMs),
      },
      latencyMs: latencies.length ? { p50: latencies[Math.floor((latencies.length - 1) / 2)]!, max: latencies[latencies.length - 1]! } : { p50: 0, max: 0 },
      backlogFiles: at.backlog,
      usedFallback: result.usedFallback,
      ...(entry.reprocess ? { reprocess: true, alreadyPresentRows: result.alreadyPresentRows } : {}),
    };
  }

  private work(): WorkCounters {
    const none = { listings: 0, entriesListed: 0, statCalls: 0, entriesQueued: 0 };
    return { ...(this.source?.cost ?? none), seenLogBytes: this.checkpoint.sources.bytesWritten };
  }

  /** A run that ends by itself (available-now, once, reprocess), as opposed to a stream that runs on. */
  private get bounded(): boolean {
    const kind = this.opts.engine.trigger.kind;
    return this.opts.reprocess !== undefined || kind === 'available-now' || kind === 'once';
  }

  /**
   * Retryable failures (src/db/errors.ts) keep the batch uncommitted and retry with backoff — for as
   * long as a stream runs, for `batchRetrySeconds` in a bounded run, which then fails with one line; a
   * file that changed while it was read is read again once settled; anything else fails the run.
   */
  private async writeWithRetry(pool: Pool, entry: OffsetEntry, files: FileEntry[]): Promise<BatchResult> {
    const { engine, log } = this.opts;
    const contract = this.opts.contract ?? EVENTS;
    const source = batchSource({
      inputDir: engine.inputDir,
      files,
      contract,
      rules: { batchTimestampMs: entry.batchTimestampMs },
      keySetBytes: engine.keySetBytes,
    });
    const hooks = { duringCopy: () => failpoint('during-copy', entry.batchId), afterCommit: () => failpoint('after-db-commit', entry.batchId) };
    const what = `batch ${entry.batchId}`;
    for (;;) {
      try {
        return await retryWhileUnavailable(
          {
            log,
            what: `${what} (stays uncommitted)`,
            initialMillis: engine.retryInitialMillis,
            maxMillis: engine.retryMaxMillis,
            deadlineMillis: this.bounded ? engine.batchRetrySeconds * 1000 : undefined,
            deadlineOption: '--retry-timeout',
          },
          () =>
            writeBatch(pool, {
              streamId: this.checkpoint.streamId,
              epoch: this.epoch,
              batchId: entry.batchId,
              batchTimestampMs: entry.batchTimestampMs,
              files,
              source,
              reprocess: entry.reprocess,
              contract: contract.spec,
              hooks,
            }),
          (error) => this.opts.observer?.dbRetry?.({ batchId: entry.batchId, error }),
        );
      } catch (err) {
        if (err instanceof FileChangedError) {
          log.warn(`${what}: ${err.message}; nothing of it is committed, it is read again once it has settled`);
          const f = files.find((x) => fileKey(x) === fileKey(err.entry))!;
          Object.assign(f, await this.settle(f));
          continue;
        }
        if (err instanceof FencedError) throw err; // one line that names the newer holder, as it is
        if (err instanceof DatabaseUnavailableError) throw err; // already one line naming the batch and the cause
        throw new SinkError(`${what} (${files.map((f) => f.name).join(', ')}) failed: ${describePgError(err)}`, { cause: err, batch: entry.batchId });
      }
    }
  }

  /** Waits until `f` has not changed for the settle time (at least 250 ms), and returns its new state. */
  private async settle(f: FileEntry): Promise<{ size: number; mtimeMs: number }> {
    const quiet = Math.max(250, this.opts.engine.fileSettleMillis);
    let last: { size: number; mtimeMs: number } | undefined;
    for (;;) {
      const st = await fsp.stat(filePath(this.opts.engine.inputDir, f)).catch(() => undefined);
      if (!st) return { size: -1, mtimeMs: f.mtimeMs }; // gone: the read records it as file_missing
      const now = { size: st.size, mtimeMs: st.mtimeMs };
      if (Date.now() - st.mtimeMs >= quiet || (last?.size === now.size && last.mtimeMs === now.mtimeMs)) return now;
      last = now;
      await sleep(quiet);
    }
  }

  private warnBacklog(backlog: number): void {
    const { engine, log } = this.opts;
    if (backlog >= engine.backlogWarnFiles && backlog > this.lastBacklogWarning) {
      log.warn(
        `backlog: ${backlog} published files wait beyond this batch (max ${engine.maxFilesPerTrigger} per trigger, trigger ${formatTrigger(engine.trigger)}); ` +
          'the engine is falling behind — raise --max-files-per-trigger or use --trigger on-arrival',
      );
      this.lastBacklogWarning = backlog;
    } else if (backlog < engine.backlogWarnFiles) {
      this.lastBacklogWarning = 0;
    }
  }

  /** After commit only: archive or delete processed files. Missing files are fine (already cleaned). */
  private async cleanSource(files: FileEntry[]): Promise<void> {
    const { engine, log } = this.opts;
    if (engine.cleanSource === 'off') return;
    if (engine.cleanSource === 'archive') await fsp.mkdir(engine.archiveDir, { recursive: true });
    for (const f of files) {
      if (f.read === false) continue; // a notice only: the entry is not ours to move
      const from = filePath(engine.inputDir, f);
      try {
        if (engine.cleanSource === 'delete') await fsp.rm(from, { force: true });
        else if (fs.existsSync(from))
          await moveFile(
            from,
            f.rawName === undefined
              ? path.join(engine.archiveDir, f.name)
              : Buffer.concat([Buffer.from(path.join(engine.archiveDir, path.sep)), Buffer.from(f.rawName, 'base64')]),
          );
      } catch (err) {
        log.warn(`could not ${engine.cleanSource} ${f.name}: ${(err as Error).message}`);
      }
    }
  }
}

async function moveFile(from: string | Buffer, to: string | Buffer): Promise<void> {
  try {
    await fsp.rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    await fsp.copyFile(from, to);
    await fsp.rm(from);
  }
}
