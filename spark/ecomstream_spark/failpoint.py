"""Crash points for the exactly-once tests, as src/engine/failpoint.ts:
`ECOMSTREAM_FAILPOINT=<point>:<batchId>` kills the driver with SIGKILL at that point of that batch —
a power cut, not an exception, so no `finally`, no Spark shutdown hook and no commit log runs.
`<point>:<batchId>:stop` stops the driver's Python process there with SIGSTOP instead, as a frozen
container (the fencing test resumes it with SIGCONT).

Points: after-offsets (Spark wrote offsets/N; nothing read yet), during-copy (every partition staged and
inserted in the open batch transaction, not committed), after-db-commit (PostgreSQL committed batch N; Spark has not
written commits/N). Unset, this is one comparison per batch.

Executors have one more, for the cluster tests: `ECOMSTREAM_EXECUTOR_FAILPOINT=stall:<file name>:<marker>`
in a worker's environment (its executors and their Python workers inherit it). The first task to read
that file creates <marker> holding its pid and stalls, so the test can SIGKILL the executor JVM in the
middle of the batch; the retried task finds the marker and reads the file normally.
`ECOMSTREAM_EXECUTOR_FAILPOINT=fail:<file name>:<seconds>` makes every task that reads that file wait
that long and then raise: the batch fails after other partitions were already inserted.
`ECOMSTREAM_EXECUTOR_FAILPOINT=pause:<file name>:<marker>`: the first task to read that file (its staging
COPY open) creates <marker> and waits until the test writes "go" into it, so the test can cut the
database connections in the middle of a batch; later tasks read the file normally.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Optional

POINTS = ("after-offsets", "during-copy", "after-db-commit")
EXECUTOR_VARIABLE = "ECOMSTREAM_EXECUTOR_FAILPOINT"
STALL_SECONDS = 600


def failpoint(spec: Optional[str], point: str, batch_id: int) -> None:
    if spec is None:
        return
    if spec == "%s:%d" % (point, batch_id):
        sys.stderr.write("ecomstream-spark: failpoint %s reached in batch %d: killing the driver\n" % (point, batch_id))
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    elif spec == "%s:%d:stop" % (point, batch_id):
        sys.stderr.write("ecomstream-spark: failpoint %s reached in batch %d: stopping the driver (pid %d)\n" % (point, batch_id, os.getpid()))
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGSTOP)


def executor_failpoint(file_name: str) -> None:
    """Executor side, once per file read: the stall of ECOMSTREAM_EXECUTOR_FAILPOINT (see above)."""
    spec = os.environ.get(EXECUTOR_VARIABLE)
    if not spec:
        return
    kind, _, rest = spec.partition(":")
    name, _, marker = rest.partition(":")
    if name != file_name or not marker:
        return
    if kind == "fail":
        time.sleep(float(marker))
        raise RuntimeError("executor failpoint: reading %s fails" % file_name)
    if kind not in ("stall", "pause"):
        return
    try:
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return  # a retry of the task: read the file
    with os.fdopen(fd, "w") as f:
        f.write(str(os.getpid()))
    if kind == "pause":
        deadline = time.time() + STALL_SECONDS
        while time.time() < deadline:
            with open(marker) as f:
                if f.read() == "go":
                    return
            time.sleep(0.1)
        raise RuntimeError("executor failpoint: %s was never released" % marker)
    sys.stderr.write("ecomstream-spark: executor failpoint: stalling on %s (pid %d)\n" % (file_name, os.getpid()))
    sys.stderr.flush()
    # Until killed; a Python worker orphaned by its executor's death (its parent changes) exits by itself.
    parent = os.getppid()
    deadline = time.time() + STALL_SECONDS
    while time.time() < deadline and os.getppid() == parent:
        time.sleep(0.2)
    os._exit(1)
