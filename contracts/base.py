"""The base every contract derives from."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from functools import cache
from operator import attrgetter
from typing import Any, ClassVar, NamedTuple, get_args

from pydantic import BaseModel, ConfigDict, model_validator

from contracts.canonical import canonical_json, canonical_json_without_floats
from contracts.identity import credit_code_warning, division_warning

SCHEMA_VERSION = "1.0"

# What the register (人口信息库, gateway/register/) keeps of a person, by source: a
# contract's `person_facts` names one of these per fact. `child` is the child's birth
# certificate number (or `adoption|<certificate>`), `moved` `in` or `out`, `spouse` the
# spouse's ID number (`-` after a divorce), dates as YYYY-MM-DD, codes as their code.
PERSON_ATTRIBUTES = (
    "name", "sex", "birth_date", "household_address", "household_division", "residence_address",
    "residence_division", "marital_status", "spouse", "school", "death_date", "child", "moved",
)


class PersonFact(NamedTuple):
    """One thing a record says about one person (事实): their ID number, which of
    `PERSON_ATTRIBUTES`, its value as text, and the date of the event that says it (a
    record reported late takes its place in the person's history at that date)."""

    id_number: str
    attribute: str
    value: str
    event_date: dt.date


def _kind(field_info: Any) -> str | None:
    """The `kind` marker of a field, also when it sits inside `X | None`."""
    extra = field_info.json_schema_extra
    if isinstance(extra, dict) and "kind" in extra:
        return extra["kind"]  # type: ignore[return-value]
    return _annotation_kind(field_info.annotation)


def _annotation_kind(annotation: Any) -> str | None:
    for meta in getattr(annotation, "__metadata__", ()):
        extra = getattr(meta, "json_schema_extra", None)
        if isinstance(extra, dict) and "kind" in extra:
            return extra["kind"]  # type: ignore[no-any-return]
    for arg in get_args(annotation):
        found = _annotation_kind(arg)
        if found:
            return found
    return None


def _model_type(annotation: Any) -> type[BaseModel] | None:
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


class ContractModel(BaseModel):
    """A part of a contract (a person, a party). Extra fields are refused so that a
    misspelt column never disappears silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _blank_is_absent(cls, data: Any) -> Any:
        # Departments leave unused cells empty or padded with spaces: that means "absent".
        if isinstance(data, dict):
            # Most parts have no blank cell: look before copying.
            # `not value or value.isspace()` is `not value.strip()` without making a string.
            for value in data.values():
                if isinstance(value, str) and (not value or value.isspace()):
                    break
            else:
                return data
            return {
                key: (None if isinstance(value, str) and not value.strip() else value) for key, value in data.items()
            }
        return data

    @classmethod
    @cache
    def field_kinds(cls) -> tuple[tuple[tuple[str, ...], str], ...]:
        """Dotted paths of every identifier, name, address and code field, nested parts included."""
        found: list[tuple[tuple[str, ...], str]] = []
        for name, info in cls.model_fields.items():
            kind = _kind(info)
            if kind:
                found.append(((name,), kind))
            sub = _model_type(info.annotation)
            if sub is not None and issubclass(sub, ContractModel):
                found.extend(((name, *path), k) for path, k in sub.field_kinds())
        return tuple(found)

    def iter_kind_values(self) -> Iterator[tuple[tuple[str, ...], str, Any]]:
        """(path, kind, value) for every marked field, descending into lists of parts."""
        for path, kind in self.field_kinds():
            for value in _values_at(self, path):
                yield path, kind, value


def _collect_at(value: Any, path: tuple[str, ...], start: int, out: list[Any]) -> None:
    """`out.extend(_values_at(value, path[start:]))`, without a generator per level."""
    for index in range(start, len(path)):
        if value is None:
            return
        if isinstance(value, (list, tuple)):
            for item in value:
                _collect_at(item, path, index, out)
            return
        value = getattr(value, path[index], None)
    if value is None:
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _collect_at(item, path, len(path), out)
        return
    out.append(value)


# Schema types whose JSON-mode output is str, int, bool, None or containers of them (or
# nested models made of such). A float would need Python's own float formatting (orjson
# spells some differently), so a contract whose schema holds anything else keeps the
# json-module path for its canonical form.
_FLOAT_FREE_SCHEMAS = frozenset(
    {
        "str", "int", "bool", "none", "date", "datetime", "time", "timedelta", "uuid", "url", "multi-host-url", "bytes",
        "enum", "literal", "model", "model-fields", "model-field", "dataclass", "dataclass-args", "dataclass-field",
        "typed-dict", "typed-dict-field", "default", "nullable", "chain", "function-before", "function-after",
        "function-wrap", "no-info", "with-info", "definitions", "definition-ref", "list", "tuple", "set", "frozenset",
        "dict", "union", "tagged-union", "json-or-python", "lax-or-strict",
    }
)


def _plain_json_value(value: Any) -> bool:
    value = getattr(value, "value", value)  # enum members serialize as their value
    return value is None or isinstance(value, (str, int))


def _float_free(schema: Any) -> bool:
    """Whether values of this pydantic-core schema can never dump (mode="json") to a float."""
    if isinstance(schema, (list, tuple)):
        return all(_float_free(item) for item in schema)
    if not isinstance(schema, dict):
        return True
    kind = schema.get("type")
    if isinstance(kind, str):
        if kind not in _FLOAT_FREE_SCHEMAS or "serialization" in schema:
            return False
        if kind == "enum" and not all(_plain_json_value(member) for member in schema.get("members", ())):
            return False
        if kind == "literal" and not all(_plain_json_value(choice) for choice in schema.get("expected", ())):
            return False
        if kind == "model-fields" and schema.get("computed_fields"):
            return False
        if kind == "default" and not _plain_json_value(schema.get("default")) and not isinstance(schema.get("default"), (list, tuple, dict)):
            return False
    config = schema.get("config")
    if isinstance(config, dict) and any(config.get(key, "iso8601") != "iso8601" for key in ("ser_json_temporal", "ser_json_timedelta")):
        return False  # dates or durations dumped as numbers
    for key, sub in schema.items():
        if key in ("metadata", "members", "expected", "default", "cls", "ref", "config"):
            continue
        if not _float_free(sub):
            return False
    return True


def _values_at(value: Any, path: tuple[str, ...]) -> Iterator[Any]:
    if value is None:
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            yield from _values_at(item, path)
        return
    if not path:
        yield value
        return
    yield from _values_at(getattr(value, path[0], None), path[1:])


class Contract(ContractModel):
    """A record the departments exchange.

    Subclasses set `contract_name` (the name used in receipts, routing and schemas) and
    `business_key_fields` (the dotted fields that identify the same real-world event
    across files: the same key with the same content is a duplicate, with different
    content a correction).

    Optional metadata that makes a contract first-class in the gateway (a plugin's as
    much as a built-in's): `label_zh` (its Chinese name, 中文名, shown by
    `gateway contracts list` and the console; default `contract_name`),
    `event_date_field` (the dotted field an agreement's `event_from`/`event_until`
    filter reads by default) and `division_field` (where an agreement's
    `division_prefix` filter finds the division code by default).

    `business_key_includes_source` (身份含来源): True where two departments report the same
    event (a death registered by the police and reported by a family to the social-security
    bureau): the stored key is then `<department>|<business_key()>`, so each source's report
    is a record of its own, never a correction of the other's (`stored_business_key`).
    """

    contract_name: ClassVar[str]
    schema_version: ClassVar[str] = SCHEMA_VERSION
    business_key_fields: ClassVar[tuple[str, ...]]
    business_key_includes_source: ClassVar[bool] = False
    label_zh: ClassVar[str] = ""
    event_date_field: ClassVar[str | None] = None
    division_field: ClassVar[str | None] = None

    @classmethod
    def person_facts(cls, payload: dict[str, Any]) -> Iterator[PersonFact]:
        """What one stored record of this contract says about each person it names, for the
        register (人口信息库): override it, and the register folds the contract's records
        (a file of them then owes the register an update, 5 working days). `payload` is the
        stored record's JSON (`model_dump(mode="json")`: dates as `YYYY-MM-DD`). Yield a
        `PersonFact` per attribute of `PERSON_ATTRIBUTES`; the register ignores a fact
        whose ID number does not check out or whose attribute it does not keep. The
        built-in contracts' facts are read by gateway/register/facts.py; by default a
        contract names nobody the register keeps."""
        return iter(())

    @classmethod
    def gives_person_facts(cls) -> bool:
        """Whether the contract overrides `person_facts` (the register folds its records)."""
        return cls.person_facts.__func__ is not Contract.person_facts.__func__  # type: ignore[attr-defined]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # The Chinese name defaults to the contract's own name, never to a parent's label.
        if "label_zh" not in cls.__dict__ and "contract_name" in cls.__dict__:
            cls.label_zh = cls.__dict__["contract_name"]

    @classmethod
    @cache
    def _business_key_getter(cls) -> Any:
        # attrgetter follows dotted names ("child.birth_date") like the getattr loop it replaces.
        getter = attrgetter(*cls.business_key_fields)
        if len(cls.business_key_fields) == 1:
            return lambda record: (getter(record),)
        return getter

    def business_key(self) -> str:
        return "|".join(
            [
                value if value.__class__ is str else value.isoformat() if hasattr(value, "isoformat") else str(value)
                for value in self._business_key_getter()(self)
            ]
        )

    @classmethod
    @cache
    def _canonical_by_orjson(cls) -> bool:
        """Whether `canonical()` may take the orjson path: no field can dump to a float,
        and `model_dump` is pydantic's own (so calling the serializer directly is the same)."""
        return cls.model_dump is BaseModel.model_dump and _float_free(cls.__pydantic_core_schema__)

    def canonical(self) -> bytes:
        """The record's canonical JSON; absent optional fields are left out, so adding an
        optional field to a contract does not change the hash of existing records.

        The bytes are those of `canonical_json(self.model_dump(mode="json", exclude_none=True))`
        (tests/test_canonical.py pins them); contracts without float fields get them from
        orjson, which is several times faster than the json module.
        """
        if self._canonical_by_orjson():
            return canonical_json_without_floats(
                self.__pydantic_serializer__.to_python(self, mode="json", exclude_none=True)
            )
        return canonical_json(self.model_dump(mode="json", exclude_none=True))

    def record_hash(self) -> str:
        return hashlib.sha256(self.canonical()).hexdigest()

    @classmethod
    @cache
    def _warning_fields(cls) -> tuple[tuple[tuple[str, ...], str, str], ...]:
        """(path, kind, dotted path) of the marked fields that can carry a warning."""
        return tuple((path, kind, ".".join(path)) for path, kind in cls.field_kinds() if kind in ("id_number", "credit_code"))

    def warnings(self) -> list[tuple[str, str, str]]:
        """(dotted field, code, message) for findings that never reject the record."""
        found = []
        for path, kind, dotted in self._warning_fields():
            # Walk the path inline; only a list or tuple on the way needs `_collect_at`.
            value: Any = self
            for part in path:
                if value is None or isinstance(value, (list, tuple)):
                    break
                value = getattr(value, part, None)
            if value is None:
                continue
            if isinstance(value, (list, tuple)):  # a list on the way or at the end
                values: list[Any] = []
                _collect_at(self, path, 0, values)
            else:
                values = [value]
            for value in values:
                if kind == "id_number":
                    message = division_warning(value)
                    if message:
                        found.append((dotted, "division_unknown", message))
                else:
                    message = credit_code_warning(value)
                    if message:
                        found.append((dotted, "credit_code_invalid", message))
        return found


def keyed_by_source(department: str, key: str) -> str:
    """A contract's own business key with the sending department in front: the stored key
    of a contract whose `business_key_includes_source` is True (and what the migration
    d19b00000001 rewrote the stored DeathEvent keys to)."""
    return f"{department}|{key}"


def stored_business_key(record: Contract, department: str) -> str:
    """The business key a record is stored, deduplicated and corrected under (存储业务键):
    its contract's own key, with the sending exchange's department in front when the
    contract's identity includes its source (`Contract.business_key_includes_source`)."""
    key = record.business_key()
    return keyed_by_source(department, key) if record.business_key_includes_source else key
