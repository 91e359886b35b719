/**
 * Looking inside a checkpoint folder without taking it over: read-only, no lock taken, safe while an
 * engine runs. Reads the TypeScript engine's checkpoint (src/checkpoint/checkpoint.ts) and, as far as
 * its logs allow, the Spark job's: Spark writes the same `metadata`, `offsets/N`, `commits/N` and
 * `sources/0/N` names (HDFSMetadataLog), but offsets hold a source offset instead of file names — the
 * files of batch N are in Spark's file-source log entry N — and Spark keeps no lock file.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Checkpoint, LOCK_FILE, type OffsetEntry } from './checkpoint.js';
import { lockHolder, type LockHolder } from './lock.js';
import { errorCode } from '../errors.js';
import { BatchLog, CheckpointError } from './log.js';
import { SeenFilesLog } from './seen-log.js';

export interface LogSummary {
  /** Entries present (plain and compact). */
  entries: number;
  bytes: number;
  oldest: number | null;
  newest: number | null;
}

export interface CheckpointReport {
  dir: string;
  engine: 'typescript' | 'spark';
  streamId: string | null;
  createdAt: string | null;
  lastPlannedBatch: number | null;
  lastCommittedBatch: number | null;
  /** The newest planned batch has no commit: the next start replays it with these files. */
  pendingReplay: { batchId: number; files: string[]; batchTimestamp: string | null } | null;
  filesSeen: number;
  logs: { offsets: LogSummary; commits: LogSummary; sources: LogSummary };
  /** The newest compact entry of the seen-files log. */
  lastCompaction: { batchId: number; at: string } | null;
  /** `none` when free; Spark keeps no lock file (`not-kept`). */
  lock: { state: 'held'; pid: number | undefined; host: string | undefined; startedAt: string | undefined } | { state: 'none' } | { state: 'not-kept' };
}

const COMPACT = '.compact';

async function summarise(dir: string): Promise<LogSummary & { compact: { id: number; mtimeMs: number }[] }> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return { entries: 0, bytes: 0, oldest: null, newest: null, compact: [] };
    throw new CheckpointError(`could not list ${dir}`, { cause, file: dir });
  }
  const ids: number[] = [];
  const compact: { id: number; mtimeMs: number }[] = [];
  let bytes = 0;
  for (const n of names) {
    const id = /^\d+$/.test(n) ? Number(n) : n.endsWith(COMPACT) && /^\d+$/.test(n.slice(0, -COMPACT.length)) ? Number(n.slice(0, -COMPACT.length)) : undefined;
    if (id === undefined) continue;
    const st = await fsp.stat(path.join(dir, n));
    bytes += st.size;
    ids.push(id);
    if (n.endsWith(COMPACT)) compact.push({ id, mtimeMs: st.mtimeMs });
  }
  ids.sort((a, b) => a - b);
  compact.sort((a, b) => a.id - b.id);
  return { entries: ids.length, bytes, oldest: ids[0] ?? null, newest: ids[ids.length - 1] ?? null, compact };
}

/** The JSON lines after the version line of a Spark log file. */
async function sparkLines(file: string): Promise<unknown[]> {
  const text = await fsp.readFile(file, 'utf8');
  const [version, ...rest] = text.split('\n');
  if (!/^v\d+$/.test(version ?? ''))
    throw new CheckpointError(`${file}: not a Spark metadata log entry (first line ${JSON.stringify(version)})`, { file, code: 'UNKNOWN_FORMAT' });
  return rest.filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as unknown);
}

async function readMetadata(dir: string): Promise<{ id?: unknown; createdAtMs?: unknown } | undefined> {
  const file = path.join(dir, 'metadata');
  try {
    return JSON.parse(await fsp.readFile(file, 'utf8')) as { id?: unknown };
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CheckpointError(`${file} is unreadable: the checkpoint is damaged`, { cause, file, code: 'CORRUPT_METADATA' });
  }
}

/** Spark's offsets/N: version, then the batch metadata (batchTimestampMs …), then one line per source. */
async function isSparkCheckpoint(dir: string, newestOffset: number | null): Promise<boolean> {
  if (newestOffset === null) return false;
  const text = await fsp.readFile(path.join(dir, 'offsets', String(newestOffset)), 'utf8');
  const second = text.split('\n')[1] ?? '';
  return second.includes('"batchWatermarkMs"');
}

export async function inspectCheckpoint(dir: string): Promise<CheckpointReport> {
  const st = await fsp.stat(dir).catch((cause: unknown) => {
    const code = errorCode(cause);
    throw new CheckpointError(`no checkpoint folder at ${dir} (${String(code)})`, { cause, file: dir, code });
  });
  if (!st.isDirectory()) throw new CheckpointError(`${dir} is not a folder`, { file: dir, code: 'ENOTDIR' });
  const [offsets, commits, sources] = await Promise.all([
    summarise(path.join(dir, 'offsets')),
    summarise(path.join(dir, 'commits')),
    summarise(path.join(dir, 'sources', '0')),
  ]);
  const meta = await readMetadata(dir);
  const spark = await isSparkCheckpoint(dir, offsets.newest);
  // This engine's seen-files log is one appended file per generation (src/checkpoint/seen-log.ts).
  const seenLog = spark ? undefined : await new SeenFilesLog(path.join(dir, 'sources', '0')).summary();
  const lastCompact = seenLog ? { id: seenLog.generation.batchId, mtimeMs: seenLog.generation.mtimeMs } : sources.compact[sources.compact.length - 1];
  const base = {
    dir,
    engine: spark ? ('spark' as const) : ('typescript' as const),
    streamId: typeof meta?.id === 'string' ? meta.id : null,
    createdAt: typeof meta?.createdAtMs === 'number' ? new Date(meta.createdAtMs).toISOString() : null,
    lastPlannedBatch: offsets.newest,
    lastCommittedBatch: commits.newest,
    logs: { offsets: strip(offsets), commits: strip(commits), sources: strip(seenLog ?? sources) },
    lastCompaction: lastCompact ? { batchId: lastCompact.id, at: new Date(lastCompact.mtimeMs).toISOString() } : null,
  };
  const pendingId = offsets.newest !== null && (commits.newest === null || commits.newest < offsets.newest) ? offsets.newest : null;
  if (spark)
    return {
      ...base,
      ...(await sparkDetails(
        dir,
        pendingId,
        sources.compact.map((c) => c.id),
      )),
    };

  const cp = new Checkpoint(dir);
  let pendingReplay: CheckpointReport['pendingReplay'] = null;
  if (pendingId !== null) {
    const entry: OffsetEntry | undefined = await cp.offsets.get(pendingId);
    pendingReplay = {
      batchId: pendingId,
      files: entry?.files.map((f) => f.name) ?? [],
      batchTimestamp: entry ? new Date(entry.batchTimestampMs).toISOString() : null,
    };
  }
  const holder = await lockHolder(path.join(dir, LOCK_FILE));
  return {
    ...base,
    pendingReplay,
    filesSeen: (await cp.loadSeenFiles()).size,
    lock: holder ? { state: 'held', pid: holder.pid, host: holder.host, startedAt: holder.startedAt } : { state: 'none' },
  };
}

function strip(s: LogSummary): LogSummary {
  return { entries: s.entries, bytes: s.bytes, oldest: s.oldest, newest: s.newest };
}

/** Spark's file-source log: each line `{"path": "file:///…", "timestamp": …, "batchId": N}`. */
async function sparkDetails(
  dir: string,
  pendingId: number | null,
  compactIds: number[],
): Promise<Pick<CheckpointReport, 'pendingReplay' | 'filesSeen' | 'lock'>> {
  const sourcesDir = path.join(dir, 'sources', '0');
  const names = await fsp.readdir(sourcesDir).catch(() => [] as string[]);
  const newestCompact = compactIds[compactIds.length - 1] ?? -1;
  const seen = new Set<string>();
  const byBatch = new Map<number, string[]>();
  for (const n of names) {
    const id = Number(n.endsWith(COMPACT) ? n.slice(0, -COMPACT.length) : n);
    if (!Number.isInteger(id) || id < newestCompact || (id === newestCompact && !n.endsWith(COMPACT))) continue;
    for (const line of await sparkLines(path.join(sourcesDir, n))) {
      const e = line as { path?: string; batchId?: number };
      if (typeof e.path !== 'string') continue;
      seen.add(e.path);
      const list = byBatch.get(e.batchId ?? id) ?? [];
      list.push(path.basename(decodeURIComponent(new URL(e.path, 'file:///').pathname)));
      byBatch.set(e.batchId ?? id, list);
    }
  }
  let pendingReplay: CheckpointReport['pendingReplay'] = null;
  if (pendingId !== null) {
    const lines = await sparkLines(path.join(dir, 'offsets', String(pendingId)));
    const meta = lines[0] as { batchTimestampMs?: number } | undefined;
    // The file source's offset is the id of its log entry that lists the batch's files.
    const sourceOffset = (lines[1] as { logOffset?: number } | undefined)?.logOffset;
    pendingReplay = {
      batchId: pendingId,
      files: sourceOffset !== undefined ? (byBatch.get(sourceOffset) ?? []) : [],
      batchTimestamp: typeof meta?.batchTimestampMs === 'number' ? new Date(meta.batchTimestampMs).toISOString() : null,
    };
  }
  return { pendingReplay, filesSeen: seen.size, lock: { state: 'not-kept' } };
}

/**
 * What a process polling a checkpoint (the dashboard) needs of it, at the cost of a few stats: the
 * cheap part of `inspectCheckpoint`, which also lists the logs and reads the seen-files log.
 */
export interface CheckpointGlance {
  /** False when the folder has neither a lock nor a planned batch: no engine checkpoint here. */
  exists: boolean;
  /** The engine holding the lock now, as the kernel says (src/checkpoint/lock.ts). */
  holder: LockHolder | undefined;
  /** The newest planned (offsets/N) and committed (commits/N) batch. */
  planned: number | undefined;
  committed: number | undefined;
}

/** The lock holder and newest planned and committed batch; a missing folder is `exists: false`, not an error. */
export async function peekCheckpoint(dir: string): Promise<CheckpointGlance> {
  const newest = (sub: string): Promise<number | undefined> => new BatchLog(path.join(dir, sub)).latest().catch(() => undefined);
  const [holder, planned, committed] = await Promise.all([lockHolder(path.join(dir, LOCK_FILE)), newest('offsets'), newest('commits')]);
  return { exists: planned !== undefined || fs.existsSync(path.join(dir, LOCK_FILE)), holder, planned, committed };
}
