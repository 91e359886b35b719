"""Settings of the Spark job: defaults here (the deployment facts of src/config.ts, checked equal by
test/spark/job.test.ts), then environment variables, then command-line flags.

Every default is the spec's value except `max_files_per_trigger`: the spec's 1 file per 10-second
trigger falls behind its own generator (a file every 5 s), so the default takes up to 1000 files per
batch, as the TypeScript engine does. `--max-files-per-trigger 1` restores the spec's setting.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qsl, unquote, urlsplit


class SettingsError(Exception):
    """A flag or variable has a value the job cannot use; the message names it."""


# Deployment facts (spec section 4 "Configuration"); src/config.ts `deployment` holds the same values.
DEFAULTS: Dict[str, Any] = {
    "input": "data/input",
    "checkpoint": "data/checkpoints/spark",
    "progress_file": "data/logs/progress.jsonl",
    "trigger": "10s",
    "max_files_per_trigger": 1000,
    "shuffle_partitions": 8,
    "contract": None,
    "master": None,
    "app_name": "ecomstream-spark",
    # The batches' backoff while PostgreSQL is unavailable: the TypeScript engine's (src/config.ts engine).
    "retry_initial_ms": 250,
    "retry_max_ms": 5000,
    # How long start-up retries a PostgreSQL that does not answer yet (--startup-timeout).
    "startup_retry_seconds": 60,
    # How long a bounded run (available-now, once) retries a batch the database cannot take (--retry-timeout).
    "batch_retry_seconds": 300,
}


class Settings(object):
    """Frozen after construction."""

    def __init__(self, **values: Any) -> None:
        for k, v in values.items():
            object.__setattr__(self, k, v)

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("settings are read-only")

    def as_dict(self) -> Dict[str, Any]:
        d = dict(self.__dict__)
        d["jdbc_password"] = "***" if d.get("jdbc_password") else d.get("jdbc_password")
        if d.get("jdbc_url"):
            d["jdbc_url"] = redact_url(d["jdbc_url"])
        return d


def parse_trigger(value: str) -> Tuple[str, float]:
    """`available-now`, `once` or `<N>s` -> (kind, seconds)."""
    if value in ("available-now", "once"):
        return value, 0.0
    m = re.fullmatch(r"(\d+(?:\.\d+)?)s", value)
    if m and float(m.group(1)) > 0:
        return "interval", float(m.group(1))
    raise SettingsError(
        "--trigger %s: allowed are available-now, once or <N>s (e.g. 10s); "
        "on-arrival is a TypeScript-engine trigger that Spark does not have" % json.dumps(value)
    )


def jdbc_from_database_url(url: str) -> Tuple[str, Optional[str], Optional[str]]:
    """`postgresql://user:pass@host:port/db?sslmode=...` -> (jdbc url, user, password)."""
    if url.startswith("jdbc:postgresql:"):
        return url, None, None
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise SettingsError("DATABASE_URL must start with postgresql:// (or be a jdbc:postgresql: URL), got %s" % parts.scheme)
    host = parts.hostname or "localhost"
    if ":" in host:
        host = "[%s]" % host
    port = parts.port or 5432
    db = unquote(parts.path.lstrip("/")) or "postgres"
    query = [(k, v) for k, v in parse_qsl(parts.query) if k in ("sslmode", "ssl", "sslrootcert", "options", "application_name")]
    jdbc = "jdbc:postgresql://%s:%d/%s" % (host, port, db)
    if query:
        jdbc += "?" + "&".join("%s=%s" % (k, v) for k, v in query)
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return jdbc, user, password


def _positive_int(flag: str, minimum: int = 0):
    def parse(value: str) -> int:
        if not re.fullmatch(r"\d+", value.strip()) or int(value) < minimum:
            raise argparse.ArgumentTypeError("%s takes an integer from %d up, got %s" % (flag, minimum, json.dumps(value)))
        return int(value)

    return parse


def redact_url(url: Optional[str]) -> str:
    """A JDBC URL for messages: a password in its query shown as ***."""
    return re.sub(r"([?&]password=)[^&]*", r"\1***", url or "")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="streaming_job.py",
        description="ecomstream on Spark Structured Streaming: published CSV files -> PostgreSQL, exactly once.",
        epilog="DATABASE_URL (postgresql://user:password@host:port/db) names the database unless --database-url is given. "
        "ECOMSTREAM_FAILPOINT=<after-offsets|during-copy|after-db-commit>:<batchId> kills the driver at that point (tests).",
    )
    p.add_argument("--input", help="landing folder of published *.csv files (default %s)" % DEFAULTS["input"])
    p.add_argument("--checkpoint", help="Spark checkpoint folder (default %s); not the TypeScript engine's" % DEFAULTS["checkpoint"])
    p.add_argument("--progress-file", help="progress records, one JSON line per batch (default %s)" % DEFAULTS["progress_file"])
    p.add_argument("--trigger", help="available-now | once | <N>s (default %s)" % DEFAULTS["trigger"])
    p.add_argument(
        "--max-files-per-trigger",
        type=_positive_int("--max-files-per-trigger", 1),
        help="files per micro-batch at most (default %d; the spec used 1)" % DEFAULTS["max_files_per_trigger"],
    )
    p.add_argument(
        "--shuffle-partitions", type=_positive_int("--shuffle-partitions", 1), help="spark.sql.shuffle.partitions (default %d)" % DEFAULTS["shuffle_partitions"]
    )
    for flag, dest, what in (
        ("--startup-timeout", "startup_retry_seconds", "seconds to retry a PostgreSQL that does not answer at start"),
        ("--retry-timeout", "batch_retry_seconds", "available-now and once: seconds to retry a batch the database cannot take before exiting 1"),
    ):
        p.add_argument(flag, type=_positive_int(flag, 0), dest=dest, metavar="SECONDS", help="%s (default %d)" % (what, DEFAULTS[dest]))
    p.add_argument("--database-url", help="postgresql:// or jdbc:postgresql: URL (default: $DATABASE_URL)")
    p.add_argument("--contract", help="event contract JSON (default: event_contract.json next to the package)")
    p.add_argument("--master", help="Spark master when not set by spark-submit (e.g. local[2])")
    p.add_argument("--print-settings", action="store_true", help="print the effective settings as JSON and exit")
    return p


def load_settings(argv: Optional[List[str]] = None, env: Optional[Dict[str, str]] = None) -> Settings:
    env = dict(os.environ if env is None else env)
    args = build_parser().parse_args(argv)
    v: Dict[str, Any] = dict(DEFAULTS)
    # Environment layer (the Docker Compose service sets these).
    env_map = {
        "ECOMSTREAM_INPUT": "input",
        "ECOMSTREAM_CHECKPOINT": "checkpoint",
        "ECOMSTREAM_PROGRESS_FILE": "progress_file",
        "ECOMSTREAM_TRIGGER": "trigger",
        "ECOMSTREAM_MAX_FILES_PER_TRIGGER": "max_files_per_trigger",
    }
    for var, key in env_map.items():
        if env.get(var):
            v[key] = env[var]
    # Flag layer.
    for key in (
        "input",
        "checkpoint",
        "progress_file",
        "trigger",
        "max_files_per_trigger",
        "shuffle_partitions",
        "contract",
        "master",
        "startup_retry_seconds",
        "batch_retry_seconds",
    ):
        value = getattr(args, key)
        if value is not None:
            v[key] = value
    try:
        v["max_files_per_trigger"] = int(v["max_files_per_trigger"])
    except ValueError as e:
        raise SettingsError("ECOMSTREAM_MAX_FILES_PER_TRIGGER must be an integer, got %s" % json.dumps(v["max_files_per_trigger"])) from e
    if v["max_files_per_trigger"] < 1:
        raise SettingsError("max files per trigger must be at least 1")
    v["trigger_kind"], v["trigger_seconds"] = parse_trigger(v["trigger"])
    url = args.database_url or env.get("DATABASE_URL")
    v["print_settings"] = bool(args.print_settings)
    if not url and not args.print_settings:
        raise SettingsError("no database: set DATABASE_URL (postgresql://user:password@host:port/db) or pass --database-url")
    if url:
        v["jdbc_url"], v["jdbc_user"], v["jdbc_password"] = jdbc_from_database_url(url)
    else:
        v["jdbc_url"] = v["jdbc_user"] = v["jdbc_password"] = None
    v["failpoint"] = env.get("ECOMSTREAM_FAILPOINT") or None
    return Settings(**v)
