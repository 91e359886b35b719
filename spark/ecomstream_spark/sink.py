"""The PostgreSQL side of a micro-batch: one transaction, idempotent by (stream id, batch id).

Executors parse their partition's files and write the records with `COPY` (psycopg 3) into two UNLOGGED
staging tables named for this stream, batch and attempt (`stage_partition`): valid rows into `_ev`,
rejected rows and file notices into `_rj`, each row tagged with its partition. A task replaces its
partition's rows in one transaction, so a retried task (its executor died, or it failed) never leaves
its rows twice. Then the driver runs, over one JDBC connection (the PostgreSQL driver through py4j):

    BEGIN
    advisory lock on (stream, batch)    two attempts of one batch serialise here
    batch already in stream_batches?    -> ROLLBACK: a replay after a crash between this COMMIT and
                                           Spark's commits/N; nothing is written twice
    lock the staging tables             a late task attempt cannot change them under this transaction
    in-batch duplicates: every valid row after the first of its key (file, line order) moves to the
      rejects as the contract's duplicate reason
    INSERT INTO <table> SELECT ... FROM staging ORDER BY file, line (ON CONFLICT DO NOTHING only after a
      unique violation); rows skipped (stored by an earlier batch) -> rejected_events
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
import sys
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple
from urllib.parse import parse_qsl, unquote, urlsplit

from .rows import around_value

STAGE_PREFIX = "ecomstream_stage_"
#: Columns of the staging tables before the contract's: the writing partition, then the file order.
STAGE_EVENT_HEAD = ["part", "file_rank", "source_file", "line_number", "raw_line", "quality"]
STAGE_REJECT_COLUMNS = ["part", "file_rank", "source_file", "line_number", "raw_line", "reason", "detail"]
#: The partition number of records the driver writes itself (files Spark could not read, duplicates).
DRIVER_PART = -1
UNIQUE_VIOLATION = "23505"

# Connection-level failures are worth a retry (the server is down, restarting or unreachable); anything
# else — a constraint, a bad value — would fail the same way again.
_RETRYABLE = re.compile(
    r"SQLState: 08|SQLSTATE\(08|\b08001\b|\b08006\b|\b57P0[123]\b|\b53300\b|Connection refused|"
    r"Connection to \S+ refused|This connection has been closed|An I/O error occurred|"
    r"terminating connection due to administrator command|the database system is (starting up|shutting down)",
)


class Target(object):
    """Where a contract's rows go: its table, columns (with the casts from staging text), conflict key and
    duplicate reason with its two details split around the key's value (SQL concatenates them). Everything
    comes from the contract; nothing here names a column."""

    _CASTS = {"decimal": "::numeric", "timestamp": "::timestamp", "varchar": ""}

    def __init__(self, contract: Any) -> None:
        self.table = quote_ident(contract.table)
        self.column_names: List[str] = list(contract.column_names)
        self.columns = ", ".join(quote_ident(c) for c in self.column_names)
        self.select_columns = ", ".join(quote_ident(c["name"]) + self._CASTS[c["type"]] for c in contract.columns)
        self.key = quote_ident(contract.conflict_key)
        self.key_cast = self._CASTS[contract.column(contract.conflict_key)["type"]]
        dup = contract.reader["duplicate"]
        self.duplicate_reason: str = dup["reason"]
        self.in_batch_detail = around_value(dup["detailInBatch"], column=contract.conflict_key)
        self.stored_detail = around_value(dup["detailStored"], column=contract.conflict_key)


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
        "CREATE UNLOGGED TABLE IF NOT EXISTS %s (part INTEGER NOT NULL, file_rank INTEGER NOT NULL, source_file TEXT NOT NULL, "
        "line_number INTEGER NOT NULL, raw_line TEXT, quality DOUBLE PRECISION NOT NULL, %s)"
        % (quote_ident(stage.events), ", ".join("%s TEXT" % quote_ident(c) for c in target.column_names))
    )
    conn.execute(
        "CREATE UNLOGGED TABLE IF NOT EXISTS %s (part INTEGER NOT NULL, file_rank INTEGER NOT NULL, source_file TEXT NOT NULL, "
        "line_number INTEGER NOT NULL, raw_line TEXT, reason TEXT NOT NULL, detail TEXT)" % quote_ident(stage.rejects)
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
) -> None:
    """Executor side: replaces partition `part`'s rows in the staging tables with `events` (rows of
    STAGE_EVENT_HEAD + the contract's columns, without `part`) and `rejects` (STAGE_REJECT_COLUMNS without
    `part`), in one transaction. `events` may be a generator: it is streamed into the COPY, and `rejects`
    is read only after it is consumed."""
    try:
        import psycopg  # on executors only: the driver writes through JDBC
    except ImportError as e:
        raise SinkError("psycopg is not installed for this executor's Python (%s): pip install -r spark/requirements.txt" % sys.executable) from e

    event_columns = ", ".join(STAGE_EVENT_HEAD + [quote_ident(c) for c in target.column_names])
    with psycopg.connect(**conninfo) as conn:
        with conn.cursor() as cur:
            # Two attempts of one task (a retry while a lost executor's attempt still runs) serialise here.
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s), %s)", (stage.events, part))
            for table in (stage.events, stage.rejects):
                cur.execute("DELETE FROM %s WHERE part = %%s" % quote_ident(table), (part,))
            with cur.copy("COPY %s (%s) FROM STDIN" % (quote_ident(stage.events), event_columns)) as copy:
                for r in events:
                    copy.write_row((part,) + r)
            with cur.copy("COPY %s (%s) FROM STDIN" % (quote_ident(stage.rejects), ", ".join(STAGE_REJECT_COLUMNS))) as copy:
                for r in rejects:
                    copy.write_row((part,) + r)
        conn.commit()


def stage_rejects_on_driver(conn: PgConnection, stage: StageTables, rejects: Sequence[Tuple[Any, ...]]) -> None:
    """Records of files no executor read (empty, vanished, unreadable): few, written by the driver."""
    conn.set_autocommit(True)
    sql = "INSERT INTO %s (%s) VALUES (%s)" % (quote_ident(stage.rejects), ", ".join(STAGE_REJECT_COLUMNS), ", ".join("?" for _ in STAGE_REJECT_COLUMNS))
    for r in rejects:
        conn.execute(sql, (DRIVER_PART,) + tuple(r))


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
) -> Optional[Dict[str, Any]]:
    """The batch transaction. Returns {"inserted", "stored_duplicates", "batch_duplicates", "quality_score"}
    or None if already recorded.

    `record` holds the stream_batches values known before the transaction: files, batch_timestamp (ISO),
    input_rows, rejected_rows (without duplicates), oldest/newest file mtime (ISO or None), durations_ms
    (dict). Duplicates, inserted rows and the quality score are decided here, from the staging tables.
    """
    ev, rj, key = quote_ident(stage.events), quote_ident(stage.rejects), target.key
    conn.set_autocommit(False)
    try:
        conn.query("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", ["ecomstream-batch:%s:%d" % (stream_id, batch_id)])
        if conn.query("SELECT 1 FROM stream_batches WHERE stream_id = ? AND batch_id = ?", [stream_id, batch_id]):
            conn.rollback()
            return None
        conn.execute("LOCK TABLE %s, %s IN EXCLUSIVE MODE" % (ev, rj))
        # The duplicate check's hash and the insert's sort stay in memory for this transaction rather than
        # spilling to disk (PostgreSQL's default work_mem is 4 MB).
        conn.execute("SET LOCAL work_mem = '256MB'")
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
        insert = "INSERT INTO %s (%s) SELECT %s FROM %s ORDER BY file_rank, line_number" % (target.table, target.columns, target.select_columns, ev)
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
                "FROM {ev} s JOIN {table} u ON u.{key} = s.{key}{cast} "
                "WHERE u.xmin <> pg_current_xact_id()::xid ORDER BY s.file_rank, s.line_number".format(
                    key=key, ev=ev, table=target.table, cast=target.key_cast
                ),
                [stream_id, batch_id, target.duplicate_reason, target.stored_detail[0], target.stored_detail[1]],
            )
        conn.execute(
            "INSERT INTO rejected_events (stream_id, batch_id, source_file, line_number, raw_line, reason, detail) "
            "SELECT ?, ?, source_file, line_number, raw_line, reason, detail FROM %s ORDER BY file_rank, line_number" % rj,
            [stream_id, batch_id],
        )
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
                batch_duplicates + stored_duplicates,
                int(record["rejected_rows"]),
                None if quality_score is None else repr(quality_score),
                record["oldest_file_mtime"],
                record["newest_file_mtime"],
                json.dumps(durations),
            ],
        )
        conn.execute("DROP TABLE IF EXISTS %s, %s" % (ev, rj))
        if before_commit is not None:
            before_commit()
        conn.commit()
        return {"inserted": inserted, "stored_duplicates": stored_duplicates, "batch_duplicates": batch_duplicates, "quality_score": quality_score}
    except Exception as e:
        conn.rollback()
        raise SinkError("batch %d of stream %s: the database transaction failed: %s" % (batch_id, stream_id, _java_message(e))) from e
    finally:
        try:
            conn.set_autocommit(True)
        except Exception:  # a broken connection; the next batch opens a new one
            pass
