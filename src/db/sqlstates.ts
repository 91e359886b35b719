/**
 * The SQLSTATEs after which a database step is worth retrying: connection-level failures only (the
 * server is down, restarting or unreachable, or dropped the connection). Both engines follow this one
 * list: src/db/errors.ts imports it, and the contract JSON carries it (`retryableSqlstates`, see
 * src/contract/schema.ts) to the Spark job's driver and executors.
 */
export interface RetryableSqlstates {
  /** Two-character SQLSTATE classes: every code in them. */
  readonly classes: readonly string[];
  /** Single codes outside those classes. */
  readonly codes: readonly string[];
}

export const RETRYABLE_SQLSTATES: RetryableSqlstates = {
  classes: ['08'], // connection_exception
  codes: [
    '57P01', // admin_shutdown (also pg_terminate_backend)
    '57P02', // crash_shutdown
    '57P03', // cannot_connect_now (starting up / shutting down)
    '53300', // too_many_connections
  ],
};
