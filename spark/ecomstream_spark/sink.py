"""The PostgreSQL side of a micro-batch: one transaction, idempotent by (stream id, batch id).

Executors write the batch's rows with Spark's JDBC writer (batch size 1000, READ_COMMITTED) into two
UNLOGGED staging tables named for this stream, batch and attempt. Then the driver runs, over one JDBC
connection (the PostgreSQL driver through py4j, so the cluster image needs nothing but the JDBC jar):

    BEGIN
    advisory lock on (stream, batch)    two attempts of one batch serialise here
    batch already in stream_batches?    -> ROLLBACK: a replay after a crash between this COMMIT and
                                           Spark's commits/N; nothing is written twice
    INSERT INTO user_events SELECT ... FROM staging ORDER BY file, line ON CONFLICT (event_id) DO NOTHING
      rows that conflicted (stored by an earlier batch) -> rejected_events, duplicate_event_id
    INSERT INTO rejected_events SELECT ... FROM staging rejects
    INSERT INTO stream_batches (counts, files, batch timestamp, quality score, durations)
    DROP the staging tables
    COMMIT

Any failure raises: the batch is never recorded as done, Spark does not write commits/N, and the next
run replays it. inserted_at is left to the column default (the transaction's time), as the TypeScript
engine does, so it is the time the row was stored and no executor clock enters it.
"""

from __future__ import annotations

import json
import re
from typing import Any, Dict, List, Optional, Sequence

STAGE_PREFIX = "ecomstream_stage_"

# Connection-level failures are worth a retry (the server is down, restarting or unreachable); anything
# else — a constraint, a bad value — would fail the same way again.
_RETRYABLE = re.compile(
    r"SQLState: 08|SQLSTATE\(08|\b08001\b|\b08006\b|\b57P0[123]\b|\b53300\b|Connection refused|"
    r"Connection to \S+ refused|This connection has been closed|An I/O error occurred|"
    r"terminating connection due to administrator command|the database system is (starting up|shutting down)",
)


class Target(object):
    """Where a contract's rows go: its table, columns (with the casts from staging text), conflict key and
    duplicate reason. Everything comes from the contract; nothing here names a column."""

    _CASTS = {"decimal": "::numeric", "timestamp": "::timestamp", "varchar": ""}

    def __init__(self, contract: Any) -> None:
        self.table = quote_ident(contract.table)
        self.column_names: List[str] = list(contract.column_names)
        self.columns = ", ".join(quote_ident(c) for c in self.column_names)
        self.select_columns = ", ".join(quote_ident(c["name"]) + self._CASTS[c["type"]] for c in contract.columns)
        self.key = quote_ident(contract.conflict_key)
        dup = contract.reader["duplicate"]
        self.duplicate_reason: str = dup["reason"]
        before, _, after = dup["detailStored"].replace("{column}", contract.conflict_key).partition("{value}")
        self.stored_detail = (before, after)


class SinkError(Exception):
    """A database step of a batch failed; the message names the batch, the cause keeps the server's text."""


def is_connection_error(err: BaseException) -> bool:
    e: Optional[BaseException] = err
    for _ in range(6):
        if e is None:
            break
        if _RETRYABLE.search(str(e)):
            return True
        e = e.__cause__ or e.__context__
    return False


def quote_ident(name: str) -> str:
    return '"%s"' % name.replace('"', '""')


def _java_message(err: Exception) -> str:
    """The server's message (and SQLState) of a Py4JJavaError, else str(err)."""
    java = getattr(err, "java_exception", None)
    if java is not None:
        try:
            msg = java.getMessage()
            state = java.getSQLState() if hasattr(java, "getSQLState") else None
            return "%s%s" % (msg, " (SQLState %s)" % state if state else "")
        except Exception:  # a broken connection cannot roll back; the server does  # the JVM may be gone; fall back to the Python text
            pass
    return str(err)


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


class StageTables(object):
    """Names of one batch attempt's staging tables."""

    def __init__(self, stream_id: str, batch_id: int, attempt: str) -> None:
        base = "%s%s_%d_%s" % (STAGE_PREFIX, re.sub(r"[^a-z0-9]", "", stream_id.lower())[:12], batch_id, attempt)
        self.events = base + "_ev"
        self.rejects = base + "_rj"

    @staticmethod
    def prefix_for(stream_id: str) -> str:
        return "%s%s_" % (STAGE_PREFIX, re.sub(r"[^a-z0-9]", "", stream_id.lower())[:12])


def create_stage_tables(conn: PgConnection, stage: StageTables, target: Target) -> None:
    conn.set_autocommit(True)
    conn.execute(
        "CREATE UNLOGGED TABLE IF NOT EXISTS %s (file_rank INTEGER NOT NULL, source_file TEXT NOT NULL, line_number INTEGER NOT NULL, "
        "raw_line TEXT, %s)" % (quote_ident(stage.events), ", ".join("%s TEXT" % quote_ident(c) for c in target.column_names))
    )
    conn.execute(
        "CREATE UNLOGGED TABLE IF NOT EXISTS %s (file_rank INTEGER NOT NULL, source_file TEXT NOT NULL, line_number INTEGER NOT NULL, "
        "raw_line TEXT, reason TEXT NOT NULL, detail TEXT)" % quote_ident(stage.rejects)
    )


def drop_tables(conn: PgConnection, names: Sequence[str]) -> None:
    conn.set_autocommit(True)
    for name in names:
        conn.execute("DROP TABLE IF EXISTS %s" % quote_ident(name))


def drop_stale_stage_tables(conn: PgConnection, stream_id: str) -> List[str]:
    """Staging tables a crashed attempt of this stream left behind (only one job runs per checkpoint)."""
    prefix = StageTables.prefix_for(stream_id)
    rows = conn.query(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND left(tablename, length(?)) = ?",
        [prefix, prefix],
    )
    names = [r[0] for r in rows]
    drop_tables(conn, names)
    return names


def batch_recorded(conn: PgConnection, stream_id: str, batch_id: int) -> bool:
    conn.set_autocommit(True)
    return bool(conn.query("SELECT 1 FROM stream_batches WHERE stream_id = ? AND batch_id = ?", [stream_id, batch_id]))


def commit_batch(
    conn: PgConnection,
    stage: StageTables,
    target: Target,
    stream_id: str,
    batch_id: int,
    record: Dict[str, Any],
    before_commit: Any = None,
) -> Optional[Dict[str, int]]:
    """The batch transaction. Returns {"inserted", "stored_duplicates"} or None if already recorded.

    `record` holds the stream_batches values that do not depend on the database: files, batch_timestamp
    (ISO), input_rows, valid_rows, duplicate_rows (within the batch), rejected_rows, quality_score,
    oldest/newest file mtime (ISO or None), durations_ms (dict; `commit` is filled in here).
    """
    conn.set_autocommit(False)
    try:
        conn.query("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", ["ecomstream-batch:%s:%d" % (stream_id, batch_id)])
        if conn.query("SELECT 1 FROM stream_batches WHERE stream_id = ? AND batch_id = ?", [stream_id, batch_id]):
            conn.rollback()
            return None
        stored_duplicates = conn.execute(
            "WITH ins AS ("
            "  INSERT INTO {table} ({cols})"
            "  SELECT {select} FROM {stage} ORDER BY file_rank, line_number"
            "  ON CONFLICT ({key}) DO NOTHING"
            "  RETURNING {key}) "
            "INSERT INTO rejected_events (stream_id, batch_id, source_file, line_number, raw_line, reason, detail) "
            "SELECT ?, ?, s.source_file, s.line_number, s.raw_line, ?, ? || s.{key} || ? "
            "FROM {stage} s WHERE NOT EXISTS (SELECT 1 FROM ins WHERE ins.{key} = s.{key}) "
            "ORDER BY s.file_rank, s.line_number".format(
                table=target.table, cols=target.columns, select=target.select_columns, stage=quote_ident(stage.events), key=target.key
            ),
            [stream_id, batch_id, target.duplicate_reason, target.stored_detail[0], target.stored_detail[1]],
        )
        conn.execute(
            "INSERT INTO rejected_events (stream_id, batch_id, source_file, line_number, raw_line, reason, detail) "
            "SELECT ?, ?, source_file, line_number, raw_line, reason, detail FROM %s ORDER BY file_rank, line_number" % quote_ident(stage.rejects),
            [stream_id, batch_id],
        )
        inserted = int(record["valid_rows"]) - stored_duplicates
        durations = dict(record["durations_ms"])
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
                int(record["duplicate_rows"]) + stored_duplicates,
                int(record["rejected_rows"]),
                None if record["quality_score"] is None else repr(record["quality_score"]),
                record["oldest_file_mtime"],
                record["newest_file_mtime"],
                json.dumps(durations),
            ],
        )
        conn.execute("DROP TABLE IF EXISTS %s, %s" % (quote_ident(stage.events), quote_ident(stage.rejects)))
        if before_commit is not None:
            before_commit()
        conn.commit()
        return {"inserted": inserted, "stored_duplicates": stored_duplicates}
    except Exception as e:
        conn.rollback()
        raise SinkError("batch %d of stream %s: the database transaction failed: %s" % (batch_id, stream_id, _java_message(e))) from e
    finally:
        try:
            conn.set_autocommit(True)
        except Exception:
            pass
