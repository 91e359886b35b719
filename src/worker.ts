/**
 * Starts a module of ecomstream as a worker thread: its own event loop, so what it serves cannot
 * delay the batch loop. From the built package the module is `NAME.js` beside the caller; from the
 * TypeScript sources (tests run through tsx, which does not register itself in workers) it is
 * `NAME.ts`, loaded after registering tsx in the worker.
 */
import { Worker } from 'node:worker_threads';

export interface WorkerStart<M, R> {
  /** For the worker's message saying it started, the value to return; an Error if it failed; else undefined. */
  started(message: M): R | Error | undefined;
  /** Every other message, with the worker to answer it. */
  onMessage(message: M, worker: Worker): void;
  /** The worker threw: the error to fail the start with (once started, only reported). */
  onError(err: Error): Error;
}

export interface RunningWorker<R> {
  worker: Worker;
  /** What the start message said (an address, a URL). */
  value: R;
  /** Posts `{ type: 'close' }`, waits for the worker to end, and terminates it after `graceMs`. */
  end(graceMs: number): Promise<void>;
}

function spawn(callerUrl: string, name: string, workerData: unknown): Worker {
  if (!callerUrl.endsWith('.ts')) return new Worker(new URL(`./${name}.js`, callerUrl), { workerData });
  const entry = new URL(`./${name}.ts`, callerUrl).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  const code = `import(${JSON.stringify(tsx)}).then((t) => t.register()).then(() => import(${JSON.stringify(entry)}))`;
  return new Worker(code, { eval: true, workerData });
}

/** Starts `name` beside `callerUrl` and waits for its start message; the worker never keeps the process alive on its own. */
export async function startWorker<M, R>(callerUrl: string, name: string, workerData: unknown, start: WorkerStart<M, R>): Promise<RunningWorker<R>> {
  const worker = spawn(callerUrl, name, workerData);
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  let value: R;
  try {
    value = await new Promise<R>((resolve, reject) => {
      worker.on('message', (m: M) => {
        const r = start.started(m);
        if (r instanceof Error) reject(r);
        else if (r !== undefined) resolve(r);
        else start.onMessage(m, worker);
      });
      worker.on('error', (err) => reject(start.onError(err)));
    });
  } catch (err) {
    await worker.terminate();
    throw err;
  }
  worker.unref();
  let ending: Promise<void> | undefined;
  return {
    worker,
    value,
    end(graceMs) {
      ending ??= (async () => {
        worker.postMessage({ type: 'close' });
        const grace = setTimeout(() => void worker.terminate(), graceMs);
        await exited;
        clearTimeout(grace);
      })();
      return ending;
    },
  };
}
