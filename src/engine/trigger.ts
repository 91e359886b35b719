/**
 * When the next micro-batch may start. `interval` fires on a fixed schedule (Spark's ProcessingTime:
 * a slow batch does not shift later ticks); `on-arrival` wakes when a file appears in the input folder,
 * backed by a poll because fs.watch can miss events (network filesystems, overflow).
 */
import fs from 'node:fs';
import type { TriggerSpec } from '../config.js';
import { isPublished } from '../contract/batch.js';
import { sleep } from '../sleep.js';

export class Trigger {
  private watcher: fs.FSWatcher | undefined;
  private pending = true; // the first wait returns at once
  private wake: (() => void) | undefined;
  private nextTick = 0;

  constructor(
    private readonly spec: TriggerSpec,
    private readonly inputDir: string,
    private readonly pollMillis: number,
    /** Told each published name the watcher reports (the source re-checks it even if processed). */
    private readonly onName?: (name: string) => void,
  ) {
    if (spec.kind === 'on-arrival') {
      fs.mkdirSync(inputDir, { recursive: true });
      try {
        this.watcher = fs.watch(inputDir, (_event, name) => {
          if (name && !isPublished(name)) return;
          if (name) this.onName?.(name);
          this.pending = true;
          this.wake?.();
        });
        this.watcher.on('error', () => {
          // Fall back to polling alone, and to listing the folder at every trigger (src/engine/source.ts).
          this.watcher?.close();
          this.watcher = undefined;
        });
      } catch {
        this.watcher = undefined;
      }
    }
  }

  /**
   * Resolves when the next batch should be planned (or at once when `signal` aborts). `soonMs`: a file
   * may have settled by then, so an on-arrival trigger looks again no later than that.
   */
  async wait(signal?: AbortSignal, soonMs?: number): Promise<void> {
    if (this.spec.kind === 'interval') {
      const period = this.spec.seconds * 1000;
      const now = Date.now();
      if (this.nextTick === 0) this.nextTick = now;
      const delay = Math.max(0, this.nextTick - now);
      // Skip missed ticks rather than firing a burst of batches after a slow one.
      this.nextTick += period * Math.max(1, Math.ceil((now - this.nextTick) / period + 1e-9));
      if (delay > 0) await sleep(delay, signal);
      return;
    }
    if (this.spec.kind !== 'on-arrival') return;
    if (this.pending) {
      this.pending = false;
      return;
    }
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, soonMs === undefined ? this.pollMillis : Math.min(this.pollMillis, soonMs));
      this.wake = done;
      signal?.addEventListener('abort', done, { once: true });
    });
    this.pending = false;
  }

  /** True while a folder watcher reports the names that change. */
  get watching(): boolean {
    return this.watcher !== undefined;
  }

  close(): void {
    this.watcher?.close();
  }
}
