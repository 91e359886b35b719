/**
 * Modules below cli/ never print: they report through a Logger that the CLI supplies (console lines in
 * text or JSON, see src/cli/log.ts, or nothing in tests). `fields` are the machine-readable facts of the
 * line (batch, file, rows, reason, duration …): JSON logs carry them as keys, text logs show only the
 * message, which already says them in words.
 */
export type LogFields = Record<string, unknown>;

export interface Logger {
  // Properties, not methods: loggers are passed around by member (`warn: consoleLogger.warn`), unbound.
  info: (message: string, fields?: LogFields) => void;
  warn: (message: string, fields?: LogFields) => void;
  error: (message: string, fields?: LogFields) => void;
}

const ignore = (): void => undefined;
export const silentLogger: Logger = { info: ignore, warn: ignore, error: ignore };
