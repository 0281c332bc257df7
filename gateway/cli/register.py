"""`gateway register`: the population register (人口基础信息库), the 育龄妇女 花名册 per
township and village, the divisions, what could not be placed and where sources disagree.
Names, ID numbers and addresses are masked unless revealed with a reason (audited)."""

from __future__ import annotations

import datetime as dt
import getpass
import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from gateway.cli._common import HomeOption, console, settings_for
from gateway.errors import GatewayError

app = typer.Typer(help="人口基础信息库与育龄妇女信息库 / The population register and the register of women of childbearing age.",
                  no_args_is_help=True)

AsOfOption = Annotated[Optional[str], typer.Option("--as-of", help="Ages on this day (YYYY-MM-DD; default: today, China time).")]
RevealOption = Annotated[bool, typer.Option("--reveal", help="Show full names, ID numbers and addresses (needs --reason; audited).")]
ReasonOption = Annotated[Optional[str], typer.Option("--reason", help="Why the identifiers are revealed (audited).")]


def _open(home: Path | None):  # type: ignore[no-untyped-def]
    from gateway.register import fold
    from gateway.store import make_engine
    from gateway.store.db import create_schema

    settings = settings_for(home)
    engine = make_engine(settings.db_url)
    create_schema(engine)
    result = fold(engine, settings)
    return settings, engine, result


def _day(as_of: str | None) -> dt.date:
    from gateway import clock

    if as_of is None:
        return clock.today()
    try:
        return dt.date.fromisoformat(as_of)
    except ValueError:
        raise GatewayError(f"--as-of {as_of!r}: write a date YYYY-MM-DD") from None


def _audit(engine, action: str, detail: str) -> None:  # type: ignore[no-untyped-def]
    from gateway.register.women import AUDIT_DEPARTMENT
    from gateway.store import session_scope
    from gateway.store.audit import record_event

    with session_scope(engine) as session:
        record_event(session, action, AUDIT_DEPARTMENT, detail=f"{detail}, by {getpass.getuser()}")


@app.command("update")
def update(home: HomeOption = None) -> None:
    """并入新记录 / Fold the stored records not folded yet into the register (what `gateway run` does each pass)."""
    _, engine, result = _open(home)
    engine.dispose()
    console.print(result.summary(), markup=False)


@app.command("rebuild")
def rebuild(home: HomeOption = None) -> None:
    """重建 / Drop the register and fold every stored record again; prints the register's sha256."""
    from gateway.register.build import rebuild as do_rebuild, register_digest

    settings, engine, _ = _open(home)
    try:
        before = register_digest(engine)
        result = do_rebuild(engine, settings)
        after = register_digest(engine)
    finally:
        engine.dispose()
    console.print(result.summary(), markup=False)
    same = "相同 / same" if before == after else "不同 / changed (a rule, setting or divisions.csv changed)"
    console.print(f"登记库摘要 register sha256: {after} — 与重建前{same}", markup=False)


@app.command("show")
def show(
    id_number: Annotated[str, typer.Argument(help="公民身份号码 (18 or 15 digits).")],
    reveal: RevealOption = False,
    reason: ReasonOption = None,
    home: HomeOption = None,
) -> None:
    """查看一人 / One person: each attribute with its source, the other sources' values, disagreements, history (audited)."""
    from gateway.masking import mask_address, mask_id, mask_name
    from gateway.register.facts import valid_id
    from gateway.register.settings import SOURCE_LABELS
    from gateway.register.build import change_kind
    from gateway.store.register_models import RegisterPerson
    from sqlmodel import Session

    number = valid_id(id_number)
    if number is None:
        raise GatewayError(f"{mask_id(id_number)}: 不是有效的公民身份号码 / not a valid ID number (format or check character)")
    if reveal and not (reason or "").strip():
        raise GatewayError("--reveal 需要 --reason / --reveal shows full identifiers: give the reason with --reason (audited)")
    _, engine, _ = _open(home)
    try:
        with Session(engine) as session:
            person = session.get(RegisterPerson, number)
        _audit(engine, "register.view", f"person {mask_id(number)}" + (f", revealed: {reason}" if reveal else ""))
    finally:
        engine.dispose()
    if person is None:
        console.print(f"登记库中没有此人 / not in the register: {mask_id(number)}", markup=False)
        raise typer.Exit(1)
    kinds = {"name": "name", "spouse": "id_number", "household_address": "address", "residence_address": "address"}

    def shown(attribute: str, value: str | None) -> str:
        if value is None or reveal:
            return value or ""
        kind = kinds.get(attribute)
        return {"name": mask_name, "id_number": mask_id, "address": mask_address}.get(kind, lambda v: v)(value) if kind else value  # type: ignore[operator]

    state = json.loads(person.state)
    console.print(f"[bold]{escape(person.id_number if reveal else mask_id(person.id_number))}[/] "
                  f"{escape(shown('name', person.name))} 性别 {'女' if person.sex == '2' else '男'} 出生 {person.birth_date}")
    place = state["place"]
    console.print(f"区划 place: {place['status']} 乡镇 {place['township'] or '-'} 村 {place['village'] or '-'}"
                  f"（{place['basis']}）{place['reason']}", markup=False)
    table = Table(title="属性及来源 / attributes and their sources")
    for column in ("属性 attribute", "值 value", "来源 source", "其他来源 others"):
        table.add_column(column)
    for attribute, item in sorted(state["attributes"].items()):
        others = "; ".join(f"{SOURCE_LABELS.get(s, s)}: {shown(attribute, v)}" for s, v in item["others"].items())
        table.add_row(attribute, escape(shown(attribute, item["value"])), SOURCE_LABELS.get(item["source"], item["source"]), escape(others))
    table.add_row("children", str(person.children), "", "")
    console.print(table)
    for item in state["disagreements"]:
        console.print(f"[yellow]来源不一致 disagreement[/] {item['attribute']}: "
                      f"{escape(SOURCE_LABELS.get(item['source'], item['source']))} {escape(shown(item['attribute'], item['value']) or '（无 none）')} ≠ "
                      f"{escape(SOURCE_LABELS.get(item['other_source'], item['other_source']))} {escape(shown(item['attribute'], item['other_value']))}")
    history = Table(title="变动历史 / history")
    for column in ("日期 date", "变动 change", "值 value", "来源 source", "交换 exchange", "记录 record"):
        history.add_column(column)
    for entry in state["history"]:
        history.add_row(entry["date"], f"{change_kind(entry)} ({entry['attribute']})", escape(shown(entry["attribute"], entry["value"])),
                        SOURCE_LABELS.get(entry["source"], entry["source"]), str(entry["exchange"] or ""),
                        f"{entry['contract']} v{entry['version']}")
    console.print(history)


@app.command("women")
def women(
    township: Annotated[str, typer.Option("--township", help="乡镇（街道）: its code (9 or 12 digits), name or town-<code>.")],
    village: Annotated[Optional[str], typer.Option("--village", help="村（居）: its code or name (default: the whole township).")] = None,
    csv_path: Annotated[Optional[Path], typer.Option("--csv", help="Write the 花名册 as CSV (UTF-8 with BOM) here.")] = None,
    xlsx_path: Annotated[Optional[Path], typer.Option("--xlsx", help="Write the 花名册 as XLSX here.")] = None,
    as_of: AsOfOption = None,
    reveal: RevealOption = False,
    reason: ReasonOption = None,
    home: HomeOption = None,
) -> None:
    """育龄妇女花名册 / The roster of women of childbearing age of a township or village (audited)."""
    from gateway.register.divisions import load_divisions
    from gateway.register.settings import register_settings
    from gateway.register.women import COLUMNS, roster, write_csv, write_xlsx

    settings, engine, _ = _open(home)
    try:
        divisions = load_divisions(settings.home)
        town = divisions.find(township, "township")
        place = divisions.find(village, "village", within=town.code) if village else None
        title = f"{divisions.county.name}{town.name}{place.name if place else ''}育龄妇女花名册"
        day = _day(as_of)
        result = roster(engine, day, register_settings(settings), township=town.code, village=place.code if place else None,
                        title=title, reveal=reveal, reason=reason)
    finally:
        engine.dispose()
    table = Table(title=f"{title}（{day.isoformat()}，{len(result.rows)} 人）")
    for column in COLUMNS:
        table.add_column(column)
    for row in result.rows:
        table.add_row(*map(escape, row))
    console.print(table)
    if csv_path:
        console.print(f"CSV: {write_csv(result, csv_path)}", markup=False)
    if xlsx_path:
        console.print(f"XLSX: {write_xlsx(result, xlsx_path)}", markup=False)


@app.command("divisions")
def divisions(
    example: Annotated[bool, typer.Option("--example", help="Write the example HOME/divisions.csv if there is none.")] = False,
    as_of: AsOfOption = None,
    home: HomeOption = None,
) -> None:
    """区划 / The county's townships and villages (HOME/divisions.csv, checked) with their people and women."""
    from sqlmodel import Session, select

    from gateway.register.build import rederive
    from gateway.register.divisions import load_divisions, write_example
    from gateway.register.settings import register_settings
    from gateway.register.women import is_woman_of_childbearing_age
    from gateway.store.register_models import RegisterPerson

    if example:
        written = write_example(settings_for(home).home)
        console.print(f"已写入示例 wrote {written}" if written else "divisions.csv 已存在 / already there: left as it is", markup=False)
    settings, engine, _ = _open(home)
    try:
        found = load_divisions(settings.home)
        rederive(engine, settings)
        rs, day = register_settings(settings), _day(as_of)
        people: dict[str | None, int] = {}
        women_count: dict[str | None, int] = {}
        with Session(engine) as session:
            for person in session.execute(select(RegisterPerson).where(RegisterPerson.in_county.is_(True))).scalars():  # type: ignore[attr-defined]
                for key in (person.township_code, person.village_code):
                    if key:
                        people[key] = people.get(key, 0) + 1
                        if is_woman_of_childbearing_age(person, day, rs):
                            women_count[key] = women_count.get(key, 0) + 1
    finally:
        engine.dispose()
    table = Table(title=f"{found.county.name}（{found.county.code}）区划 / divisions — 人员与育龄妇女 people and women ({day.isoformat()})")
    for column in ("代码 code", "名称 name", "级别 level", "接收方 recipient", "人员 people", "育龄妇女 women"):
        table.add_column(column)
    for town in found.townships.values():
        table.add_row(town.code, town.name, "乡镇 township", town.recipient, str(people.get(town.code, 0)), str(women_count.get(town.code, 0)))
        for place in found.villages_of(town.code):
            table.add_row(place.code, "  " + place.name, "村 village", "", str(people.get(place.code, 0)), str(women_count.get(place.code, 0)))
    console.print(table)


@app.command("unmatched")
def unmatched(home: HomeOption = None) -> None:
    """未匹配 / People of the county whose address could not be placed in a village (listed, never guessed)."""
    from sqlmodel import Session, select

    from gateway.masking import mask_address, mask_id, mask_name
    from gateway.store.register_models import RegisterPerson

    _, engine, _ = _open(home)
    try:
        with Session(engine) as session:
            rows = session.execute(
                select(RegisterPerson).where(RegisterPerson.place_status == "unmatched").order_by(RegisterPerson.id_number)
            ).scalars().all()
        _audit(engine, "register.unmatched", f"{len(rows)} row(s)")
    finally:
        engine.dispose()
    table = Table(title=f"未匹配到村（居）的人员 / not placed in a village: {len(rows)}")
    for column in ("公民身份号码", "姓名", "地址 address", "乡镇 township", "原因 reason"):
        table.add_column(column)
    for person in rows:
        state = json.loads(person.state)["place"]
        address = person.residence_address if state["basis"] == "residence" else person.household_address
        table.add_row(mask_id(person.id_number), escape(mask_name(person.name or "")), escape(mask_address(address or "")),
                      person.township_code or "-", state["reason"])
    console.print(table)


@app.command("discrepancies")
def discrepancies(
    include_resolved: Annotated[bool, typer.Option("--all", help="Resolved ones too.")] = False,
    home: HomeOption = None,
) -> None:
    """来源不一致 / Where sources disagree about a person (多元校核): both sources, masked."""
    from sqlmodel import Session

    from gateway.masking import mask_id, mask_name
    from gateway.register.discrepancies import disagreements
    from gateway.register.settings import SOURCE_LABELS

    _, engine, _ = _open(home)
    try:
        with Session(engine) as session:
            found = disagreements(session, include_resolved=include_resolved)
        _audit(engine, "register.discrepancies", f"{len(found)} disagreement(s)")
    finally:
        engine.dispose()
    table = Table(title=f"来源不一致 / disagreements: {sum(d.resolution is None for d in found)} open")
    for column in ("公民身份号码", "属性 attribute", "权威来源 authority", "值 value", "其他来源 other", "其值 its value", "核实 resolved"):
        table.add_column(column)
    for d in found:
        item = d.item
        mask = mask_name if item["attribute"] == "name" else (lambda v: v)
        table.add_row(mask_id(d.id_number), item["attribute"], SOURCE_LABELS.get(item["source"], item["source"]),
                      escape(mask(item["value"]) if item["value"] else "（无 none）"),
                      SOURCE_LABELS.get(item["other_source"], item["other_source"]), escape(mask(item["other_value"] or "")),
                      escape(f"{d.resolution.resolved_by}: {d.resolution.reason}") if d.resolution else "")
    console.print(table)


@app.command("resolve")
def resolve(
    id_number: Annotated[str, typer.Argument(help="公民身份号码.")],
    attribute: Annotated[str, typer.Argument(help="The attribute the sources disagree on (name, marital_status, ...).")],
    reason: Annotated[str, typer.Option("--reason", help="What was checked (kept and audited).")],
    home: HomeOption = None,
) -> None:
    """核实 / Resolve a disagreement with a reason; it opens again if a source sends another value."""
    from gateway.masking import mask_id
    from gateway.register.discrepancies import resolve as do_resolve
    from gateway.register.facts import valid_id

    number = valid_id(id_number)
    if number is None:
        raise GatewayError(f"{mask_id(id_number)}: 不是有效的公民身份号码 / not a valid ID number (format or check character)")
    _, engine, _ = _open(home)
    try:
        count = do_resolve(engine, number, attribute, reason)
    finally:
        engine.dispose()
    console.print(f"已核实 {count} 项 / {count} disagreement(s) resolved: {mask_id(number)} {attribute}", markup=False)


@app.command("lists")
def lists(
    kind: Annotated[str, typer.Argument(help="newlyweds (新婚夫妇), infants (婴儿落户), deaths (死亡人员), women-moves (育龄妇女迁出迁入).")],
    period: Annotated[str, typer.Option("--period", help="A month 2026-08 (monthly lists) or a quarter 2026-Q3 (women-moves).")],
    township: Annotated[str, typer.Option("--township", help="乡镇（街道）: its code, name or town-<code>.")],
    village: Annotated[Optional[str], typer.Option("--village", help="村（居）: its code or name.")] = None,
    csv_path: Annotated[Optional[Path], typer.Option("--csv", help="Write the list as CSV (UTF-8 with BOM) here.")] = None,
    reveal: RevealOption = False,
    reason: ReasonOption = None,
    home: HomeOption = None,
) -> None:
    """名单 / A name list of the regulations for a township or village and period (audited; masked unless revealed)."""
    from sqlmodel import Session

    from gateway.register.divisions import load_divisions
    from gateway.register.lists import COLUMNS, KINDS, list_csv, masked_rows, period_for, rows_for
    from gateway.register.settings import register_settings

    if kind not in KINDS:
        raise GatewayError(f"Unknown list {kind!r}. Valid choices: {', '.join(KINDS)}")
    if reveal and not (reason or "").strip():
        raise GatewayError("--reveal 需要 --reason / --reveal shows full identifiers: give the reason with --reason (audited)")
    span = period_for(kind, period)
    settings, engine, _ = _open(home)
    try:
        divisions = load_divisions(settings.home)
        town = divisions.find(township, "township")
        place = divisions.find(village, "village", within=town.code) if village else None
        with Session(engine) as session:
            rows = rows_for(session, kind, span, town.code, place.code if place else None, divisions, register_settings(settings))
        where = town.name + (place.name if place else "")
        _audit(engine, "register.list", f"{KINDS[kind][0]} {span.label} {where}: {len(rows)} row(s)" + (f", revealed: {reason}" if reveal else ""))
    finally:
        engine.dispose()
    shown = rows if reveal else masked_rows(kind, rows)
    table = Table(title=f"{divisions.county.name}{where}{KINDS[kind][0]}（{span.label}，{len(rows)} 条）")
    for column in COLUMNS[kind]:
        table.add_column(column)
    for row in shown:
        table.add_row(*map(escape, row))
    console.print(table)
    if csv_path:
        csv_path.write_bytes(list_csv(kind, shown))
        console.print(f"CSV: {csv_path}", markup=False)


@app.command("send-lists")
def send_lists(as_of: AsOfOption = None, home: HomeOption = None) -> None:
    """送达名单 / Send each township (department town-<code>) the name lists due by today, encrypted and signed (what `gateway run` does daily)."""
    from gateway.exchange.lifecycle import Gateway
    from gateway.register.lists import KINDS, describe, deliver_due

    gateway = Gateway(settings_for(home))
    try:
        outcomes = deliver_due(gateway, _day(as_of))
    finally:
        gateway.close()
    table = Table(title=describe(outcomes))
    for column in ("接收方 recipient", "名单 list", "期间 period", "状态 status", "条数 rows", "文件 file / 原因 reason"):
        table.add_column(column)
    for o in outcomes:
        table.add_row(o.recipient, KINDS[o.kind][0], o.period, o.status, str(o.rows), escape(o.file_name or o.reason or ""))
    console.print(table)
    if not outcomes:
        console.print("没有配置乡镇接收方 / no township recipients: add departments named town-<9-digit code> (see docs/register.md)")


@app.command("report")
def report(
    month: Annotated[str, typer.Option("--month", help="The calendar month, 2026-08.")],
    csv_path: Annotated[Optional[Path], typer.Option("--csv", help="Write the table as CSV (UTF-8 with BOM) here.")] = None,
    home: HomeOption = None,
) -> None:
    """分乡镇统计 / Per township: 住院分娩, 周岁内死亡婴儿, 死亡人口 by age and sex, 婴儿落户 and 往年出生补报 apart."""
    from gateway.register.divisions import load_divisions
    from gateway.register.lists import period as parse_period
    from gateway.register.township_report import HEADER, NOT_HELD, report_csv, table_rows, township_figures

    span = parse_period(month)
    if "Q" in span.label:
        raise GatewayError(f"--month {month!r}: write a month, 2026-08")
    settings, engine, _ = _open(home)
    try:
        divisions = load_divisions(settings.home)
        rows = table_rows(township_figures(engine, span, divisions), divisions)
    finally:
        engine.dispose()
    table = Table(title=f"{divisions.county.name}分乡镇人口变动 / per township, {span.label}")
    for column in HEADER:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    for item, note in NOT_HELD.items():
        console.print(f"{item}: {note}", markup=False)
    if csv_path:
        csv_path.write_bytes(report_csv(rows))
        console.print(f"CSV: {csv_path}", markup=False)
