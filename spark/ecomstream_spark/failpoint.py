"""Crash points for the exactly-once tests, as src/engine/failpoint.ts:
`ECOMSTREAM_FAILPOINT=<point>:<batchId>` kills the driver with SIGKILL at that point of that batch —
a power cut, not an exception, so no `finally`, no Spark shutdown hook and no commit log runs.

Points: after-offsets (Spark wrote offsets/N; nothing read yet), during-copy (rows are in the staging
tables, the batch transaction not begun), after-db-commit (PostgreSQL committed batch N; Spark has not
written commits/N). Unset, this is one comparison per batch.
"""
from __future__ import annotations

import os
import signal
import sys
from typing import Optional

POINTS = ("after-offsets", "during-copy", "after-db-commit")


def failpoint(spec: Optional[str], point: str, batch_id: int) -> None:
    if spec is None:
        return
    if spec == "%s:%d" % (point, batch_id):
        sys.stderr.write("ecomstream-spark: failpoint %s reached in batch %d: killing the driver\n" % (point, batch_id))
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)
