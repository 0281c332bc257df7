"""National floating-population exchange platform (全国流动人口计划生育服务管理信息交换平台):
`JHXX` documents from `GET {base}/exchange/inbox`, pulled or dropped as `.xml`.

One record per message: `XCXX` becomes an `AssistCheckRequest`, `TBXX` a
`PlatformNotice`, `FKXX` (the other side's answer to one of the county's own requests) an
`AssistCheckFeedback`; each keeps the document's version, sender and receiver (BBH, FSDW, JSDW)
as its `batch`. Any other message kind is a rejected row, never silently skipped.
Parsing goes through `gateway.readers.xml` (hardened lxml iterparse, DOCTYPE refused).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from lxml import etree
from pydantic import ValidationError

from contracts import Contract
from contracts.platform import AssistCheckFeedback, AssistCheckRequest, PlatformBatch, PlatformNotice
from gateway import hookimpl
from gateway.adapter import Adapter, RawRow, SourceFile
from gateway.errors import FileRejected
from gateway.readers.xml import check_declared_encoding, iter_elements, local_name, root_tag

ROOT = "JHXX"
BATCH_ATTRIBUTES = {"BBH": "version", "FSDW": "sender", "JSDW": "receiver"}
MESSAGES = {"XCXX": AssistCheckRequest, "TBXX": PlatformNotice, "FKXX": AssistCheckFeedback}


def _fields(element: etree._Element) -> dict[str, Any] | str | None:
    """An element as data: its attributes and its children by name (a leaf child is its
    text; `text` is the element's own text). The platform writes most values as
    attributes (`<DX XM=…/>`); child elements (`<DX><XM>…</XM></DX>`) read the same."""
    children = [child for child in element if isinstance(child.tag, str)]
    text = (element.text or "").strip() or None
    if not element.attrib and not children:
        return text
    fields: dict[str, Any] = dict(element.attrib)
    for child in children:
        name = local_name(child)
        if name in fields:
            raise _Repeated(name)
        fields[name] = _fields(child)
    if text is not None:
        fields["text"] = text
    return fields


class _Repeated(Exception):
    def __init__(self, name: str):
        self.name = name


def _batch(root: etree._Element) -> PlatformBatch:
    """The document's own attributes. A broken header spoils every message in it, so it
    refuses the whole file, once, rather than each message."""
    data = {field: root.get(attribute) for attribute, field in BATCH_ATTRIBUTES.items()}
    try:
        return PlatformBatch.model_validate(data)
    except ValidationError as exc:
        names = {field: attribute for attribute, field in BATCH_ATTRIBUTES.items()}
        problems = "; ".join(f"{names.get(str(e['loc'][0]), e['loc'][0])}: {e['msg']}" for e in exc.errors(include_url=False))
        raise FileRejected("xml_header", f"the {ROOT} attributes are invalid: {problems}") from None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _subject(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    found = _mapping(value)
    return {
        "name": found.get("XM"),
        "id_number": found.get("GMSFHM"),
        "birth_date": found.get("CSRQ"),
        "current_residence": found.get("XJZD"),
    }


class NationalPlatformAdapter(Adapter):
    """Inbound `JHXX` documents of the national platform: assist-check requests and notices."""

    name = "national-platform"
    department = "national-platform"
    contracts = (AssistCheckRequest, PlatformNotice, AssistCheckFeedback)
    file_types = (".xml",)
    description = "National floating-population platform inbox (协查 XCXX, 通报 TBXX, 反馈 FKXX), UTF-8 XML"
    columns = {
        "message_id": "XXBH",
        "urgency": "JJCD",
        "sent_date": "FQSJ",
        "direction": "FX",
        "subject": "DX",
        "subject.name": "DX/XM",
        "subject.id_number": "DX/GMSFHM",
        "subject.birth_date": "DX/CSRQ",
        "subject.current_residence": "DX/XJZD",
        "categories": "XCNR/LB",
        "request_text": "XCNR",
        "category": "LB",
        "feedback_required": "XYFK",
        "notice_text": "TBNR",
        "due_date": "FQSJ",
        "batch": ROOT,
    }

    def accepts(self, source: SourceFile) -> bool:
        if source.suffix not in self.file_types:
            return False
        try:
            with source.open_binary() as handle:
                return root_tag(handle) == ROOT
        except Exception:  # noqa: BLE001 - unreadable: ours to refuse with the precise reason, else not ours
            return source.department == self.department

    def parse(self, source: SourceFile) -> Iterator[RawRow]:
        with source.open_text():
            pass  # the same encoding and binary checks as every text format
        check_declared_encoding(source)
        batch: PlatformBatch | None = None
        with source.open_binary() as handle:
            for position, element in iter_elements(handle, root=ROOT):
                if batch is None:
                    batch = _batch(element.getparent())
                tag = local_name(element)
                if tag not in MESSAGES:
                    yield RawRow(position, {}, ("message_unknown", tag, f"<{tag}> is neither XCXX, TBXX nor FKXX"))
                    continue
                if tag == "FKXX":  # one CXJG per category found: a list, not a mapping
                    findings = [{"category": el.get("LB"), "value": (el.text or "").strip()} for el in element if local_name(el) == "CXJG"]
                    yield RawRow(position, {"tag": tag, "batch": batch, **dict(element.attrib), "findings": findings})
                    continue
                try:
                    fields = _mapping(_fields(element))
                except _Repeated as repeated:
                    yield RawRow(position, {}, ("element_repeated", repeated.name, f"{tag} holds {repeated.name} twice"))
                    continue
                yield RawRow(position, {"tag": tag, "batch": batch, **fields})

    def normalize(self, row: RawRow) -> Contract:
        get = row.fields.get
        if get("tag") == "FKXX":
            return AssistCheckFeedback.model_validate(
                {"message_id": get("XXBH"), "result": get("PDJG"), "remark": get("BZ"), "answered_at": get("FKSJ"), "findings": get("findings")}
            )
        if get("tag") == "XCXX":
            content = get("XCNR")
            content = content if isinstance(content, dict) else {"text": content}
            return AssistCheckRequest.model_validate(
                {
                    "message_id": get("XXBH"),
                    "urgency": get("JJCD"),
                    "sent_date": get("FQSJ"),
                    "direction": get("FX"),
                    "subject": _subject(get("DX")),
                    "categories": content.get("LB"),
                    "request_text": content.get("text"),
                    "batch": get("batch"),
                }
            )
        notice = get("TBNR")
        return PlatformNotice.model_validate(
            {
                "message_id": get("XXBH"),
                "category": get("LB"),
                "feedback_required": get("XYFK"),
                "sent_date": get("FQSJ"),
                "subject": _subject(get("DX")),
                "notice_text": notice.get("text") if isinstance(notice, dict) else notice,
                "batch": get("batch"),
            }
        )


@hookimpl(trylast=True)
def register_adapters(register):
    register(NationalPlatformAdapter)
