"""Progress records: one JSON line per committed batch, the shape of the TypeScript engine's
(src/engine/progress.ts), which follows Spark's StreamingQueryProgress — so the dashboard reads either."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional


def percentile_p50(values: List[float]) -> float:
    s = sorted(values)
    return s[(len(s) - 1) // 2] if s else 0


def make_record(
    *,
    stream_id: str,
    batch_id: int,
    batch_timestamp_iso: str,
    committed_at_iso: str,
    replay: bool,
    already_committed: bool,
    files: List[str],
    num_input_rows: int,
    inserted_rows: int,
    duplicate_rows: int,
    rejected_rows: int,
    quality_score: Optional[float],
    durations_ms: Dict[str, int],
    latencies_ms: List[float],
    backlog_files: int = 0,
) -> Dict[str, Any]:
    total = durations_ms.get("total", 0)
    return {
        "engine": "spark",
        "streamId": stream_id,
        "batchId": batch_id,
        "batchTimestamp": batch_timestamp_iso,
        "committedAt": committed_at_iso,
        "replay": replay,
        "alreadyCommitted": already_committed,
        "files": files,
        "numInputRows": num_input_rows,
        "insertedRows": inserted_rows,
        "duplicateRows": duplicate_rows,
        "rejectedRows": rejected_rows,
        "qualityScore": quality_score,
        "processedRowsPerSecond": int(round(num_input_rows / total * 1000)) if total > 0 else 0,
        "durationMs": {k: int(durations_ms.get(k, 0)) for k in ("plan", "read", "write", "commit", "total")},
        "latencyMs": {"p50": int(round(percentile_p50(latencies_ms))), "max": int(round(max(latencies_ms)))} if latencies_ms else {"p50": 0, "max": 0},
        "backlogFiles": backlog_files,
        # The TypeScript engine's COPY fast path has an ON CONFLICT fallback; this job always writes through
        # staging + ON CONFLICT, so there is no fallback to report.
        "usedFallback": False,
    }


def append(path: str, record: Dict[str, Any]) -> None:
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, separators=(",", ":")) + "\n")


def format_line(p: Dict[str, Any]) -> str:
    tag = " (already committed, skipped)" if p["alreadyCommitted"] else " (replayed)" if p["replay"] else ""
    files = p["files"][0] if len(p["files"]) == 1 else "%d files" % len(p["files"])
    return "batch %d%s: %s: %d rows -> %d inserted, %d duplicate, %d rejected in %d ms (%s rows/s, latency %d ms)" % (
        p["batchId"],
        tag,
        files,
        p["numInputRows"],
        p["insertedRows"],
        p["duplicateRows"],
        p["rejectedRows"],
        p["durationMs"]["total"],
        "{:,}".format(p["processedRowsPerSecond"]),
        p["latencyMs"]["max"],
    )
