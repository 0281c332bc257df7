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

from gateway.masking import FieldKind

if TYPE_CHECKING:  # the types plugins are handed (type-only: see docs/architecture.md)
    from contracts.base import Contract
    from gateway.adapter import Adapter
    from gateway.exchange.lifecycle import Gateway
    from gateway.reconcile.base import Reconciliation
    from gateway.scheduler.runner import Job

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
# Contracts, field kinds and reason texts
# ---------------------------------------------------------------------------


@hookspec
def register_contracts(register: Callable[[type[Contract]], None]) -> None:
    """Register contracts (数据契约): the record types an adapter emits, agreements share,
    reconciliation rules join and `gateway contracts list/show/export` describe.

    Call `register(ContractClass)` once per contract, with a subclass of
    `contracts.Contract` that sets `contract_name` and `business_key_fields` (dotted
    fields that must exist), and optionally `label_zh` (its Chinese name, e.g. 死亡),
    `event_date_field` and `division_field` (what an agreement's date-range and
    division-prefix filters read by default). Every field `kind` it uses must be a
    registered field kind (`register_field_kinds`). Names are unique across every
    installed plugin: a name already taken raises `PluginError` naming both classes and
    their packages. The 12 built-in contracts (`contracts/plugin.py`) come through this
    same hook, marked `trylast=True`.

    :param register: the callback that checks and records a contract class.
    :returns: nothing; results are collected through `register`.
    """


@hookspec
def register_field_kinds(register: Callable[[FieldKind], None]) -> None:
    """Register field kinds (字段类别): how a marked field is masked wherever people or logs
    see it, and whether it is personal data (the privacy scan looks for every personal kind).

    Call `register(FieldKind(name, label_zh, label_en, personal, mask))` once per kind,
    with a `gateway.masking.FieldKind`; `mask(value) -> str` must never return the whole
    value of a personal kind. A contract field uses a kind with
    `Field(json_schema_extra={"kind": NAME})`. The built-in kinds (`name`, `id_number`,
    `address`, `phone`, `document_number`, `free_text`, and the non-personal `credit_code`
    and `division_code`) come through this
    same hook, marked `trylast=True`; a name already taken raises `PluginError`.

    :param register: the callback that checks and records a field kind.
    :returns: nothing; results are collected through `register`.
    """


@hookspec
def register_reasons(register: Callable[[str, str, str], None]) -> None:
    """Register reason texts (拒收原因): the Chinese and English words the rejection report
    (`NAME.errors.csv`) and the console show for an error code.

    Call `register(code, zh, en)` once per code, e.g.
    `register("meter_no_format", "水表编号格式错误", "the meter number is malformed")`.
    `code` is `snake_case`; `zh` and `en` are not empty, else `PluginError`. Every code an
    adapter raises itself (`Adapter.reason_codes`, its `RowRejected` codes) must be
    registered: an adapter naming a code without a text is refused at registration. A code
    registered twice with other texts raises `PluginError`. The built-in texts
    (`contracts.reasons.REASONS`) come through this same hook, marked `trylast=True`.

    :param register: the callback that checks and records one code's texts.
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

    A rule that finds discrepancies itself rather than by a join (two present values that
    disagree) subclasses `gateway.reconcile.DerivedReconciliation` and implements
    `derive(session)` instead; the register's `register-disagreements` is one.

    :param register: the callback that validates and records a rule class.
    :returns: nothing; results are collected through `register`.
    """


# ---------------------------------------------------------------------------
# Scheduled jobs
# ---------------------------------------------------------------------------


@hookspec
def register_jobs(register: Callable[[Job], None], gateway: Gateway) -> None:
    """Register the scheduled jobs (定时任务) that `gateway run` runs, lists in `gateway jobs`
    and in the console, and that `gateway jobs run NAME` starts by hand.

    Call `register(Job(name, run, every=SECONDS | at=["07:00"], description=...))` once per
    job, with a `gateway.scheduler.runner.Job` whose `run(context)` returns a `JobResult`
    and checks `context.should_continue()` between steps. A job runs in a thread of its
    own, under a lease (one process runs it when several share a database) unless
    `leased=False`; open a gateway of its own with `PerThreadGateway(gateway.settings)`
    (`close=gateways.close`), as the built-ins do, and build the job from the settings only:
    the console lists the jobs with a stand-in that has nothing but `settings`. Names are
    unique: a name already taken raises `PluginError` naming both modules. The built-in jobs
    (`inboxes`, `pull:NAME`, `assist-checks`, `reconcile`, `population-reports`) come
    through this same hook, marked `trylast=True`; the scheduler knows none by name.

    :param register: the callback that checks and records a job.
    :param gateway: the gateway of `gateway run` (settings, engine, signer, transports).
    :returns: nothing; results are collected through `register`.
    """
