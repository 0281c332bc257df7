"""Civil affairs (民政): marriages, divorces, adoptions, cremations — `civil_affairs_YYYYMM.xml`.

XML declared `encoding="GB18030"`, Chinese element and attribute names. The root
`民政数据交换` holds any number of registration elements, each one record:

- `婚姻登记` (业务类型 结婚/离婚) with two `当事人` (角色 男方/女方) → `MarriageEvent`;
- `收养登记` with `收养人` and `被收养人` → `AdoptionEvent`;
- `火化登记` with `逝者` → `CremationEvent`.

A record's row number is its position among the registration elements (1-based), so
it stays meaningful when a whole export sits on one line; the element's source line is
kept in `RawRow.fields["@line"]`. Report columns name the element path and attribute,
e.g. `当事人[男方]/公民身份号码`.

The file comes from outside, so it must be under `max_file_bytes` and is read through
the hardened reader of gateway/readers/xml.py (every XML adapter's): any DOCTYPE or ENTITY
declaration rejects the whole file (`xml_unsafe`) before libxml2 sees those bytes, only
GB18030/GBK/GB2312/UTF-8 declarations are read (a UTF-7 declaration could hide a DOCTYPE
from the byte scan), and lxml runs with DTDs, entities, network access and huge trees off,
as a stream, freeing each record once read. No rejection message quotes the file's content.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from lxml import etree
from pydantic import Field

from contracts import AdoptionEvent, Contract, CremationEvent, MarriageEvent
from gateway import hookimpl
from gateway.adapter import Adapter, AdapterConfig, RawRow, RowRejected, SourceFile
from gateway.errors import FileRejected
from gateway.readers.xml import check_declared_encoding, iter_elements

ROOT = "民政数据交换"
MARRIAGE, ADOPTION, CREMATION = "婚姻登记", "收养登记", "火化登记"
ROLES = {"男方": ("husband", "1"), "女方": ("wife", "2")}
KINDS = {"结婚": "marriage", "离婚": "divorce"}

_COMMENTS = re.compile(r"<!--.*?(?:-->|$)", re.DOTALL)
_FIRST_ELEMENT = re.compile(r"<([^\s!?/>]+)")


def _person(attrs: Mapping[str, Any] | None, **extra: Any) -> dict[str, Any] | None:
    if attrs is None:
        return None
    return {
        "name": attrs.get("姓名"),
        "id_number": attrs.get("公民身份号码"),
        "birth_date": attrs.get("出生日期"),
        "sex": attrs.get("性别"),
        **extra,
    }


def _party_columns(role: str, field: str) -> dict[str, str]:
    at = f"当事人[{role}]"
    return {
        field: at,
        f"{field}.name": f"{at}/姓名",
        f"{field}.id_number": f"{at}/公民身份号码",
        f"{field}.birth_date": f"{at}/出生日期",
        f"{field}.sex": f"{at}/角色",
        f"{field}.nationality": f"{at}/国籍",
        f"{field}.prior_status": f"{at}/婚前状况",
    }


def _person_columns(element: str, field: str) -> dict[str, str]:
    return {
        field: element,
        f"{field}.name": f"{element}/姓名",
        f"{field}.id_number": f"{element}/公民身份号码",
        f"{field}.birth_date": f"{element}/出生日期",
        f"{field}.sex": f"{element}/性别",
    }


COLUMNS: dict[str, str] = {
    "certificate_no": "证号",
    "registered_on": "登记日期",
    "kind": "业务类型",
    "registry_office": "登记机关",
    "original_certificate_no": "原结婚证号",
    **_party_columns("男方", "husband"),
    **_party_columns("女方", "wife"),
    "placing_party": "送养方",
    **_person_columns("收养人", "adopters"),
    **_person_columns("被收养人", "adoptee"),
    "funeral_home": "殡仪馆",
    "funeral_home_code": "殡仪馆代码",
    "cremation_date": "火化日期",
    **_person_columns("逝者", "deceased"),
    "death_date": "逝者/死亡日期",
    "death_certificate_no": "逝者/死亡证明编号",
}


class CivilAffairsConfig(AdapterConfig):
    """Options under `[adapters.civil-affairs]`."""

    max_file_bytes: int = Field(default=200 * 1024 * 1024, gt=0, description="larger files are rejected unread")


def _local(name: Any) -> str:
    return name.rpartition("}")[2] if isinstance(name, str) else ""


def _attributes(element: Any) -> dict[str, str]:
    return {_local(key): value for key, value in element.attrib.items()}


class CivilAffairsAdapter(Adapter):
    """民政 registrations: one contract per registration element."""

    name = "civil-affairs"
    department = "civil-affairs"
    contracts = (MarriageEvent, AdoptionEvent, CremationEvent)
    file_types = (".xml",)
    description = "Civil-affairs registrations (婚姻登记, 收养登记, 火化登记), GB18030 XML"
    Config = CivilAffairsConfig
    columns = COLUMNS
    config: CivilAffairsConfig

    def accepts(self, source: SourceFile) -> bool:
        if source.suffix not in self.file_types:
            return False
        # The root element decides. A head that is all prolog (a long comment, a DOCTYPE,
        # an encoding that hides the tags) is taken too, so that parse() rejects it with
        # the real reason instead of "no adapter".
        first = _FIRST_ELEMENT.search(_COMMENTS.sub("", source.head()))
        return first is None or first.group(1).rpartition(":")[2] == ROOT

    def parse(self, source: SourceFile) -> Iterator[RawRow]:
        limit = self.config.max_file_bytes
        if source.size > limit:
            raise FileRejected(
                "too_large", f"{source.size} bytes, the limit is {limit} (max_file_bytes under [adapters.civil-affairs])"
            )
        if source.has_nul:
            raise FileRejected("binary", "the file holds NUL bytes; it is not a text file")
        if source.encoding is None:
            raise FileRejected("encoding", source.encoding_problem)
        check_declared_encoding(source)
        return self._records(source)

    def _records(self, source: SourceFile) -> Iterator[RawRow]:
        # Undeclared means UTF-8 to an XML parser; a GB18030 file that forgot its
        # declaration is read as what the staging sniffer found it to be.
        undeclared = "gb18030" if source.encoding == "gb18030" else None
        with source.open_binary() as raw:
            for position, element in iter_elements(
                raw, root=ROOT, root_hint="; is this a civil-affairs export?", undeclared_encoding=undeclared
            ):
                yield _raw_row(position, element)

    def normalize(self, row: RawRow) -> Contract:
        return _BUILDERS[row.fields["@element"]](row.fields)


def _raw_row(position: int, element: Any) -> RawRow:
    """The record's attributes by name, and each child element's attributes in a list
    under the child's name (`当事人`: [{角色: 男方, ...}, {角色: 女方, ...}])."""
    tag = _local(element.tag)
    fields: dict[str, Any] = {"@element": tag, "@line": element.sourceline, **_attributes(element)}
    for child in element.iterchildren(tag=etree.Element):
        fields.setdefault(_local(child.tag), []).append(_attributes(child))
    if tag not in _BUILDERS:
        return RawRow(position, fields, ("record_type_unknown", tag, f"element {tag}"))
    return RawRow(position, fields)


def _only(fields: Mapping[str, Any], element: str) -> Mapping[str, Any] | None:
    """The one child element of that name; a second one is a row error."""
    found = fields.get(element) or []
    if len(found) > 1:
        raise RowRejected("too_long", element, f"{len(found)} {element} elements, expected one")
    return found[0] if found else None


def _marriage(fields: Mapping[str, Any]) -> MarriageEvent:
    parties: dict[str, Mapping[str, Any]] = {}
    for party in fields.get("当事人") or []:
        role = (party.get("角色") or "").strip()
        if role not in ROLES or role in parties:
            raise RowRejected("party_role", "当事人/角色", "each registration names one 男方 and one 女方")
        parties[role] = party
    data: dict[str, Any] = {
        "kind": KINDS.get((fields.get("业务类型") or "").strip(), fields.get("业务类型")),
        "certificate_no": fields.get("证号"),
        "registered_on": fields.get("登记日期"),
        "registry_office": fields.get("登记机关"),
        "original_certificate_no": fields.get("原结婚证号"),
    }
    for role, (field, sex) in ROLES.items():
        attrs = parties.get(role)
        data[field] = _person(
            attrs,
            # The role says the sex unless the party states it; a disagreement with the
            # ID number is then a row error, as in every other file.
            sex=(attrs.get("性别") or sex) if attrs else None,
            nationality=attrs.get("国籍") if attrs else None,
            prior_status=attrs.get("婚前状况") if attrs else None,
        )
    return MarriageEvent.model_validate(data)


def _adoption(fields: Mapping[str, Any]) -> AdoptionEvent:
    return AdoptionEvent.model_validate(
        {
            "certificate_no": fields.get("证号"),
            "registered_on": fields.get("登记日期"),
            "placing_party": fields.get("送养方"),
            "adopters": [_person(attrs) for attrs in fields.get("收养人") or []],
            "adoptee": _person(_only(fields, "被收养人")),
        }
    )


def _cremation(fields: Mapping[str, Any]) -> CremationEvent:
    deceased = _only(fields, "逝者") or {}
    return CremationEvent.model_validate(
        {
            "certificate_no": fields.get("证号"),
            "funeral_home": fields.get("殡仪馆"),
            "funeral_home_code": fields.get("殡仪馆代码"),
            "cremation_date": fields.get("火化日期"),
            "deceased": _person(deceased) if deceased else None,
            "death_date": deceased.get("死亡日期"),
            "death_certificate_no": deceased.get("死亡证明编号"),
        }
    )


_BUILDERS: dict[str, Callable[[Mapping[str, Any]], Contract]] = {
    MARRIAGE: _marriage,
    ADOPTION: _adoption,
    CREMATION: _cremation,
}


@hookimpl(trylast=True)
def register_adapters(register):
    register(CivilAffairsAdapter)
