/**
 * The one error base class. Code that recognises an error matches its class or its `code`, never its
 * message text; the context names what the error is about (file, line, batch, option) and `cause`
 * keeps the underlying error.
 */
export interface ErrorContext {
  file?: string;
  line?: number;
  batch?: number;
  option?: string;
}

export class EcomstreamError extends Error {
  /** A stable code for matching; subclasses set their own. */
  readonly code: string = 'ECOMSTREAM';
  readonly context: ErrorContext;

  constructor(message: string, options: ErrorContext & { cause?: unknown } = {}) {
    const { cause, ...context } = options;
    super(message, cause === undefined ? undefined : { cause });
    this.name = new.target.name;
    this.context = context;
  }
}
