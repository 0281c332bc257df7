"""Reconciliation (核对): one department's records catch another's omissions.

Each rule (a plugin through `register_reconciliations`; the five built-ins in
`builtin.py`) joins two contracts on exact identifiers; a record whose counterpart is
still missing when its grace period ends is an open discrepancy, closed by itself when
the missing record arrives, or by a person (`gateway reconcile resolve`). The open
discrepancies go to the departments concerned as encrypted, signed lists
(`deliver.py`). See docs/reconciliation.md.
"""

from __future__ import annotations

from gateway.reconcile.base import Evidence, Grace, Reconciliation, StoredRecord, Subject
from gateway.reconcile.evaluate import (
    ConfiguredRule,
    Evaluation,
    OpenItem,
    configured_rules,
    decide_proposal,
    evaluate,
    open_counts,
    open_items,
    resolve,
)

__all__ = [
    "ConfiguredRule",
    "Evaluation",
    "Evidence",
    "Grace",
    "OpenItem",
    "Reconciliation",
    "StoredRecord",
    "Subject",
    "configured_rules",
    "decide_proposal",
    "evaluate",
    "open_counts",
    "open_items",
    "resolve",
]
