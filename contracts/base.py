"""The base every contract derives from."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from functools import cache
from typing import Any, ClassVar, get_args

from pydantic import BaseModel, ConfigDict, model_validator

from .canonical import canonical_json
from .identity import credit_code_warning, division_warning

SCHEMA_VERSION = "1.0"


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
    """

    contract_name: ClassVar[str]
    schema_version: ClassVar[str] = SCHEMA_VERSION
    business_key_fields: ClassVar[tuple[str, ...]]

    def business_key(self) -> str:
        parts = []
        for dotted in self.business_key_fields:
            value: Any = self
            for part in dotted.split("."):
                value = getattr(value, part)
            parts.append(value.isoformat() if hasattr(value, "isoformat") else str(value))
        return "|".join(parts)

    def canonical(self) -> bytes:
        """The record's canonical JSON; absent optional fields are left out, so adding an
        optional field to a contract does not change the hash of existing records."""
        return canonical_json(self.model_dump(mode="json", exclude_none=True))

    def record_hash(self) -> str:
        return hashlib.sha256(self.canonical()).hexdigest()

    def warnings(self) -> list[tuple[str, str, str]]:
        """(dotted field, code, message) for findings that never reject the record."""
        found = []
        for path, kind, value in self.iter_kind_values():
            if kind == "id_number":
                message = division_warning(value)
                if message:
                    found.append((".".join(path), "division_unknown", message))
            elif kind == "credit_code":
                message = credit_code_warning(value)
                if message:
                    found.append((".".join(path), "credit_code_invalid", message))
        return found
