"""Connections to PostgreSQL: the driver's JDBC connection (the PostgreSQL driver through py4j), the
executors' psycopg keywords for the same database, and the errors of both, classified by class and
SQLSTATE (never by message text)."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence
from urllib.parse import parse_qsl, unquote, urlsplit

UNIQUE_VIOLATION = "23505"


class SinkError(Exception):
    """A database step of a batch failed; the message names the batch, the cause keeps the server's text."""


class DatabaseUnavailable(SinkError):
    """PostgreSQL could not be reached, or dropped the connection: the batch stays uncommitted and is
    retried. Raised on an executor, it travels to the driver as a task's result (sink.stage_partition),
    since a failed task reaches the driver only as text."""


def is_connection_error(err: BaseException, retryable: Callable[[Optional[str]], bool]) -> bool:
    """A failure worth a retry of the batch: a `DatabaseUnavailable`, or a JDBC error whose SQLSTATE
    `retryable` accepts (the contract's list, target.Target.retryable), in the error or its causes."""
    e: Optional[BaseException] = err
    for _ in range(6):
        if e is None:
            break
        if isinstance(e, DatabaseUnavailable) or retryable(sql_state(e)):
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
