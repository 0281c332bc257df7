"""Reconciliation (核对): one department's records catch another's omissions.

Each rule (a plugin through `register_reconciliations`; the five built-ins in
`builtin.py`) joins two contracts on exact identifiers; a record whose counterpart is
still missing when its grace period ends is an open discrepancy, closed by itself when
the missing record arrives, or by a person (`gateway reconcile resolve`). The open
discrepancies go to the departments concerned as encrypted, signed lists
(`deliver.py`). A derived rule (`DerivedReconciliation`) says itself what is a
discrepancy: the population register's disagreements come in that way
(gateway/register/reconciliation.py), one mechanism for both. See docs/reconciliation.md.
"""

from __future__ import annotations

from gateway.reconcile.base import DerivedReconciliation, Evidence, Grace, Reconciliation, StoredRecord, Subject
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
    "DerivedReconciliation",
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
