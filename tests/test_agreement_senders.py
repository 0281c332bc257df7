"""Agreements name their senders and keep the recipient's own records from it; an agreement
added later is applied to the exchanges received before it, once (issue 19)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from conftest import RecipientKeyring, drop, query, run_gateway

import gateway as gateway_package
from contracts import DeathEvent
from gateway import clock
from gateway.adapter import Adapter, RawRow, SourceFile
from gateway.plugins import PluginManager
from gateway.readers import csv_rows
from gateway.receipts.keys import DepartmentKeys
from gateway.routing.apply import apply_agreement

from test_delivery import outbox, read_csv, write_agreements

POLICE_HEADER = ("YWLX,GMSFHM,XM,XBDM,MZDM,CSRQ,HH,YHZGXDM,HJDZ,HJDZ_XZQHDM,BDRQ,BDYY,QYDZ,QYDZ_XZQHDM,"
                 "ZQZBH,JZZBH,JZZYXQZ,CSYXZMBH,DJPCS")
BUREAU = "social-security"  # department names are lowercase letters, digits and dashes
BUREAU_HEADER = ["身份证号", "姓名", "死亡日期", "户籍地址"]
DEPARTMENTS = ["police", "hospital", "civil-affairs", "school", "housing", "national-platform", "population-office", BUREAU]


def person_id(born: str, sequence: int) -> str:
    """A valid ID number of someone born on `born` (YYYYMMDD); an odd sequence is a man."""
    from stdnum.cn import ric

    body = f"440781{born}{sequence:03d}"
    return body + ric.calc_check_digit(body + "0")


def police_deaths(people: list[tuple[str, str, str, str]]) -> bytes:
    """A police export of 死亡注销 rows: (name, born YYYYMMDD, sequence, address)."""
    lines = [POLICE_HEADER]
    for name, born, sequence, address in people:
        number = person_id(born, int(sequence))
        sex = "1" if int(sequence) % 2 else "2"
        lines.append(f"死亡注销,{number},{name},{sex},01,{born},440781000{sequence},01,{address},440781,20261011,死亡,,,,,,,台城派出所")
    return ("\ufeff" + "\n".join(lines) + "\n").encode("utf-8")


def bureau_deaths(people: list[tuple[str, str, str, str]]) -> bytes:
    """The bureau's list of pension recipients reported dead by their families."""
    lines = [",".join(BUREAU_HEADER)]
    for name, born, sequence, address in people:
        lines.append(f"{person_id(born, int(sequence))},{name},2026-10-20,{address}")
    return ("\n".join(lines) + "\n").encode("utf-8")


class BureauDeaths(Adapter):
    """社保局: deaths of pension recipients, as families report them (a test adapter)."""

    name = "social-security-deaths"
    department = BUREAU
    contracts = (DeathEvent,)
    file_types = (".csv",)

    def parse(self, source: SourceFile):  # type: ignore[no-untyped-def]
        return csv_rows(source, BUREAU_HEADER)

    def normalize(self, row: RawRow):  # type: ignore[no-untyped-def]
        f = row.fields
        return DeathEvent.model_validate(
            {
                "deceased": {"name": f["姓名"], "id_number": f["身份证号"]},
                "death_date": f["死亡日期"],
                "household": {"address": f["户籍地址"]},
            }
        )


class BureauPlugin:
    @gateway_package.hookimpl
    def register_adapters(self, register):  # type: ignore[no-untyped-def]
        register(BureauDeaths)


@pytest.fixture
def county(home, monkeypatch, recipients):
    """A home whose departments include the bureau, with its adapter registered in process,
    the recipients' keys registered, and a Gateway on it."""
    from gateway.config import load_settings
    from gateway.exchange.lifecycle import Gateway

    monkeypatch.setenv("GATEWAY_DEPARTMENTS", json.dumps(DEPARTMENTS))
    monkeypatch.setenv("GATEWAY_SETTLE_SECONDS", "0")
    settings = load_settings(home)
    for box in ("inbox", "outbox"):
        (settings.mailbox_root / BUREAU / box).mkdir(parents=True, exist_ok=True)
    registry = DepartmentKeys(settings.keys_dir)
    for department, (ring, fingerprint) in recipients.items():
        registry.import_key(ring.export(fingerprint), department)
        ring.trust_gateway(settings.keys_dir)
    manager = PluginManager(load_entry_points=False)
    manager.register(BureauPlugin(), name="bureau")
    gw = Gateway(settings, plugins=manager)
    try:
        yield settings, gw
    finally:
        gw.close()


DEATHS_TO_POLICE = """
[[agreements]]
name = "police-deaths"
recipient = "police"
contracts = ["DeathEvent"]
fields = ["deceased.name", "deceased.id_number", "death_date"]
purpose = "核对死亡注销"
"""

POLICE_PEOPLE = [("刘大伯", "19380405", "013", "广东省台山市白沙镇"), ("黄阿婆", "19410302", "024", "广东省台山市台城街道")]
BUREAU_PEOPLE = [("陈老伯", "19450101", "035", "广东省台山市大江镇公益村3号"), ("李阿姨", "19500606", "046", "广东省台山市水步镇水步村5号")]


def signed_drop(settings, recipients, department: str, name: str, data: bytes) -> None:
    """Drop a file with its signature: a department with a registered key must sign its drops."""
    ring, fingerprint = recipients[department]
    drop(settings, department, name, data)
    drop(settings, department, name + ".asc", ring.sign(data, fingerprint))


def police_received(settings, recipients) -> list[list[str]]:
    ring, _ = recipients["police"]
    rows = []
    for name in outbox(settings, "police"):
        if name.startswith("DELIVERY-"):
            plain, _ = ring.decrypt(settings.mailbox_root / "police" / "outbox" / name)
            rows += read_csv(plain, "utf-8-sig")[1:]
    return rows


def test_the_police_never_receive_their_own_death_records_back_unless_include_own(county, recipients):
    settings, gw = county
    write_agreements(settings, DEATHS_TO_POLICE)
    signed_drop(settings, recipients, "police", "police_hukou_202610.csv", police_deaths(POLICE_PEOPLE))
    [outcome] = gw.run_once()
    assert (outcome.status, outcome.accepted) == ("processed", 2)
    assert police_received(settings, recipients) == []
    assert query(settings, "SELECT count(*) FROM delivery WHERE agreement = 'police-deaths'") == [(0,)]

    # include_own = true: the same agreement applied to the past sends them.
    write_agreements(settings, DEATHS_TO_POLICE + "include_own = true\n")
    report = apply_agreement(gw.routing, "police-deaths", clock.today() - dt.timedelta(days=2))
    assert (report.exchanges, report.records, report.delivered, report.left_out_senders) == (1, 2, 2, 0)
    assert sorted(row[3] for row in police_received(settings, recipients)) == sorted(p[0] for p in POLICE_PEOPLE)


def test_senders_limit_an_agreement_to_one_department_and_explain_shows_them(county, recipients, monkeypatch):
    settings, gw = county
    write_agreements(settings, DEATHS_TO_POLICE + f'senders = ["{BUREAU}"]\ninclude_own = true\n')
    signed_drop(settings, recipients, "police", "police_hukou_202610.csv", police_deaths(POLICE_PEOPLE))
    drop(settings, BUREAU, "deaths_202610.csv", bureau_deaths(BUREAU_PEOPLE))
    outcomes = gw.run_once()
    assert sorted((o.status, o.accepted) for o in outcomes) == [("processed", 2), ("processed", 2)]
    received = police_received(settings, recipients)
    assert sorted(row[3] for row in received) == sorted(p[0] for p in BUREAU_PEOPLE)  # never the police's own
    assert {row[2] for row in received} == {"新增"}
    # Named by adapter, the same.
    write_agreements(settings, DEATHS_TO_POLICE.replace("police-deaths", "police-deaths-2") + 'senders = ["social-security-deaths"]\n')
    report = apply_agreement(gw.routing, "police-deaths-2", clock.today() - dt.timedelta(days=1))
    assert (report.records, report.delivered, report.left_out_senders) == (4, 2, 2)


def test_an_unknown_sender_is_an_error_naming_departments_and_adapters(county):
    from gateway.routing.agreements import load_agreements

    settings, gw = county
    write_agreements(settings, DEATHS_TO_POLICE + 'senders = ["social_security"]\n')
    result = load_agreements(settings, gw.routing._adapters())
    [problem] = result.errors
    assert "发送方 'social_security'" in problem.message
    assert BUREAU in problem.message and "social-security-deaths" in problem.message and "police-hukou" in problem.message
    assert gw.routing.agreements().errors  # nothing is routed under it


TO_SCHOOL = """
[[agreements]]
name = "school-deaths"
recipient = "school"
contracts = ["DeathEvent"]
fields = ["deceased.name", "death_date"]
purpose = "学籍核对"
"""


def test_an_agreement_added_after_two_drops_is_applied_once(home, recipients, register_recipients, settings, gateway):
    signed_drop(settings, recipients, "police", "police_hukou_202610.csv", police_deaths(POLICE_PEOPLE))
    signed_drop(settings, recipients, "police", "police_hukou_202611.csv", police_deaths([("赵老伯", "19390909", "057", "广东省台山市白沙镇")]))
    outcomes = gateway.run_once()
    assert [(o.status, o.accepted) for o in outcomes] == [("processed", 2), ("processed", 1)]
    assert outbox(settings, "school") == []

    write_agreements(settings, (settings.home / "agreements.toml").read_text(encoding="utf-8") + TO_SCHOOL)
    since = (clock.today() - dt.timedelta(days=3)).isoformat()
    first = run_gateway(home, "agreements", "apply", "school-deaths", "--since", since)
    assert "查看交换 / exchanges looked at: 2" in first.stdout
    assert "本次发送 / delivered now: 3" in first.stdout
    assert "此前已发送，不再发送 / delivered before, not sent again: 0" in first.stdout
    ring, _ = recipients["school"]
    files = [n for n in outbox(settings, "school") if n.startswith("DELIVERY-")]
    names = []
    for name in files:
        plain, _ = ring.decrypt(settings.mailbox_root / "school" / "outbox" / name)
        table = read_csv(plain, "utf-8-sig")
        assert table[0] == ["记录号", "版本", "变更", "死者姓名", "死亡日期"]  # its two fields only
        names += [row[3] for row in table[1:]]
    assert sorted(names) == sorted(["刘大伯", "黄阿婆", "赵老伯"]) and len(files) == 2

    second = run_gateway(home, "agreements", "apply", "school-deaths", "--since", since)
    assert "本次发送 / delivered now: 0" in second.stdout
    assert "此前已发送，不再发送 / delivered before, not sent again: 3" in second.stdout
    assert "没有需要补发的记录" in second.stdout
    assert [n for n in outbox(settings, "school") if n.startswith("DELIVERY-")] == files
    events = query(settings, "SELECT department, detail FROM auditevent WHERE action = 'agreement_applied' ORDER BY id")
    assert [e[0] for e in events] == ["school", "school"]
    assert "3 routed (3 delivered" in events[0][1] and "0 routed" in events[1][1] and ", by " in events[1][1]

    # Before the range, nothing is looked at; a date that is no date is refused in Chinese first.
    # The range is in China dates (the business clock's), whatever the machine's own zone:
    # after 16:00 UTC, China is already on tomorrow.
    china_today = clock.today()
    later = run_gateway(home, "agreements", "apply", "school-deaths", "--since", (china_today + dt.timedelta(days=1)).isoformat(),
                        "--until", (china_today + dt.timedelta(days=2)).isoformat())
    assert "查看交换 / exchanges looked at: 0" in later.stdout
    wrong = run_gateway(home, "agreements", "apply", "school-deaths", "--since", "2026-13-01", check=False)
    assert wrong.returncode != 0 and "请写日期" in wrong.stdout + wrong.stderr
    unknown = run_gateway(home, "agreements", "apply", "school-death", "--since", since, check=False)
    assert unknown.returncode != 0 and "school-deaths" in unknown.stdout + unknown.stderr  # the valid choices


def test_explain_shows_senders_and_own_records(home):
    write_agreements_text = DEATHS_TO_POLICE + 'senders = ["police-hukou", "hospital"]\n'
    (home / "agreements.toml").write_text(write_agreements_text, encoding="utf-8")
    shown = run_gateway(home, "agreements", "explain", "police")
    assert "发送方 senders: police-hukou、hospital" in shown.stdout
    assert "含本部门自己的记录 own records: 否" in shown.stdout
    (home / "agreements.toml").write_text(DEATHS_TO_POLICE + 'senders = ["police-hukou", "police"]\n', encoding="utf-8")
    checked = run_gateway(home, "agreements", "check")
    assert "warn" in checked.stdout and "此协议不会发出任何记录" in checked.stdout  # only its own records: nothing to send


def test_a_township_agreement_applied_sends_only_its_own_people(county, recipients, monkeypatch):
    from gateway.register.divisions import EXAMPLE

    settings, gw = county
    (settings.home / "divisions.csv").write_text(EXAMPLE, encoding="utf-8")
    town = "town-440781101"  # 大江镇
    drop(settings, BUREAU, "deaths_202610.csv", bureau_deaths(BUREAU_PEOPLE))
    [outcome] = gw.run_once()
    assert (outcome.status, outcome.accepted) == ("processed", 2)

    monkeypatch.setenv("GATEWAY_DEPARTMENTS", json.dumps([*DEPARTMENTS, town]))
    from gateway.config import load_settings
    from gateway.exchange.lifecycle import Gateway

    town_settings = load_settings(settings.home)
    (town_settings.mailbox_root / town / "outbox").mkdir(parents=True, exist_ok=True)
    ring = RecipientKeyring()
    try:
        fingerprint = ring.new_key("Dajiang Town")
        DepartmentKeys(town_settings.keys_dir).import_key(ring.export(fingerprint), town)
        ring.trust_gateway(town_settings.keys_dir)
        write_agreements(town_settings, f"""
[[agreements]]
name = "dajiang-deaths"
recipient = "{town}"
contracts = ["DeathEvent"]
fields = ["deceased.name", "household.address"]
purpose = "以行政村（居）为单位"
""")
        town_gateway = Gateway(town_settings, plugins=gw.plugins)
        try:
            report = apply_agreement(town_gateway.routing, "dajiang-deaths", clock.today() - dt.timedelta(days=1))
            again = apply_agreement(town_gateway.routing, "dajiang-deaths", clock.today() - dt.timedelta(days=1))
        finally:
            town_gateway.close()
        assert (report.records, report.delivered, report.left_out_filters) == (2, 1, 1)  # 水步镇's is not its own
        assert (again.delivered, again.already, again.left_out_filters) == (0, 1, 1)
        [name] = outbox(town_settings, town)
        plain, _ = ring.decrypt(town_settings.mailbox_root / town / "outbox" / name)
        table = read_csv(plain, "utf-8-sig")
        assert [row[3:] for row in table[1:]] == [["陈老伯", "广东省台山市大江镇公益村3号"]]
    finally:
        ring.close()
