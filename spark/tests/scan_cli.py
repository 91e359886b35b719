"""Scans files the way Spark batches do, without Spark: the Python evaluator of the contract for the tests
that compare it with the TypeScript one (test/unit/contract-vectors.test.ts, test/unit/differential.test.ts).

stdin:  {"contract": path or null (the event contract), "batches": [{"files": [paths in batch order],
         "batchTimestampMs": N}, ...]}
stdout: one JSON record per line: {"batch", "file", "line", "reason", "detail", "raw", "values"}, in-batch
        duplicates decided as the job's window does (first occurrence in file, line order among valid
        rows); then per batch {"batch", "summary": true, "validRows", "qualitySum"}.
Needs only the Python standard library."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ecomstream_spark.contract import load_contract
from ecomstream_spark.rows import Rules, render, scan_file


def main():
    req = json.load(sys.stdin)
    contract = load_contract(req.get("contract"))
    rules = Rules(contract)
    dup = contract.reader["duplicate"]
    out = sys.stdout
    for b, batch in enumerate(req["batches"]):
        seen = set()
        valid, quality_sum = 0, 0.0
        for path in batch["files"]:
            name = os.path.basename(path)
            with open(path, "rb") as f:
                content = f.read()
            for line_no, raw, reason, detail, values, score in scan_file(name, content, rules, int(batch["batchTimestampMs"])):
                if reason is None:
                    key = values[rules.key_idx]
                    if key in seen:
                        reason, detail = dup["reason"], render(dup["detailInBatch"], column=contract.conflict_key, value=key)
                        values = None
                    else:
                        seen.add(key)
                        valid += 1
                        quality_sum += score
                record = {"batch": b, "file": name, "line": line_no, "reason": reason, "detail": detail, "raw": raw, "values": values}
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
        out.write(json.dumps({"batch": b, "summary": True, "validRows": valid, "qualitySum": quality_sum}) + "\n")


if __name__ == "__main__":
    main()
