"""Sharing agreements (共享协议): who receives which records, and which of their fields.

An agreement names a recipient department, the contract types it receives, the fields it
may see (none unless listed), optional filters (field values, a division-code prefix, an
event-date range), its purpose, the delivery format and the schedule. Agreements live in
`gateway.toml` (`[[agreements]]`) or in the file it names (`agreements_file`, by default
HOME/agreements.toml, written by `gateway init` with the county's agreements).

A township recipient (`town-<9-digit township code>`) receives only its own people
(以行政村（居）为单位, `scope = "township"`, its default): each record's person is placed in
a village with HOME/divisions.csv (`gateway.routing.divisions`: by code first, then by the
township's and village's names in the address); a record that cannot be placed goes to
no township (never guessed) and the delivery says how many were left out.

Senders (发送方): `senders` names the departments or adapters whose exchanges the agreement
takes records from (none given: every sender); and a recipient never receives the records
of its own department's exchanges back (含本部门自己的记录) unless `include_own = true`.

`check_agreements` validates them against the contracts: an unknown contract, recipient
or field is an error that names the valid choices.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from dataclasses import dataclass, field
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from contracts import CONTRACTS, Contract

from gateway.config import Settings, served_departments
from gateway.errors import ConfigError
from gateway.plugins import contracts as registered_contracts
from gateway.routing.divisions import Divisions, DivisionsError, Placement, load_divisions
from gateway.routing.minimize import ALL_FIELDS, ContractFields, FieldPathError, contract_fields

FORMATS = ("csv-gb18030", "csv-utf8", "jsonl")
# Sign-off used to be due `ack_within_hours` clock hours after delivery; it is now due by
# the agreement's `sign_off_rule` on the working-day calendar (docs/obligations.md).
RETIRED_ACK_KEY = "ack_within_hours"
RETIRED_ACK_MESSAGE = (
    "{where}: ack_within_hours 已停用，被忽略：签收时限改按工作日规则 sign_off_rule 计算（默认 sign_off，3个工作日）；"
    "请删除此项，需要其他时限时设 sign_off_rule = \"<[deadlines] 中的规则>\" "
    "(ack_within_hours is no longer used and is ignored: the sign-off is due by sign_off_rule on the working-day "
    "calendar; remove it, and set sign_off_rule to a [deadlines] rule for another period)"
)
SCHEDULES = ("immediate", "daily", "monthly")
FORMAT_LABELS = {
    "csv-gb18030": "CSV, GB18030, Chinese headers",
    "csv-utf8": "CSV, UTF-8 with BOM, Chinese headers",
    "jsonl": "JSON Lines, UTF-8",
}
SCHEDULE_LABELS = {
    "immediate": "immediately, one file per accepted exchange",
    "daily": "daily, one file per day (China Standard Time), sent after the day ends",
    "monthly": "monthly, one file per month (China Standard Time), sent after the month ends",
}
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")

# Where each contract keeps its event date and its division code, for the date-range and
# division-prefix filters (an agreement may name other fields: `date_field`, `division_field`).
# Each contract says so itself (`Contract.event_date_field`, `Contract.division_field`), a
# plugin's as much as a built-in's; these two read them from the registry.


def default_date_field(contract: str) -> str | None:
    """The contract's own event-date field (`event_date_field`), None for an unknown contract."""
    model = registered_contracts().get(contract)
    return model.event_date_field if model is not None else None


def default_division_field(contract: str) -> str | None:
    """The contract's own division-code field (`division_field`), None for an unknown contract."""
    model = registered_contracts().get(contract)
    return model.division_field if model is not None else None


# The built-in contracts' defaults, as they read before the contracts said so themselves.
DEFAULT_DATE_FIELD: dict[str, str] = {
    name: model.event_date_field for name, model in CONTRACTS.items() if model.event_date_field
}
DEFAULT_DIVISION_FIELD: dict[str, str] = {
    name: model.division_field for name, model in CONTRACTS.items() if model.division_field
}

# Where each contract says where its person lives, for the township scope: (address, division
# code) pairs, the first one placed in a village decides (the residence before the household,
# as the register places people).
SCOPE_PLACES: dict[str, tuple[tuple[str, str | None], ...]] = {
    "BirthEvent": (("home_address", "registered_division_code"), ("household.address", "household.division_code")),
    "DeathEvent": (("household.address", "household.division_code"),),
    "Migration": (("household.address", "household.division_code"),),
    "ResidencePermit": (("residence.address", "residence.division_code"), ("household.address", "household.division_code")),
    "HousingOccupancy": (("address", "division_code"),),
    "SchoolEnrolment": (("current_address", None),),
}
TOWNSHIP_RECIPIENT = re.compile(r"^town-(\d{9})$")


def _listify(value: object) -> object:
    return [value] if isinstance(value, str) else value


class Filters(BaseModel):
    """Which records of the listed contracts the recipient receives; all given filters must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    match: dict[str, list[str]] = Field(
        default_factory=dict, description="field = value or [values]: the record's field must be one of them"
    )
    division_prefix: list[str] = Field(default_factory=list, description="the division code starts with one of these")
    division_field: str | None = Field(default=None, description="where the division code is (default per contract)")
    event_from: dt.date | None = Field(default=None, description="first event date included")
    event_until: dt.date | None = Field(default=None, description="last event date included")
    date_field: str | None = Field(default=None, description="where the event date is (default per contract)")

    @field_validator("match", mode="before")
    @classmethod
    def _match_lists(cls, value: object) -> object:
        if not isinstance(value, dict):
            return value
        lists = {key: _listify(items) if isinstance(items, str) else items for key, items in value.items()}
        return {
            key: [_as_text(item) for item in (items if isinstance(items, list) else [items])] for key, items in lists.items()
        }

    @field_validator("division_prefix", mode="before")
    @classmethod
    def _prefix_list(cls, value: object) -> object:
        return _listify(value)

    @field_validator("division_prefix")
    @classmethod
    def _prefix_digits(cls, value: list[str]) -> list[str]:
        for prefix in value:
            if not re.fullmatch(r"\d{2,6}", prefix):
                raise ValueError(f"division_prefix {prefix!r} must be 2 to 6 digits (a province, city or county code)")
        return value

    def describe(self, contract: str) -> list[str]:
        parts = []
        for path, values in self.match.items():
            parts.append(f"{path} is {' or '.join(values)}")
        if self.division_prefix:
            where = self.division_field or default_division_field(contract) or "?"
            parts.append(f"{where} starts with {' or '.join(self.division_prefix)}")
        if self.event_from or self.event_until:
            where = self.date_field or default_date_field(contract) or "?"
            parts.append(f"{where} from {self.event_from or 'any date'} until {self.event_until or 'any date'}")
        return parts


class Agreement(BaseModel):
    """One sharing agreement (one `[[agreements]]` table)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="unique: lowercase letters, digits and dashes")
    recipient: str = Field(description="the department that receives the records")
    contracts: list[str] = Field(min_length=1, description="contract types it receives")
    fields: list[str] | dict[str, list[str]] = Field(
        default_factory=list, description="fields it may see: a list for every contract, or a table per contract"
    )
    filters: Filters = Field(default_factory=Filters)
    scope: Literal["county", "township"] | None = Field(
        default=None,
        description="township: only the records of the recipient township's own people (the default for town-<code>)",
    )
    senders: list[str] = Field(
        default_factory=list,
        description="发送方: departments or adapters whose exchanges it takes records from (none: every sender)",
    )
    include_own: bool = Field(
        default=False, description="含本部门自己的记录: also the records of the recipient's own department's exchanges"
    )
    purpose: str = Field(min_length=1, description="why the recipient receives them")
    format: Literal["csv-gb18030", "csv-utf8", "jsonl"] = "csv-utf8"
    schedule: Literal["immediate", "daily", "monthly"] = "immediate"
    sign_off_rule: str = Field(
        default="sign_off",
        pattern=r"^[a-z][a-z0-9_]{0,40}$",
        description="the deadline rule of its sign-off (签收): sign_off (3 working days) or a [deadlines.RULE]",
    )

    @field_validator("name")
    @classmethod
    def _name_form(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"agreement name {value!r} must be lowercase letters, digits and dashes")
        return value

    @field_validator("contracts", "senders", mode="before")
    @classmethod
    def _contract_list(cls, value: object) -> object:
        return _listify(value)

    def fields_for(self, contract: str) -> list[str]:
        if isinstance(self.fields, dict):
            return list(self.fields.get(contract, []))
        return list(self.fields)


@dataclass
class Problem:
    agreement: str
    message: str
    level: str = "error"

    def __str__(self) -> str:
        return f"agreement {self.agreement!r}: {self.message}"


@dataclass
class CompiledAgreement:
    """An agreement checked against its contracts, ready to route: the leaf fields each
    contract delivers, and the resolved filter fields."""

    agreement: Agreement
    columns: dict[str, list[str]] = field(default_factory=dict)  # contract -> leaf paths delivered, in contract order
    date_field: dict[str, str | None] = field(default_factory=dict)
    division_field: dict[str, str | None] = field(default_factory=dict)
    township: str | None = None  # the recipient township's 12-digit code when scope is township
    divisions: Divisions | None = None

    @property
    def name(self) -> str:
        return self.agreement.name

    @property
    def recipient(self) -> str:
        return self.agreement.recipient

    def covers(self, contract: str) -> bool:
        return contract in self.agreement.contracts and bool(self.columns.get(contract))

    def takes_from(self, department: str, adapter: str | None) -> bool:
        """Whether records of an exchange sent by this department (read by this adapter)
        fall under the agreement: one of its senders (发送方; none named: any), and not
        the recipient's own department unless `include_own` (含本部门自己的记录)."""
        agreement = self.agreement
        if department == agreement.recipient and not agreement.include_own:
            return False
        if agreement.senders and department not in agreement.senders and (adapter is None or adapter not in agreement.senders):
            return False
        return True

    def describe_senders(self) -> str:
        """发送方 in words, Chinese first (for `explain` and `list`)."""
        agreement = self.agreement
        who = "、".join(agreement.senders) if agreement.senders else "所有发送方"
        english = ", ".join(agreement.senders) if agreement.senders else "every sender"
        return f"{who} / {english}"

    def admits(self, contract: str, payload: Mapping[str, object]) -> bool:
        """Whether a record (its stored canonical JSON, as a dict) falls under this agreement."""
        from gateway.routing.minimize import values_at

        if self.township is not None:
            placed = self.place(contract, payload)  # a village of this township, or not its own: never guessed
            if placed.status != "village" or placed.township != self.township:
                return False
        filters = self.agreement.filters
        for path, allowed in filters.match.items():
            values = [_as_text(v) for v in values_at(payload, path)]
            if not values or not all(v in allowed for v in values):
                return False
        if filters.division_prefix:
            where = self.division_field.get(contract)
            codes = [str(v) for v in values_at(payload, where)] if where else []
            if not codes or not all(code.startswith(tuple(filters.division_prefix)) for code in codes):
                return False
        if filters.event_from or filters.event_until:
            where = self.date_field.get(contract)
            day = _event_date(values_at(payload, where)) if where else None
            if day is None:
                return False
            if filters.event_from and day < filters.event_from:
                return False
            if filters.event_until and day > filters.event_until:
                return False
        return True

    def place(self, contract: str, payload: Mapping[str, object]) -> Placement:
        """Where the record's person lives: the first of the contract's places found in a village,
        else the first place's status (unmatched, elsewhere or none). Never a guess."""
        from gateway.routing.minimize import values_at

        if self.divisions is None:
            return Placement("none")
        found: list[Placement] = []
        for address_path, code_path in SCOPE_PLACES.get(contract, ()):
            addresses = [str(v) for v in values_at(payload, address_path) if v]
            codes = [str(v) for v in values_at(payload, code_path) if v] if code_path else []
            if not addresses and not codes:
                continue
            placement = self.divisions.match(addresses[0] if addresses else None, codes[0] if codes else None)
            if placement.status == "village":
                return placement
            found.append(placement)
        return found[0] if found else Placement("none")


def _as_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _event_date(values: list[object]) -> dt.date | None:
    if len(values) != 1 or not isinstance(values[0], str):
        return None
    text = values[0]
    try:
        if re.fullmatch(r"\d{4}-\d{2}", text):  # 入学年月
            return dt.date.fromisoformat(text + "-01")
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        return None


@dataclass
class AgreementSet:
    """The agreements of one gateway home, with where they came from."""

    agreements: list[CompiledAgreement]
    sources: list[str]
    problems: list[Problem]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "warning"]

    def for_recipient(self, department: str) -> list[CompiledAgreement]:
        return [a for a in self.agreements if a.recipient == department]

    def by_name(self, name: str) -> CompiledAgreement | None:
        return next((a for a in self.agreements if a.name == name), None)

    def covering(self, contract: str) -> list[CompiledAgreement]:
        return [a for a in self.agreements if a.covers(contract)]


def agreements_path(settings: Settings) -> Path | None:
    if not settings.agreements_file:
        return None
    path = Path(settings.agreements_file)
    return path if path.is_absolute() else settings.home / path


def _raw_agreements(settings: Settings) -> tuple[list[tuple[str, object]], list[str]]:
    """(where, table) for every [[agreements]] table, from gateway.toml and the named file
    (a table from the file may be anything: load_agreements checks it)."""
    found: list[tuple[str, object]] = [(f"gateway.toml [[agreements]] #{n}", table) for n, table in enumerate(settings.agreements, 1)]
    sources = ["gateway.toml"] if settings.agreements else []
    path = agreements_path(settings)
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(
                f"agreements_file = {settings.agreements_file!r} in gateway.toml, but {path} does not exist. "
                f"Create it (`gateway init` writes the county's default agreements), or set agreements_file = \"\""
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
        unknown = sorted(set(data) - {"agreements"})
        if unknown:
            raise ConfigError(f"{path}: unknown top-level key(s) {', '.join(unknown)}; only [[agreements]] tables belong here")
        tables = data.get("agreements", [])
        if not isinstance(tables, list):
            raise ConfigError(f"{path}: `agreements` must be an array of tables ([[agreements]])")
        found += [(f"{path.name} [[agreements]] #{n}", table) for n, table in enumerate(tables, 1)]
        sources.append(str(path))
    return found, sources


def installed_adapters() -> dict[str, str]:
    """Every installed adapter's name and its department (the senders an agreement may name)."""
    from gateway.plugins import get_manager

    return {name: info.department for name, info in get_manager().adapters().items()}


def load_agreements(settings: Settings, adapters: Mapping[str, str] | None = None) -> AgreementSet:
    """Read and check every agreement. Raises ConfigError only when a file cannot be read;
    problems with single agreements are listed in the result (those agreements are left out).
    `adapters` (adapter name -> department) are the senders an agreement may name besides the
    departments: by default the installed ones."""
    raw, sources = _raw_agreements(settings)
    if adapters is None:
        adapters = installed_adapters()
    # a department an installed adapter reads is a department, listed in gateway.toml or not
    departments = served_departments(settings, adapters.values())
    problems: list[Problem] = []
    compiled: list[CompiledAgreement] = []
    names: set[str] = set()
    for where, table in raw:
        label = str(table.get("name", where)) if isinstance(table, dict) else where
        if isinstance(table, dict) and RETIRED_ACK_KEY in table:
            # Clock hours ran through holidays (a delivery on 30 September was "due" on
            # 3 October); an installation that still sets the key keeps working and is told why.
            table = {key: value for key, value in table.items() if key != RETIRED_ACK_KEY}
            problems.append(Problem(label, RETIRED_ACK_MESSAGE.format(where=where), "warning"))
        try:
            agreement = Agreement.model_validate(table)
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                loc = ".".join(str(part) for part in error["loc"]) or "(table)"
                problems.append(Problem(label, f"{where}: {loc}: {error['msg']}"))
            continue
        if agreement.name in names:
            problems.append(Problem(agreement.name, f"{where}: the name is used by another agreement; names must be unique"))
            continue
        names.add(agreement.name)
        result, found = check_agreement(agreement, departments, lambda: load_divisions(settings.home), adapters)
        problems += found
        if result is not None:
            compiled.append(result)
    return AgreementSet(compiled, sources, problems)


def check_agreement(
    agreement: Agreement,
    departments: list[str],
    divisions: Callable[[], Divisions] | None = None,
    adapters: Mapping[str, str] | None = None,
) -> tuple[CompiledAgreement | None, list[Problem]]:
    """Check one agreement against the contracts and the departments; `divisions` gives
    the county's Divisions (called only for a township-scoped agreement); `adapters`
    (adapter name -> department) the adapters its senders may name besides the departments."""
    problems: list[Problem] = []
    known = registered_contracts()  # the built-ins and every plugin's (register_contracts)

    def error(message: str) -> None:
        problems.append(Problem(agreement.name, message))

    known_adapters = dict(adapters or {})
    for sender in agreement.senders:
        if sender not in departments and sender not in known_adapters:
            error(
                f"发送方 {sender!r} 既不是部门也不是已安装的适配器 / unknown sender {sender!r}: neither a department "
                f"nor an installed adapter. Valid choices: departments {', '.join(sorted(departments))}; "
                f"adapters {', '.join(sorted(known_adapters)) or '(none installed)'}"
            )
    own = {agreement.recipient} | {name for name, department in known_adapters.items() if department == agreement.recipient}
    if agreement.senders and set(agreement.senders) <= own and not agreement.include_own:
        problems.append(Problem(
            agreement.name,
            f"发送方只有收件部门 {agreement.recipient} 自己，而本部门自己的记录不发回：此协议不会发出任何记录；"
            "需要时设 include_own = true / its senders are the recipient's own department only, whose records are "
            "never sent back to it: the agreement delivers nothing (set include_own = true if that is meant)",
            "warning",
        ))

    township_match = TOWNSHIP_RECIPIENT.match(agreement.recipient)
    scoped = agreement.scope == "township" or (agreement.scope is None and township_match is not None)
    township: str | None = None
    county: Divisions | None = None
    if scoped and township_match is None:
        error(
            f"scope = \"township\" needs a township recipient named town-<9-digit township code>, "
            f"not {agreement.recipient!r}"
        )
    elif scoped and township_match is not None:
        try:
            county = divisions() if divisions is not None else None
        except DivisionsError as exc:
            error(f"the township scope places records with divisions.csv: {exc}")
        if county is not None:
            township = township_match.group(1) + "000"
            if township not in county.townships:
                error(
                    f"recipient {agreement.recipient} is no township of divisions.csv. Valid choices: "
                    + ", ".join(d.recipient for d in county.townships.values())
                )
        elif not problems:
            error("the township scope places records with divisions.csv, which was not given")
        for name in agreement.contracts:
            if name in known and name not in SCOPE_PLACES:
                error(
                    f"{name} names no address to place its person in a township; a township receives "
                    f"{', '.join(sorted(SCOPE_PLACES))} only (or set scope = \"county\")"
                )

    if agreement.recipient not in departments:
        error(f"recipient {agreement.recipient!r} is not a department. Valid choices: {', '.join(sorted(departments))}")
    models: dict[str, type[Contract]] = {}
    for name in agreement.contracts:
        if name not in known:
            error(f"unknown contract {name!r}. Valid choices: {', '.join(sorted(known))}")
        else:
            models[name] = known[name]
    if isinstance(agreement.fields, dict):
        for name in agreement.fields:
            if name not in agreement.contracts:
                error(f"fields are given for {name!r}, which is not in contracts = {agreement.contracts}")
    compiled = CompiledAgreement(agreement, township=township, divisions=county if township else None)
    for name, model in models.items():
        described = contract_fields(model)
        wanted = agreement.fields_for(name)
        if not wanted:
            problems.append(
                Problem(agreement.name, f"no fields are allowed for {name}: the recipient receives none of its records", "warning")
            )
        try:
            compiled.columns[name] = described.expand(wanted)
        except FieldPathError as exc:
            error(f"{name}: {exc}")
        for path in agreement.filters.match:
            _check_path(described, name, path, "filters.match", error)
        compiled.date_field[name] = _filter_field(
            described, name, agreement.filters.date_field, default_date_field(name),
            bool(agreement.filters.event_from or agreement.filters.event_until), "date_field", "an event date", error,
        )
        compiled.division_field[name] = _filter_field(
            described, name, agreement.filters.division_field, default_division_field(name),
            bool(agreement.filters.division_prefix), "division_field", "a division code", error,
        )
    f = agreement.filters
    if f.event_from and f.event_until and f.event_from > f.event_until:
        error(f"filters.event_from {f.event_from} is after filters.event_until {f.event_until}")
    if any(p.level == "error" for p in problems):
        return None, problems
    return compiled, problems


def _check_path(described: ContractFields, contract: str, path: str, where: str, error: Callable[[str], None]) -> bool:
    try:
        leaves = described.expand([path])
    except FieldPathError as exc:
        error(f"{where}: {contract}: {exc}")
        return False
    if leaves != [path]:
        error(f"{where}: {contract}.{path} is a part with fields of its own, not a single field; name one of {', '.join(leaves)}")
        return False
    return True


def _filter_field(
    described: ContractFields, contract: str, given: str | None, default: str | None, used: bool, option: str, what: str, error: Callable[[str], None]
) -> str | None:
    path = given or default
    if path is None:
        if used:
            error(f"{contract} has no field known to hold {what}; name one with filters.{option}, or drop the filter")
        return None
    if given is not None or used:
        if not _check_path(described, contract, path, f"filters.{option}", error):
            return None
    return path


def check_agreements(settings: Settings) -> AgreementSet:
    """The agreements of this home, checked (`gateway agreements check`)."""
    return load_agreements(settings)


__all__ = [
    "ALL_FIELDS",
    "Agreement",
    "AgreementSet",
    "CompiledAgreement",
    "DEFAULT_DATE_FIELD",
    "DEFAULT_DIVISION_FIELD",
    "FORMATS",
    "FORMAT_LABELS",
    "Filters",
    "Problem",
    "SCHEDULES",
    "SCOPE_PLACES",
    "TOWNSHIP_RECIPIENT",
    "SCHEDULE_LABELS",
    "agreements_path",
    "check_agreements",
    "default_date_field",
    "default_division_field",
    "installed_adapters",
    "load_agreements",
]


AGREEMENTS_FILE = "agreements.toml"

DEFAULT_AGREEMENTS = """\
# Sharing agreements (共享协议) of the county: who receives which records, and which of
# their fields. gateway.toml names this file (agreements_file = "agreements.toml").
#
#   gateway agreements check                 validate against the contracts
#   gateway agreements explain school        what a department receives, field by field
#
# Each [[agreements]] table:
#   name         unique: lowercase letters, digits and dashes
#   recipient    the receiving department: deliveries go to its outbox, encrypted to its
#                registered key (`gateway keys import KEY.asc --department NAME`)
#   contracts    contract types: BirthEvent, DeathEvent, Migration, ResidencePermit,
#                MarriageEvent, AdoptionEvent, CremationEvent, SchoolEnrolment, ...
#   fields       the fields it may see; NONE unless listed. Dotted paths ("child.name"), a
#                part for all its fields ("mother"), or "*" for every field. A list applies
#                to every contract listed; a table gives them per contract:
#                  [agreements.fields]
#                  BirthEvent = ["child.name"]
#   purpose      why it receives them (shown by `explain` and kept with the audit trail)
#   format       "csv-gb18030" | "csv-utf8" (UTF-8 with BOM) | "jsonl" (JSON Lines)
#   schedule     "immediate" (one file per accepted exchange) | "daily" | "monthly"
#                (one file per day or month, China Standard Time, sent once it is over)
#   senders      发送方: departments or adapters whose exchanges it takes records from, e.g.
#                ["social_security"] or ["police-hukou"]; absent: every sender
#   include_own  含本部门自己的记录: true to receive the records of the recipient's own
#                department's exchanges too; by default they never go back to it
#   scope        "township": only the recipient township's own people, placed in a village
#                by divisions.csv (unplaced records go to no township); the default, and
#                only choice besides "county", for a recipient named town-<9-digit code>
#   sign_off_rule  the recipient signs off (drops ACK-<delivery id>.json) by this deadline
#                rule: "sign_off" (default: 3 working days, docs/obligations.md) or one of
#                gateway.toml's [deadlines.RULE], e.g. 5 working days for 签收并核对报数
#   [agreements.filters]  all given must hold:
#     match           = { registration = "hospital" }  a field's value (or a list of values)
#     division_prefix = ["440781"]       the division code starts with one of these
#     division_field  = "household.division_code"    where it is (default per contract)
#     event_from      = 2026-01-01       event date range, both ends included
#     event_until     = 2026-12-31
#     date_field      = "child.birth_date"           where it is (default per contract)

# The population office (人口办) receives births, deaths, migrations, marriages and
# enrolments in full.
[[agreements]]
name = "population-office-all"
recipient = "population-office"
contracts = ["BirthEvent", "DeathEvent", "Migration", "MarriageEvent", "SchoolEnrolment"]
fields = ["*"]
purpose = "人口统计与人口服务管理 (population statistics and services)"
format = "jsonl"
schedule = "immediate"

# Schools (教育) receive hospital births, to plan places for the children: the child's
# name, sex and birth date, the home address and the registered division code only,
# never the mother's ID number.
[[agreements]]
name = "schools-births"
recipient = "school"
contracts = ["BirthEvent"]
fields = ["child.name", "child.sex", "child.birth_date", "home_address", "registered_division_code"]
purpose = "学位规划 (planning school places)"
format = "csv-gb18030"
schedule = "immediate"   # or "monthly"
[agreements.filters]
match = { registration = "hospital" }

# The police (公安) receive hospital births, so that a newborn never registered into a
# household is noticed.
[[agreements]]
name = "police-hospital-births"
recipient = "police"
contracts = ["BirthEvent"]
fields = [
    "birth_certificate_no", "child.name", "child.sex", "child.birth_date",
    "mother.name", "mother.id_number", "father.name", "father.id_number",
    "institution_name", "home_address", "registered_division_code",
]
purpose = "发现未落户的新生儿 (noticing newborns not registered in a household)"
format = "csv-utf8"
schedule = "immediate"
[agreements.filters]
match = { registration = "hospital" }

# Civil affairs (民政) receive deaths, so that cremations can be matched.
[[agreements]]
name = "civil-affairs-deaths"
recipient = "civil-affairs"
contracts = ["DeathEvent"]
fields = ["deceased.name", "deceased.id_number", "deceased.sex", "deceased.birth_date", "death_date", "household.division_code"]
purpose = "火化与死亡登记比对 (matching cremations with deaths)"
format = "csv-gb18030"
schedule = "immediate"
"""


def write_default_agreements(home: Path) -> bool:
    """Write HOME/agreements.toml with the county's agreements unless it exists."""
    path = home / AGREEMENTS_FILE
    if path.exists():
        return False
    path.write_text(DEFAULT_AGREEMENTS, encoding="utf-8")
    return True
