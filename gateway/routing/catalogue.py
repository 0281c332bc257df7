"""The contract catalogue (契约目录): every registered contract, its fields, which are personal
and how each is masked, for `gateway contracts list/show` and the console's /contracts page.

A field's Chinese label is the column header deliveries use (`routing.minimize`); its kind is
a registered `FieldKind` (gateway.masking), whose example shows how the value is masked.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Annotated, Union, get_args, get_origin

from pydantic import BaseModel

from contracts import Contract

from gateway.masking import field_kind
from gateway.plugins import PluginManager, get_manager
from gateway.routing.minimize import contract_fields


@dataclass(frozen=True)
class FieldRow:
    """One leaf field of a contract as the catalogue shows it."""

    path: str
    type_name: str
    label_zh: str
    personal: bool
    kind: str | None
    kind_label_zh: str
    masked_example: str


@dataclass(frozen=True)
class ContractSummary:
    """One registered contract: name, 中文名, how many fields, the package it comes from."""

    name: str
    label_zh: str
    field_count: int
    package: str
    business_key: tuple[str, ...]
    event_date_field: str | None
    division_field: str | None


def _type_name(annotation: object) -> str:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _type_name(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        return " | ".join(_type_name(arg) for arg in args) + (" (可空 optional)" if len(args) < len(get_args(annotation)) else "")
    if origin in (list, tuple):
        return f"list[{', '.join(_type_name(arg) for arg in get_args(annotation) if arg is not Ellipsis)}]"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation)


def _leaf_annotation(model: type[BaseModel], path: str) -> object:
    current: type[BaseModel] = model
    annotation: object = None
    for part in path.split("."):
        info = current.model_fields[part]
        annotation = info.annotation
        for candidate in (annotation, *get_args(annotation), *(a for arg in get_args(annotation) for a in get_args(arg))):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                current = candidate
                break
    return annotation


def summaries(manager: PluginManager | None = None) -> list[ContractSummary]:
    """Every registered contract, by name."""
    manager = manager or get_manager()
    return [
        ContractSummary(
            name, model.label_zh or name, len(contract_fields(model).leaves), manager.package_of(model),
            tuple(model.business_key_fields), model.event_date_field, model.division_field,
        )
        for name, model in sorted(manager.contracts().items())
    ]


def field_rows(model: type[Contract]) -> list[FieldRow]:
    """Each leaf field of the contract: dotted path, type, Chinese label, personal or not, kind
    and a made-up example masked the way the gateway masks it."""
    rows = []
    for info in contract_fields(model).leaves:
        kind = field_kind(info.kind)
        rows.append(
            FieldRow(
                info.path, _type_name(_leaf_annotation(model, info.path)), info.label,
                bool(kind and kind.personal), info.kind,
                kind.label_zh if kind else "", kind.mask(kind.example) if kind else "",
            )
        )
    return rows


__all__ = ["ContractSummary", "FieldRow", "field_rows", "summaries"]
