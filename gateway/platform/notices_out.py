"""The county's own notices (本县发出的通报 TBXX) to the place of household registration.

The county, as place of residence (流入地), must notify the place of household registration
(流出地) of what happens to the people registered there who live here ("流入地應向流出地
通報的8項內容 … 應在5個工作日內提交"). A record owes a notice when the person's household
registration (the record's 户籍地行政区划代码, else the ID number's first 6 digits) is not
this county; `TRIGGERS` maps each contract to the small function that says so:

- 生育 birth (LB `09`, XYFK 1: feedback): a hospital birth (出生医学证明), about the mother;
- 婚姻变动 marriage or divorce (`02`): a MarriageEvent, one notice per party registered elsewhere;
- 死亡 death (`01`): a police DeathEvent or a CremationEvent, one notice per person, whichever
  record came first;
- 收养 adoption (`04`): an AdoptionEvent, one notice per adopter registered elsewhere;
- 办理居住证/流入 residence permit (`05`): a ResidencePermit, about the holder;
- 迁出/离开 moving away (`06`): a Migration out of the county, to where it went (迁往地).

LB is the platform's 信息类别 (shared/formats, contracts/platform.py `ContentCategory`); only
births ask for feedback, the other cases for a receipt (XYFK 0). Marriage, adoption and
cremation records carry no address, so their drafts cannot leave until one is known.

- `draft(engine, settings)`: a draft per triggering record not drafted yet (`OutgoingNotice`,
  status `draft`), due in 5 working days (rule `notice_submit`, gateway/obligations/deadlines.py)
  from the day it was drafted, the day the record was accepted; an obligation of kind
  `notice-send` (通报提交) is opened for it (gateway/obligations/service.py).
- `send(gateway, settings, ID)`: refused with its reason, before anything leaves, unless the
  notice carries a name, an ID number and an address down to the village (村/社区居委会);
  else one `JHXX` holding one `TBXX` is POSTed to `{base}/exchange/notices`, receipted like
  the county's requests (gateway/platform/outgoing.py: same adapter, same receipts), and the
  obligation fulfilled (met or late).
- `follow_up(gateway, settings)`: draft, close the notices whose feedback (FKXX) the pull
  brought, and, when `[pulls.platform] send_notices = true`, send every draft.

Names, ID numbers and addresses stay in the triggering record until sent; nothing personal
is logged unmasked.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from lxml import etree
from sqlalchemy import Engine, exists, func, select
from sqlalchemy.orm import aliased
from sqlmodel import Session

from gateway import clock
from gateway.config import Settings
from gateway.errors import GatewayError
from gateway.masking import mask_id, mask_name
from gateway.obligations.deadlines import Deadlines
from gateway.obligations.service import fulfil, open_obligation, rule_for
from gateway.platform.outgoing import _receipt, county_division
from gateway.store import Exchange, Record, session_scope
from gateway.store.models import OutgoingNotice
from gateway.store.register_models import RegisterPerson

if TYPE_CHECKING:
    from gateway.services import ExchangeServices

log = logging.getLogger("gateway.platform.notices")

KIND = "notice-send"
PARTY = "population-office"
# 通报类别 (LB), the platform's 信息类别 (shared/formats: 01 基本信息, 02 配偶信息, 04 子女信息, 05 流入信息,
# 06 流出信息, 09 生育信息; contracts/platform.py ContentCategory).
DEATH, MARRIAGE, ADOPTION, ARRIVAL, DEPARTURE, BIRTH = "01", "02", "04", "05", "06", "09"
CASE_LABELS = {
    DEATH: "死亡 death", MARRIAGE: "婚姻变动 marriage or divorce", ADOPTION: "收养 adoption",
    ARRIVAL: "办理居住证/流入 residence permit", DEPARTURE: "迁出/离开 moving away", BIRTH: "生育信息 birth",
}
# XYFK 1 (the other side must answer, FKXX) for births only (and social maintenance fees, which no feed gives);
# the other cases ask for a receipt.
FEEDBACK = frozenset({BIRTH})
# One notice per person, whichever record came first (a police death cancellation, a cremation).
ONCE_PER_PERSON = frozenset({DEATH})
# 村 / 社区 (居委会, 居民委员会) / 嘎查: the village level an address must reach.
VILLAGE_LEVEL = re.compile(r"村|社区|居委会|居民委员会|嘎查")


@dataclass(frozen=True)
class Trigger:
    """What one record owes: a notice of `category` to `to_division` about `person` (the
    record's `party`, where it names several people who may each be owed one)."""

    category: str
    to_division: str
    person: dict[str, str]  # name, id_number, birth_date, address
    text: str
    party: str = ""


def _owed(category: str, person: dict[str, Any] | None, county: str, text: str, *, division: str | None = None,
          address: str | None = None, party: str = "") -> Iterator[Trigger]:
    """A notice of `category` about `person` when their household registration (`division`,
    else their ID number's first 6 digits) is a county other than this one."""
    person = person or {}
    id_number = person.get("id_number") or ""
    registered = division or id_number[:6]
    if not registered or registered == county or not (registered.isdigit() and len(registered) == 6):
        return
    yield Trigger(category, registered, {
        "name": person.get("name") or "", "id_number": id_number, "birth_date": person.get("birth_date") or "",
        "address": address or "",
    }, text, party)


def _registered(payload: dict[str, Any], key: str = "household") -> str | None:
    return (payload.get(key) or {}).get("division_code")


def _birth(payload: dict[str, Any], county: str) -> Iterator[Trigger]:
    """A hospital birth (出生医学证明) to a mother registered in another county."""
    if payload.get("registration", "hospital") != "hospital":
        return
    child = payload.get("child") or {}
    order = payload.get("birth_order")
    text = f"生育信息通报：{child.get('birth_date', '')} 生育" + (f"第{order}孩" if order else "")
    yield from _owed(BIRTH, payload.get("mother"), county, text, division=payload.get("registered_division_code"),
                     address=payload.get("home_address"))


def _marriage(payload: dict[str, Any], county: str) -> Iterator[Trigger]:
    """A marriage or divorce registration (婚姻登记): one notice per party registered in another county."""
    what = "离婚登记" if payload.get("kind") == "divorce" else "结婚登记"
    text = f"婚姻变动通报：{payload.get('registered_on', '')} {what}"
    for role in ("husband", "wife"):
        yield from _owed(MARRIAGE, payload.get(role), county, text, party=role)


def _death(payload: dict[str, Any], county: str) -> Iterator[Trigger]:
    """A death (police 死亡注销, or a funeral home's 火化登记) of someone registered in another county."""
    text = f"死亡通报：{payload.get('death_date', '')} 死亡" + ("（火化登记）" if "cremation_date" in payload else "")
    yield from _owed(DEATH, payload.get("deceased"), county, text, division=_registered(payload),
                     address=(payload.get("household") or {}).get("address"))


def _adoption(payload: dict[str, Any], county: str) -> Iterator[Trigger]:
    """An adoption registration (收养登记): one notice per adopter registered in another county."""
    text = f"收养通报：{payload.get('registered_on', '')} 收养子女"
    for index, adopter in enumerate(payload.get("adopters") or []):
        yield from _owed(ADOPTION, adopter, county, text, party=f"adopters.{index}")


def _permit(payload: dict[str, Any], county: str) -> Iterator[Trigger]:
    """A residence permit (居住证) issued here to someone registered in another county (流入)."""
    text = f"流入信息通报：{payload.get('issued_on', '')} 办理居住证，有效期至 {payload.get('valid_until', '')}"
    yield from _owed(ARRIVAL, payload.get("holder"), county, text, division=_registered(payload),
                     address=(payload.get("residence") or {}).get("address"))


def _departure(payload: dict[str, Any], county: str) -> Iterator[Trigger]:
    """A household registration moved out of the county (迁出): to the place it moved to (迁往地),
    now the person's household registration; a move within the county owes nothing."""
    if payload.get("direction") != "out":
        return
    destination = _registered(payload, "other_place")
    if not destination:
        return  # where to is unknown: no place to notify
    text = f"流出信息通报：{payload.get('move_date', '')} 户口迁出本县"
    yield from _owed(DEPARTURE, payload.get("person"), county, text, division=destination,
                     address=(payload.get("household") or {}).get("address"))


# contract -> what a record of it owes.
TRIGGERS: dict[str, Callable[[dict[str, Any], str], Iterator[Trigger]]] = {
    "BirthEvent": _birth, "MarriageEvent": _marriage, "DeathEvent": _death, "CremationEvent": _death,
    "AdoptionEvent": _adoption, "ResidencePermit": _permit, "Migration": _departure,
}


def _triggers(record: Record, county: str) -> list[Trigger]:
    finder = TRIGGERS.get(record.contract)
    return list(finder(json.loads(record.payload), county)) if finder else []


def _source(settings: Settings, source: str | None = None) -> tuple[str, Any]:
    from gateway.platform.assist_checks import platform_source

    return platform_source(settings, source)


def _next_number(session: Session, division: str, day: dt.date) -> str:
    prefix = f"TB-{division}-{day:%Y%m%d}-"
    count = session.exec(select(func.count(OutgoingNotice.id)).where(OutgoingNotice.message_id.like(prefix + "%"))).scalar_one()  # type: ignore[attr-defined]
    return f"{prefix}{int(count) + 1:04d}"


def draft(engine: Engine, settings: Settings, source: str | None = None) -> int:
    """A draft per accepted record that owes a notice and has none; how many were made."""
    _, config = _source(settings, source)
    deadlines = Deadlines(settings.deadlines)
    made = 0
    with session_scope(engine) as session:
        try:
            county = county_division(session, settings, config)
        except GatewayError as exc:
            log.warning("notices not drafted: %s", exc)
            return 0
        earlier = aliased(Record)  # a notice drafted for any version of the same record (a correction owes no second one)
        drafted = exists().where(
            OutgoingNotice.record_id == earlier.id, earlier.contract == Record.contract, earlier.business_key == Record.business_key,
        )
        records = session.exec(
            select(Record)
            .join(Exchange, Exchange.id == Record.exchange_id)  # type: ignore[arg-type]
            .where(Record.contract.in_(list(TRIGGERS)), Exchange.department != "national-platform", ~drafted)  # type: ignore[attr-defined]
            .order_by(Record.id)  # type: ignore[arg-type]
        ).scalars().all()
        now = clock.now()
        today = clock.in_china(now).date()
        notified = _notified_people(session, county)
        for record in records:
            for trigger in _triggers(record, county):
                if trigger.category in ONCE_PER_PERSON and trigger.person["id_number"]:
                    person = (trigger.category, trigger.person["id_number"])
                    if person in notified:
                        continue  # the same death from the other department: one notice per person
                    notified.add(person)
                rule = rule_for(KIND, settings)
                due = deadlines.due(rule, today)
                item = OutgoingNotice(
                    message_id=_next_number(session, county, today), record_id=record.id, category=trigger.category,  # type: ignore[arg-type]
                    party=trigger.party, to_division=trigger.to_division, feedback_required=trigger.category in FEEDBACK,
                    created_at=now, due_date=due.date, due_rule=rule, due_provisional=due.provisional,
                )
                session.add(item)
                session.flush()
                open_obligation(
                    session, kind=KIND, party=PARTY, subject=f"{KIND}:{item.message_id}", start=now, rule=rule, due=due,
                    detail=f"通报 {item.message_id} ({CASE_LABELS.get(trigger.category, trigger.category)}) to {trigger.to_division}",
                )
                made += 1
                log.info("notice %s drafted (record %s, subject %s), due %s", item.message_id, record.id,
                         mask_name(trigger.person["name"]), due.date)
    return made


def _notified_people(session: Session, county: str) -> set[tuple[str, str]]:
    """(category, ID number) of the notices already drafted in a category owed once per person."""
    items = session.exec(select(OutgoingNotice).where(OutgoingNotice.category.in_(list(ONCE_PER_PERSON)))).scalars().all()  # type: ignore[attr-defined]
    return {(item.category, trigger.person["id_number"]) for item in items if (trigger := _trigger_of(session, item, county))}


def _trigger_of(session: Session, item: OutgoingNotice, county: str) -> Trigger | None:
    """What the newest version of the notice's record says (a corrected record, e.g. its
    address completed, is what is sent)."""
    first = session.get(Record, item.record_id)
    if first is None:
        return None
    record = session.exec(
        select(Record).where(Record.contract == first.contract, Record.business_key == first.business_key)
        .order_by(Record.id.desc()).limit(1)  # type: ignore[union-attr]
    ).scalars().first() or first
    trigger = next((t for t in _triggers(record, county) if (t.category, t.party) == (item.category, item.party)), None)
    return _with_register_address(session, trigger)


def _with_register_address(session: Session, trigger: Trigger | None) -> Trigger | None:
    """A record with no address of its own (a marriage, an adoption, a cremation) takes the
    person's current residence from the population register (人口库: the residence the
    authoritative source gave, else the household address), since the notice must say where
    the person lives; a record's own address always wins."""
    if trigger is None or trigger.person.get("address") or not trigger.person.get("id_number"):
        return trigger
    person = session.get(RegisterPerson, trigger.person["id_number"])
    address = person and (person.residence_address or person.household_address)
    if not address:
        return trigger
    return replace(trigger, person={**trigger.person, "address": address})


def problems(trigger: Trigger | None) -> list[str]:
    """Why a notice may not leave (name, ID number, a village-level address), Chinese first."""
    if trigger is None:
        return ["触发记录已不再需要通报 the record no longer owes this notice"]
    found = []
    if not trigger.person.get("name"):
        found.append("缺少姓名 no name")
    if not trigger.person.get("id_number"):
        found.append("缺少公民身份号码 no ID number")
    address = trigger.person.get("address") or ""
    if not address:
        found.append("缺少现居住地址 no address")
    elif not VILLAGE_LEVEL.search(address):
        found.append("地址未到村/社区居委会一级 the address does not reach the village (村/社区居委会)")
    return found


def render(message_id: str, *, sender: str, trigger: Trigger, sent: dt.datetime) -> bytes:
    """One `JHXX` (FSDW this county, JSDW the place of household registration) holding one `TBXX`."""
    root = etree.Element("JHXX", BBH="2.0", FSDW=sender, JSDW=trigger.to_division, FSSJ=clock.in_china(sent).isoformat(timespec="seconds"))
    flag = "1" if trigger.category in FEEDBACK else "0"
    notice = etree.SubElement(root, "TBXX", XXBH=message_id, LB=trigger.category, XYFK=flag, FQSJ=f"{clock.in_china(sent):%Y-%m-%d}")
    person = etree.SubElement(notice, "DX", XM=trigger.person["name"], GMSFHM=trigger.person["id_number"])
    if trigger.person.get("birth_date"):
        person.set("CSRQ", trigger.person["birth_date"])
    person.set("XJZD", trigger.person["address"])
    etree.SubElement(notice, "TBNR").text = trigger.text
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


@dataclass
class Sent:
    notice: OutgoingNotice
    sent: bool
    error: str | None = None
    receipt: str | None = None
    refused_here: bool = False  # stopped before it left: its problems are in `error`


def find(engine: Engine, notice: str) -> OutgoingNotice:
    with Session(engine) as session:
        query = select(OutgoingNotice).where(
            OutgoingNotice.id == int(notice) if notice.isdigit() else OutgoingNotice.message_id == notice  # type: ignore[arg-type]
        )
        item = session.exec(query).scalars().first()
        if item is None:
            raise GatewayError(f"no notice of the county's own {notice!r}: see `gateway notices drafts`")
        session.expunge(item)
        return item


def send(gateway: ExchangeServices, settings: Settings, notice: str | int, *, operator: str | None = None, source: str | None = None) -> Sent:
    """Check, POST and receipt one draft (see the module's docstring)."""
    from gateway.pulls.http import PullError, endpoint, make_session, post

    item = find(gateway.engine, str(notice))
    if item.status != "draft":
        return Sent(item, sent=item.status in ("sent", "answered"), error=None if item.status != "refused" else item.send_error)
    name, config = _source(settings, source)
    now = clock.now()
    with Session(gateway.engine) as session:
        county = county_division(session, settings, config)
        trigger = _trigger_of(session, item, county)
    found = problems(trigger)
    if found:
        reason = "；".join(found)
        _note(gateway.engine, item.id, error=reason)  # type: ignore[arg-type]
        log.warning("notice %s not sent: %s", item.message_id, reason)
        return Sent(find(gateway.engine, str(item.id)), sent=False, error=reason, refused_here=True)
    assert trigger is not None
    body = render(item.message_id, sender=county, trigger=trigger, sent=now)
    http = None
    try:
        http = make_session(name, config)
        post(http, name, endpoint(config, "/exchange/notices"), body, config)
    except (PullError, GatewayError) as exc:
        refused = isinstance(exc, PullError) and exc.status is not None and 400 <= exc.status < 500 and exc.status not in (401, 403, 429)
        _note(gateway.engine, item.id, error=str(exc), status="refused" if refused else None)  # type: ignore[arg-type]
        log.error("notice %s: %s: %s", item.message_id, "refused by the platform" if refused else "not sent yet", exc)
        return Sent(find(gateway.engine, str(item.id)), sent=False, error=str(exc))
    finally:
        if http is not None:
            http.close()
    exchange_id, receipt = _receipt(gateway, item.message_id, body, kind="TBXX")
    with session_scope(gateway.engine) as db:
        row = db.get(OutgoingNotice, item.id)
        assert row is not None
        row.status, row.sent_at, row.sent_date, row.send_error, row.exchange_id = "sent", clock.now(), clock.in_china(now).date(), None, exchange_id
        row.sent_by, row.notice_xml = operator or getpass.getuser(), body.decode("utf-8")
        row.send_attempts += 1
        fulfil(db, KIND, f"{KIND}:{row.message_id}", row.sent_at, by=row.sent_by)
        db.flush()
        db.expunge(row)
    log.info("notice %s sent to %s, exchange %s", item.message_id, item.to_division, exchange_id)
    return Sent(row, sent=True, receipt=receipt)


def _note(engine: Engine, notice_id: int, *, error: str, status: str | None = None) -> None:
    with session_scope(engine) as db:
        row = db.get(OutgoingNotice, notice_id)
        assert row is not None
        row.send_attempts += 1
        row.send_error = error
        row.status = status or row.status


def close_answered(engine: Engine) -> int:
    """Close every sent notice whose feedback (an FKXX the platform pull brought) is stored."""
    closed = 0
    with session_scope(engine) as session:
        waiting = {n.message_id: n for n in session.exec(select(OutgoingNotice).where(OutgoingNotice.status == "sent")).scalars()}
        if not waiting:
            return 0
        rows = session.exec(
            select(Record.id, Record.business_key, Record.payload)
            .join(Exchange, Exchange.id == Record.exchange_id)  # type: ignore[arg-type]
            .where(Record.contract == "AssistCheckFeedback", Exchange.adapter == "national-platform",
                   Record.business_key.in_(list(waiting)))  # type: ignore[attr-defined]
            .order_by(Record.id)  # type: ignore[arg-type]
        ).all()
        for record_id, key, payload in rows:
            item = waiting.get(key)
            if item is None or item.status != "sent":
                continue
            answered = json.loads(payload).get("answered_at")
            item.status, item.answer_record_id = "answered", record_id
            item.answered_at = dt.datetime.fromisoformat(answered) if answered else clock.now()
            closed += 1
    return closed


@dataclass
class FollowUp:
    drafted: int = 0
    sent: int = 0
    answered: int = 0
    errors: list[str] | None = None

    def summary(self) -> str:
        return f"{self.drafted} notice(s) of the county's own drafted, {self.sent} sent, {self.answered} answered"


def follow_up(gateway: ExchangeServices, settings: Settings, source: str | None = None) -> FollowUp:
    """Draft what accepted records owe, close answered notices, and send drafts when
    `[pulls.platform] send_notices = true`."""
    result = FollowUp(errors=[])
    try:
        name, config = _source(settings, source)
    except GatewayError:
        return result  # no platform configured: nothing to notify through
    result.drafted = draft(gateway.engine, settings, name)
    result.answered = close_answered(gateway.engine)
    if getattr(config, "send_notices", False):
        with Session(gateway.engine) as session:
            ids = list(session.exec(select(OutgoingNotice.id).where(OutgoingNotice.status == "draft").order_by(OutgoingNotice.id)).scalars())  # type: ignore[arg-type]
        for notice_id in ids:
            outcome = send(gateway, settings, notice_id, operator="auto", source=name)  # type: ignore[arg-type]
            if outcome.sent:
                result.sent += 1
            else:
                result.errors.append(f"{outcome.notice.message_id}: {outcome.error}")  # type: ignore[union-attr]
    return result


@dataclass
class NoticeView:
    item: OutgoingNotice
    subject: str  # masked
    problems: list[str]


def list_drafts(engine: Engine, settings: Settings, *, include_sent: bool = False) -> list[NoticeView]:
    """The county's own notices, soonest due first: drafts (with why one cannot leave), and sent ones with `include_sent`."""
    _, config = _source(settings)
    views = []
    with Session(engine) as session:
        county = county_division(session, settings, config)
        query = select(OutgoingNotice).order_by(OutgoingNotice.due_date, OutgoingNotice.id)  # type: ignore[arg-type]
        if not include_sent:
            query = query.where(OutgoingNotice.status == "draft")
        for item in session.exec(query).scalars().all():
            trigger = _trigger_of(session, item, county)
            subject = f"{mask_name(trigger.person['name'])} {mask_id(trigger.person['id_number'])}" if trigger else ""
            views.append(NoticeView(item, subject, problems(trigger) if item.status == "draft" else []))
    return views


def submitted_in(engine: Engine, first: dt.date, last: dt.date, until: dt.datetime) -> int:
    """The county's own notices the platform took, sent (FQSJ) from `first` to `last`, by `until`."""
    with Session(engine) as session:
        found = session.exec(
            select(func.count(OutgoingNotice.id)).where(
                OutgoingNotice.sent_date >= first, OutgoingNotice.sent_date <= last,  # type: ignore[operator]
                OutgoingNotice.sent_at.is_not(None), OutgoingNotice.sent_at <= until,  # type: ignore[union-attr]
            )
        ).scalar_one()
    return int(found)

