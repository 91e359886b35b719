/** First Ctrl-C (or SIGTERM): stop gracefully. Second: abort at once. */
export function onInterrupt(graceful: () => void, abort: () => void): () => void {
  let count = 0;
  const handler = (): void => {
    if (++count === 1) graceful();
    else abort();
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}

/**
 * The stop protocol of the long-running commands: the first Ctrl-C aborts the returned signal (the
 * engine finishes and commits the batch in flight), the second exits at once (the batch is replayed next
 * time). Call `release` when done.
 */
export function gracefulStop(log: { info(m: string): void; warn(m: string): void }, what: string): { signal: AbortSignal; release: () => void } {
  const stop = new AbortController();
  const release = onInterrupt(
    () => {
      log.info(`stopping: ${what} (Ctrl-C again to abort; the batch in flight is then replayed next time)`);
      stop.abort();
    },
    () => {
      log.warn('aborted: the batch in flight is replayed on the next start');
      process.exit(130);
    },
  );
  return {
    signal: stop.signal,
    release: () => {
      release();
      stop.abort();
    },
  };
}
