"""Where a contract's rows go: the target table and what the write path needs to know of it."""

from __future__ import annotations

from typing import Any, List, Optional

from .jdbc import quote_ident
from .rows import around_value


class Target(object):
    """Where a contract's rows go: its table, columns (and their types in staging), conflict key and
    duplicate reason with its two details split around the key's value (SQL concatenates them), the
    retryable SQLSTATEs and the batch quality score. Everything comes from the contract; nothing here
    names a column."""

    #: Staging column types: values are parsed by PostgreSQL as they are COPYed into staging (by the
    #: executors' connections, in parallel), so the batch transaction's insert casts nothing.
    _STAGE_TYPES = {"decimal": "NUMERIC", "timestamp": "TIMESTAMP", "varchar": "TEXT"}

    def __init__(self, contract: Any) -> None:
        self.table = quote_ident(contract.table)
        self.column_names: List[str] = list(contract.column_names)
        self.columns = ", ".join(quote_ident(c) for c in self.column_names)
        self.stage_columns = ", ".join("%s %s" % (quote_ident(c["name"]), self._STAGE_TYPES[c["type"]]) for c in contract.columns)
        self.key = quote_ident(contract.conflict_key)
        dup = contract.reader["duplicate"]
        self.duplicate_reason: str = dup["reason"]
        self.in_batch_detail = around_value(dup["detailInBatch"], column=contract.conflict_key)
        self.stored_detail = around_value(dup["detailStored"], column=contract.conflict_key)
        self.retryable_classes = tuple(contract.retryable_sqlstate_classes)
        self.retryable_codes = frozenset(contract.retryable_sqlstates)
        #: The batch quality score over the stored rows (Contract.quality_score).
        self.quality_score = contract.quality_score

    def retryable(self, state: Optional[str]) -> bool:
        """A SQLSTATE the contract lists as worth a retry (connection-level failures)."""
        return state is not None and (state in self.retryable_codes or state[:2] in self.retryable_classes)
