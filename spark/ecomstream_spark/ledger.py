"""The batch ledger: every statement on stream_batches and the rejected_events bookkeeping of the job,
one function per statement. It mirrors the batch path of src/db/ledger.ts, the TypeScript engine's
ledger: `is_batch_recorded` is `isBatchRecorded`, `record_batch` is `recordBatch` (the same tables and
columns, JDBC's `?` for `$n`). The rejects go in as each engine stages them: `record_rejects` and
`record_stored_duplicates` move the job's staged rejects in SQL where the TypeScript engine COPYs its
buffer (`COPY_REJECTS`) and writes duplicates in its write paths. `lock_batch` is the job's own, since
Spark keeps no lock on its checkpoint. The statements that write the contract's rows are sink.py's.

Every function runs on the caller's connection, inside the batch transaction the caller opened.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Optional

from .jdbc import PgConnection, quote_ident
from .target import Target

REJECT_COLUMNS = "stream_id, batch_id, source_file, line_number, raw_line, reason, detail"


def lock_batch(conn: PgConnection, stream_id: str, batch_id: int) -> None:
    """Serialises two attempts of one batch: an advisory lock on (stream, batch) held to the transaction's end."""
    conn.query("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", ["ecomstream-batch:%s:%d" % (stream_id, batch_id)])


def is_batch_recorded(conn: PgConnection, stream_id: str, batch_id: int) -> bool:
    """Whether stream_batches records the batch (it committed)."""
    return bool(conn.query("SELECT 1 FROM stream_batches WHERE stream_id = ? AND batch_id = ?", [stream_id, batch_id]))


def record_rejects(conn: PgConnection, staged_rejects: str, stream_id: str, batch_id: int) -> None:
    """The staged rejects and file notices (table `staged_rejects`) into rejected_events, in file and line order."""
    conn.execute(
        "INSERT INTO rejected_events (%s) SELECT ?, ?, source_file, line_number, raw_line, reason, detail FROM %s ORDER BY file_rank, line_number"
        % (REJECT_COLUMNS, quote_ident(staged_rejects)),
        [stream_id, batch_id],
    )


def record_stored_duplicates(conn: PgConnection, staged_events: str, target: Target, stream_id: str, batch_id: int) -> int:
    """The staged rows whose key an earlier transaction stored, into rejected_events as duplicates; returns their number."""
    # The stored row is not this transaction's own (xmin): the caller inserted in the top transaction.
    return conn.execute(
        "INSERT INTO rejected_events ({cols}) "
        "SELECT ?, ?, s.source_file, s.line_number, s.raw_line, ?, ? || s.{key} || ? "
        "FROM {ev} s JOIN {table} u ON u.{key} = s.{key} "
        "WHERE u.xmin <> pg_current_xact_id()::xid ORDER BY s.file_rank, s.line_number".format(
            cols=REJECT_COLUMNS, key=target.key, ev=quote_ident(staged_events), table=target.table
        ),
        [stream_id, batch_id, target.duplicate_reason, target.stored_detail[0], target.stored_detail[1]],
    )


def record_batch(
    conn: PgConnection, stream_id: str, batch_id: int, record: Dict[str, Any], inserted: int, duplicates: int, quality_score: Optional[float]
) -> None:
    """The batch's row in stream_batches (`record`: see sink.commit_batch)."""
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
