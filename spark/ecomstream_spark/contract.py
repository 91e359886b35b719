"""The feed contract as the Spark job sees it.

The TypeScript contract (src/contract/event.ts, shape and semantics in src/contract/schema.ts) is the one
definition; `ecomstream contract --out spark/event_contract.json` exports it, and test/unit/contract-json.test.ts
fails when the file is stale. `--contract FILE` reads another feed's contract in the same form. Nothing
here repeats a column, a type, an allowed value or a reason code: everything is read from that JSON.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Dict, List, Optional

DEFAULT_CONTRACT_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "event_contract.json")
SUPPORTED_VERSION = 6


class ContractError(Exception):
    """The contract file is missing, unreadable or not a version this job understands."""


class Contract:
    """Read-only view of a contract JSON (event_contract.json by default) with the lookups the job needs."""

    def __init__(self, raw: Dict[str, Any], source: str = "<dict>") -> None:
        self.raw = raw
        self.source = source
        try:
            version = raw["version"]
            if version != SUPPORTED_VERSION:
                raise ContractError(f"{source}: contract version {version}, this job reads version {SUPPORTED_VERSION}")
            self.name: str = raw["name"]
            self.table: str = raw["table"]
            self.conflict_key: str = raw["conflictKey"]
            self.header: str = raw["header"]
            self.columns: List[Dict[str, Any]] = list(raw["columns"])
            self.column_names: List[str] = [c["name"] for c in self.columns]
            self.required: List[str] = [c["name"] for c in self.columns if c["required"]]
            self.optional: List[str] = [c["name"] for c in self.columns if not c["required"]]
            self.checks: List[Dict[str, Any]] = list(raw["checks"])
            self.reader: Dict[str, Dict[str, Any]] = dict(raw["reader"])
            self.engine: Dict[str, Dict[str, Any]] = dict(raw["engine"])
            self.split_details: Dict[str, str] = dict(self.reader["malformed"]["detailSplit"])
            # The codes split_csv_line (rows.py) gives, as the exporter lists them: each needs a template.
            self.split_failures: List[str] = list(raw["splitFailures"])
            self.reasons: Dict[str, str] = dict(raw["reasons"])
            self.file_notice_reasons: List[str] = list(raw["fileNoticeReasons"])
            self.limits: Dict[str, Any] = dict(raw["limits"])
            self.max_event_age_hours: float = self.limits["maxEventAgeHours"]
            self.future_tolerance_seconds: float = self.limits["futureToleranceSeconds"]
            self.quality_weights: List[float] = [float(w) for w in raw["qualityWeights"]]
            self.decimal_pattern: str = raw["decimalPattern"]
            self.timestamp_pattern: str = raw["timestampPattern"]
            self.identifier_pattern: str = raw["identifierPattern"]
            self.trim_characters: str = raw["trimCharacters"]
            retryable = raw["retryableSqlstates"]
            #: SQLSTATE classes and codes worth a retry of the batch (src/db/sqlstates.ts).
            self.retryable_sqlstate_classes: List[str] = list(retryable["classes"])
            self.retryable_sqlstates: List[str] = list(retryable["codes"])
            #: The epoch's statements and names (src/db/epoch.ts), run by fencing.Fence.
            self.fencing: Dict[str, Any] = dict(raw["fencing"])
            published = raw["published"]
            self.published_suffix: str = published["suffix"]
            self.hidden_prefixes: List[str] = list(published["hiddenPrefixes"])
            self.quality_decimals: int = int(raw["batchQuality"]["decimals"])
        except KeyError as e:
            raise ContractError(f"{source}: missing key {e}") from e
        for check in self.checks:
            self.reason(check["reason"])
            if "column" in check:
                self.column(check["column"])
        for entry in list(self.reader.values()) + list(self.engine.values()):
            self.reason(entry["reason"])
        for code in self.split_failures:
            if not isinstance(self.split_details.get(code), str):
                raise ContractError(f"{source}: reader.malformed.detailSplit has no {code} template")

    def column(self, name: str) -> Dict[str, Any]:
        for c in self.columns:
            if c["name"] == name:
                return c
        raise ContractError(f"{self.source}: no column {name!r}")

    def index(self, name: str) -> int:
        return self.column_names.index(name)

    def columns_of_type(self, type_name: str) -> List[str]:
        return [c["name"] for c in self.columns if c["type"] == type_name]

    def allowed(self, name: str) -> Optional[List[str]]:
        values = self.column(name).get("allowed")
        return list(values) if values is not None else None

    def is_published(self, name: str) -> bool:
        """The published-file rule of src/contract/batch.ts, with its suffix and prefixes from the JSON."""
        return len(name) > len(self.published_suffix) and name.endswith(self.published_suffix) and not name.startswith(tuple(self.hidden_prefixes))

    def quality_score(self, stored_quality_sum: float, stored_rows: int) -> Optional[float]:
        """The batch quality score of src/contract/batch.ts, the same float operations in the same order."""
        if stored_rows <= 0:
            return None
        scale = 10**self.quality_decimals
        return math.floor((stored_quality_sum / stored_rows) * scale + 0.5) / scale

    def reason(self, code: str) -> str:
        """A reason code, checked against the contract so a typo cannot invent a new code."""
        if code not in self.reasons:
            raise ContractError(f"{self.source}: unknown reason code {code!r}")
        return code


def load_contract(path: Optional[str] = None) -> Contract:
    path = path or DEFAULT_CONTRACT_FILE
    try:
        with open(path, "r", encoding="utf-8") as f:
            raw = json.load(f)
    except (OSError, ValueError) as e:
        raise ContractError(
            f"cannot read the event contract {path}: {e} (generate it with `node bin/ecomstream.js contract --out spark/event_contract.json`)"
        ) from e
    return Contract(raw, path)
