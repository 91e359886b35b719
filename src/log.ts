/**
 * Modules below cli/ never print: they report through a Logger that the CLI supplies (console lines,
 * or nothing in tests).
 */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export const silentLogger: Logger = { info() {}, warn() {}, error() {} };
