/**
 * What the dashboard reads outside the database: the landing folder (files waiting) and the engine's
 * checkpoint folder (is an engine running, is a batch in flight). Both are optional: a dashboard pointed
 * at a remote PostgreSQL (a Spark cluster, say) has neither and shows "unknown" instead of guessing.
 *
 * Backlog = published `*.csv` files in the input folder whose names are in no committed batch. The names
 * of committed files come from stream_batches (the truth, for both engines), read incrementally by
 * committed_at; the engine's own progress record is not used because it is written at planning time and
 * is stale the moment the next file lands.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import { peekCheckpoint } from '../checkpoint/inspect.js';
import { isPublished } from '../contract/batch.js';
import { committedFilesSince } from '../db/ledger.js';
import type { EngineState } from './queries.js';

/** Batches loaded on the first scan; older committed files are recognised by their mtime instead. */
const INITIAL_BATCHES = 20_000;
/** Re-read batches committed this long before the cursor: a concurrent writer's commit can land late. */
const CURSOR_OVERLAP_MS = 60_000;

export class BacklogTracker {
  private committed = new Set<string>();
  private cursorMs: number | undefined;
  /** Files older than every loaded batch's newest file are taken as processed (see INITIAL_BATCHES). */
  private horizonMs = -Infinity;
  private mtimes = new Map<string, number>();

  constructor(private readonly inputDir: string) {}

  /** Files waiting, or null when the input folder does not exist here. */
  async count(client: pg.ClientBase): Promise<number | null> {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await fsp.readdir(this.inputDir, { withFileTypes: true });
    } catch {
      return null;
    }
    await this.loadCommitted(client);
    const names = entries.filter((e) => e.isFile() && isPublished(e.name)).map((e) => e.name);
    const present = new Set(names);
    let waiting = 0;
    for (const name of names) {
      if (this.committed.has(name)) continue;
      if (this.horizonMs > -Infinity) {
        let mtime = this.mtimes.get(name);
        if (mtime === undefined) {
          mtime = await fsp.stat(path.join(this.inputDir, name)).then(
            (s) => s.mtimeMs,
            () => Infinity,
          );
          this.mtimes.set(name, mtime);
        }
        if (mtime < this.horizonMs) continue;
      }
      waiting++;
    }
    // Names that left the folder (archived, deleted) are never needed again: keep memory bounded.
    for (const name of this.committed) if (!present.has(name)) this.committed.delete(name);
    for (const name of this.mtimes.keys()) if (!present.has(name)) this.mtimes.delete(name);
    return waiting;
  }

  private async loadCommitted(client: pg.ClientBase): Promise<void> {
    const first = this.cursorMs === undefined;
    const batches = await committedFilesSince(client, first ? 0 : this.cursorMs! - CURSOR_OVERLAP_MS, first ? INITIAL_BATCHES : 1_000_000);
    for (const b of batches) {
      for (const name of b.names) this.committed.add(path.basename(name));
      this.cursorMs = Math.max(this.cursorMs ?? 0, b.committedMs);
    }
    if (first) {
      this.cursorMs ??= 0;
      if (batches.length === INITIAL_BATCHES) {
        this.horizonMs = Math.min(...batches.map((b) => b.newestMs ?? Infinity));
      }
    }
  }
}

/**
 * The engine's state from its checkpoint, read through src/checkpoint/inspect.ts (`peekCheckpoint`):
 * a live lock holder is a running engine; a planned batch without its commit is a batch in flight.
 */
export async function engineState(checkpointDir: string, backlog: number | null): Promise<EngineState> {
  const { exists, holder, planned, committed } = await peekCheckpoint(checkpointDir);
  if (!exists) {
    return { state: 'unknown', detail: 'no engine checkpoint on this machine' };
  }
  const running = holder !== undefined;
  const inFlight = planned !== undefined && (committed === undefined || planned > committed);
  if (!running) {
    return {
      state: 'stopped',
      detail: inFlight ? `stopped with batch ${planned} planned; it is replayed on restart` : 'no engine holds the checkpoint',
    };
  }
  if (inFlight) return { state: 'processing', detail: `batch ${planned} in flight` };
  return { state: 'idle', detail: backlog ? `${backlog} file${backlog === 1 ? '' : 's'} waiting` : 'waiting for files' };
}
