/**
 * The one error base class. Every error ecomstream raises on purpose is an `EcomstreamError` (or a
 * subclass named for its room: CheckpointError, SinkError, …) that carries what it is about — the file,
 * line, batch or option — and keeps its `cause`. Code that must recognise an error tests its class or
 * its `code`, never its message text.
 */
export interface ErrorContext {
  /** A stable machine-readable code, e.g. `EEXIST`, `MISSING_METADATA`, or a PostgreSQL SQLSTATE. */
  code?: string;
  file?: string;
  line?: number;
  batch?: number;
  option?: string;
  cause?: unknown;
}

export class EcomstreamError extends Error {
  readonly code: string | undefined;
  readonly file: string | undefined;
  readonly line: number | undefined;
  readonly batch: number | undefined;
  readonly option: string | undefined;

  constructor(message: string, context: ErrorContext = {}) {
    super(message, context.cause === undefined ? undefined : { cause: context.cause });
    this.name = new.target.name;
    this.code = context.code;
    this.file = context.file;
    this.line = context.line;
    this.batch = context.batch;
    this.option = context.option;
  }
}

/** A setting (flag or environment variable) whose value cannot be used. */
export class ConfigError extends EcomstreamError {}

/** The code of an error or of the first error in its cause chain that has one. */
export function errorCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}
