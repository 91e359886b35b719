/**
 * The SQLSTATEs after which a database step is worth retrying: the server is down, restarting or
 * unreachable, dropped the connection, has no connection slot free, or is out of disk space — each a
 * state of the server that an operator or time ends, never a fault of the rows. Both engines follow this
 * one list: src/db/errors.ts imports it, and the contract JSON carries it (`retryableSqlstates`, see
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
    '53100', // disk_full (a COPY that extends a table, or the WAL, on a full disk)
  ],
};

/** What a retryable SQLSTATE means, as log lines and `/readyz` say it; codes not listed are "database unavailable". */
export const RETRYABLE_CAUSES: Readonly<Record<string, string>> = {
  '53100': 'the database server is out of disk space',
  '53300': 'the database server has no connection slot free',
};

/** The SQLSTATE after which the database is reachable but cannot store anything: `/readyz` says `database_full`. */
export const DISK_FULL = '53100';
