"""The register in the console (人口库): the 育龄妇女花名册 of a village (gateway/register/women.py),
the counts per village of a township, the register's disagreements (多元校核) and the addresses
not placed in a village, as `gateway register women / divisions / discrepancies / unmatched`
show them, masked.

Operators and the population office's accounts only (the check of `GET /api/register/women`);
every view of a list or a person is an audit entry. An operator may download the village's
花名册 (CSV or XLSX, masked) and reveal one person's full name and ID number with a stated
reason (audited; the answer is not stored: `Cache-Control: no-store`, as every page).

The page reads, never folds: `gateway run` folds new records into the register (the daemon
folds), and a township's counts are those of the last fold."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select
from sqlmodel import Session

from gateway import clock
from gateway.errors import GatewayError
from gateway.masking import mask_address, mask_id, mask_name
from gateway.store.audit import mask_text
from gateway.web.pages import render
from gateway.web.session import COOKIE, Caller, audit, check_csrf, page_caller, require_role

if TYPE_CHECKING:
    from gateway.config import Settings
    from gateway.register.divisions import Division, Divisions
    from gateway.register.settings import RegisterSettings

router = APIRouter(include_in_schema=False)
PageCaller = Annotated[Caller, Depends(page_caller)]
Place = Annotated[str, Query(max_length=40)]

REGISTER_READERS = "population-office"  # the department the register is kept for (人口办)
REFUSED = "The register (育龄妇女信息库) is read by operators and the population office's accounts only."
# How each attribute of a disagreement is masked on screen (others: mask_text, which masks anything ID-shaped).
_MASKS = {"name": mask_name, "household_address": mask_address, "residence_address": mask_address, "spouse": mask_id}


def may_read_register(caller: Caller) -> bool:
    """Operators and the population office's accounts: the API's check, shared."""
    account = caller.account
    return account.role == "operator" or (account.role == "department" and account.department == REGISTER_READERS)


def _who(caller: Caller) -> str:
    account = caller.account
    return f"{account.name} ({account.role}{':' + account.department if account.department else ''}, console)"


def _audit(request: Request, caller: Caller, action: str, detail: str, subjects: list[str] | None = None) -> None:
    """An entry of the console's audit log (never the write lock of an exchange)."""
    from gateway.register.women import AUDIT_DEPARTMENT

    audit(request, action, caller, department=AUDIT_DEPARTMENT, subjects=subjects or (), detail=f"{detail}, by {_who(caller)}")


def roster_audit(request: Request, caller: Caller, action: str = "register.women") -> Callable[[str, list[str]], None]:
    """A roster view's audit entry in the console's log, naming the women shown (masked)."""

    def record(detail: str, subjects: list[str]) -> None:
        from gateway.register.women import AUDIT_DEPARTMENT

        audit(request, action, caller, department=AUDIT_DEPARTMENT, subjects=subjects, detail=detail)

    return record


def person_ref(request: Request, id_number: str) -> str:
    """An opaque reference to one row of the roster for the reveal form: an HMAC of the ID
    number keyed by the session's token (the HttpOnly cookie, never in the page), so the page
    holds no identifier and a reference is worth nothing outside this session."""
    key = request.cookies.get(COOKIE, "").encode("utf-8")
    return hmac.new(key, id_number.encode("ascii", "replace"), hashlib.sha256).hexdigest()[:32]


@dataclass
class VillageCount:
    code: str
    name: str
    people: int
    women: int


@dataclass
class Disagreement:
    """One open disagreement, masked."""

    person: str
    attribute: str
    source: str
    value: str
    other_source: str
    other_value: str


def _counts(session: Session, town: Division, villages: list[Division], on: dt.date, rs: RegisterSettings) -> tuple[list[VillageCount], dict[str, int]]:
    """People and women of childbearing age per village of the township, from the register as
    last folded (no rederive: that is the daemon's)."""
    from gateway.register.women import is_woman_of_childbearing_age
    from gateway.store.register_models import RegisterPerson

    people: dict[str, int] = {}
    women: dict[str, int] = {}
    totals = {"people": 0, "women": 0, "not_in_a_village": 0, "unmatched": 0}
    query = select(RegisterPerson).where(RegisterPerson.in_county.is_(True), RegisterPerson.township_code == town.code)  # type: ignore[attr-defined]
    for person in session.execute(query).scalars():
        totals["people"] += 1
        woman = is_woman_of_childbearing_age(person, on, rs)
        totals["women"] += woman
        if person.village_code:
            people[person.village_code] = people.get(person.village_code, 0) + 1
            women[person.village_code] = women.get(person.village_code, 0) + woman
        else:
            totals["not_in_a_village"] += 1
            totals["unmatched"] += person.place_status == "unmatched"
    rows = [VillageCount(v.code, v.name, people.get(v.code, 0), women.get(v.code, 0)) for v in villages]
    return rows, totals


def _unmatched(session: Session) -> int:
    from gateway.store.register_models import RegisterPerson

    query = select(func.count()).select_from(RegisterPerson).where(RegisterPerson.place_status == "unmatched")
    return int(session.execute(query).scalar_one())


def _disagreements(session: Session, township: str | None) -> list[Disagreement]:
    """The open disagreements (of the township's people, when one is chosen), masked."""
    from gateway.register.discrepancies import ATTRIBUTE_ZH, disagreements
    from gateway.register.settings import SOURCE_LABELS
    from gateway.register.women import MARITAL
    from gateway.store.register_models import RegisterPerson

    found = disagreements(session)
    if township:
        query = select(RegisterPerson.id_number).where(RegisterPerson.township_code == township)
        inside = set(session.execute(query).scalars())
        found = [d for d in found if d.id_number in inside]
    rows = []
    for d in found:
        item = d.item
        mask = _MASKS.get(item["attribute"], mask_text)
        if item["attribute"] == "marital_status":  # a GB/T 2261.2 code: its label
            mask = lambda value: MARITAL.get(value, value)  # noqa: E731
        rows.append(Disagreement(
            person=mask_id(d.id_number), attribute=f"{ATTRIBUTE_ZH.get(item['attribute'], item['attribute'])} {item['attribute']}",
            source=SOURCE_LABELS.get(item["source"], item["source"]),
            value=mask(str(item["value"])) if item["value"] else "（无 none）",
            other_source=SOURCE_LABELS.get(item["other_source"], item["other_source"]),
            other_value=mask(str(item["other_value"])) if item["other_value"] else "（无 none）",
        ))
    return rows


def _day(as_of: str | None) -> dt.date:
    if not as_of:
        return clock.today()
    try:
        return dt.date.fromisoformat(as_of)
    except ValueError:
        raise HTTPException(400, f"统计日期应写成 YYYY-MM-DD The date {as_of[:20]!r} is not YYYY-MM-DD") from None


def _village(settings: Settings, township: str, village: str) -> tuple[Divisions, Division, Division]:
    """The county's divisions and the township and village asked for; a bad name is a 400."""
    from gateway.register.divisions import load_divisions

    try:
        divisions = load_divisions(settings.home)
        town = divisions.find(township, "township")
        return divisions, town, divisions.find(village, "village", within=town.code)
    except GatewayError as exc:
        raise HTTPException(400, str(exc)) from None


def _check(caller: Caller) -> None:
    if not may_read_register(caller):
        raise HTTPException(403, REFUSED)


def _register_page(
    request: Request, caller: Caller, township: str, village: str, as_of: str, status_code: int = 200, **extra: Any,
) -> HTMLResponse:
    """The page: the township picker, the township's counts and disagreements, the village's
    花名册 (masked, audited). `extra`: an outcome message, a revealed person."""
    from gateway.register.divisions import load_divisions
    from gateway.register.settings import register_settings
    from gateway.register.women import COLUMNS, roster

    state = request.app.state
    day = _day(as_of)
    context: dict[str, Any] = {
        "township": township, "village": village, "as_of": as_of, "day": day, "columns": COLUMNS, "town": None, "place": None,
        "villages": [], "totals": None, "rows": None, "refs": [], "disagreements": None, "unmatched": None, "problem": None,
        "operator": caller.account.role == "operator", "townships": [], "county": None, "outcome": None, "revealed": None,
    }
    context.update(extra)
    try:
        divisions = load_divisions(state.settings.home)
    except GatewayError as exc:
        context["problem"] = f"区划表不可用 The divisions are not usable: {exc}"
        return render(request, "register.html", caller, status_code=409, **context)
    context["county"], context["townships"] = divisions.county, list(divisions.townships.values())
    rs = register_settings(state.settings)
    with Session(state.engine) as session:
        context["unmatched"] = _unmatched(session)
        try:
            town = divisions.find(township, "township") if township.strip() else None
            place = divisions.find(village, "village", within=town.code) if town and village.strip() else None
        except GatewayError as exc:
            context["problem"] = str(exc)
            return render(request, "register.html", caller, status_code=400, **context)
        found = _disagreements(session, town.code if town else None)
        if town is not None:
            context["villages"], context["totals"] = _counts(session, town, divisions.villages_of(town.code), day, rs)
    context.update(town=town, place=place, disagreements=found)
    where = town.name if town else divisions.county.name
    if found:
        _audit(request, caller, "register.discrepancies", f"{len(found)} disagreement(s) (masked) of {where} on the register page",
               sorted({d.person for d in found}))
    if town is not None and place is not None:
        result = roster(
            state.engine, day, rs, township=town.code, village=place.code,
            title=f"{divisions.county.name}{town.name}{place.name}育龄妇女花名册 on the register page", operator=_who(caller),
            audit=roster_audit(request, caller),
        )
        context["rows"] = result.rows
        context["refs"] = [person_ref(request, number) for number in result.numbers]
    return render(request, "register.html", caller, status_code=status_code, **context)


@router.get("/register", response_class=HTMLResponse)
def register_page(
    request: Request, caller: PageCaller, township: Place = "", village: Place = "",
    as_of: Annotated[str, Query(max_length=20)] = "",
) -> HTMLResponse:
    """人口库: pick a township, then a village; its 花名册, masked."""
    _check(caller)
    return _register_page(request, caller, township, village, as_of)


@router.post("/register/reveal", response_class=HTMLResponse)
def register_reveal(
    request: Request,
    caller: PageCaller,
    township: Annotated[str, Form(max_length=40)] = "",
    village: Annotated[str, Form(max_length=40)] = "",
    as_of: Annotated[str, Form(max_length=20)] = "",
    person: Annotated[str, Form(max_length=64)] = "",
    reason: Annotated[str, Form(max_length=200)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> HTMLResponse:
    """查看全名: one woman's full name and ID number, on this answer only; operators, with a
    reason; audited (`register.view`, as `gateway register show --reveal`)."""
    from gateway.register.settings import register_settings
    from gateway.register.women import women

    check_csrf(caller, csrf_token)
    _check(caller)
    require_role(caller, "operator")
    said = " ".join(reason.split())
    if len(said) < 2:
        return _register_page(request, caller, township, village, as_of, status_code=400, outcome={
            "ok": False, "message": "未能查看 Not revealed: 查看全名和身份证号须说明理由 A reveal needs a reason (e.g. 核对纸质台账, 电话核实派出所)"})
    state = request.app.state
    divisions, town, place = _village(state.settings, township, village)
    with Session(state.engine) as session:
        chosen = [p for p in women(session, _day(as_of), register_settings(state.settings), town.code, place.code)
                  if hmac.compare_digest(person_ref(request, p.id_number), person)]
    if not chosen:
        return _register_page(request, caller, township, village, as_of, status_code=404, outcome={
            "ok": False, "message": "未能查看 Not revealed: 此人已不在本村花名册中，请刷新页面 This person is no longer on the village's roster: reload the page"})
    woman = chosen[0]
    _audit(request, caller, "register.view", f"person {mask_id(woman.id_number)} of {town.name}{place.name}, revealed: {mask_text(said)}",
           [mask_id(woman.id_number)])
    revealed = {"name": woman.name or "", "id_number": woman.id_number, "masked": f"{mask_name(woman.name or '')} {mask_id(woman.id_number)}"}
    return _register_page(request, caller, township, village, as_of, revealed=revealed)


@router.get("/register/women.{kind}")
def register_download(
    request: Request, caller: PageCaller, kind: str, township: Place = "", village: Place = "",
    as_of: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """The village's 花名册 as CSV (UTF-8 with BOM) or XLSX, masked; operators; audited."""
    from gateway.register.settings import register_settings
    from gateway.register.women import csv_bytes, roster, xlsx_bytes

    _check(caller)
    require_role(caller, "operator")
    if kind not in ("csv", "xlsx"):
        raise HTTPException(404, f"No such download: women.{kind[:10]} (women.csv or women.xlsx)")
    state = request.app.state
    day = _day(as_of)
    divisions, town, place = _village(state.settings, township, village)
    title = f"{divisions.county.name}{town.name}{place.name}育龄妇女花名册"
    result = roster(state.engine, day, register_settings(state.settings), township=town.code, village=place.code,
                    title=f"{title} downloaded as {kind.upper()} from the console", operator=_who(caller),
                    audit=roster_audit(request, caller))
    result.title = f"{title}（{day.isoformat()}，{len(result.rows)} 人）"
    body = csv_bytes(result) if kind == "csv" else xlsx_bytes(result)
    media = "text/csv; charset=utf-8" if kind == "csv" else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    name = f"{place.name}育龄妇女花名册-{day.isoformat()}.{kind}"
    fallback = f"women-{place.code}-{day.isoformat()}.{kind}"
    return Response(body, media_type=media, headers={"Content-Disposition": f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name)}"})
