"""A short local-mode run that loads the classes a run of the job loads, for the driver JVM's class data
sharing archive (CDS: the JVM maps those classes from one file instead of loading and verifying each).

scripts/install-spark.sh runs `python -m ecomstream_spark.warmup ARCHIVE`; job.build_session then starts
local-mode drivers with `-XX:SharedArchiveFile=ARCHIVE` (docs/performance.md has the figures). The run
needs no database: it starts the session as the job does, runs a streaming query of the `binaryFile`
source with a foreachBatch that runs a Python task, and loads the PostgreSQL JDBC driver's classes.
"""

from __future__ import annotations

import os
import sys
import tempfile

from .job import JAVA_OPTIONS_ENV, binary_file_schema, build_session
from .settings import load_settings


def main(argv: list) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: python -m ecomstream_spark.warmup ARCHIVE\n")
        return 2
    archive = os.path.abspath(argv[0])
    # The JVM writes the archive when it exits; build_session passes these options to it.
    os.environ[JAVA_OPTIONS_ENV] = "-XX:ArchiveClassesAtExit=%s" % archive
    work = tempfile.mkdtemp(prefix="ecomstream-warmup-")
    folder = os.path.join(work, "input")
    os.makedirs(folder)
    with open(os.path.join(folder, "warmup.csv"), "w", encoding="utf-8") as f:
        f.write("a,b\n1,2\n")
    # A URL the settings accept; nothing connects to it.
    args = ["--input", folder, "--checkpoint", os.path.join(work, "checkpoint"), "--database-url", "postgresql://localhost/warmup"]
    settings = load_settings(args, env={})
    spark = build_session(settings)
    jvm_process = spark.sparkContext._gateway.proc
    try:
        jvm = spark.sparkContext._jvm
        jvm.org.postgresql.Driver()

        def batch(df, batch_id):
            df.select("path", "length").collect()
            df.select("path", "content").rdd.mapPartitionsWithIndex(lambda i, rows: [sum(1 for _ in rows)]).collect()

        query = (
            spark.readStream.format("binaryFile")
            .schema(binary_file_schema())
            .option("pathGlobFilter", "*.csv")
            .load(folder)
            .writeStream.foreachBatch(batch)
            .option("checkpointLocation", settings.checkpoint)
            .trigger(availableNow=True)
            .start()
        )
        query.awaitTermination()
    finally:
        spark.stop()
    # The JVM writes the archive as it exits, which it does when its stdin closes; wait for it, or the
    # caller would look for the file too early.
    jvm_process.stdin.close()
    jvm_process.wait(timeout=300)
    return 0 if os.path.isfile(archive) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
