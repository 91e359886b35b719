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
 * - seen files:   every file ever planned (sources/0 log); never planned twice.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { EngineConfig } from '../config.js';
import { formatTrigger } from '../config.js';
import { Checkpoint, type FileEntry, type OffsetEntry } from '../checkpoint/checkpoint.js';
import { isConnectionError, describePgError } from '../db/errors.js';
import type { Logger } from '../log.js';
import { createPool, writeBatch, SinkError, type BatchResult } from '../sink/postgres.js';
import { failpoint } from './failpoint.js';
import { scanBatch } from './read-batch.js';
import { EVENTS, type CompiledContract } from './validate.js';
import { listNewFiles } from './source.js';
import { sleep, Trigger } from './trigger.js';
import { ProgressLog, type ProgressRecord } from './progress.js';

export interface StreamOptions {
  engine: Readonly<EngineConfig>;
  databaseUrl: string;
  log: Logger;
  /** Abort = stop gracefully: the batch in flight finishes and commits, then the engine stops. */
  signal?: AbortSignal;
  onProgress?: (p: ProgressRecord) => void;
  /** The feed's contract, compiled (`--contract FILE`); the event contract when omitted. */
  contract?: CompiledContract;
}

export interface RunSummary {
  streamId: string;
  batches: number;
  replayed: number;
  inputRows: number;
  insertedRows: number;
  duplicateRows: number;
  rejectedRows: number;
}

export class StreamEngine {
  private readonly checkpoint: Checkpoint;
  private readonly progress: ProgressLog;
  private seen = new Map<string, number>();
  private lastBacklogWarning = 0;

  constructor(private readonly opts: StreamOptions) {
    this.checkpoint = new Checkpoint(opts.engine.checkpointDir);
    this.progress = new ProgressLog(opts.engine.progressFile);
  }

  async run(): Promise<RunSummary> {
    const { engine, log, signal } = this.opts;
    await this.checkpoint.open();
    const pool = createPool(this.opts.databaseUrl, (err) => log.warn(`database connection lost: ${err.message}`));
    const trigger = new Trigger(engine.trigger, engine.inputDir, engine.pollMillis);
    const summary: RunSummary = { streamId: this.checkpoint.streamId, batches: 0, replayed: 0, inputRows: 0, insertedRows: 0, duplicateRows: 0, rejectedRows: 0 };
    try {
      this.seen = await this.checkpoint.loadSeenFiles();
      let nextBatchId = await this.recover(pool, summary);
      log.info(
        `stream ${this.checkpoint.streamId}: watching ${engine.inputDir} (trigger ${formatTrigger(engine.trigger)}, ` +
          `max ${engine.maxFilesPerTrigger || 'all'} files per batch, ${this.seen.size} files already seen, next batch ${nextBatchId})`,
      );

      // available-now: exactly the files present at start, in as many batches as maxFilesPerTrigger needs.
      const snapshot = engine.trigger.kind === 'available-now' ? new Set((await listNewFiles(engine.inputDir, this.seen)).map((f) => f.name)) : undefined;

      while (!signal?.aborted) {
        await trigger.wait(signal);
        if (signal?.aborted) break;
        let files = await listNewFiles(engine.inputDir, this.seen);
        if (snapshot) files = files.filter((f) => snapshot.has(f.name));
        if (files.length === 0) {
          if (engine.trigger.kind === 'available-now' || engine.trigger.kind === 'once') break;
          continue;
        }
        const limit = engine.trigger.kind === 'once' || engine.maxFilesPerTrigger === 0 ? files.length : engine.maxFilesPerTrigger;
        const take = files.slice(0, limit);
        this.warnBacklog(files.length - take.length);
        const entry: OffsetEntry = { batchId: nextBatchId, batchTimestampMs: Date.now(), files: take };
        await this.checkpoint.offsets.add(entry.batchId, entry);
        failpoint('after-offsets', entry.batchId);
        await this.runPlanned(pool, entry, summary, files.length - take.length);
        nextBatchId++;
        if (engine.trigger.kind === 'once') break;
      }
      return summary;
    } finally {
      trigger.close();
      await pool.end().catch(() => undefined);
      await this.checkpoint.close();
    }
  }

  /** Replays the newest planned-but-uncommitted batch, if any; returns the next batch id to plan. */
  private async recover(pool: ReturnType<typeof createPool>, summary: RunSummary): Promise<number> {
    const latestOffset = await this.checkpoint.offsets.latest();
    if (latestOffset === undefined) return 0;
    const latestCommit = await this.checkpoint.commits.latest();
    if (latestCommit === undefined || latestCommit < latestOffset) {
      const entry = await this.checkpoint.offsets.get(latestOffset);
      if (!entry) throw new SinkError(`offsets/${latestOffset} is listed but unreadable in ${this.checkpoint.dir}`);
      this.opts.log.info(`replaying batch ${latestOffset} from the offsets log (${entry.files.length} files, planned but not committed)`);
      await this.runPlanned(pool, entry, summary, 0, true);
    } else {
      // Files of the last committed batch may still await archiving if we stopped right after commit.
      const entry = await this.checkpoint.offsets.get(latestOffset);
      if (entry) await this.cleanSource(entry.files);
    }
    return latestOffset + 1;
  }

  private async runPlanned(pool: ReturnType<typeof createPool>, entry: OffsetEntry, summary: RunSummary, backlog: number, replay = false): Promise<void> {
    const { engine } = this.opts;
    const tPlan = performance.now();
    await this.checkpoint.addSourceEntry(entry.batchId, entry.files, this.seen, engine.compactInterval);
    for (const f of entry.files) this.seen.set(f.name, f.mtimeMs);
    const planMs = performance.now() - tPlan;
    const result = await this.writeWithRetry(pool, entry);
    const tCommitDb = performance.now();
    await this.checkpoint.commits.add(entry.batchId, { batchId: entry.batchId, committedAtMs: Date.now() });
    const committedAt = Date.now();
    await this.cleanSource(entry.files);
    if ((entry.batchId + 1) % engine.compactInterval === 0) await this.checkpoint.purge(entry.batchId, engine.minBatchesToRetain);

    summary.batches++;
    if (replay) summary.replayed++;
    summary.inputRows += result.stats.inputRows;
    summary.insertedRows += result.insertedRows;
    summary.duplicateRows += result.duplicateRows;
    summary.rejectedRows += result.rejectedRows;

    const latencies = entry.files.map((f) => Math.round(committedAt - f.mtimeMs)).sort((a, b) => a - b);
    const totalMs = performance.now() - tPlan;
    const record: ProgressRecord = {
      engine: 'typescript',
      streamId: this.checkpoint.streamId,
      batchId: entry.batchId,
      batchTimestamp: new Date(entry.batchTimestampMs).toISOString(),
      committedAt: new Date(committedAt).toISOString(),
      replay,
      alreadyCommitted: result.alreadyCommitted,
      files: entry.files.map((f) => f.name),
      numInputRows: result.stats.inputRows,
      insertedRows: result.insertedRows,
      duplicateRows: result.duplicateRows,
      rejectedRows: result.rejectedRows,
      qualityScore: result.stats.validRows ? Math.round((result.stats.qualitySum / result.stats.validRows) * 1000) / 1000 : null,
      processedRowsPerSecond: totalMs > 0 ? Math.round((result.stats.inputRows / totalMs) * 1000) : 0,
      durationMs: {
        plan: Math.round(planMs),
        read: result.durationsMs.read,
        write: result.durationsMs.write,
        // The database COMMIT plus writing commits/N and cleaning the source.
        commit: result.durationsMs.commit + Math.round(performance.now() - tCommitDb),
        total: Math.round(totalMs),
      },
      latencyMs: latencies.length ? { p50: latencies[Math.floor((latencies.length - 1) / 2)]!, max: latencies[latencies.length - 1]! } : { p50: 0, max: 0 },
      backlogFiles: backlog,
      usedFallback: result.usedFallback,
    };
    await this.progress.append(record);
    this.opts.onProgress?.(record);
  }

  /** Connection failures keep the batch uncommitted and retry with backoff; anything else fails the run. */
  private async writeWithRetry(pool: ReturnType<typeof createPool>, entry: OffsetEntry): Promise<BatchResult> {
    const { engine, log } = this.opts;
    const contract = this.opts.contract ?? EVENTS;
    const scan: Parameters<typeof writeBatch>[1]['scan'] = (mode, onValid, onReject) =>
      scanBatch({
        inputDir: engine.inputDir,
        files: entry.files,
        mode,
        onValid,
        onReject,
        contract,
        rules: { batchTimestampMs: entry.batchTimestampMs },
      });
    const hooks = { duringCopy: () => failpoint('during-copy', entry.batchId), afterCommit: () => failpoint('after-db-commit', entry.batchId) };
    let delay = engine.retryInitialMillis;
    for (let attempt = 1; ; attempt++) {
      try {
        return await writeBatch(pool, { streamId: this.checkpoint.streamId, batchId: entry.batchId, batchTimestampMs: entry.batchTimestampMs, files: entry.files, scan, contract: contract.spec, hooks });
      } catch (err) {
        if (!isConnectionError(err)) {
          throw new SinkError(`batch ${entry.batchId} (${entry.files.map((f) => f.name).join(', ')}) failed: ${describePgError(err)}`, { cause: err });
        }
        log.warn(`batch ${entry.batchId}: database unavailable (${(err as Error).message}); retry ${attempt} in ${delay} ms, the batch stays uncommitted`);
        await sleep(delay);
        delay = Math.min(delay * 2, engine.retryMaxMillis);
      }
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
      const from = path.join(engine.inputDir, f.name);
      try {
        if (engine.cleanSource === 'delete') await fsp.rm(from, { force: true });
        else if (fs.existsSync(from)) await moveFile(from, path.join(engine.archiveDir, f.name));
      } catch (err) {
        log.warn(`could not ${engine.cleanSource} ${from}: ${(err as Error).message}`);
      }
    }
  }
}

async function moveFile(from: string, to: string): Promise<void> {
  try {
    await fsp.rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    await fsp.copyFile(from, to);
    await fsp.rm(from);
  }
}
