"""One writer per stream: the job's epoch of its stream, claimed at start and checked first in every
batch transaction. The statements are the contract's `fencing` (src/db/epoch.ts, the one definition)."""

from __future__ import annotations

import re
from typing import Any, Optional

from .jdbc import PgConnection, SinkError, sql_state


class Fenced(SinkError):
    """A newer engine claimed this job's stream (its epoch, see `Fence`): the job must stop, committing
    nothing and writing no commits/N."""


def jdbc_statement(sql: str) -> str:
    """A statement written for node-postgres (`$1`, `$2` … each once, in order) with JDBC's `?` instead."""
    numbers = [int(n) for n in re.findall(r"\$(\d+)", sql)]
    if numbers != list(range(1, len(numbers) + 1)):
        raise SinkError("the contract's fencing statement uses its parameters out of order: %s" % sql)
    return re.sub(r"\$\d+", "?", sql)


class Fence(object):
    """This job's epoch of its stream. The statements, the transaction's name and the claim's attempts
    are the contract's `fencing` (src/db/epoch.ts, whose claimEpoch and checkEpoch these two methods
    mirror): the same SQL texts run here, with `?` for `$n`."""

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
