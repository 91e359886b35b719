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
