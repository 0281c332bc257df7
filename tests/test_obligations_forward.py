"""Two obligations the gateway opens by itself (issue 17): forwarding a platform request or
notice to the township of its person (转送, 2 working days), and each reconciliation item's
missing counterpart (补报核对, due on the grace end). Real gateway, real database (SQLite and
PostgreSQL), real GnuPG; the business clock pinned."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading

import pytest
from sqlmodel import Session, select
from stdnum.cn import ric

from conftest import drop, query, run_gateway
from gateway import clock
from gateway.config import load_settings
from gateway.obligations.deadlines import WorkCalendar, use_calendar
from gateway.obligations.service import list_obligations
from gateway.register.divisions import EXAMPLE
from gateway.store.obligation_models import Obligation

TOWN = "town-440781101"  # 大江镇
DEPARTMENTS = ["police", "hospital", "civil-affairs", "school", "housing", "national-platform", "population-office", TOWN]
HOSPITAL_HEADER = ("出生医学证明编号,新生儿姓名,性别,出生日期,出生时间,出生体重(克),出生孕周,胎次,母亲姓名,母亲公民身份号码,"
                   "父亲姓名,父亲公民身份号码,接生机构名称,接生机构代码,家庭住址,户籍地行政区划代码")
POLICE_HEADER = "YWLX,GMSFHM,XM,XBDM,MZDM,CSRQ,HH,YHZGXDM,HJDZ,HJDZ_XZQHDM,BDRQ,BDYY,QYDZ,QYDZ_XZQHDM,ZQZBH,JZZBH,JZZYXQZ,CSYXZMBH,DJPCS"


def make_id(division: str, born: str, sequence: int) -> str:
    body = f"{division}{born.replace('-', '')}{sequence:03d}"
    return body + ric.calc_check_digit(body + "0")


MOTHER = ("黄秀梅", make_id("440781", "1993-04-07", 24), "1993-04-07")  # lives in 大江镇公益村
OUTSIDER = ("邓玉兰", make_id("341222", "1989-08-08", 26), "1989-08-08")  # not in the county's records
CHILDREN = {cert: (f"黄小{n}", make_id("440781", "2026-10-03", 10 + 2 * n + 1), "2026-10-03")
            for n, cert in enumerate(("Q440781269101", "Q440781269102", "Q440781269103"), start=1)}


def china(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=clock.CHINA)


@pytest.fixture(autouse=True)
def calendar_2026():
    use_calendar(WorkCalendar(holidays=[], workdays=[], years={2026}, source="weekends only, 2026"))
    yield
    use_calendar(None)


@pytest.fixture
def county(home, monkeypatch):
    (home / "divisions.csv").write_text(EXAMPLE, encoding="utf-8")
    monkeypatch.setenv("GATEWAY_DEPARTMENTS", json.dumps(DEPARTMENTS))
    monkeypatch.setenv("GATEWAY_SETTLE_SECONDS", "0")
    settings = load_settings(home)
    for folder in ("inbox", "outbox", "processed", "rejected"):
        (settings.mailbox_root / TOWN / folder).mkdir(parents=True, exist_ok=True)
    from gateway.exchange.lifecycle import Gateway

    gateway = Gateway(settings)
    yield gateway
    gateway.close()


def hospital_file(*certificates: str, mother: tuple[str, str, str] = MOTHER) -> bytes:
    rows = [f"{cert},{CHILDREN[cert][0]},男,2026-10-03,10:00,3200,39,1,{mother[0]},{mother[1]},,,台山市人民医院,12440781MB2C23455K,"
            "广东省台山市大江镇公益村3号,440781" for cert in certificates]
    return ("\n".join([HOSPITAL_HEADER, *rows]) + "\n").encode("utf-8")


def police_births(*certificates: str, registered: str) -> bytes:
    rows = []
    for cert in certificates:
        name, number, born = CHILDREN[cert]
        rows.append(f"出生登记,{number},{name},1,01,{born.replace('-', '')},440781000123,20,广东省台山市大江镇公益村3号,440781,"
                    f"{registered},出生,,,,,,{cert},大江派出所")
    return (POLICE_HEADER + "\n" + "\n".join(rows) + "\n").encode("utf-8")


def xcxx(number: str, person: tuple[str, str, str], categories: str, sent: str) -> str:
    name, id_number, born = person
    return (f'<XCXX XXBH="{number}" JJCD="1" FQSJ="{sent}" FX="HJD_TO_XJZD"><DX XM="{name}" GMSFHM="{id_number}" '
            f'CSRQ="{born}" XJZD="广东省台山市大江镇"/><XCNR LB="{categories}">请协查</XCNR></XCXX>')


def tbxx(number: str, person: tuple[str, str, str], sent: str) -> str:
    name, id_number, born = person
    return (f'<TBXX XXBH="{number}" LB="09" XYFK="1" FQSJ="{sent}"><DX XM="{name}" GMSFHM="{id_number}" CSRQ="{born}"/>'
            f"<TBNR>生育信息通报</TBNR></TBXX>")


def jhxx(*messages: str, sent: str) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<JHXX BBH="2.0" FSDW="510722" JSDW="440781" FSSJ="{sent}T10:00:00+08:00" CURSOR="{sent.replace("-", "")}100000-0001">'
            + "".join(messages) + "</JHXX>\n").encode("utf-8")


def inbox_pass(gateway) -> str:
    """What `gateway run` does every poll: the inboxes, the register, the platform's sync, 转送."""
    from gateway.platform.jobs import inbox_job
    from gateway.scheduler.runner import JobContext

    return inbox_job(gateway).run(JobContext(None, threading.Event())).summary


def forwards(settings) -> dict[str, tuple]:
    rows = query(settings, "SELECT subject, party, due_date, status, closed_by FROM obligation WHERE kind = 'forward'")
    return {subject: (party, str(due)[:10], status, closed_by) for subject, party, due, status, closed_by in rows}


# -- 转送 forwarding to the township ---------------------------------------------------------


def test_a_request_about_a_woman_of_a_township_is_forwarded_to_it_encrypted_or_held_until_it_has_a_key(
    county, recipients, caplog
):
    from gateway.platform.forward import forward_pending
    from gateway.receipts.keys import DepartmentKeys

    settings = county.settings
    outbox = settings.mailbox_root / TOWN / "outbox"
    with clock.pinned(china(2026, 11, 2, 9, 0)):
        drop(settings, "hospital", "births.csv", hospital_file("Q440781269101"))
        inbox_pass(county)
    # Tuesday 3 November: a request about her, and one about someone the county does not know.
    with clock.pinned(china(2026, 11, 3, 10, 0)), caplog.at_level(logging.WARNING, logger="gateway"):
        drop(settings, "national-platform", "jhxx-1.xml", jhxx(
            xcxx("XC-510722-20261103-0001", MOTHER, "01,03", "2026-11-03"),
            xcxx("XC-510722-20261103-0002", OUTSIDER, "01", "2026-11-03"), sent="2026-11-03"))
        inbox_pass(county)
    # No key for the township: held, nothing written, the obligation open; the warning masked.
    assert forwards(settings) == {"forward:XC-510722-20261103-0001": ("population-office", "2026-11-05", "open", None)}
    assert not list(outbox.glob("FORWARD-*"))
    held = [r.getMessage() for r in caplog.records if "XC-510722-20261103-0001" in r.getMessage()]
    assert held and "held" in held[0] and MOTHER[1] not in held[0] and f"{MOTHER[1][:6]}***********{MOTHER[1][-1:]}" in held[0]
    # 2 working days: due Thursday 5 November, overdue from 00:00 on the 6th.
    overdue = lambda moment: {v.subject for v in list_obligations(county.engine, overdue=True, now=moment) if v.kind == "forward"}  # noqa: E731
    assert overdue(china(2026, 11, 5, 23, 59).astimezone(dt.UTC)) == set()
    assert overdue(china(2026, 11, 6, 0, 0).astimezone(dt.UTC)) == {"forward:XC-510722-20261103-0001"}

    # The township's key registered; Monday 9 November a notice about her arrives.
    ring, fingerprint = recipients["population-office"]
    DepartmentKeys(settings.keys_dir).import_key(ring.export(fingerprint), TOWN)
    ring.trust_gateway(settings.keys_dir)
    with clock.pinned(china(2026, 11, 9, 9, 0)):
        drop(settings, "national-platform", "jhxx-2.xml", jhxx(tbxx("TB-510722-20261109-0001", MOTHER, "2026-11-09"),
                                                            sent="2026-11-09"))
        inbox_pass(county)
    assert forwards(settings) == {
        "forward:XC-510722-20261103-0001": ("population-office", "2026-11-05", "late", TOWN),  # held past its due day
        "forward:TB-510722-20261109-0001": ("population-office", "2026-11-11", "met", TOWN),
    }
    plain, status = ring.decrypt(outbox / "FORWARD-XC-510722-20261103-0001.json.gpg")
    assert "GOODSIG" in status and "DECRYPTION_OKAY" in status
    document = json.loads(plain)
    assert document["number"] == "XC-510722-20261103-0001" and document["kind"] == "assist-check"
    assert [c["code"] for c in document["categories"]] == ["01", "03"] and document["due"] == "2026-11-18"
    assert document["check_by"] == "2026-11-05" and document["township"] == TOWN and document["township_name"] == "大江镇"
    person = document["person"]
    assert (person["name"], person["id_number"], person["village"]) == (MOTHER[0], MOTHER[1], "公益村")
    assert "大江镇公益村3号" in person["residence_address"] + person["household_address"]
    notice = json.loads(ring.decrypt(outbox / "FORWARD-TB-510722-20261109-0001.json.gpg")[0])
    assert notice["kind"] == "notice" and notice["feedback_required"] is True and notice["person"]["id_number"] == MOTHER[1]

    # Forwarded once: the next run writes nothing and opens nothing.
    written = {p.name: p.stat().st_mtime_ns for p in outbox.glob("FORWARD-*")}
    with clock.pinned(china(2026, 11, 10, 9, 0)):
        again = forward_pending(county)
    assert (again.forwarded, again.held) == (0, 0)
    assert {p.name: p.stat().st_mtime_ns for p in outbox.glob("FORWARD-*")} == written and len(forwards(settings)) == 2
    listed = json.loads(run_gateway(settings.home, "obligations", "list", "--all", "--json",
                                    env={"GATEWAY_DEPARTMENTS": json.dumps(DEPARTMENTS)}).stdout)
    assert {(o["kind"], o["kind_zh"], o["status"]) for o in listed if o["kind"] == "forward"} == {
        ("forward", "转送", "late"), ("forward", "转送", "met")}


# -- 补报核对 each reconciliation item's missing counterpart ----------------------------------------


def evidence_obligations(settings) -> list[tuple]:
    rows = query(settings, "SELECT i.subject_key, o.party, o.due_date, o.status, o.closed_by, o.reason FROM obligation o "
                           "JOIN reconciliationitem i ON o.subject = 'reconcile:' || i.rule || ':item:' || CAST(i.id AS VARCHAR(20)) "
                           "WHERE o.kind = 'reconcile-evidence' ORDER BY i.subject_key")
    return [(key, party, str(due)[:10], status, closed_by, reason) for key, party, due, status, closed_by, reason in rows]


def test_each_unmatched_birth_owes_the_police_its_registration_by_the_grace_end(county):
    from gateway.reconcile import evaluate, resolve
    from gateway.store.reconcile_models import Discrepancy

    settings = county.settings
    with clock.pinned(china(2026, 10, 10, 9, 0)):  # three hospital births of 3 October; grace 1 month
        drop(settings, "hospital", "births.csv", hospital_file(*CHILDREN))
        county.run_once()
        evaluate(county.engine, settings, dt.date(2026, 10, 10))
    first = [(key, party, due, status) for key, party, due, status, _, _ in evidence_obligations(settings)]
    assert first == [(cert, "police", "2026-11-03", "open") for cert in CHILDREN]  # the grace end, a fixed date
    assert query(settings, "SELECT count(*) FROM discrepancy")[0][0] == 0  # not due yet: no discrepancy
    with clock.pinned(china(2026, 10, 12, 9, 0)):  # a second run opens nothing twice
        evaluate(county.engine, settings, dt.date(2026, 10, 12))
    assert len(evidence_obligations(settings)) == 3

    with clock.pinned(china(2026, 10, 20, 9, 0)):  # the police register the first before the grace end: met
        drop(settings, "police", "police-1.csv", police_births("Q440781269101", registered="20261020"))
        county.run_once()
        evaluate(county.engine, settings, dt.date(2026, 10, 20))
    with clock.pinned(china(2026, 11, 5, 9, 0)):  # past the grace end: two discrepancies, two overdue
        evaluate(county.engine, settings, dt.date(2026, 11, 5))
        overdue = [v for v in list_obligations(county.engine, overdue=True) if v.kind == "reconcile-evidence"]
    assert len(overdue) == 2 and {v.party for v in overdue} == {"police"}
    assert all(v.subject.startswith("reconcile:unregistered-births:item:") and "Q4407812691" not in v.subject for v in overdue)
    with clock.pinned(china(2026, 11, 6, 9, 0)):  # the second registered after it: late
        drop(settings, "police", "police-2.csv", police_births("Q440781269102", registered="20261106"))
        county.run_once()
        evaluate(county.engine, settings, dt.date(2026, 11, 6))
    with Session(county.engine) as session:
        third = session.exec(select(Discrepancy).where(Discrepancy.subject_key == "Q440781269103")).one()
    with clock.pinned(china(2026, 11, 6, 10, 0)):  # the third resolved by a clerk: waived, with who
        resolve(county.engine, third.id, "home birth registered in another county", by="clerk-li")
    found = evidence_obligations(settings)
    assert [(key, status, closed_by) for key, _, _, status, closed_by, _ in found] == [
        ("Q440781269101", "met", "police"), ("Q440781269102", "late", "police"), ("Q440781269103", "waived", "clerk-li")]
    assert found[2][5] == "resolved by clerk"

    listed = json.loads(run_gateway(settings.home, "obligations", "list", "--all", "--json",
                                    env={"GATEWAY_DEPARTMENTS": json.dumps(DEPARTMENTS), "GATEWAY_NOW": "2026-11-06T12:00:00+08:00"}).stdout)
    evidence = [o for o in listed if o["kind"] == "reconcile-evidence"]
    assert sorted(o["status"] for o in evidence) == ["late", "met", "waived"]
    assert {(o["kind_zh"], o["party"], o["due"]) for o in evidence} == {("补报核对", "police", "2026-11-03")}
    with Session(county.engine) as session:
        assert session.exec(select(Obligation).where(Obligation.kind == "reconcile-evidence", Obligation.status == "open")).all() == []


def test_who_owes_the_counterpart_is_configurable_per_rule(county, home):
    from gateway.errors import GatewayError
    from gateway.reconcile import configured_rules

    settings = county.settings
    rules = configured_rules(settings)
    assert rules["unregistered-births"].owed_by == "police" and rules["deaths-without-cremation"].owed_by == "civil-affairs"
    settings.reconciliation = {"owed_by": {"unregistered-births": "hospital"}}
    assert configured_rules(settings)["unregistered-births"].owed_by == "hospital"
    settings.reconciliation = {"owed_by": {"no-such-rule": "police"}}
    with pytest.raises(GatewayError, match="unregistered-births"):
        configured_rules(settings)
