"""Hook specifications: the whole plugin interface of the gateway.

A plugin is a module or object with functions marked `@gateway.hookimpl`, named after
the specs below. Third-party packages declare it in their `pyproject.toml`::

    [project.entry-points.gateway]
    water_board = "water_board.plugin"

The built-in adapters are registered through these same hooks (see `adapters/`), marked
`trylast=True`, so a third-party plugin's hooks run first. Every spec here is documented in
`docs/plugins.md`, and `tests/test_plugins.py` holds a `test_hook_<name>` for each: a test
fails when either falls behind.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from gateway.adapter import Adapter
    from gateway.reconcile.base import Reconciliation

PROJECT = "gateway"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# ---------------------------------------------------------------------------
# Adapters
# ---------------------------------------------------------------------------


@hookspec
def register_adapters(register: Callable[[type[Adapter]], None]) -> None:
    """Register adapter classes (适配器) that read a source's files.

    Call `register(AdapterClass)` once per adapter. Names are unique across every
    installed plugin: registering a name that is already taken raises `PluginError`
    naming both adapters and the packages they come from.

    :param register: the callback that validates and records an adapter class.
    :returns: nothing; results are collected through `register`.
    """


# ---------------------------------------------------------------------------
# Reconciliation
# ---------------------------------------------------------------------------


@hookspec
def register_reconciliations(register: Callable[[type[Reconciliation]], None]) -> None:
    """Register reconciliation rules (核对规则): one department's records that call for
    another's, found missing once a grace period has passed.

    Call `register(RuleClass)` once per rule, with a subclass of
    `gateway.reconcile.Reconciliation` that sets `name`, `subject_contract`,
    `evidence_contract`, `matching_keys`, `grace` and `notify`, and implements
    `subjects(records)` and `evidence(records)` (see docs/reconciliation.md). Names are
    unique across every installed plugin: a name already taken raises `PluginError`
    naming both rules. The built-in rules (`unregistered-births`, ...) come through this
    same hook, marked `trylast=True`. Operators override any rule's grace period under
    `[reconciliation.grace]` in gateway.toml.

    :param register: the callback that validates and records a rule class.
    :returns: nothing; results are collected through `register`.
    """
