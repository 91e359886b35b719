"""The event contract as the Spark job sees it.

The TypeScript contract (src/contract/event.ts) is the one definition; `ecomstream contract --out
spark/event_contract.json` exports it, and test/spark/contract.test.ts fails when the file is stale. Nothing
here repeats a column, a type, an allowed value or a reason code: everything is read from that JSON.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional

DEFAULT_CONTRACT_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "event_contract.json")
SUPPORTED_VERSION = 1


class ContractError(Exception):
    """The contract file is missing, unreadable or not a version this job understands."""


class Contract:
    """Read-only view of event_contract.json with the derived lookups the job needs."""

    def __init__(self, raw: Dict[str, Any], source: str = "<dict>") -> None:
        self.raw = raw
        self.source = source
        try:
            version = raw["version"]
            if version != SUPPORTED_VERSION:
                raise ContractError(f"{source}: contract version {version}, this job reads version {SUPPORTED_VERSION}")
            self.header: str = raw["header"]
            self.columns: List[Dict[str, Any]] = list(raw["columns"])
            self.column_names: List[str] = [c["name"] for c in self.columns]
            self.required: List[str] = [c["name"] for c in self.columns if c["required"]]
            self.optional: List[str] = list(raw["optionalColumns"])
            self.reasons: Dict[str, str] = dict(raw["reasons"])
            self.file_notice_reasons: List[str] = list(raw["fileNoticeReasons"])
            rules = raw["rules"]
            self.max_event_age_hours: float = rules["maxEventAgeHours"]
            self.future_tolerance_seconds: float = rules["futureToleranceSeconds"]
            q = rules["qualityScore"]
            self.quality_all_present: float = q["allPresent"]
            self.quality_one_missing: float = q["oneMissing"]
            self.quality_more_missing: float = q["moreMissing"]
        except KeyError as e:
            raise ContractError(f"{source}: missing key {e}") from e

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
            f"cannot read the event contract {path}: {e} "
            "(generate it with `node bin/ecomstream.js contract --out spark/event_contract.json`)"
        ) from e
    return Contract(raw, path)
