"""The county's side of the national platform in the console: its own assist-check requests
(本县发出的协查请求, `gateway assist-checks request` / `sent`) and its notice drafts
(本县通报草稿, `gateway notices drafts` / `send`), through the same code as the commands
(gateway/platform/outgoing.py, notices_out.py). Shared by the pages and the JSON API;
subjects, errors and message ids (XXBH, which may embed an ID number) are masked before they
leave this module. Messages: Chinese first."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal

from lxml import etree
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from sqlalchemy import Engine

from contracts.identity import IdNumber
from gateway import clock
from gateway.config import Settings
from gateway.errors import GatewayError
from gateway.masking import mask_id, mask_name
from gateway.store.audit import mask_text
from gateway.store.models import OutgoingRequest

if TYPE_CHECKING:
    from gateway.exchange.lifecycle import Gateway

_ID = TypeAdapter(IdNumber)
# Why an ID number is refused (contracts/identity.py's error types), Chinese first.
ID_PROBLEMS = {
    "missing": "未填写公民身份号码 no ID number given",
    "id_format": "公民身份号码格式不对（应为18位） the ID number is not 18 characters",
    "id_check_char": "公民身份号码校验位不对，请核对 the ID number's check character is wrong: check it",
    "id_birth_date": "公民身份号码中的出生日期不存在 the ID number holds an impossible birth date",
    "id_birth_future": "公民身份号码中的出生日期在未来 the ID number holds a birth date in the future",
}
STATUS_ZH = {"sending": "待发送 sending", "sent": "已发送 sent", "answered": "已反馈 answered", "refused": "平台拒收 refused",
             "draft": "草稿 draft"}


class Refused(Exception):
    """A request of the clerk's the gateway will not carry out: `message` says why, Chinese first."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message, self.status = message, status


def categories() -> list[tuple[str, str]]:
    """(LB code, Chinese label) of every category a request may ask for."""
    from gateway.platform.assist_checks import CATEGORY_LABELS

    return sorted(CATEGORY_LABELS.items())


# -- the county's own requests -------------------------------------------------------------


class CountyRequest(BaseModel):
    """发起协查: what `gateway assist-checks request` takes."""

    model_config = {"extra": "forbid"}

    subject_id: str = Field(max_length=40, description="公民身份号码 of the person to ask about")
    categories: list[str] = Field(max_length=20, description="LB codes to ask for: [\"01\", \"05\"]")
    urgency: Literal["urgent", "ordinary"] = Field(description="urgent 紧急 (15 days, e.g. 现孕) or ordinary 急 (30 days)")
    to: str = Field(max_length=20, description="the division code of the county asked (6 digits)")
    name: str | None = Field(default=None, max_length=50, description="姓名, when the county's records do not hold the person")


class SentRequestRow(BaseModel):
    """One of the county's own requests, its subject masked."""

    id: int
    message_id: str
    to_division: str
    urgency: str
    categories: str
    subject: str = Field(description="masked name and ID number")
    sent_date: dt.date
    due_date: dt.date
    due_provisional: bool
    days_left: int
    status: str
    send_error: str | None = Field(description="why it has not left (masked)")
    answer: str | None = Field(description="查到 found / 未查到 not found, with the categories found")


class RequestMade(BaseModel):
    request: SentRequestRow
    sent: bool
    message: str = Field(description="what happened, Chinese first")


def _subject(item: OutgoingRequest) -> str:
    from gateway.readers.xml import HARDENED

    root = etree.fromstring(item.request_xml.encode("utf-8"), etree.XMLParser(**HARDENED))
    person = root.find("XCXX/DX")
    return f"{mask_name(person.get('XM', ''))} {mask_id(person.get('GMSFHM', ''))}" if person is not None else ""


def _row(item: OutgoingRequest, findings: list[tuple[str, str]] | None = None, today: dt.date | None = None) -> SentRequestRow:
    answer = None
    if item.status == "answered":
        answer = ("查到 found" if item.answer_result == "1" else "未查到 not found") + (
            ": " + ", ".join(code for code, _ in findings) if findings else "")
    return SentRequestRow(
        id=item.id or 0, message_id=mask_text(item.message_id), to_division=item.to_division, urgency=item.urgency, categories=item.categories,
        subject=_subject(item), sent_date=item.sent_date, due_date=item.due_date, due_provisional=item.due_provisional,
        days_left=(item.due_date - (today or clock.today())).days, status=item.status,
        send_error=mask_text(item.send_error) if item.send_error else None, answer=answer,
    )


def list_sent(engine: Engine, *, include_answered: bool = False) -> list[SentRequestRow]:
    """`gateway assist-checks sent`: the county's own requests, soonest due first."""
    from gateway.platform.outgoing import list_outgoing

    today = clock.today()
    return [_row(view.item, view.findings, today) for view in list_outgoing(engine, include_answered=include_answered, today=today)]


def check_request(body: CountyRequest) -> tuple[str, list[str], bool, str]:
    """The form's values checked, each problem said in the clerk's words; (ID number, codes, urgent, division)."""
    from gateway.platform.assist_checks import CATEGORY_LABELS

    subject_id = body.subject_id.strip().upper()
    try:
        _ID.validate_python(subject_id)
    except ValidationError as exc:
        kind = exc.errors()[0]["type"]
        shown = f"（{mask_id(subject_id)}）" if subject_id else ""
        raise Refused(f"{ID_PROBLEMS.get(kind, '公民身份号码无效 the ID number is not valid: ' + exc.errors()[0]['msg'])}{shown}") from None
    codes = sorted({c.strip() for c in body.categories if c.strip()})
    if not codes:
        raise Refused("请至少选择一个协查类别 Choose at least one category to ask for")
    unknown = [c for c in codes if c not in CATEGORY_LABELS]
    if unknown:
        listed = "、".join(f"{c} {label}" for c, label in sorted(CATEGORY_LABELS.items()))
        raise Refused(f"没有这个协查类别 Unknown category {', '.join(unknown)[:40]!r}; 可选 valid: {listed}")
    to = body.to.strip()
    if not (to.isdigit() and len(to) in (6, 12)):
        raise Refused(f"协查对象地区代码应为6位数字 The division asked must be a 6-digit code (e.g. 510722), not {to[:20]!r}")
    return subject_id, codes, body.urgency == "urgent", to


def make_request(settings: Settings, body: CountyRequest, operator: str) -> RequestMade:
    """Make, store and send the request as `gateway assist-checks request` does."""
    from gateway.exchange.lifecycle import Gateway
    from gateway.platform import outgoing

    subject_id, codes, urgent, to = check_request(body)
    gateway = Gateway(settings)
    try:
        result = outgoing.request(
            gateway, settings, subject_id=subject_id, categories=codes, urgent=urgent, to=to,
            name=(body.name or "").strip() or None, operator=operator,
        )
    except GatewayError as exc:
        text = mask_text(str(exc))
        if "in none of the county's records" in text:
            raise Refused(f"本县记录中没有此人，请填写姓名 The county's records do not hold this person: give the name ({text})") from None
        raise Refused(f"协查请求未能发起 The request was not made: {text}", 409 if "configured" in text or "division code" in text else 400) from None
    finally:
        gateway.close()
    item = result.request
    row = _row(item)
    due = f"{item.due_date.isoformat()}{'（暂定 provisional）' if item.due_provisional else ''}"
    if result.sent:
        message = f"协查请求 {mask_text(item.message_id)} 已发送，对象 {row.subject}，反馈期限 {due}。 Sent to the platform and receipted; due {due}."
    elif item.status == "refused":
        message = f"平台拒收协查请求 {mask_text(item.message_id)} The platform refused it: {mask_text(result.error or '')}"
    else:
        message = (f"协查请求 {mask_text(item.message_id)} 已保存，尚未发出（平台恢复后由 gateway run 重发），反馈期限 {due}。 "
                   f"Saved, not sent yet: {mask_text(result.error or '')}")
    return RequestMade(request=row, sent=result.sent, message=message)


# -- the county's own notices ----------------------------------------------------------------


class NoticeDraftRow(BaseModel):
    """One of the county's own notices (通报), its subject masked."""

    id: int
    message_id: str
    category: str
    case: str = Field(description="the case, Chinese first: 生育信息 birth")
    to_division: str
    subject: str = Field(description="masked name and ID number")
    due_date: dt.date
    days_left: int
    status: str
    problems: list[str] = Field(description="why the draft may not leave yet, Chinese first")
    send_error: str | None


class NoticeSent(BaseModel):
    notice: NoticeDraftRow
    sent: bool
    refused_here: bool = Field(description="stopped before it left: `message` says why")
    message: str = Field(description="what happened, Chinese first")


def list_drafts(engine: Engine, settings: Settings, *, include_sent: bool = False) -> list[NoticeDraftRow]:
    """`gateway notices drafts`; nothing when no national platform is configured."""
    from gateway.platform import notices_out

    try:
        views = notices_out.list_drafts(engine, settings, include_sent=include_sent)
    except GatewayError:
        return []
    today = clock.today()
    return [
        NoticeDraftRow(
            id=v.item.id or 0, message_id=mask_text(v.item.message_id), category=v.item.category,
            case=notices_out.CASE_LABELS.get(v.item.category, v.item.category), to_division=v.item.to_division, subject=v.subject,
            due_date=v.item.due_date, days_left=(v.item.due_date - today).days, status=v.item.status, problems=v.problems,
            send_error=mask_text(v.item.send_error) if v.item.send_error else None,
        )
        for v in views
    ]


@contextmanager
def _platform_gateway(settings: Settings, failed: str, *, missing: str, said: dict[str, str] | None = None) -> Iterator[Gateway]:
    """A whole gateway for one platform action of a clerk's, closed after; its refusal
    (GatewayError) becomes `Refused`, masked: 404 when the text says `missing`, 409 else,
    or the clerk's wording `said` gives for a text."""
    from gateway.exchange.lifecycle import Gateway

    gateway = Gateway(settings)
    try:
        yield gateway
    except GatewayError as exc:
        text = mask_text(str(exc))
        wording = next((message for key, message in (said or {}).items() if key in text), None)
        if wording is not None:
            raise Refused(wording) from None
        raise Refused(f"{failed}: {text}", 404 if missing in text else 409) from None
    finally:
        gateway.close()


def send_notice(settings: Settings, engine: Engine, notice_id: int, operator: str) -> NoticeSent:
    """Send one draft as `gateway notices send` does (refused with its reason before it leaves)."""
    from gateway.platform import notices_out

    with _platform_gateway(settings, "通报未能发出 The notice was not sent", missing="no notice") as gateway:
        result = notices_out.send(gateway, settings, str(notice_id), operator=operator)
    item = result.notice
    row = next(r for r in list_drafts(engine, settings, include_sent=True) if r.id == item.id)
    error = mask_text(result.error or "")
    if result.sent:
        message = f"通报 {mask_text(item.message_id)} 已发出并签发回执 Sent to {item.to_division} and receipted."
    elif result.refused_here:
        message = (f"通报 {mask_text(item.message_id)} 不能发出：{error}。补全触发记录（如医院出生记录的家庭住址到村/社区居委会）后再发送。 "
                   "Refused before it left: complete the triggering record and send it again.")
    elif item.status == "refused":
        message = f"平台拒收通报 {mask_text(item.message_id)} The platform refused it: {error}"
    else:
        message = f"通报 {mask_text(item.message_id)} 未发出（平台恢复后再发送） Not sent yet: {error}"
    return NoticeSent(notice=row, sent=result.sent, refused_here=result.refused_here, message=message)



# -- answering what the platform sent (协查反馈, 通报处理) ------------------------------------


class Handled(BaseModel):
    """What answering a received request, or handling a received notice, did."""

    message_id: str
    sent: bool = Field(description="the answer (FKXX) left for the platform and was receipted")
    message: str = Field(description="what happened, Chinese first")


def answer_request(settings: Settings, check_id: int, *, found: bool, remark: str | None, operator: str) -> Handled:
    """`gateway assist-checks answer`: the draft's findings when found, a remark saying what
    was searched when not; sent to the platform and receipted."""
    from gateway.platform import assist_checks

    if not found and not (remark or "").strip():
        raise Refused("查无此人的答复须写明查了哪些资料 A not-found answer needs a remark saying what was searched (BZ).")
    with _platform_gateway(settings, "未能答复 Not answered", missing="No assist-check") as gateway:
        result = assist_checks.answer(gateway, settings, str(check_id), found=found, remark=remark, operator=operator)
    item = result.check
    what = "查有此人 found" if found else "查无此人 not found"
    if result.sent:
        message = f"协查 {mask_text(item.message_id)} 已反馈（{what}）并签发回执 Answered and receipted."
    else:
        message = f"协查 {mask_text(item.message_id)} 的答复已保存，未发出（平台恢复后自动重发） Saved, not sent yet: {mask_text(result.error or '')}"
    return Handled(message_id=mask_text(item.message_id), sent=result.sent, message=message)


def handle_received_notice(settings: Settings, notice_id: int, *, remark: str | None, operator: str) -> Handled:
    """`gateway notices done`: a notice asking for feedback (XYFK 1) is answered to the platform."""
    from gateway.platform import assist_checks

    feedback = {"requires feedback": "该通报需要反馈：请写明处理情况 This notice asks for feedback: say what was done."}
    with _platform_gateway(settings, "未能处理 Not handled", missing="No notice", said=feedback) as gateway:
        item = assist_checks.handle_notice(gateway.engine, str(notice_id), remark=remark, operator=operator, gateway=gateway,
                                           settings=settings)
    if item.status == "sending":
        return Handled(message_id=mask_text(item.message_id), sent=False,
                       message=f"通报 {mask_text(item.message_id)} 的反馈已保存，未发出（平台恢复后自动重发） Feedback saved, not sent yet.")
    sent = item.feedback_sent_at is not None
    return Handled(message_id=mask_text(item.message_id), sent=True,
                   message=f"通报 {mask_text(item.message_id)} 已处理" + ("，反馈已发出并签发回执 Handled; feedback sent and receipted." if sent
                                                          else " Handled (receipt only)."))
