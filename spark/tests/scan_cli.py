"""Scans files the way one Spark batch does, without Spark, for the differential test
(test/spark/differential.test.ts): stdin {"files": [paths in batch order], "batchTimestampMs": N}, stdout one
JSON record per line: {"file", "line", "reason", "raw", "values"} with in-batch duplicates decided as the
job's window does (first occurrence in file, line order among valid rows)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ecomstream_spark.contract import load_contract  # noqa: E402
from ecomstream_spark.rows import Rules, scan_file  # noqa: E402


def main():
    req = json.load(sys.stdin)
    rules = Rules(load_contract())
    seen = set()
    out = sys.stdout
    for path in req["files"]:
        name = os.path.basename(path)
        with open(path, "rb") as f:
            content = f.read()
        for line_no, raw, reason, detail, values in scan_file(name, content, rules, int(req["batchTimestampMs"])):
            if reason is None:
                key = values[rules.key_idx]
                if key in seen:
                    reason, values = "duplicate_event_id", None
                else:
                    seen.add(key)
            out.write(json.dumps({"file": name, "line": line_no, "reason": reason, "raw": raw, "values": values}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
