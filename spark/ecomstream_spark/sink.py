"""The PostgreSQL side of a micro-batch: one transaction, idempotent by (stream id, batch id).

Executors parse their partition's files and write the records with `COPY` (psycopg 3) into UNLOGGED
staging tables named for this stream, batch and attempt (`stage_partition`): valid rows into a table of
the partition's own (`_ev_<part>`, typed: PostgreSQL parses decimals and timestamps there, on the
executors' connections), rejected rows and file notices into `_rj`, and one row into `_dn` saying the
partition is complete, with its counts, all in one transaction. A retried task (its executor
died) finds its partition in `_dn` and writes nothing twice; an attempt that died mid-COPY left nothing.

The driver holds the batch transaction open over one JDBC connection (the PostgreSQL driver through
py4j) while the executors work, and inserts each partition as soon as `_dn` shows it complete, so the
insert overlaps the parsing (`open_batch`, `insert_partition`, `finish_batch`):

    BEGIN
    this job's epoch still the newest?  the stream's stream_epochs row FOR SHARE, held to COMMIT (`Fence`);
                                           else Fenced: ROLLBACK, and the job stops without committing
    advisory lock on (stream, batch)    two attempts of one batch serialise here
    batch already in stream_batches?    -> ROLLBACK: a replay after a crash between this COMMIT and
                                           Spark's commits/N; nothing is written twice
    for each partition, once complete:  INSERT INTO <table> SELECT ... FROM _ev_<part> ORDER BY file, line
    INSERT INTO rejected_events SELECT ... FROM staging rejects
    INSERT INTO stream_batches (counts, files, batch timestamp, quality score, durations)
    DROP the staging tables
    COMMIT

A plain insert cannot decide duplicates: the first valid row of a key in (file, line) order must win, and
partitions complete in any order. So the first unique violation (a key twice in the batch, or stored by
an earlier batch) rolls the transaction back, and once every partition is staged (and gathered into `_ev`)
`commit_batch` runs the whole batch from the staging tables in one transaction: in-batch duplicates move to the rejects, then
the insert (ON CONFLICT DO NOTHING only after a unique violation), and the rows skipped become rejects.

Any failure raises: the batch is never recorded as done, Spark does not write commits/N, and the next
run replays it. inserted_at is left to the column default (the transaction's time), as the TypeScript
engine does, so it is the time the row was stored and no executor clock enters it.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple
from urllib.parse import parse_qsl, unquote, urlsplit

from .rows import around_value

STAGE_PREFIX = "ecomstream_stage_"
#: Staging tables live for one batch: autovacuum would only spend a core analysing and vacuuming them
#: while the batch runs (5.5 CPU-s of a million-row batch on 2 cores, measured).
STAGE_STORAGE = " WITH (autovacuum_enabled = false)"
#: Columns of the staging tables before the contract's: the writing partition, then the file order.
STAGE_EVENT_HEAD = ["part", "file_rank", "source_file", "line_number", "raw_line", "quality"]
STAGE_REJECT_COLUMNS = ["part", "file_rank", "source_file", "line_number", "raw_line", "reason", "detail"]
#: The partition number of records the driver writes itself (files Spark could not read, duplicates).
DRIVER_PART = -1
#: What a task reports of its partition (in `_dn`, and to the driver): data lines, rejected data lines,
#: valid rows, and the sum of their quality scores.
PART_COUNTS = ["data_lines", "rejected_lines", "valid_rows", "quality_sum"]
UNIQUE_VIOLATION = "23505"


class Target(object):
    """Where a contract's rows go: its table, columns (and their types in staging), conflict key and
    duplicate reason with its two details split around the key's value (SQL concatenates them). Everything
    comes from the contract; nothing here names a column."""

    #: Staging column types: values are parsed by PostgreSQL as they are COPYed into staging (by the
    #: executors' connections, in parallel), so the batch transaction's insert casts nothing.
    _STAGE_TYPES = {"decimal": "NUMERIC", "timestamp": "TIMESTAMP", "varchar": "TEXT"}

    def __init__(self, contract: Any) -> None:
        self.table = quote_ident(contract.table)
        self.column_names: List[str] = list(contract.column_names)
        self.columns = ", ".join(quote_ident(c) for c in self.column_names)
        self.stage_columns = ", ".join("%s %s" % (quote_ident(c["name"]), self._STAGE_TYPES[c["type"]]) for c in contract.columns)
        self.key = quote_ident(contract.conflict_key)
        dup = contract.reader["duplicate"]
        self.duplicate_reason: str = dup["reason"]
        self.in_batch_detail = around_value(dup["detailInBatch"], column=contract.conflict_key)
        self.stored_detail = around_value(dup["detailStored"], column=contract.conflict_key)
        self.retryable_classes = tuple(contract.retryable_sqlstate_classes)
        self.retryable_codes = frozenset(contract.retryable_sqlstates)

    def retryable(self, state: Optional[str]) -> bool:
        """A SQLSTATE the contract lists as worth a retry (connection-level failures)."""
        return state is not None and (state in self.retryable_codes or state[:2] in self.retryable_classes)


class SinkError(Exception):
    """A database step of a batch failed; the message names the batch, the cause keeps the server's text."""


class Fenced(SinkError):
    """A newer engine claimed this job's stream (its epoch, see `Fence`): the job must stop, committing
    nothing and writing no commits/N."""


class DatabaseUnavailable(SinkError):
    """PostgreSQL could not be reached, or dropped the connection: the batch stays uncommitted and is
    retried. Raised on an executor, it travels to the driver as a task's result (see `stage_partition`),
    since a failed task reaches the driver only as text."""


def is_connection_error(err: BaseException, target: Target) -> bool:
    """A failure worth a retry of the batch, by class or SQLSTATE (never by message text): a
    `DatabaseUnavailable`, or a JDBC error whose SQLSTATE the contract lists as retryable."""
    e: Optional[BaseException] = err
    for _ in range(6):
        if e is None:
            break
        if isinstance(e, DatabaseUnavailable) or target.retryable(sql_state(e)):
            return True
        e = e.__cause__ or e.__context__
    return False


def quote_ident(name: str) -> str:
    return '"%s"' % name.replace('"', '""')


def java_message(err: Exception) -> str:
    """The server's message (and SQLState) of a Py4JJavaError, else str(err)."""
    java = getattr(err, "java_exception", None)
    if java is not None:
        try:
            msg = java.getMessage()
            state = java.getSQLState() if hasattr(java, "getSQLState") else None
            return "%s%s" % (msg, " (SQLState %s)" % state if state else "")
        except Exception:  # the JVM may be gone; fall back to the Python text
            pass
    return str(err)


def sql_state(err: BaseException) -> Optional[str]:
    """The SQLSTATE of a java.sql.SQLException raised through py4j, else None."""
    java = getattr(err, "java_exception", None)
    try:
        return str(java.getSQLState()) if java is not None and hasattr(java, "getSQLState") else None
    except Exception:  # the JVM may be gone
        return None


class PgConnection(object):
    """A JDBC connection created in the driver JVM through py4j, with small helpers."""

    def __init__(self, jvm: Any, jdbc_url: str, user: Optional[str], password: Optional[str]) -> None:
        props = jvm.java.util.Properties()
        if user is not None:
            props.setProperty("user", user)
        if password is not None:
            props.setProperty("password", password)
        props.setProperty("ApplicationName", "ecomstream-spark")
        # The driver instance directly, not DriverManager: DriverManager only sees drivers of the caller's
        # class loader, and jars added with --packages/--jars live in Spark's child loader.
        self._conn = jvm.org.postgresql.Driver().connect(jdbc_url, props)
        if self._conn is None:
            raise SinkError("the PostgreSQL JDBC driver does not accept %s" % jdbc_url)

    def close(self) -> None:
        try:
            self._conn.close()
        except Exception:
            pass

    def set_autocommit(self, on: bool) -> None:
        self._conn.setAutoCommit(on)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Runs one statement; returns its update count (-1 for statements that return rows)."""
        st = self._conn.prepareStatement(sql)
        try:
            self._bind(st, params)
            has_rows = st.execute()
            return -1 if has_rows else st.getUpdateCount()
        finally:
            st.close()

    def query(self, sql: str, params: Sequence[Any] = ()) -> List[List[Any]]:
        st = self._conn.prepareStatement(sql)
        try:
            self._bind(st, params)
            rs = st.executeQuery()
            n = rs.getMetaData().getColumnCount()
            out = []
            while rs.next():
                out.append([rs.getString(i + 1) for i in range(n)])
            rs.close()
            return out
        finally:
            st.close()

    def commit(self) -> None:
        self._conn.commit()

    def rollback(self) -> None:
        try:
            self._conn.rollback()
        except Exception:
            pass

    @staticmethod
    def _bind(st: Any, params: Sequence[Any]) -> None:
        for i, p in enumerate(params, start=1):
            if p is None:
                st.setNull(i, 12)  # java.sql.Types.VARCHAR; casts in the SQL give the real type
            elif isinstance(p, bool):
                st.setBoolean(i, p)
            elif isinstance(p, int):
                st.setLong(i, p)
            elif isinstance(p, float):
                st.setDouble(i, p)
            else:
                st.setString(i, str(p))


def jdbc_statement(sql: str) -> str:
    """A statement written for node-postgres (`$1`, `$2` … each once, in order) with JDBC's `?` instead."""
    numbers = [int(n) for n in re.findall(r"\$(\d+)", sql)]
    if numbers != list(range(1, len(numbers) + 1)):
        raise SinkError("the contract's fencing statement uses its parameters out of order: %s" % sql)
    return re.sub(r"\$\d+", "?", sql)


class Fence(object):
    """One writer per stream: this job's epoch of its stream, claimed once at start, and checked first in
    every batch transaction. The statements, the transaction's name and the claim's attempts are the
    contract's `fencing` (src/db/epoch.ts, the one definition, whose claimEpoch and checkEpoch these two
    methods mirror): the same SQL texts run here, with `?` for `$n`."""

    def __init__(self, contract: Any, stream_id: str) -> None:
        f = contract.fencing
        sql = {k: jdbc_statement(v) for k, v in f["sql"].items()}
        self.claim_sql, self.check_sql = sql["claim"], sql["check"]
        self.abort_older_sql, self.lock_timeout_sql = sql["abortOlder"], sql["claimLockTimeout"]
        self.batch_name: str = f["batchNamePrefix"] + stream_id
        self.claim_attempts = int(f["claimAttempts"])
        self.lock_not_available: str = f["lockNotAvailable"]
        self.stream_id = stream_id
        self.epoch: Optional[int] = None

    def claim(self, conn: PgConnection, host: str, pid: int, started_at: str, source: str) -> int:
        """A new epoch for the stream, in one transaction; after the lock timeout, the open batch
        transactions of older epochs are ended and the claim tried again."""
        for attempt in range(1, self.claim_attempts + 1):
            conn.set_autocommit(False)
            try:
                conn.execute(self.lock_timeout_sql)
                epoch = int(conn.query(self.claim_sql, [self.stream_id, "spark", host, pid, started_at, source])[0][0])
                conn.commit()
                self.epoch = epoch
                return epoch
            except Exception as e:  # only the lock timeout is handled, by its SQLSTATE
                conn.rollback()
                if sql_state(e) != self.lock_not_available or attempt == self.claim_attempts:
                    raise
            finally:
                conn.set_autocommit(True)
            conn.query(self.abort_older_sql, [self.batch_name])
        raise AssertionError("unreachable")

    def check(self, conn: PgConnection, batch_id: int) -> None:
        """First statement of a batch transaction: raises Fenced unless this job's epoch is the newest."""
        rows = conn.query(self.check_sql, [self.batch_name, self.stream_id])
        if rows and self.epoch is not None and int(rows[0][0]) == self.epoch:
            return
        newer = "its epoch row is gone from stream_epochs"
        if rows:
            epoch, engine, host, pid, started_at = rows[0][:5]
            newer = "epoch %s: the %s engine pid %s on host %s, started %s" % (epoch, engine, pid, host, started_at)
        raise Fenced(
            "batch %d: fenced: another engine took over stream %s (%s); this engine (epoch %s) stops without committing"
            % (batch_id, self.stream_id, newer, self.epoch)
        )


class StageTables(object):
    """Names of one batch attempt's staging tables."""

    def __init__(self, stream_id: str, batch_id: int, attempt: str) -> None:
        base = "%s%s_%d_%s" % (STAGE_PREFIX, re.sub(r"[^a-z0-9]", "", stream_id.lower())[:12], batch_id, attempt)
        self.events = base + "_ev"
        self.rejects = base + "_rj"
        self.done = base + "_dn"
        self.prefix = base + "_"

    def partition_events(self, part: int) -> str:
        """The valid rows of one partition: a table of their own, so the insert of a partition reads
        only its rows (its task creates it in its staging transaction, `LIKE` the events table)."""
        return "%s_%d" % (self.events, part)

    @staticmethod
    def prefix_for(stream_id: str) -> str:
        return "%s%s_" % (STAGE_PREFIX, re.sub(r"[^a-z0-9]", "", stream_id.lower())[:12])


def create_stage_tables(conn: PgConnection, stage: StageTables, target: Target) -> None:
    conn.set_autocommit(True)
    conn.execute(
        "CREATE UNLOGGED TABLE IF NOT EXISTS %s (part INTEGER NOT NULL, file_rank INTEGER NOT NULL, source_file TEXT NOT NULL, "
        "line_number INTEGER NOT NULL, raw_line TEXT, quality DOUBLE PRECISION NOT NULL, %s)%s"
        % (quote_ident(stage.events), target.stage_columns, STAGE_STORAGE)
    )
    conn.execute(
        "CREATE UNLOGGED TABLE IF NOT EXISTS %s (part INTEGER NOT NULL, file_rank INTEGER NOT NULL, source_file TEXT NOT NULL, "
        "line_number INTEGER NOT NULL, raw_line TEXT, reason TEXT NOT NULL, detail TEXT)%s" % (quote_ident(stage.rejects), STAGE_STORAGE)
    )
    conn.execute(
        "CREATE UNLOGGED TABLE IF NOT EXISTS %s (part INTEGER PRIMARY KEY, %s)%s"
        % (quote_ident(stage.done), ", ".join("%s DOUBLE PRECISION NOT NULL" % c for c in PART_COUNTS), STAGE_STORAGE)
    )


def libpq_params(jdbc_url: str, user: Optional[str], password: Optional[str]) -> Dict[str, Any]:
    """psycopg connection keywords for the JDBC URL the job was given (settings.jdbc_from_database_url)."""
    parts = urlsplit(jdbc_url[len("jdbc:") :] if jdbc_url.startswith("jdbc:") else jdbc_url)
    params: Dict[str, Any] = {
        "host": parts.hostname or "localhost",
        "port": parts.port or 5432,
        "dbname": unquote(parts.path.lstrip("/")) or "postgres",
        "application_name": "ecomstream-spark-executor",
    }
    query = dict(parse_qsl(parts.query))
    for key in ("sslmode", "sslrootcert", "options"):
        if key in query:
            params[key] = query[key]
    params["user"] = user or query.get("user") or (unquote(parts.username) if parts.username else None)
    params["password"] = password or query.get("password") or (unquote(parts.password) if parts.password else None)
    return {k: v for k, v in params.items() if v is not None}


def stage_partition(
    conninfo: Dict[str, Any],
    stage: StageTables,
    target: Target,
    part: int,
    events: Iterable[Tuple[Any, ...]],
    rejects: Iterable[Tuple[Any, ...]],
    counts: Sequence[float],
) -> List[float]:
    """Executor side: stages partition `part` — `events` (rows of STAGE_EVENT_HEAD + the contract's columns,
    `part` first) into the partition's own table, then `rejects` (rows of STAGE_REJECT_COLUMNS), then its `_dn` row with
    `counts` (PART_COUNTS, complete once `events` is consumed) — in one transaction, and returns the
    counts. If an earlier attempt of this task committed, returns that attempt's counts and writes
    nothing: `events` may be a generator, which is then never started. Raises `DatabaseUnavailable` when
    PostgreSQL cannot be reached or drops the connection (the transaction then never committed)."""
    try:
        import psycopg  # on executors only: the driver writes through JDBC
    except ImportError as e:
        raise SinkError("psycopg is not installed for this executor's Python (%s): pip install -r spark/requirements.txt" % sys.executable) from e

    event_columns = ", ".join(STAGE_EVENT_HEAD + [quote_ident(c) for c in target.column_names])
    try:
        with psycopg.connect(**conninfo) as conn:
            with conn.cursor() as cur:
                # Two attempts of one task (a retry while a lost executor's attempt still runs) serialise here.
                cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s), %s)", (stage.events, part))
                cur.execute("SELECT %s FROM %s WHERE part = %%s" % (", ".join(PART_COUNTS), quote_ident(stage.done)), (part,))
                earlier = cur.fetchone()
                if earlier is not None:
                    return [float(x) for x in earlier]
                table = quote_ident(stage.partition_events(part))
                cur.execute("CREATE UNLOGGED TABLE %s (LIKE %s)%s" % (table, quote_ident(stage.events), STAGE_STORAGE))
                with cur.copy("COPY %s (%s) FROM STDIN" % (table, event_columns)) as copy:
                    for r in events:
                        copy.write_row(r)
                with cur.copy("COPY %s (%s) FROM STDIN" % (quote_ident(stage.rejects), ", ".join(STAGE_REJECT_COLUMNS))) as copy:
                    for r in rejects:
                        copy.write_row(r)
                cur.execute(
                    "INSERT INTO %s (part, %s) VALUES (%%s%s)" % (quote_ident(stage.done), ", ".join(PART_COUNTS), ", %s" * len(PART_COUNTS)),
                    (part, *counts),
                )
            conn.commit()
    except psycopg.Error as e:
        # No answer from the server (the connection failed or broke), or a retryable SQLSTATE.
        if (isinstance(e, psycopg.OperationalError) and e.sqlstate is None) or target.retryable(e.sqlstate):
            raise DatabaseUnavailable("partition %d of %s: PostgreSQL is unavailable: %s" % (part, stage.events, e)) from e
        raise
    return [float(x) for x in counts]


def stage_rejects_on_driver(conn: PgConnection, stage: StageTables, rejects: Sequence[Tuple[Any, ...]]) -> None:
    """Records of files no executor read (empty, vanished, unreadable): few, written by the driver before
    the batch transaction opens (so the whole-batch path of `commit_batch` sees them too)."""
    conn.set_autocommit(True)
    sql = "INSERT INTO %s (%s) VALUES (%s)" % (quote_ident(stage.rejects), ", ".join(STAGE_REJECT_COLUMNS), ", ".join("?" for _ in STAGE_REJECT_COLUMNS))
    for r in rejects:
        conn.execute(sql, (DRIVER_PART,) + tuple(r))


def open_batch(conn: PgConnection, fence: Fence, stream_id: str, batch_id: int) -> bool:
    """Opens the batch transaction; False (rolled back) when PostgreSQL already recorded the batch.
    Raises Fenced (rolled back) when a newer engine claimed the stream."""
    conn.set_autocommit(False)
    try:
        fence.check(conn, batch_id)
        conn.query("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", ["ecomstream-batch:%s:%d" % (stream_id, batch_id)])
        if conn.query("SELECT 1 FROM stream_batches WHERE stream_id = ? AND batch_id = ?", [stream_id, batch_id]):
            abort_batch(conn)
            return False
        # The duplicate check's hash and the inserts' sorts stay in memory for this transaction rather
        # than spilling to disk (PostgreSQL's default work_mem is 4 MB).
        conn.execute("SET LOCAL work_mem = '256MB'")
        return True
    except Exception:
        abort_batch(conn)
        raise


def abort_batch(conn: PgConnection) -> None:
    """Rolls the batch transaction back (a broken connection: the server has done it)."""
    conn.rollback()
    try:
        conn.set_autocommit(True)
    except Exception:  # a broken connection; the next batch opens a new one
        pass


def complete_partitions(conn: PgConnection, stage: StageTables) -> List[int]:
    return [int(r[0]) for r in conn.query("SELECT part FROM %s" % quote_ident(stage.done))]


def insert_partition(conn: PgConnection, stage: StageTables, target: Target, part: int) -> int:
    """Inside the open batch transaction: a complete partition's valid rows into the target table, in
    file and line order. Raises on a unique violation (UNIQUE_VIOLATION, `sql_state`); the transaction is
    then aborted and the batch goes the way of `commit_batch`."""
    return conn.execute(
        "INSERT INTO %s (%s) SELECT %s FROM %s ORDER BY file_rank, line_number"
        % (target.table, target.columns, target.columns, quote_ident(stage.partition_events(part)))
    )


def gather_partitions(conn: PgConnection, stage: StageTables) -> None:
    """Before `commit_batch`: the partitions' valid rows into the one events table it reads (the whole
    batch is needed to decide duplicates). Autocommit: staging is not the batch's transaction."""
    conn.set_autocommit(True)
    for part in sorted(complete_partitions(conn, stage)):
        conn.execute("INSERT INTO %s SELECT * FROM %s" % (quote_ident(stage.events), quote_ident(stage.partition_events(part))))


class PartitionInserter(threading.Thread):
    """Driver side, while the executors stage the batch: inserts each partition once `_dn` shows it
    complete, inside the open batch transaction (the only user of `conn` until `finish` returns).

    After `finish`: `inserted` rows; `conflicted` if a unique violation aborted the transaction (the batch
    then needs `commit_batch`); any other failure is re-raised by `finish`."""

    POLL_S = 0.1

    def __init__(self, conn: PgConnection, stage: StageTables, target: Target) -> None:
        super().__init__(name="ecomstream-partition-inserter", daemon=True)
        self.conn, self.stage, self.target = conn, stage, target
        self.inserted = 0
        self.conflicted = False
        self._error: Optional[BaseException] = None
        self._staged = threading.Event()
        self._consumed: Set[int] = set()

    def run(self) -> None:
        try:
            while True:
                last = self._staged.is_set()  # read before the poll: that poll then sees every partition
                new = [p for p in sorted(complete_partitions(self.conn, self.stage)) if p not in self._consumed]
                for p in new:
                    self.inserted += insert_partition(self.conn, self.stage, self.target, p)
                    self._consumed.add(p)
                if last:
                    return
                if not new:
                    self._staged.wait(self.POLL_S)
        except Exception as e:  # classified by SQLSTATE: a duplicate key sends the batch the other way
            if sql_state(e) == UNIQUE_VIOLATION:
                self.conflicted = True
            else:
                self._error = e

    def finish(self) -> None:
        """Call once every task has finished (or failed): the last partitions are inserted, then returns."""
        self._staged.set()
        self.join()
        if self._error is not None:
            raise self._error


def finish_batch(
    conn: PgConnection,
    stage: StageTables,
    stream_id: str,
    batch_id: int,
    record: Dict[str, Any],
    inserted: int,
    quality_score: Optional[float],
    before_commit: Any = None,
) -> Dict[str, Any]:
    """Ends the open batch transaction after every partition was inserted without a conflict: no
    duplicates, in the batch or stored. The rejects and the batch record, then COMMIT."""
    try:
        _record_and_commit(conn, stage, stream_id, batch_id, record, inserted, 0, quality_score, before_commit)
        return {"inserted": inserted, "stored_duplicates": 0, "batch_duplicates": 0, "quality_score": quality_score}
    except Exception as e:
        abort_batch(conn)
        raise SinkError("batch %d of stream %s: the database transaction failed: %s" % (batch_id, stream_id, java_message(e))) from e
    finally:
        try:
            conn.set_autocommit(True)
        except Exception:  # a broken connection; the next batch opens a new one
            pass


def _record_and_commit(
    conn: PgConnection,
    stage: StageTables,
    stream_id: str,
    batch_id: int,
    record: Dict[str, Any],
    inserted: int,
    duplicates: int,
    quality_score: Optional[float],
    before_commit: Any,
) -> None:
    """The end of both ways of a batch transaction: staged rejects, the batch record, DROP, COMMIT."""
    conn.execute(
        "INSERT INTO rejected_events (stream_id, batch_id, source_file, line_number, raw_line, reason, detail) "
        "SELECT ?, ?, source_file, line_number, raw_line, reason, detail FROM %s ORDER BY file_rank, line_number" % quote_ident(stage.rejects),
        [stream_id, batch_id],
    )
    conn.execute(
        "INSERT INTO stream_batches (stream_id, batch_id, engine, files, batch_timestamp, input_rows, inserted_rows, "
        "duplicate_rows, rejected_rows, quality_score, oldest_file_mtime, newest_file_mtime, durations_ms) "
        "VALUES (?, ?, 'spark', ?::jsonb, ?::timestamptz, ?, ?, ?, ?, ?::numeric, ?::timestamptz, ?::timestamptz, ?::jsonb)",
        [
            stream_id,
            batch_id,
            json.dumps(record["files"]),
            record["batch_timestamp"],
            int(record["input_rows"]),
            inserted,
            duplicates,
            int(record["rejected_rows"]),
            None if quality_score is None else repr(quality_score),
            record["oldest_file_mtime"],
            record["newest_file_mtime"],
            json.dumps(dict(record["durations_ms"])),
        ],
    )
    conn.execute("DROP TABLE IF EXISTS %s" % ", ".join(quote_ident(t) for t in stage_table_names(conn, stage)))
    if before_commit is not None:
        before_commit()
    conn.commit()


def drop_tables(conn: PgConnection, names: Sequence[str]) -> None:
    conn.set_autocommit(True)
    for name in names:
        conn.execute("DROP TABLE IF EXISTS %s" % quote_ident(name))


def tables_named_from(conn: PgConnection, prefix: str) -> List[str]:
    rows = conn.query("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND left(tablename, length(?)) = ?", [prefix, prefix])
    return [r[0] for r in rows]


def stage_table_names(conn: PgConnection, stage: StageTables) -> List[str]:
    """Every table of this batch attempt: events, rejects, done, and the partitions' event tables."""
    return tables_named_from(conn, stage.prefix)


def drop_stage(conn: PgConnection, stage: StageTables) -> None:
    drop_tables(conn, stage_table_names(conn, stage))


def drop_stale_stage_tables(conn: PgConnection, stream_id: str) -> List[str]:
    """Staging tables a crashed attempt of this stream left behind (only one job runs per checkpoint)."""
    names = tables_named_from(conn, StageTables.prefix_for(stream_id))
    drop_tables(conn, names)
    return names


def batch_recorded(conn: PgConnection, fence: Fence, stream_id: str, batch_id: int) -> bool:
    """Whether PostgreSQL recorded the batch, asked under the fence: a fenced job must not learn "already
    committed" and let Spark write commits/N."""
    conn.set_autocommit(False)
    try:
        fence.check(conn, batch_id)
        return bool(conn.query("SELECT 1 FROM stream_batches WHERE stream_id = ? AND batch_id = ?", [stream_id, batch_id]))
    finally:
        conn.rollback()
        conn.set_autocommit(True)


def commit_batch(
    conn: PgConnection,
    fence: Fence,
    stage: StageTables,
    target: Target,
    stream_id: str,
    batch_id: int,
    record: Dict[str, Any],
    before_commit: Any = None,
) -> Optional[Dict[str, Any]]:
    """The batch transaction. Returns {"inserted", "stored_duplicates", "batch_duplicates", "quality_score"}
    or None if already recorded.

    `record` holds the stream_batches values known before the transaction: files, batch_timestamp (ISO),
    input_rows, rejected_rows (without duplicates), oldest/newest file mtime (ISO or None), durations_ms
    (dict). Duplicates, inserted rows and the quality score are decided here, from the staging tables.
    """
    ev, rj, key = quote_ident(stage.events), quote_ident(stage.rejects), target.key
    if not open_batch(conn, fence, stream_id, batch_id):
        return None
    try:
        conn.execute("LOCK TABLE %s IN EXCLUSIVE MODE" % ", ".join(quote_ident(t) for t in [stage.events, stage.rejects, stage.done]))
        # In-batch duplicates: the first valid row of a key in (file, line) order stays; only keys that
        # occur twice are ranked, so a batch without duplicates pays one hash aggregate.
        batch_duplicates = conn.execute(
            "WITH keys AS (SELECT {key} FROM {ev} GROUP BY {key} HAVING count(*) > 1), "
            "ranked AS (SELECT e.ctid AS row_id, row_number() OVER (PARTITION BY e.{key} ORDER BY e.file_rank, e.line_number) AS n "
            "           FROM {ev} e JOIN keys USING ({key})), "
            "moved AS (DELETE FROM {ev} e USING ranked r WHERE e.ctid = r.row_id AND r.n > 1 "
            "          RETURNING e.file_rank, e.source_file, e.line_number, e.raw_line, e.{key}) "
            "INSERT INTO {rj} (part, file_rank, source_file, line_number, raw_line, reason, detail) "
            "SELECT ?, file_rank, source_file, line_number, raw_line, ?, ? || {key} || ? FROM moved".format(key=key, ev=ev, rj=rj),
            [DRIVER_PART, target.duplicate_reason, target.in_batch_detail[0], target.in_batch_detail[1]],
        )
        unique_rows, quality = conn.query("SELECT count(*)::text, avg(quality)::text FROM %s" % ev)[0]
        quality_score = None if quality is None else round(float(quality), 3)
        # Rows in file and line order, so ids follow the files as with the TypeScript engine. The fast
        # path is a plain insert (ON CONFLICT's speculative insertion costs more per row); when a row is
        # already stored (unique violation, by its SQLSTATE), back to the savepoint and insert with
        # ON CONFLICT DO NOTHING, as the TypeScript engine's sink does.
        insert = "INSERT INTO %s (%s) SELECT %s FROM %s ORDER BY file_rank, line_number" % (target.table, target.columns, target.columns, ev)
        conn.execute("SAVEPOINT plain_insert")
        try:
            inserted = conn.execute(insert)
            conn.execute("RELEASE SAVEPOINT plain_insert")
        except Exception as e:  # only a unique violation is handled
            if sql_state(e) != UNIQUE_VIOLATION:
                raise
            # Released too, so the insert below runs in the top transaction: the xmin test further down
            # compares with the top transaction's id.
            conn.execute("ROLLBACK TO SAVEPOINT plain_insert")
            conn.execute("RELEASE SAVEPOINT plain_insert")
            inserted = conn.execute(insert + " ON CONFLICT (%s) DO NOTHING" % key)
        stored_duplicates = int(unique_rows) - inserted
        if stored_duplicates:
            # Staged rows whose key an earlier transaction stored: the stored row is not this
            # transaction's own (xmin). Only looked up when the insert skipped rows.
            conn.execute(
                "INSERT INTO rejected_events (stream_id, batch_id, source_file, line_number, raw_line, reason, detail) "
                "SELECT ?, ?, s.source_file, s.line_number, s.raw_line, ?, ? || s.{key} || ? "
                "FROM {ev} s JOIN {table} u ON u.{key} = s.{key} "
                "WHERE u.xmin <> pg_current_xact_id()::xid ORDER BY s.file_rank, s.line_number".format(key=key, ev=ev, table=target.table),
                [stream_id, batch_id, target.duplicate_reason, target.stored_detail[0], target.stored_detail[1]],
            )
        _record_and_commit(conn, stage, stream_id, batch_id, record, inserted, batch_duplicates + stored_duplicates, quality_score, before_commit)
        return {"inserted": inserted, "stored_duplicates": stored_duplicates, "batch_duplicates": batch_duplicates, "quality_score": quality_score}
    except Exception as e:
        conn.rollback()
        raise SinkError("batch %d of stream %s: the database transaction failed: %s" % (batch_id, stream_id, java_message(e))) from e
    finally:
        try:
            conn.set_autocommit(True)
        except Exception:  # a broken connection; the next batch opens a new one
            pass
