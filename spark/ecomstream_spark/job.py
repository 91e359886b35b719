"""The Spark Structured Streaming query and its foreachBatch function.

Terminology (the same as the TypeScript engine's, src/engine/stream.ts)
- batch N:          the files Spark planned together under id N (its offsets/N, written before N runs).
- batch timestamp:  "now" for the 24-hour rule. It is `current_timestamp()` of the streaming query, which
                    Spark replaces by the batchTimestampMs recorded in offsets/N — so a replay of N
                    decides exactly as the first run did.
- committed:        PostgreSQL recorded N in stream_batches, in the same transaction as its rows. Spark
                    writes commits/N only after foreachBatch returns.
- replay:           on restart Spark re-runs the newest offsets/N without commits/N with the same files
                    and timestamp; the sink skips it when PostgreSQL already has N.

Pipeline of one batch (spec section 4, "Processing Steps"):
  1 readStream of published files (binaryFile source: whole files, see rows.py for why)
  2 parse every file with the contract's fixed schema, no inference          (executors, rows.py)
  3 validate; malformed lines and rule violations become rejected rows        (executors, rows.py)
  4 add the data-quality score to each valid row                               (executors, rows.py)
  5 COPY (psycopg) of the records into UNLOGGED staging tables, in the same   (executors, sink.py)
    pass: no row is pickled into the JVM, only four counts per task come back
  6 one PostgreSQL transaction over JDBC, open while the executors work: each  (driver, sink.py)
    staged partition is inserted at once; on a duplicate key, the whole batch
    again from staging (duplicates first in file, line order); rejects, record
  7 Spark writes commits/N
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import os
import posixpath
import signal
import socket
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, TypeVar
from urllib.parse import unquote

from .contract import Contract, ContractError
from .failpoint import executor_failpoint, failpoint
from .fencing import Fence, Fenced
from .jdbc import DatabaseUnavailable, PgConnection, SinkError, is_connection_error, java_message, libpq_params
from .progress import append as append_progress, format_line, make_record
from .rows import Rules, render, scan_file
from .settings import Settings, redact_url
from .sink import (
    PartitionInserter,
    StageTables,
    abort_batch,
    batch_recorded,
    commit_batch,
    create_stage_tables,
    drop_stage,
    drop_stale_stage_tables,
    finish_batch,
    gather_partitions,
    open_batch,
    stage_partition,
    stage_rejects_on_driver,
)
from .target import Target

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
T = TypeVar("T")
SPARK_DIR = os.path.dirname(PACKAGE_DIR)
#: The local-mode driver JVM's class data sharing archive, written by scripts/install-spark.sh
#: (ecomstream_spark/warmup.py); without it the driver starts as Spark's default.
CDS_ARCHIVE = os.path.join(SPARK_DIR, ".venv", "spark-driver.jsa")
#: Java options for the local-mode driver JVM, in place of the defaults of `driver_java_options`.
JAVA_OPTIONS_ENV = "ECOMSTREAM_SPARK_JAVA_OPTIONS"
#: The {error} of a planned, non-empty file without a row: Spark's scan skipped it and says no more.
SPARK_SKIPPED_FILE = "Spark's file source skipped it (spark.sql.files.ignoreCorruptFiles)"


def log(message: str) -> None:
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%H:%M:%S.%f")[:-3]
    sys.stdout.write("%s %s\n" % (stamp, message))
    sys.stdout.flush()


def warn(message: str) -> None:
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%H:%M:%S.%f")[:-3]
    sys.stderr.write("%s WARN %s\n" % (stamp, message))
    sys.stderr.flush()


def iso_ms(ms: Optional[int]) -> Optional[str]:
    if ms is None:
        return None
    return _dt.datetime.fromtimestamp(ms / 1000.0, _dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def file_name(path: str) -> str:
    return posixpath.basename(unquote(path).rstrip("/"))


def _records(path: str, content: Optional[bytes], rank: Dict[str, int], rules: Rules, batch_ts_ms: int) -> Iterator[Tuple[Any, ...]]:
    """One file's rejects as (rank, file, line, raw line, reason, detail): the driver's records of files no
    executor read (an empty file yields its notice only)."""
    name = file_name(path)
    r = rank[path]
    for line_no, raw, reason, detail, _, _ in scan_file(name, content, rules, batch_ts_ms):
        yield (r, name, line_no, raw, reason, detail)


def _stage_files(
    part: int,
    rows: Iterator[Any],
    rank: Dict[str, int],
    rules: Rules,
    batch_ts_ms: int,
    conninfo: Dict[str, Any],
    stage: StageTables,
    target: Target,
) -> Iterator[List[float]]:
    """Executor side, one task: parse the partition's files and COPY their records into the staging
    tables (sink.stage_partition). Valid rows carry their data-quality score (spec step 5). Yields
    (the partition's sink.PART_COUNTS, None), or (None, why) when PostgreSQL was unavailable."""
    counts = [0.0, 0.0, 0.0, 0.0]
    rejects: List[Tuple[Any, ...]] = []

    def events() -> Iterator[Tuple[Any, ...]]:
        for r in rows:
            path = r["path"]
            name = file_name(path)
            executor_failpoint(name)
            fr = rank[path]
            for line_no, raw, reason, detail, values, q in scan_file(name, r["content"], rules, batch_ts_ms):
                if line_no > 0:
                    counts[0] += 1
                if reason is None:
                    counts[2] += 1
                    counts[3] += q
                    yield (part, fr, name, line_no, raw, q, *values)
                else:
                    if line_no > 0:
                        counts[1] += 1
                    rejects.append((part, fr, name, line_no, raw, reason, detail))

    try:
        yield stage_partition(conninfo, stage, target, part, events(), rejects, counts), None
    except DatabaseUnavailable as e:
        # Returned, not raised: a failed task reaches the driver only as text, and the driver decides by
        # class whether the batch is retried (jdbc.is_connection_error).
        yield None, str(e)


class BatchPlan(object):
    """One batch's files (name -> path, mtime, size and state: read, empty, missing or unreadable) in
    batch order (modification time, then name), its timestamp, and the times its steps ended (`marks`)."""

    def __init__(self, stream_id: str, batch_id: int, batch_ts_ms: int, files: Dict[str, Dict[str, Any]], marks: Dict[str, float]) -> None:
        self.stream_id, self.batch_id, self.batch_ts_ms = stream_id, batch_id, batch_ts_ms
        self.files = files
        self.order = sorted(files, key=lambda n: (files[n]["mtime"], n))
        #: The batch order of the files an executor reads, by path (their rows' file_rank in staging).
        self.rank = {files[n]["path"]: i for i, n in enumerate(self.order) if files[n]["state"] == "read"}
        self.files_json = [{"name": n, "size": files[n]["size"], "mtimeMs": files[n]["mtime"]} for n in self.order]
        self.mtimes = [files[n]["mtime"] for n in self.order if files[n]["mtime"] is not None]
        self.marks = marks
        #: The executors' summed sink.PART_COUNTS, once they staged the batch.
        self.counts = [0.0, 0.0, 0.0, 0.0]

    def ms(self, since: str, until: str) -> int:
        return int((self.marks[until] - self.marks[since]) * 1000)

    def record(self) -> Dict[str, Any]:
        """The stream_batches values known before the batch transaction ends (sink.commit_batch)."""
        return {
            "files": self.files_json,
            "batch_timestamp": iso_ms(self.batch_ts_ms),
            "input_rows": int(self.counts[0]),
            "rejected_rows": int(self.counts[1]),
            "oldest_file_mtime": iso_ms(min(self.mtimes)) if self.mtimes else None,
            "newest_file_mtime": iso_ms(max(self.mtimes)) if self.mtimes else None,
            # write: the driver's records of unread files; read: parse, validate and COPY into staging on
            # the executors, with the inserts of the partitions staged overlapping it.
            "durations_ms": {"plan": self.ms("start", "plan"), "write": self.ms("plan", "write"), "read": self.ms("write", "read")},
        }


def unread_records(plan: BatchPlan, rules: Rules) -> List[Tuple[Any, ...]]:
    """The records of the files no executor reads (empty, vanished, unreadable), staged by the driver."""
    out: List[Tuple[Any, ...]] = []
    for i, n in enumerate(plan.order):
        state = plan.files[n]["state"]
        if state == "empty":
            out.extend(_records(n, b"", {n: i}, rules, plan.batch_ts_ms))
        elif state == "missing":
            missing = rules.reader["fileMissing"]
            out.append((i, n, 0, None, missing["reason"], render(missing["notice"], file=n)))
        elif state == "unreadable":
            unreadable = rules.reader["fileUnreadable"]
            out.append((i, n, 0, None, unreadable["reason"], render(unreadable["detailOpen"], file=n, error=SPARK_SKIPPED_FILE)))
    return out


def progress_record(plan: BatchPlan, result: Dict[str, Any], replay: bool) -> Dict[str, Any]:
    """The progress record of a batch this run committed (`result`: sink.commit_batch's)."""
    record = plan.record()
    committed_ms = int(plan.marks["commit"] * 1000)
    return make_record(
        stream_id=plan.stream_id,
        batch_id=plan.batch_id,
        batch_timestamp_iso=iso_ms(plan.batch_ts_ms) or "",
        committed_at_iso=iso_ms(committed_ms) or "",
        replay=replay,
        already_committed=False,
        files=[f["name"] for f in plan.files_json],
        num_input_rows=record["input_rows"],
        inserted_rows=result["inserted"],
        duplicate_rows=result["batch_duplicates"] + result["stored_duplicates"],
        rejected_rows=record["rejected_rows"],
        quality_score=result["quality_score"],
        durations_ms=dict(record["durations_ms"], commit=plan.ms("read", "commit"), total=plan.ms("start", "commit")),
        latencies_ms=[committed_ms - m for m in plan.mtimes],
    )


def _package_zip() -> str:
    """The job's package as a zip for SparkContext.addPyFile: executors import the driver's exact code."""
    fd, path = tempfile.mkstemp(prefix="ecomstream_spark-", suffix=".zip")
    os.close(fd)
    with zipfile.ZipFile(path, "w") as z:
        for name in sorted(os.listdir(PACKAGE_DIR)):
            if name.endswith(".py"):
                z.write(os.path.join(PACKAGE_DIR, name), "ecomstream_spark/" + name)
    return path


def glob_literal(text: str) -> str:
    """`text` matched literally by a Hadoop glob (pathGlobFilter): its special characters escaped."""
    return "".join("\\" + ch if ch in "\\{}[]*?" else ch for ch in text)


def spark_hides_name(jvm: Any) -> Callable[[str], bool]:
    """Whether Spark's file source hides a file of this name from a listing, asked of Spark's JVM
    (HadoopFSUtils.shouldFilterOutPathName, which its FileStreamSource's listing applies)."""
    utils = jvm.org.apache.spark.util.HadoopFSUtils
    return lambda name: bool(utils.shouldFilterOutPathName(name))


def check_hidden_prefixes(contract: Contract, spark_hides: Callable[[str], bool]) -> None:
    """The contract's published.hiddenPrefixes must be exactly the first characters for which Spark's file
    source hides a name (the job does not filter them itself: it could only add to what Spark hides), or
    the two engines would read different files: a ContractError otherwise. Probed with every printable
    ASCII character before a published name."""
    sample = "events" + contract.published_suffix
    try:
        hidden = sorted(c for c in map(chr, range(0x20, 0x7F)) if spark_hides(c + sample))
        unhidden = sorted(p for p in contract.hidden_prefixes if not spark_hides(p + sample))
    except Exception as e:  # py4j: the JVM has no such method (another Spark version)
        raise ContractError("%s: cannot ask Spark which file names its file source hides: %s" % (contract.source, e)) from e
    contract_chars = sorted(p for p in contract.hidden_prefixes if len(p) == 1)
    if unhidden or hidden != contract_chars:
        raise ContractError(
            "%s: published.hiddenPrefixes %s are not what Spark's file source hides (names starting with %s): "
            "the Spark job and the TypeScript engine would read different files" % (contract.source, json.dumps(contract.hidden_prefixes), json.dumps(hidden))
        )


def launched_by_spark_submit() -> bool:
    return "PYSPARK_GATEWAY_PORT" in os.environ


def local_jdbc_jars() -> List[str]:
    jars_dir = os.path.join(SPARK_DIR, "jars")
    if not os.path.isdir(jars_dir):
        return []
    return sorted(os.path.join(jars_dir, f) for f in os.listdir(jars_dir) if f.startswith("postgresql-") and f.endswith(".jar"))


def binary_file_schema() -> Any:
    """The `binaryFile` source's fixed schema (a streaming source needs one)."""
    from pyspark.sql.types import BinaryType, LongType, StringType, StructField, StructType, TimestampType

    return StructType(
        [
            StructField("path", StringType(), False),
            StructField("modificationTime", TimestampType(), False),
            StructField("length", LongType(), False),
            StructField("content", BinaryType(), True),
        ]
    )


def driver_java_options() -> Optional[str]:
    """Local mode only (spark-submit's driver is the cluster's business). With the archive: classes mapped
    from it, and only the quick JIT compiler — the driver JVM of a local run mostly starts up and moves
    file bytes to the Python workers, where C2's compilations cost more than they save. Measured on the
    bench's million rows: 44.3 s against 50.7–51.9 s for a whole run, the batch itself unchanged."""
    if JAVA_OPTIONS_ENV in os.environ:
        return os.environ[JAVA_OPTIONS_ENV] or None
    if os.path.isfile(CDS_ARCHIVE):
        return "-XX:SharedArchiveFile=%s -XX:TieredStopAtLevel=1" % CDS_ARCHIVE
    return None


def build_session(settings: Settings) -> Any:
    """The SparkSession. Under spark-submit the cluster settings come from it; run as a plain Python
    program (npm run spark:local) the job starts Spark in local mode with the JDBC driver of spark/jars."""
    # Executors of local mode are children of this process: let their Python find the package.
    os.environ["PYTHONPATH"] = os.pathsep.join([SPARK_DIR] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(settings.app_name)
    if not launched_by_spark_submit():
        builder = builder.master(settings.master or "local[2]")
        jars = local_jdbc_jars()
        if not jars and not os.environ.get("ECOMSTREAM_SPARK_JARS"):
            raise SinkError("no PostgreSQL JDBC driver in %s: run scripts/install-spark.sh" % os.path.join(SPARK_DIR, "jars"))
        builder = builder.config("spark.jars", os.environ.get("ECOMSTREAM_SPARK_JARS") or ",".join(jars))
        builder = builder.config("spark.driver.memory", os.environ.get("ECOMSTREAM_SPARK_DRIVER_MEMORY", "1g"))
        builder = builder.config("spark.ui.enabled", os.environ.get("ECOMSTREAM_SPARK_UI", "false"))
        builder = builder.config("spark.ui.showConsoleProgress", "false")
        java_options = driver_java_options()
        if java_options:
            builder = builder.config("spark.driver.extraJavaOptions", java_options)
        # The executors' Python is this one (with psycopg), not whatever `python3` is first on PATH
        # (PySpark's default); SparkContext reads the variable when it starts.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    elif settings.master:
        builder = builder.master(settings.master)
    builder = (
        builder.config("spark.sql.shuffle.partitions", str(settings.shuffle_partitions))
        # The spec: adaptive query execution on (Spark turns it off inside streaming plans by itself;
        # the batch DataFrames of foreachBatch do use it).
        .config("spark.sql.adaptive.enabled", "true")
        .config("spark.sql.session.timeZone", "UTC")
        # A planned file that vanished (or cannot be read) must become a file_missing / file_unreadable
        # record, not a failed batch replayed forever.
        .config("spark.sql.files.ignoreMissingFiles", "true")
        .config("spark.sql.files.ignoreCorruptFiles", "true")
        # 32 MB read tasks (about 8 generator files) rather than 128 MB: more tasks than cores, so no core
        # idles while another parses the last big partition.
        .config("spark.sql.files.maxPartitionBytes", "32m")
        # Metrics an operator can scrape on the driver's UI port (4040): executor metrics at
        # /metrics/executors/prometheus, and — with the streaming query's own source — its input rate,
        # processing rate and latency at /metrics/prometheus (Spark's PrometheusServlet sink).
        .config("spark.ui.prometheus.enabled", "true")
        .config("spark.sql.streaming.metricsEnabled", "true")
        .config("spark.metrics.conf.*.sink.prometheusServlet.class", "org.apache.spark.metrics.sink.PrometheusServlet")
        .config("spark.metrics.conf.*.sink.prometheusServlet.path", "/metrics/prometheus")
    )
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("ECOMSTREAM_SPARK_LOG_LEVEL", "WARN"))
    spark.sparkContext.addPyFile(_package_zip())
    return spark


class StreamingJob(object):
    def __init__(self, spark: Any, settings: Settings, contract: Contract) -> None:
        self.spark = spark
        self.settings = settings
        self.contract = contract
        self.rules = Rules(contract)
        self.target = Target(contract)
        self._stream_id: Optional[str] = None
        self._stream_id_ready = threading.Event()
        self._conn: Optional[PgConnection] = None
        #: This job's epoch of its stream (fencing.Fence), claimed once the query has its id.
        self._fence: Optional[Fence] = None
        self._started_at = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")
        self._replay_batch: Optional[int] = None
        self._stop_requested = False
        self.failures: List[BaseException] = []
        self.batches = 0

    # -- database ---------------------------------------------------------------------------------

    def connection(self) -> PgConnection:
        if self._conn is None:
            s = self.settings
            self._conn = PgConnection(self.spark.sparkContext._jvm, s.jdbc_url, s.jdbc_user, s.jdbc_password)
        return self._conn

    def reset_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def stream_id(self) -> str:
        if not self._stream_id_ready.wait(120):
            raise SinkError("the streaming query did not report its id")
        assert self._stream_id is not None
        return self._stream_id

    def fence(self) -> Fence:
        """The epoch claimed at start (after `stream_id()` returned)."""
        if self._fence is None:
            raise SinkError("the job claimed no epoch for its stream at start")
        return self._fence

    # -- checkpoint -------------------------------------------------------------------------------

    def _hadoop_fs(self, path: str) -> Tuple[Any, Any]:
        jvm = self.spark.sparkContext._jvm
        p = jvm.org.apache.hadoop.fs.Path(path)
        return p, p.getFileSystem(self.spark.sparkContext._jsc.hadoopConfiguration())

    def _batch_ids(self, sub: str) -> List[int]:
        p, fs = self._hadoop_fs(self.settings.checkpoint.rstrip("/") + "/" + sub)
        if not fs.exists(p):
            return []
        return sorted(int(st.getPath().getName()) for st in fs.listStatus(p) if st.getPath().getName().isdigit())

    def find_replay_batch(self) -> Optional[int]:
        """The newest planned batch without a commit: Spark will run it again first."""
        offsets, commits = self._batch_ids("offsets"), self._batch_ids("commits")
        if offsets and (not commits or commits[-1] < offsets[-1]):
            return offsets[-1]
        return None

    def offsets_timestamp_ms(self, batch_id: int) -> int:
        """batchTimestampMs of offsets/N (for a batch whose files all vanished, so no row carries it)."""
        p, fs = self._hadoop_fs("%s/offsets/%d" % (self.settings.checkpoint.rstrip("/"), batch_id))
        stream = fs.open(p)
        try:
            jvm = self.spark.sparkContext._jvm
            reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(stream, "UTF-8"))
            reader.readLine()  # version line
            return int(json.loads(reader.readLine())["batchTimestampMs"])
        finally:
            stream.close()

    def planned_files(self, batch_id: int) -> List[Tuple[str, str, int]]:
        """(name, path, mtime ms) of the files FileStreamSource planned for batch N, from sources/0/N
        (or N.compact, which every 10th batch writes instead and which holds earlier batches too)."""
        base = "%s/sources/0/%d" % (self.settings.checkpoint.rstrip("/"), batch_id)
        jvm = self.spark.sparkContext._jvm
        for candidate in (base, base + ".compact"):
            p, fs = self._hadoop_fs(candidate)
            if not fs.exists(p):
                continue
            stream = fs.open(p)
            try:
                reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(stream, "UTF-8"))
                reader.readLine()  # version line
                out = []
                while True:
                    line = reader.readLine()
                    if line is None:
                        break
                    if not line.strip():
                        continue
                    entry = json.loads(line)
                    if int(entry.get("batchId", -1)) == batch_id:
                        out.append((file_name(entry["path"]), entry["path"], int(entry["timestamp"])))
                return out
            finally:
                stream.close()
        warn("batch %d: no sources/0/%d in the checkpoint; empty or vanished files of this batch go unrecorded" % (batch_id, batch_id))
        return []

    def check_checkpoint_folder(self) -> None:
        """Refuse the TypeScript engine's checkpoint: the two engines' logs are not interchangeable."""
        cp = self.settings.checkpoint
        if "://" in cp and not cp.startswith("file:"):
            return
        local = cp[5:] if cp.startswith("file:") else cp
        meta = os.path.join(local, "metadata")
        try:
            with open(meta, "r", encoding="utf-8") as f:
                data = json.loads(f.readline() or "{}")
        except (OSError, ValueError):
            return
        if "createdAtMs" in data or os.path.exists(os.path.join(local, "lock")):
            raise SinkError("%s is the TypeScript engine's checkpoint; give the Spark job its own --checkpoint folder" % cp)

    # -- the batch --------------------------------------------------------------------------------

    def process_batch(self, df: Any, batch_id: int) -> None:
        """foreachBatch: raises on any failure, so a batch that did not commit is never marked done. A
        fenced job (a newer engine claimed the stream) says so in one line and exits at once, like a kill:
        nothing of Spark's runs after it that could write commits/N."""
        try:
            self._process_batch(df, batch_id)
        except Fenced as e:
            sys.stderr.write("ecomstream-spark: %s\n" % e)
            sys.stderr.flush()
            os._exit(1)
        except BaseException as e:
            self.failures.append(e)
            raise

    def _process_batch(self, df: Any, batch_id: int) -> None:
        t0 = time.time()
        s = self.settings
        failpoint(s.failpoint, "after-offsets", batch_id)
        stream_id = self.stream_id()
        replay = batch_id == self._replay_batch

        def attempt() -> None:
            if batch_recorded(self.connection(), self.fence(), stream_id, batch_id):
                self._report_already_committed(df, stream_id, batch_id, replay, t0)
            else:
                self._run(df, batch_id, stream_id, replay, t0)

        # A bounded run (available-now, once) gives up after --retry-timeout; a stream retries while it runs.
        deadline = time.time() + s.batch_retry_seconds if s.trigger_kind in ("available-now", "once") else None
        try:
            self._retrying("batch %d" % batch_id, ", the batch stays uncommitted", attempt, deadline=deadline)
        except Exception as e:
            if deadline is None or not is_connection_error(e, self.target.retryable):
                raise
            why = java_message(e).splitlines()[0]
            raise SinkError("batch %d (stays uncommitted): gave up after --retry-timeout %d s of retries: %s" % (batch_id, s.batch_retry_seconds, why)) from e

    def _retrying(self, what: str, consequence: str, step: Callable[[], T], deadline: Optional[float] = None) -> T:
        """Runs `step` until it succeeds; after a failure that is_connection_error calls transient (the
        database down, restarting or unreachable), logs it and tries again with the batches' backoff —
        until `deadline` (time.time()) when given, or a stop is requested. Anything else is raised."""
        s = self.settings
        delay = s.retry_initial_ms / 1000.0
        attempt = 0
        while True:
            attempt += 1
            try:
                return step()
            except Exception as e:  # classified below, re-raised unless transient
                if not is_connection_error(e, self.target.retryable) or self._stop_requested or (deadline is not None and time.time() + delay > deadline):
                    raise
                self.reset_connection()
                why = java_message(e).splitlines()[0][:300]
                warn("%s: database unavailable (%s); retry %d in %d ms%s" % (what, why, attempt, int(delay * 1000), consequence))
                time.sleep(delay)
                delay = min(delay * 2, s.retry_max_ms / 1000.0)

    def _connect_at_startup(self) -> PgConnection:
        """The first connection, retried for --startup-timeout while PostgreSQL is not up yet or restarting
        (the TypeScript engine's start-up rule); otherwise a SinkError naming the database."""
        s = self.settings

        def connect() -> PgConnection:
            conn = self.connection()
            conn.query("SELECT 1")
            return conn

        try:
            return self._retrying("start-up", "", connect, deadline=time.time() + s.startup_retry_seconds)
        except Exception as e:  # a wrong password or database is not retried: said at once
            waited = " within --startup-timeout %d s" % s.startup_retry_seconds if is_connection_error(e, self.target.retryable) else ""
            raise SinkError("cannot connect to PostgreSQL at %s%s: %s" % (redact_url(s.jdbc_url), waited, java_message(e))) from e

    def _report_already_committed(self, df: Any, stream_id: str, batch_id: int, replay: bool, t0: float) -> None:
        names = [name for name, _, _ in sorted(self.planned_files(batch_id), key=lambda f: (f[2], f[0]))]
        now = int(time.time() * 1000)
        record = make_record(
            stream_id=stream_id,
            batch_id=batch_id,
            batch_timestamp_iso=iso_ms(self._batch_ts_or_offsets(df, batch_id)) or "",
            committed_at_iso=iso_ms(now) or "",
            replay=replay,
            already_committed=True,
            files=names,
            num_input_rows=0,
            inserted_rows=0,
            duplicate_rows=0,
            rejected_rows=0,
            quality_score=None,
            durations_ms={"total": int((time.time() - t0) * 1000)},
            latencies_ms=[],
        )
        append_progress(self.settings.progress_file, record)
        log(format_line(record))

    def _batch_ts_or_offsets(self, df: Any, batch_id: int) -> int:
        from pyspark.sql import functions as F

        row = df.select(F.unix_millis("batch_ts").alias("ts")).limit(1).collect()
        return int(row[0]["ts"]) if row else self.offsets_timestamp_ms(batch_id)

    def _run(self, df: Any, batch_id: int, stream_id: str, replay: bool, t0: float) -> None:
        plan = self._plan(df, stream_id, batch_id, t0)
        conn = self.connection()
        stage = StageTables(stream_id, batch_id, uuid.uuid4().hex[:8])
        create_stage_tables(conn, stage, self.target)
        try:
            unread = unread_records(plan, self.rules)
            if unread:
                stage_rejects_on_driver(conn, stage, unread)
            plan.marks["write"] = time.time()
            result = self._write(df, plan, conn, stage) if open_batch(conn, self.fence(), stream_id, batch_id) else None
        finally:
            try:
                drop_stage(conn, stage)
            except Exception:  # dropped inside the transaction already, or left for the next start
                pass
        plan.marks["commit"] = time.time()
        if result is None:
            self._report_already_committed(df, stream_id, batch_id, replay, t0)
            return
        failpoint(self.settings.failpoint, "after-db-commit", batch_id)
        self.batches += 1
        progress = progress_record(plan, result, replay)
        append_progress(self.settings.progress_file, progress)
        log(format_line(progress))

    def _plan(self, df: Any, stream_id: str, batch_id: int, t0: float) -> "BatchPlan":
        """The batch's files and its timestamp. Spark's FileStreamSource recorded the planned files in
        sources/0/N; the batch DataFrame only has rows for files it could read and that are not empty
        (Spark skips zero-byte files), so each planned file without a row is looked at here."""
        from pyspark.sql import functions as F

        meta = df.select("path", F.unix_millis("modificationTime").alias("mtime_ms"), "length", F.unix_millis("batch_ts").alias("batch_ts_ms")).collect()
        batch_ts_ms = int(meta[0]["batch_ts_ms"]) if meta else self.offsets_timestamp_ms(batch_id)
        files: Dict[str, Dict[str, Any]] = {}
        for r in meta:
            files[file_name(r["path"])] = {"path": r["path"], "mtime": int(r["mtime_ms"]), "size": int(r["length"]), "state": "read"}
        for name, uri, mtime in self.planned_files(batch_id):
            if name not in files:
                state, size = self._unread_file_state(uri)
                files[name] = {"path": uri, "mtime": mtime, "size": size, "state": state}
        return BatchPlan(stream_id, batch_id, batch_ts_ms, files, {"start": t0, "plan": time.time()})

    def _write(self, df: Any, plan: "BatchPlan", conn: PgConnection, stage: StageTables) -> Optional[Dict[str, Any]]:
        """Inside the open batch transaction: read, validate and stage in one pass on the executors while
        the batch transaction inserts each partition staged (sink.PartitionInserter); then the record and
        COMMIT (sink.finish_batch), or the whole batch again from staging after a duplicate key
        (sink.commit_batch). Any failure rolls the batch transaction back before it propagates: switching
        the connection back to autocommit (dropping the staging tables does) would otherwise commit the
        partitions already inserted."""
        try:
            inserter = PartitionInserter(conn, stage, self.target)
            inserter.start()
            try:
                plan.counts = self._stage_on_executors(df, plan, stage)
            finally:
                inserter.finish()
            plan.marks["read"] = time.time()
            failpoint(self.settings.failpoint, "during-copy", plan.batch_id)
            record = plan.record()
            if not inserter.conflicted:
                return finish_batch(conn, stage, self.target, plan.stream_id, plan.batch_id, record, inserter)
            # A key twice in the batch or stored before: the whole batch again, from staging.
            abort_batch(conn)
            gather_partitions(conn, stage)
            return commit_batch(conn, self.fence(), stage, self.target, plan.stream_id, plan.batch_id, record)
        except BaseException:
            abort_batch(conn)
            raise

    def _stage_on_executors(self, df: Any, plan: "BatchPlan", stage: StageTables) -> List[float]:
        """Each task parses its partition's files and COPYs the records into the staging tables; only its
        counts come back (sink.PART_COUNTS, summed here). Raises DatabaseUnavailable if a task could not
        reach PostgreSQL."""
        counts = [0.0, 0.0, 0.0, 0.0]
        if not plan.rank:
            return counts
        s = self.settings
        stage_fn = functools.partial(
            _stage_files,
            rank=plan.rank,
            rules=self.rules,
            batch_ts_ms=plan.batch_ts_ms,
            conninfo=libpq_params(s.jdbc_url, s.jdbc_user, s.jdbc_password),
            stage=stage,
            target=self.target,
        )
        down: List[str] = []
        for part_counts, unavailable in df.select("path", "content").rdd.mapPartitionsWithIndex(stage_fn).collect():
            if part_counts is None:
                down.append(unavailable)
            else:
                counts = [x + y for x, y in zip(counts, part_counts)]
        if down:
            raise DatabaseUnavailable("batch %d: %d partition(s) could not be staged; the first: %s" % (plan.batch_id, len(down), down[0]))
        return counts

    def _unread_file_state(self, uri: str) -> Tuple[str, Optional[int]]:
        """A planned file without a row: empty (Spark skips zero-byte files), gone, or unreadable."""
        p, fs = self._hadoop_fs(uri)
        try:
            status = fs.getFileStatus(p)
        except Exception:
            return "missing", None
        size = int(status.getLen())
        return ("empty" if size == 0 else "unreadable"), size

    # -- the query --------------------------------------------------------------------------------

    def run(self) -> int:
        s = self.settings
        check_hidden_prefixes(self.contract, spark_hides_name(self.spark.sparkContext._jvm))
        self.check_checkpoint_folder()
        if "://" not in s.input or s.input.startswith("file:"):
            os.makedirs(s.input[5:] if s.input.startswith("file:") else s.input, exist_ok=True)
        self._replay_batch = self.find_replay_batch()

        conn = self._connect_at_startup()
        query = self._writer().start()
        # The stream id is the Spark query id, stable across restarts of one checkpoint; known once started.
        self._stream_id = str(query.id)
        # Before the first batch may use the database (it waits for the stream id): this run's epoch,
        # which fences every earlier run of this checkpoint and ends a frozen one's batch transaction
        # (fencing.Fence); then the staging tables of killed attempts, on this thread, so no batch's own
        # tables are ever dropped under it.
        try:
            fence = Fence(self.contract, self._stream_id)
            fence.claim(conn, socket.gethostname(), os.getpid(), self._started_at, s.input)
            self._fence = fence
            for name in drop_stale_stage_tables(conn, self._stream_id):
                warn("dropped staging table %s left by an earlier attempt" % name)
        finally:
            self._stream_id_ready.set()
        self._log_start()
        self._install_signal_handlers()
        self._await_end(query)
        error = query.exception()
        self.reset_connection()
        if error is not None:
            cause = self.failures[-1] if self.failures else None
            warn("the streaming query failed: %s" % (cause if cause is not None else error))
            return 1
        log("stopped after %d batches" % self.batches)
        return 0

    def _writer(self) -> Any:
        """The streaming query, not started: published files of the input folder, one foreachBatch."""
        from pyspark.sql import functions as F

        s = self.settings
        source = (
            self.spark.readStream.format("binaryFile")
            .schema(binary_file_schema())
            # Only published files (the contract's suffix; Spark itself hides the hidden prefixes, see
            # check_hidden_prefixes): never the generator's temp files.
            .option("pathGlobFilter", "*" + glob_literal(self.contract.published_suffix))
            .option("maxFilesPerTrigger", str(s.max_files_per_trigger))
            .load(s.input)
            # Rewritten by Spark to the batch timestamp of offsets/N: the same on a replay.
            .withColumn("batch_ts", F.current_timestamp())
        )
        writer = source.writeStream.queryName("ecomstream").foreachBatch(self.process_batch).option("checkpointLocation", s.checkpoint)
        if s.trigger_kind == "available-now":
            return writer.trigger(availableNow=True)
        if s.trigger_kind == "once":
            return writer.trigger(once=True)
        return writer.trigger(processingTime="%g seconds" % s.trigger_seconds)

    def _log_start(self) -> None:
        s = self.settings
        log(
            "stream %s (spark %s, application %s): watching %s (trigger %s, max %d files per batch, checkpoint %s%s)"
            % (
                self._stream_id,
                self.spark.version,
                self.spark.sparkContext.applicationId,
                s.input,
                s.trigger,
                s.max_files_per_trigger,
                s.checkpoint,
                ", replaying batch %d" % self._replay_batch if self._replay_batch is not None else "",
            )
        )

    def _await_end(self, query: Any) -> None:
        """Until the query ends: by itself (available-now, once), failed, or stopped between batches
        after a stop was requested, so the batch in flight commits and writes commits/N."""
        stopping_since: Optional[float] = None
        while query.isActive:
            if self._stop_requested:
                if stopping_since is None:
                    stopping_since = time.time()
                    log("stopping: the batch in flight finishes first (Ctrl-C again to abort)")
                if not query.status["isTriggerActive"] or time.time() - stopping_since > 600:
                    query.stop()
                    return
            try:
                query.awaitTermination(0.5)
            except Exception:  # the query failed: said in one line by run(), from the batch's own error
                return

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def handler(signum: int, frame: Any) -> None:
            if self._stop_requested:
                # Second signal: abort now; the batch in flight is replayed on the next start.
                os._exit(130)
            self._stop_requested = True

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)
