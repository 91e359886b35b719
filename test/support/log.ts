import type { Logger } from '../../src/log.js';

/** A logger that keeps its lines, each prefixed with its level (`WARN batch 3: …`). */
export function recordingLog(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return { lines, info: (m) => lines.push(`INFO ${m}`), warn: (m) => lines.push(`WARN ${m}`), error: (m) => lines.push(`ERROR ${m}`) };
}
