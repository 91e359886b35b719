/** A stream engine that runs on until stopped, as `process` runs it, counting its commits. */
import type { EngineConfig } from '../../src/config.js';
import type { EngineObserver } from '../../src/engine/observer.js';
import { StreamEngine } from '../../src/engine/stream.js';
import type { Logger } from '../../src/log.js';

export interface RunningStream {
  committed(): number;
  /** A graceful stop: the batch in flight commits first. Rejects with the run's failure. */
  stop(): Promise<void>;
}

export function runStream(opts: { engine: Readonly<EngineConfig>; databaseUrl: string; log: Logger; observer?: EngineObserver }): RunningStream {
  const stop = new AbortController();
  let committed = 0;
  const run = new StreamEngine({ ...opts, signal: stop.signal, onProgress: () => committed++ }).run();
  run.catch(() => undefined); // reported by stop()
  return {
    committed: () => committed,
    async stop() {
      stop.abort();
      await run;
    },
  };
}
