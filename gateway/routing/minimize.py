"""Field minimization: the fields of a contract, their Chinese column headers, and the
projection of a stored record onto the fields an agreement allows.

Paths are dotted (`child.name`, `mother.id_number`). A part (`mother`) stands for all of
its fields, `*` for every field of the contract. A path through a list (`adopters.name`)
takes that field of every item.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from functools import cache
from collections.abc import Callable, Mapping
from typing import Literal, cast, get_args

from pydantic import BaseModel

from contracts import Contract

ALL_FIELDS = "*"

# Headers for parts (the prefix of a nested field's header) and for fields whose own
# description is not Chinese. A nested field's header is its part's header + its own.
PART_LABELS = {
    "child": "新生儿",
    "mother": "母亲",
    "father": "父亲",
    "household": "户籍",
    "residence": "居住地",
    "other_place": "迁出(往)地",
    "person": "迁移人",
    "holder": "持证人",
    "husband": "男方",
    "wife": "女方",
    "adopters": "收养人",
    "adoptee": "被收养人",
    "student": "学生",
    "guardian": "监护人",
    "owners": "产权人",
    "occupants": "居住人员",
    "subject": "协查对象",
    "batch": "批次",
    "findings": "查到的信息",
}
FIELD_LABELS = {
    "registration": "登记来源",
    "name": "姓名",
    "id_number": "公民身份号码",
    "sex": "性别",
    "birth_date": "出生日期",
    "birth_time": "出生时间",
    "ethnicity": "民族",
    "relation_to_head": "与户主关系",
    "address": "地址",
    "division_code": "行政区划代码",
    "household_no": "户号",
    "category": "类别",
    "role": "类型",
    "value": "信息",
}
_HEAD = re.compile(r"^([\u3400-\u9fff\U00020000-\U0002ffff][\u3400-\u9fff\U00020000-\U0002ffff()/\d]*)")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class FieldPathError(ValueError):
    """A field path that is not in the contract; the message lists close and valid names."""


@dataclass(frozen=True)
class FieldInfo:
    path: str
    label: str
    description: str
    kind: str | None
    in_list: bool


def _description_head(description: str | None) -> str | None:
    match = _HEAD.match(description or "")
    return match.group(1) if match else None


def _nested_model(annotation: object) -> tuple[type[BaseModel] | None, bool]:
    """The model type inside `X`, `X | None` or `list[X]`, and whether it is a list."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    origin_args = get_args(annotation)
    is_list = getattr(annotation, "__origin__", None) in (list, tuple)
    for arg in origin_args:
        found, inner_list = _nested_model(arg)
        if found is not None:
            return found, is_list or inner_list
    return None, False


class ContractFields:
    """Every field of one contract, in the contract's own order."""

    def __init__(self, model: type[Contract]):
        self.contract = model.contract_name
        kinds = {".".join(path): kind for path, kind in model.field_kinds()}
        self.leaves: list[FieldInfo] = []
        self.parts: dict[str, str] = {}
        self._walk(model, "", "", False, kinds)
        seen: dict[str, int] = {}
        for info in self.leaves:
            seen[info.label] = seen.get(info.label, 0) + 1
        self.leaves = [
            info if seen[info.label] == 1 else FieldInfo(info.path, f"{info.label}({info.path})", info.description, info.kind, info.in_list)
            for info in self.leaves
        ]
        self._by_path = {info.path: info for info in self.leaves}

    def _walk(self, model: type[BaseModel], prefix: str, label_prefix: str, in_list: bool, kinds: dict[str, str]) -> None:
        for name, info in model.model_fields.items():
            path = prefix + name
            sub, is_list = _nested_model(info.annotation)
            head = _description_head(info.description)
            if sub is not None:
                label = PART_LABELS.get(name) or head or name
                self.parts[path] = label_prefix + label
                self._walk(sub, path + ".", label_prefix + label, in_list or is_list, kinds)
                continue
            if prefix:
                label = FIELD_LABELS.get(name) or head or name
            else:
                label = head or FIELD_LABELS.get(name) or name
            list_annotation = getattr(info.annotation, "__origin__", None) in (list, tuple) or any(
                getattr(arg, "__origin__", None) in (list, tuple) for arg in get_args(info.annotation)
            )
            self.leaves.append(
                FieldInfo(path, label_prefix + label, info.description or "", kinds.get(path), in_list or list_annotation)
            )

    def paths(self) -> list[str]:
        return [info.path for info in self.leaves]

    def info(self, path: str) -> FieldInfo:
        return self._by_path[path]

    def expand(self, wanted: list[str]) -> list[str]:
        """The leaf fields that `wanted` names (fields, parts, or `*`), in contract order."""
        chosen: set[str] = set()
        for path in wanted:
            path = path.strip()
            if path == ALL_FIELDS:
                chosen.update(self.paths())
                continue
            if path in self._by_path:
                chosen.add(path)
                continue
            if path in self.parts:
                chosen.update(p for p in self.paths() if p.startswith(path + "."))
                continue
            choices = self.paths() + list(self.parts)
            close = difflib.get_close_matches(path, choices, n=3, cutoff=0.6)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise FieldPathError(
                f"{path!r} is not a field of {self.contract}.{hint} Its fields: {', '.join(self.paths())}"
                f" (a part such as {next(iter(self.parts), 'child')!r} stands for all its fields, '*' for every field)"
            )
        return [p for p in self.paths() if p in chosen]


@cache
def contract_fields(model: type[Contract]) -> ContractFields:
    return ContractFields(model)


# -- records ----------------------------------------------------------------------


def values_at(value: object, path: str | None) -> list[object]:
    """Every value at a dotted path (through lists), absent ones left out."""
    if path is None:
        return []
    found: list[object] = []

    def walk(node: object, parts: list[str]) -> None:
        if node is None:
            return
        if isinstance(node, list):
            for item in node:
                walk(item, parts)
            return
        if not parts:
            found.append(node)
            return
        if isinstance(node, dict):
            walk(node.get(parts[0]), parts[1:])

    walk(value, path.split("."))
    return found


# The allowed leaves as a tree: a part maps to its own tree, a leaf field to True.
Tree = dict[str, "Tree | Literal[True]"]


def _tree(leaves: list[str]) -> Tree:
    tree: Tree = {}
    for leaf in leaves:
        node = tree
        parts = leaf.split(".")
        for part in parts[:-1]:
            node = cast(Tree, node.setdefault(part, {}))
        node[parts[-1]] = True
    return tree


def _project(value: object, tree: Tree) -> object:
    if isinstance(value, list):
        return [_project(item, tree) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, object] = {}
    for name, sub in tree.items():
        if name not in value or value[name] is None:
            continue
        kept = value[name] if sub is True else _project(value[name], sub)
        if kept in ({}, []) and sub is not True:
            continue
        out[name] = kept
    return out


def project(payload: dict[str, object], leaves: list[str]) -> dict[str, object]:
    """The record with only the allowed leaf fields (absent ones and emptied parts left out)."""
    return cast("dict[str, object]", _project(payload, _tree(leaves)))  # a dict in, a dict out


def projector(leaves: list[str]) -> Callable[[dict[str, object]], dict[str, object]]:
    """`project` with the leaves prepared once, for many records."""
    tree = _tree(leaves)
    return lambda payload: cast("dict[str, object]", _project(payload, tree))


def neutralize(text: str) -> str:
    """A cell starting with = + - @ (or a tab or carriage return) would run as a formula
    when a spreadsheet opens the file: prefix it with '."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def cell(projected: Mapping[str, object], info: FieldInfo) -> str:
    """One CSV cell: the field's value as text; several values (a list) as a JSON array."""
    if not info.in_list:  # the common case, without the generic walk
        value: object = projected
        for part in info.path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, list):
            return neutralize(json.dumps(value, ensure_ascii=False))
        return neutralize(str(value))
    values = values_at(projected, info.path)
    if info.in_list or len(values) > 1 or (values and isinstance(values[0], list)):
        flat: list[object] = []
        for item in values:
            flat.extend(item if isinstance(item, list) else [item])
        text = json.dumps(flat, ensure_ascii=False) if flat else ""
    elif not values:
        text = ""
    elif isinstance(values[0], bool):
        text = "true" if values[0] else "false"
    else:
        text = str(values[0])
    return neutralize(text)


__all__ = [
    "ALL_FIELDS",
    "ContractFields",
    "FieldInfo",
    "FieldPathError",
    "cell",
    "contract_fields",
    "neutralize",
    "project",
    "projector",
    "values_at",
]
