"""The reconciliation rule (核对规则) a plugin subclasses: which contracts it joins, on which
keys, after what grace period, and whom it notifies.

A rule reads two sides of the stored records (the current version of each):

- the *subjects* (`subject_contract`): records that call for a counterpart, each yielding
  zero or more `Subject`s (a hospital birth; each tenant of a property);
- the *evidence* (`evidence_contract`): records that can be that counterpart, each yielding
  zero or more `Evidence` (a police newborn registration).

A subject whose `match_key` equals an evidence's `match_key` is matched: exactly, never
by likeness. Where either side lacks the identifier (`match_key` None), the fallback
*proposes* evidence with the same name and a birth date within `fallback_days`; a person
confirms or rejects the proposal (`gateway reconcile confirm|reject`). A subject with no
match is a discrepancy once `event_date + grace` is reached.

A *derived* rule (`DerivedReconciliation`) has no join: it says itself which subjects are
discrepancies (`derive(session)`), e.g. the population register's disagreements between two
present values (多元校核, gateway/register/reconciliation.py). Its discrepancies are opened,
listed, delivered, resolved and counted by the same machinery as a join rule's; one that is no
longer derived is closed with the closure `gone()` names.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from gateway.errors import ConfigError

if TYPE_CHECKING:
    from sqlmodel import Session


@dataclass(frozen=True)
class StoredRecord:
    """The current version of a stored record, as a rule reads it."""

    id: int
    contract: str
    business_key: str
    version: int
    department: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class Subject:
    """One thing a subject record calls for a counterpart of.

    :param key: unique within the rule: what the discrepancy is about (a certificate
        number, an ID number; a stand-in such as `证号` when the identifier is missing).
    :param match_key: the identifier matched exactly against the evidence; None when missing.
    :param identifier_field: the dotted field `key` comes from (for masking and entitlement).
    """

    record: StoredRecord
    key: str
    match_key: str | None
    event_date: dt.date
    identifier_field: str
    identifier_kind: str = "id_number"
    name: str | None = None
    name_field: str | None = None
    birth_date: dt.date | None = None
    shown: dict[str, Any] = field(default_factory=dict)
    """Extra fields shown with the discrepancy (already harmless: dates, codes, roles)."""


@dataclass(frozen=True)
class Evidence:
    """One counterpart an evidence record offers."""

    record: StoredRecord
    match_key: str | None
    name: str | None = None
    birth_date: dt.date | None = None


_GRACE = re.compile(r"^\s*(\d+)\s*(d|day|days|天|m|month|months|个月|月)?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Grace:
    """A grace period: a number of days or of calendar months (`15 days`, `1 month`)."""

    amount: int
    unit: str  # "days" | "months"

    @classmethod
    def parse(cls, value: Any, where: str) -> Grace:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: {value!r} is not a grace period; write e.g. 15, \"15 days\" or \"1 month\"")
        if isinstance(value, int):
            text = str(value)
        elif isinstance(value, str):
            text = value
        else:
            raise ConfigError(f"{where}: {value!r} is not a grace period; write e.g. 15, \"15 days\" or \"1 month\"")
        match = _GRACE.match(text)
        if not match:
            raise ConfigError(f"{where}: {value!r} is not a grace period; write e.g. 15, \"15 days\" or \"1 month\"")
        unit = (match.group(2) or "days").lower()
        return cls(int(match.group(1)), "months" if unit in ("m", "month", "months", "个月", "月") else "days")

    def after(self, day: dt.date) -> dt.date:
        """`day` plus this period; a month from 31 January is the last day of February."""
        if self.unit == "days":
            return day + dt.timedelta(days=self.amount)
        month_index = day.month - 1 + self.amount
        year, month = day.year + month_index // 12, month_index % 12 + 1
        import calendar

        return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))

    def __str__(self) -> str:
        unit = self.unit if self.amount != 1 else self.unit[:-1]
        return f"{self.amount} {unit}"


class Reconciliation:
    """Base class of a reconciliation rule; register subclasses through the
    `register_reconciliations` hook.

    Class attributes (all required but `fallback_days` and `description`):

    - `name`: unique, lowercase words with dashes (`unregistered-births`); the name
      users pass to `--rule` and set the grace of in `[reconciliation.grace]`.
    - `subject_contract`, `evidence_contract`: the contracts joined.
    - `matching_keys`: the dotted fields matched exactly, (subject field, evidence field).
    - `grace`: the default grace period, `"15 days"` or `"1 month"`.
    - `notify`: the departments concerned: the discrepancy list goes to each.
    - `owed_by`: who owes the missing counterpart (补报核对, the `reconcile-evidence`
      obligation of each item); empty (the default): the first of `notify`.
      `[reconciliation.owed_by]` in gateway.toml overrides it per rule.
    - `description`: one line, shown by `gateway reconcile rules`.

    Methods to fill in: `subjects(records)` and `evidence(records)`; both receive the
    current versions of their contract's records and yield `Subject` / `Evidence`.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    subject_contract: ClassVar[str] = ""
    evidence_contract: ClassVar[str] = ""
    matching_keys: ClassVar[tuple[str, str]] = ("", "")
    grace: ClassVar[str] = "30 days"
    notify: ClassVar[tuple[str, ...]] = ()
    owed_by: ClassVar[str] = ""
    fallback_days: ClassVar[int] = 2
    derived: ClassVar[bool] = False  # a DerivedReconciliation says itself what is a discrepancy

    def subjects(self, records: Iterable[StoredRecord]) -> Iterator[Subject]:
        """The subjects among the current versions of `subject_contract`'s records."""
        raise NotImplementedError

    def evidence(self, records: Iterable[StoredRecord]) -> Iterator[Evidence]:
        """The counterparts among the current versions of `evidence_contract`'s records."""
        raise NotImplementedError


class DerivedReconciliation(Reconciliation):
    """A rule whose discrepancies are not missing counterparts but derived facts: two sources
    present and disagreeing. Register it through `register_reconciliations` like any rule.

    Fill in `derive(session)`: every current discrepancy, as a `Subject` whose `key` is stable
    for the same facts and changes when a source sends another value, and whose `record` is
    the stored record shown with it. Optionally `notify_for(subject)` (default `notify`),
    `gone(session, key)` (how an open one no longer derived is closed) and
    `resolved(session, key, reason, by)` (a clerk resolved one through `gateway reconcile
    resolve`: record it where the rule's own data needs it).
    """

    derived: ClassVar[bool] = True
    subject_contract: ClassVar[str] = ""
    evidence_contract: ClassVar[str] = ""

    def derive(self, session: Session) -> Iterator[Subject]:
        raise NotImplementedError

    def notify_for(self, subject: Subject) -> tuple[str, ...]:
        return self.notify

    def gone(self, session: Session, key: str) -> tuple[str, str]:
        """(closure, reason) of an open discrepancy no longer derived."""
        return "withdrawn", "no longer derived from the stored records"

    def resolved(self, session: Session, key: str, reason: str, by: str) -> None:
        """A clerk resolved the discrepancy `key` (`gateway reconcile resolve`)."""


# -- helpers for rules ------------------------------------------------------------------------


def at(payload: dict[str, Any], path: str) -> Any:
    """The value at a dotted path of a payload, or None."""
    node: Any = payload
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def as_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and len(value) >= 10:
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def identifier(value: Any) -> str | None:
    """An identifier as matched: trimmed, upper case (`x` and `X` are the same check character)."""
    if value is None:
        return None
    text = str(value).strip().upper()
    return text or None


_RULE_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


def check_rule_class(rule_class: Any, known: Mapping[str, object] | None = None) -> None:
    """Refuse what `register` cannot use, saying what to fix. `known` are the registered
    contracts (the built-ins and every plugin's), by default the process-wide manager's."""
    import inspect

    from gateway.errors import PluginError
    from gateway.plugins import contracts

    if known is None:
        known = contracts()

    if not (inspect.isclass(rule_class) and issubclass(rule_class, Reconciliation)):
        raise PluginError(f"register() takes a Reconciliation subclass, got {rule_class!r}")
    where = f"Reconciliation rule {rule_class.__module__}.{rule_class.__qualname__}"
    if not _RULE_NAME.match(rule_class.name or ""):
        raise PluginError(f"{where}: name {rule_class.name!r} must be lowercase words joined by dashes")
    if getattr(rule_class, "derived", False):
        if not issubclass(rule_class, DerivedReconciliation) or rule_class.derive is DerivedReconciliation.derive:
            raise PluginError(f"{where} is derived but does not implement derive()")
        if not rule_class.notify:
            raise PluginError(f"{where}: notify names no department")
        Grace.parse(rule_class.grace, f"{where}: grace")
        return
    for attribute in ("subject_contract", "evidence_contract"):
        value = getattr(rule_class, attribute)
        if value not in known:
            raise PluginError(f"{where}: {attribute} {value!r} is not a contract; one of {', '.join(sorted(known))}")
    if not rule_class.notify:
        raise PluginError(f"{where}: notify names no department")
    if len(rule_class.matching_keys) != 2 or not all(rule_class.matching_keys):
        raise PluginError(f"{where}: matching_keys must be (subject field, evidence field)")
    Grace.parse(rule_class.grace, f"{where}: grace")
    for method in ("subjects", "evidence"):
        if getattr(rule_class, method) is getattr(Reconciliation, method):
            raise PluginError(f"{where} does not implement {method}()")
