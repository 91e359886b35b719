"""The PostgreSQL side of a micro-batch: one transaction, idempotent by (stream id, batch id).

Executors parse their partition's files and write the records with `COPY` (psycopg 3) into UNLOGGED
staging tables named for this stream, batch and attempt (`stage_partition`): valid rows into a table of
the partition's own (`_ev_<part>`, typed: PostgreSQL parses decimals and timestamps there, on the
executors' connections), rejected rows and file notices into `_rj`, and one row into `_dn` saying the
partition is complete, with its counts, all in one transaction. A retried task (its executor
died) finds its partition in `_dn` and writes nothing twice; an attempt that died mid-COPY left nothing.

The driver holds the batch transaction open over one JDBC connection (the PostgreSQL driver through
py4j) while the executors work, and inserts each partition as soon as `_dn` shows it complete, so the
insert overlaps the parsing (`open_batch`, `PartitionInserter`, `finish_batch`):

    BEGIN
    this job's epoch still the newest?  the stream's stream_epochs row FOR SHARE, held to COMMIT (`Fence`);
                                           else Fenced: ROLLBACK, and the job stops without committing
    advisory lock on (stream, batch)    two attempts of one batch serialise here
    batch already in stream_batches?    -> ROLLBACK: a replay after a crash between this COMMIT and
                                           Spark's commits/N; nothing is written twice
    for each partition, once complete:  INSERT INTO <table> SELECT ... FROM _ev_<part> ORDER BY file, line
    INSERT INTO rejected_events SELECT ... FROM staging rejects                    (ledger.py, as every
    INSERT INTO stream_batches (counts, files, batch timestamp, quality score, durations)  statement on these)
    DROP the staging tables
    COMMIT

A plain insert cannot decide duplicates: the first valid row of a key in (file, line) order must win, and
partitions complete in any order. So the first unique violation (a key twice in the batch, or stored by
an earlier batch) rolls the transaction back, and once every partition is staged (and gathered into `_ev`)
`commit_batch` runs the whole batch from the staging tables in one transaction: in-batch duplicates move to the rejects, then
the insert (ON CONFLICT DO NOTHING only after a unique violation), and the rows skipped become rejects.

Any failure raises: the batch is never recorded as done, Spark does not write commits/N, and the next
run replays it. The quality score is the mean over the rows each insert reports stored (`insert_stored`).
inserted_at is left to the column default (the transaction's time), as the TypeScript
engine does, so it is the time the row was stored and no executor clock enters it.
"""

from __future__ import annotations

import re
import sys
import threading
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from . import ledger
from .fencing import Fence
from .jdbc import UNIQUE_VIOLATION, DatabaseUnavailable, PgConnection, SinkError, java_message, quote_ident, sql_state
from .target import Target

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
        ledger.lock_batch(conn, stream_id, batch_id)
        if ledger.is_batch_recorded(conn, stream_id, batch_id):
            abort_batch(conn)
            return False
        # The duplicate check's hash and the inserts' sorts and joins stay in memory for this transaction
        # rather than spilling to disk (PostgreSQL's default work_mem is 4 MB).
        conn.execute("SET LOCAL work_mem = '256MB'")
        return True
    except Exception:
        abort_batch(conn)
        raise


def batch_recorded(conn: PgConnection, fence: Fence, stream_id: str, batch_id: int) -> bool:
    """Whether PostgreSQL recorded the batch, asked under the fence: a fenced job must not learn "already
    committed" and let Spark write commits/N."""
    conn.set_autocommit(False)
    try:
        fence.check(conn, batch_id)
        return ledger.is_batch_recorded(conn, stream_id, batch_id)
    finally:
        conn.rollback()
        conn.set_autocommit(True)


def abort_batch(conn: PgConnection) -> None:
    """Rolls the batch transaction back (a broken connection: the server has done it)."""
    conn.rollback()
    autocommit_again(conn)


def autocommit_again(conn: PgConnection) -> None:
    """The connection back to autocommit after a batch transaction ended."""
    try:
        conn.set_autocommit(True)
    except Exception:  # a broken connection; the next batch opens a new one
        pass


def complete_partitions(conn: PgConnection, stage: StageTables) -> List[int]:
    return [int(r[0]) for r in conn.query("SELECT part FROM %s" % quote_ident(stage.done))]


def insert_stored(conn: PgConnection, staged: str, target: Target, on_conflict: str = "") -> Tuple[int, float]:
    """Inserts the valid rows of staging table `staged` into the target table, in file and line order;
    returns the number of rows stored and the sum of their quality scores. Rows PostgreSQL stores
    nowhere (skipped by an operator's trigger, or by `on_conflict`) count in neither (Contract.quality_score)."""
    ev = quote_ident(staged)
    row = conn.query(
        "WITH stored AS (INSERT INTO {table} ({cols}) SELECT {cols} FROM {ev} ORDER BY file_rank, line_number{oc} RETURNING {key}) "
        "SELECT count(*)::text, coalesce(sum(s.quality), 0)::text FROM stored JOIN {ev} s ON s.{key} = stored.{key}".format(
            table=target.table, cols=target.columns, ev=ev, oc=on_conflict, key=target.key
        )
    )[0]
    return int(row[0]), float(row[1])


def gather_partitions(conn: PgConnection, stage: StageTables) -> None:
    """Before `commit_batch`: the partitions' valid rows into the one events table it reads (the whole
    batch is needed to decide duplicates). Autocommit: staging is not the batch's transaction."""
    conn.set_autocommit(True)
    for part in sorted(complete_partitions(conn, stage)):
        conn.execute("INSERT INTO %s SELECT * FROM %s" % (quote_ident(stage.events), quote_ident(stage.partition_events(part))))


class PartitionInserter(threading.Thread):
    """Driver side, while the executors stage the batch: inserts each partition once `_dn` shows it
    complete, inside the open batch transaction (the only user of `conn` until `finish` returns).

    After `finish`: `inserted` rows stored with `quality_sum` (`insert_stored`); `conflicted` if a unique violation aborted the transaction (the batch
    then needs `commit_batch`); any other failure is re-raised by `finish`."""

    POLL_S = 0.1

    def __init__(self, conn: PgConnection, stage: StageTables, target: Target) -> None:
        super().__init__(name="ecomstream-partition-inserter", daemon=True)
        self.conn, self.stage, self.target = conn, stage, target
        self.inserted = 0
        self.quality_sum = 0.0
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
                    # A partition's keys are unique (else a unique violation), so the join of insert_stored is 1:1.
                    stored, quality = insert_stored(self.conn, self.stage.partition_events(p), self.target)
                    self.inserted += stored
                    self.quality_sum += quality
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


def finish_batch(
    conn: PgConnection, stage: StageTables, target: Target, stream_id: str, batch_id: int, record: Dict[str, Any], inserter: PartitionInserter
) -> Dict[str, Any]:
    """Ends the open batch transaction after every partition was inserted without a conflict: no
    duplicates, in the batch or stored. The rejects and the batch record, then COMMIT."""
    result = _result(target, inserter.inserted, inserter.quality_sum, 0, 0)
    try:
        _record_and_commit(conn, stage, stream_id, batch_id, record, result)
        return result
    except Exception as e:
        abort_batch(conn)
        raise SinkError("batch %d of stream %s: the database transaction failed: %s" % (batch_id, stream_id, java_message(e))) from e
    finally:
        autocommit_again(conn)


def _result(target: Target, inserted: int, quality_sum: float, batch_duplicates: int, stored_duplicates: int) -> Dict[str, Any]:
    """A committed batch's outcome; its quality score is the mean over the rows it stored."""
    return {
        "inserted": inserted,
        "stored_duplicates": stored_duplicates,
        "batch_duplicates": batch_duplicates,
        "quality_score": target.quality_score(quality_sum, inserted),
    }


def _record_and_commit(conn: PgConnection, stage: StageTables, stream_id: str, batch_id: int, record: Dict[str, Any], result: Dict[str, Any]) -> None:
    """The end of both ways of a batch transaction: staged rejects, the batch record, DROP, COMMIT."""
    ledger.record_rejects(conn, stage.rejects, stream_id, batch_id)
    duplicates = result["batch_duplicates"] + result["stored_duplicates"]
    ledger.record_batch(conn, stream_id, batch_id, record, result["inserted"], duplicates, result["quality_score"])
    conn.execute("DROP TABLE IF EXISTS %s" % ", ".join(quote_ident(t) for t in stage_table_names(conn, stage)))
    conn.commit()


def commit_batch(
    conn: PgConnection, fence: Fence, stage: StageTables, target: Target, stream_id: str, batch_id: int, record: Dict[str, Any]
) -> Optional[Dict[str, Any]]:
    """The whole batch from the staging tables in one transaction. Returns {"inserted", "stored_duplicates",
    "batch_duplicates", "quality_score"} or None if already recorded.

    `record` holds the stream_batches values known before the transaction: files, batch_timestamp (ISO),
    input_rows, rejected_rows (without duplicates), oldest/newest file mtime (ISO or None), durations_ms
    (dict). Duplicates, inserted rows and the quality score are decided here, from the staging tables.
    """
    if not open_batch(conn, fence, stream_id, batch_id):
        return None
    try:
        conn.execute("LOCK TABLE %s IN EXCLUSIVE MODE" % ", ".join(quote_ident(t) for t in [stage.events, stage.rejects, stage.done]))
        batch_duplicates = move_batch_duplicates(conn, stage, target)
        inserted, quality_sum, conflicted = _insert_batch(conn, stage, target)
        # A stored duplicate: a staged row whose key an earlier batch stored (only looked for after a conflict).
        stored_duplicates = ledger.record_stored_duplicates(conn, stage.events, target, stream_id, batch_id) if conflicted else 0
        result = _result(target, inserted, quality_sum, batch_duplicates, stored_duplicates)
        _record_and_commit(conn, stage, stream_id, batch_id, record, result)
        return result
    except Exception as e:
        conn.rollback()
        raise SinkError("batch %d of stream %s: the database transaction failed: %s" % (batch_id, stream_id, java_message(e))) from e
    finally:
        autocommit_again(conn)


def move_batch_duplicates(conn: PgConnection, stage: StageTables, target: Target) -> int:
    """In-batch duplicates from the staged events to the staged rejects: the first valid row of a key in
    (file, line) order stays. Only keys that occur twice are ranked, so a batch without duplicates pays
    one hash aggregate. Returns the rows moved."""
    return conn.execute(
        "WITH keys AS (SELECT {key} FROM {ev} GROUP BY {key} HAVING count(*) > 1), "
        "ranked AS (SELECT e.ctid AS row_id, row_number() OVER (PARTITION BY e.{key} ORDER BY e.file_rank, e.line_number) AS n "
        "           FROM {ev} e JOIN keys USING ({key})), "
        "moved AS (DELETE FROM {ev} e USING ranked r WHERE e.ctid = r.row_id AND r.n > 1 "
        "          RETURNING e.file_rank, e.source_file, e.line_number, e.raw_line, e.{key}) "
        "INSERT INTO {rj} (part, file_rank, source_file, line_number, raw_line, reason, detail) "
        "SELECT ?, file_rank, source_file, line_number, raw_line, ?, ? || {key} || ? FROM moved".format(
            key=target.key, ev=quote_ident(stage.events), rj=quote_ident(stage.rejects)
        ),
        [DRIVER_PART, target.duplicate_reason, target.in_batch_detail[0], target.in_batch_detail[1]],
    )


def _insert_batch(conn: PgConnection, stage: StageTables, target: Target) -> Tuple[int, float, bool]:
    """The de-duplicated staged events into the target table: (rows stored, their quality sum, whether a
    row was already stored). The fast path is a plain insert (ON CONFLICT's speculative insertion costs
    more per row); on a unique violation (by its SQLSTATE), back to the savepoint and insert with
    ON CONFLICT DO NOTHING, as the TypeScript engine's sink does."""
    conn.execute("SAVEPOINT plain_insert")
    try:
        inserted, quality_sum = insert_stored(conn, stage.events, target)
        conn.execute("RELEASE SAVEPOINT plain_insert")
        return inserted, quality_sum, False
    except Exception as e:  # only a unique violation is handled
        if sql_state(e) != UNIQUE_VIOLATION:
            raise
    # Released too, so the insert below runs in the top transaction: ledger.record_stored_duplicates
    # tells the rows stored before by their xmin, compared with the top transaction's id.
    conn.execute("ROLLBACK TO SAVEPOINT plain_insert")
    conn.execute("RELEASE SAVEPOINT plain_insert")
    inserted, quality_sum = insert_stored(conn, stage.events, target, " ON CONFLICT (%s) DO NOTHING" % target.key)
    return inserted, quality_sum, True
