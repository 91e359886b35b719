#!/usr/bin/env bash
# Installs what the PySpark job needs to run in local mode, idempotently (a second run changes nothing):
#   - a Python virtual environment in spark/.venv with PySpark 3.5, psycopg 3, pytest, ruff and vermin (spark/requirements.txt),
#   - the PostgreSQL JDBC driver from Maven Central in spark/jars/,
#   - the local-mode driver JVM's class data sharing archive in spark/.venv/spark-driver.jsa.
# Java 11 or 17 must already be installed (Spark 3.5 runs on both). Both folders are gitignored.
#
# The environment runs the Python of the Compose deployment's Spark image (test/compose/images.json: 3.8),
# so the job's tests run on the interpreter it ships with: python3.X from PATH or pyenv's newest 3.X.
# Environment: PYTHON (an interpreter to use instead), SPARK_VENV (default spark/.venv).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The Spark image's Python, major.minor, from the table of image facts.
IMAGE_PYTHON="$(python3 -c 'import json, sys; print(next(v["python"] for k, v in json.load(open(sys.argv[1]))["images"].items() if k.startswith("apache/spark:")))' "$ROOT/test/compose/images.json")"

say() { printf 'install-spark: %s\n' "$*"; }

# python3.X on PATH, else pyenv's newest 3.X.Y; nothing when neither is installed.
image_python() {
  # (pyenv's shims answer `command -v` for versions that are not selected, so the name must also run)
  if "python$IMAGE_PYTHON" -c '' 2>/dev/null; then command -v "python$IMAGE_PYTHON"; return; fi
  local root; root="$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"
  find "$root/versions" -maxdepth 1 -name "$IMAGE_PYTHON.*" 2>/dev/null | sort -V | tail -1 | sed 's|$|/bin/python3|'
}

if [ -z "${PYTHON:-}" ]; then
  PYTHON="$(image_python)"
  if [ -z "$PYTHON" ] || [ ! -x "$PYTHON" ]; then
    say "Python $IMAGE_PYTHON (the Spark image's) is not installed; set PYTHON=... to use another"
    exit 1
  fi
fi
VENV="${SPARK_VENV:-$ROOT/spark/.venv}"
JARS="$ROOT/spark/jars"
# Keep in step with docker-compose.yml (spark-submit --packages); test/unit/compose.test.ts checks it.
PG_JDBC_VERSION="42.7.7"
PG_JDBC_JAR="$JARS/postgresql-$PG_JDBC_VERSION.jar"

command -v java >/dev/null || { say "java is not installed (Spark 3.5 needs Java 11 or 17)"; exit 1; }

want_python="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
have_python="$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true)"
if [ "$have_python" != "$want_python" ]; then
  say "creating $VENV with Python $want_python ($PYTHON)"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
fi

want_pyspark="$(sed -n 's/^pyspark==//p' "$ROOT/spark/requirements.txt")"
have_pyspark="$("$VENV/bin/python" -c 'import pyspark; print(pyspark.__version__)' 2>/dev/null || true)"
have_pytest="$("$VENV/bin/python" -c 'import pytest; print(pytest.__version__)' 2>/dev/null || true)"
want_ruff="$(sed -n 's/^ruff==//p' "$ROOT/spark/requirements.txt")"
have_ruff="$("$VENV/bin/ruff" --version 2>/dev/null | sed 's/^ruff //' || true)"
want_psycopg="$(sed -n 's/^psycopg\[binary\]==//p' "$ROOT/spark/requirements-executor.txt")"
have_psycopg="$("$VENV/bin/python" -c 'import psycopg; print(psycopg.__version__)' 2>/dev/null || true)"
want_vermin="$(sed -n 's/^vermin==//p' "$ROOT/spark/requirements.txt")"
have_vermin="$("$VENV/bin/vermin" --version 2>/dev/null || true)"
if [ "$have_pyspark" != "$want_pyspark" ] || [ -z "$have_pytest" ] || [ "$have_ruff" != "$want_ruff" ] || [ "$have_psycopg" != "$want_psycopg" ] ||
  [ "$have_vermin" != "$want_vermin" ]; then
  say "installing spark/requirements.txt (pyspark $want_pyspark) from PyPI"
  "$VENV/bin/python" -m pip install --quiet -r "$ROOT/spark/requirements.txt"
else
  say "pyspark $have_pyspark, psycopg $have_psycopg, pytest $have_pytest and ruff $have_ruff already installed"
fi

if [ ! -s "$PG_JDBC_JAR" ]; then
  mkdir -p "$JARS"
  say "downloading org.postgresql:postgresql:$PG_JDBC_VERSION from Maven Central"
  command -v mvn >/dev/null || { say "Maven (mvn) is not installed: it fetches the JDBC driver from Maven Central"; exit 1; }
  mvn -q -B dependency:copy "-Dartifact=org.postgresql:postgresql:$PG_JDBC_VERSION" "-DoutputDirectory=$JARS" \
    -Dmdep.overWriteIfNewer=false
else
  say "JDBC driver already present: ${PG_JDBC_JAR#$ROOT/}"
fi

# The local-mode driver JVM's class data sharing archive (spark/ecomstream_spark/warmup.py, used by
# job.driver_java_options): a whole local run starts about 6 s sooner. Rewritten when Java, PySpark or the
# JDBC driver changes; without it local runs start as Spark's default, so a failure here is only a warning.
CDS="$VENV/spark-driver.jsa"
cds_key="$("$VENV/bin/python" -c 'import pyspark; print(pyspark.__version__)') $(java -version 2>&1 | head -1) ${PG_JDBC_JAR##*/}"
if [ ! -s "$CDS" ] || [ "$(cat "$CDS.key" 2>/dev/null)" != "$cds_key" ]; then
  say "writing the Spark driver's class data sharing archive (a short local Spark run)"
  rm -f "$CDS" "$CDS.key" "$CDS.tmp"
  if (cd "$ROOT/spark" && "$VENV/bin/python" -m ecomstream_spark.warmup "$CDS.tmp" >"$VENV/warmup.log" 2>&1) && [ -s "$CDS.tmp" ]; then
    mv "$CDS.tmp" "$CDS"
    printf '%s\n' "$cds_key" >"$CDS.key"
  else
    rm -f "$CDS.tmp"
    say "could not write it (see ${VENV#$ROOT/}/warmup.log); local runs start without it"
  fi
else
  say "class data sharing archive already present: ${CDS#$ROOT/}"
fi

say "ready: $VENV/bin/python, ${PG_JDBC_JAR#$ROOT/}"
