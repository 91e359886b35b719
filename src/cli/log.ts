/**
 * The console logger of every command, in the format `--log-format` chose: `text` (a time prefix and a
 * readable line; warnings and errors on stderr) or `json` (pino: one object per line with time, level,
 * message and the line's fields; warnings and errors on stderr too, so a pipe of stdout keeps only facts).
 */
import pino from 'pino';
import type { LogFormat } from '../config.js';
import type { LogFields, Logger } from '../log.js';

function stamp(): string {
  return new Date().toISOString().slice(11, 23);
}

const textLogger: Logger = {
  info: (m) => process.stdout.write(`${stamp()} ${m}\n`),
  warn: (m) => process.stderr.write(`${stamp()} WARN ${m}\n`),
  error: (m) => process.stderr.write(`${stamp()} ERROR ${m}\n`),
};

function jsonLogger(): Logger {
  // Synchronous writes: a line logged just before process.exit() must not be lost.
  const streams = pino.multistream(
    [
      { level: 'info', stream: pino.destination({ fd: 1, sync: true }) },
      { level: 'warn', stream: pino.destination({ fd: 2, sync: true }) },
    ],
    { dedupe: true },
  );
  const p = pino(
    {
      base: { pid: process.pid },
      messageKey: 'message',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    streams,
  );
  const at = (level: 'info' | 'warn' | 'error') => (message: string, fields?: LogFields) => (fields ? p[level](fields, message) : p[level](message));
  return { info: at('info'), warn: at('warn'), error: at('error') };
}

let current: Logger = textLogger;
let currentFormat: LogFormat = 'text';

/** Called once per command, before its action runs (src/cli/main.ts). */
export function setLogFormat(format: LogFormat): void {
  currentFormat = format;
  current = format === 'json' ? jsonLogger() : textLogger;
}

export function logFormat(): LogFormat {
  return currentFormat;
}

/** The logger commands pass down; follows `setLogFormat`. */
export const consoleLogger: Logger = {
  info: (m, f) => current.info(m, f),
  warn: (m, f) => current.warn(m, f),
  error: (m, f) => current.error(m, f),
};
