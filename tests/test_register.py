"""The population register and 育龄妇女信息库 (gateway/register/, docs/register.md): facts from
the stored records of every department, folded once, rebuilt to the same bytes; divisions
and village matching; the roster of a village; the assist-check lookup reads the register."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from openpyxl import load_workbook
from sqlalchemy import func
from sqlmodel import Session, select
from stdnum.cn import ric

from conftest import PRIVACY, drop, query, run_gateway
from gateway.config import load_settings
from gateway.errors import ConfigError, GatewayError
from gateway.register import export_register, fold, rebuild
from gateway.register.build import register_digest
from gateway.register.divisions import EXAMPLE, DivisionsError, parse_divisions
from gateway.register.lookup import lookup
from gateway.register.settings import register_settings
from gateway.register.women import women
from gateway.store.models import AuditEvent, Record
from gateway.store.register_models import RegisterFact, RegisterPerson

ON = dt.date(2026, 11, 30)
HOSPITAL_HEADER = ("出生医学证明编号,新生儿姓名,性别,出生日期,出生时间,出生体重(克),出生孕周,胎次,母亲姓名,母亲公民身份号码,"
                   "父亲姓名,父亲公民身份号码,接生机构名称,接生机构代码,家庭住址,户籍地行政区划代码")
POLICE_HEADER = "YWLX,GMSFHM,XM,XBDM,MZDM,CSRQ,HH,YHZGXDM,HJDZ,HJDZ_XZQHDM,BDRQ,BDYY,QYDZ,QYDZ_XZQHDM,ZQZBH,JZZBH,JZZYXQZ,CSYXZMBH,DJPCS"


def make_id(division: str, born: str, sequence: int) -> str:
    body = f"{division}{born.replace('-', '')}{sequence:03d}"
    return body + ric.calc_check_digit(body + "0")


WANG = ("王芳", make_id("440781", "1994-05-06", 22), "1994-05-06")      # lives in 大江镇公益村
ZHAO = ("赵敏", make_id("440781", "1995-02-03", 42), "1995-02-03")      # names a village not in divisions.csv
OLD = ("李秀兰", make_id("440781", "1970-01-01", 62), "1970-01-01")     # 56: not of childbearing age
YOUNG = ("李秀兰", make_id("440781", "1990-01-01", 62), "1990-01-01")   # the same mother, birth date corrected
HUSBAND = ("张伟", make_id("440781", "1992-07-08", 11), "1992-07-08")


def hospital_row(cert: str, mother: tuple[str, str, str], address: str, born: str = "2026-10-03") -> str:
    return f"{cert},孩子{cert[-1]},男,{born},10:00,3200,39,1,{mother[0]},{mother[1]},,,台山市人民医院,12440781MB2C23455K,{address},440781"


def hospital_file(*rows: str) -> bytes:
    return ("\n".join([HOSPITAL_HEADER, *rows]) + "\n").encode("utf-8")


def marriage_file(certificate: str = "J440781-2026-009001", kind: str = "结婚") -> bytes:
    original = ' 原结婚证号="J440781-2026-009001"' if kind == "离婚" else ""
    prior = "未婚" if kind == "结婚" else "已婚"
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<民政数据交换 版本="1.0" 机关代码="440781" 导出时间="2026-11-01T08:00:00+08:00">
  <婚姻登记 业务类型="{kind}" 证号="{certificate}" 登记日期="2026-10-20" 登记机关="台山市民政局婚姻登记处"{original}>
    <当事人 角色="男方" 姓名="{HUSBAND[0]}" 公民身份号码="{HUSBAND[1]}" 出生日期="{HUSBAND[2]}" 国籍="中国" 婚前状况="{prior}"/>
    <当事人 角色="女方" 姓名="{WANG[0]}" 公民身份号码="{WANG[1]}" 出生日期="{WANG[2]}" 国籍="中国" 婚前状况="{prior}"/>
  </婚姻登记>
</民政数据交换>
""".encode("utf-8")


def police_death(person: tuple[str, str, str], died: str = "20261105") -> bytes:
    born = person[2].replace("-", "")
    row = f"死亡注销,{person[1]},{person[0]},2,01,{born},440781000456,01,广东省台山市大江镇公益村,440781,{died},死亡,,,,,,,大江派出所"
    return f"{POLICE_HEADER}\n{row}\n".encode("utf-8")


@pytest.fixture
def county(settings):
    (settings.home / "divisions.csv").write_text(EXAMPLE, encoding="utf-8")
    return settings


def run_pass(gateway, settings):
    outcomes = gateway.run_once()
    result = fold(gateway.engine, settings)
    return outcomes, result


def person(engine, number: str) -> RegisterPerson | None:
    with Session(engine) as session:
        return session.get(RegisterPerson, number)


def roster_numbers(engine, settings, township: str, village: str | None = None) -> list[str]:
    with Session(engine) as session:
        return [p.id_number for p in women(session, ON, register_settings(settings), township, village)]


# -- divisions ------------------------------------------------------------------------------


@pytest.mark.backend_independent
def test_the_example_divisions_load_and_bad_rows_are_named():
    divisions = parse_divisions(EXAMPLE)
    assert divisions.county_code == "440781" and len(divisions.townships) == 5 and len(divisions.villages) == 7
    assert divisions.find("大江镇", "township").recipient == "town-440781101"
    assert divisions.find("town-440781101", "township").code == "440781101000"
    with pytest.raises(DivisionsError, match="row 3: 代码 '4407811' must be a 12-digit"):
        parse_divisions("代码,名称,级别\n440781000000,台山市,county\n4407811,大江镇,township\n")
    with pytest.raises(DivisionsError, match="row 3: village 440781105201 lies in township 440781105000, which is not listed"):
        parse_divisions("代码,名称,级别\n440781000000,台山市,county\n440781105201,某村,village\n")
    with pytest.raises(DivisionsError, match="exactly one county row"):
        parse_divisions("代码,名称,级别\n440781101000,大江镇,township\n")
    with pytest.raises(DivisionsError, match="级别 'city' must be county, township or village"):
        parse_divisions("code,name,level\n440781000000,台山市,city\n")
    with pytest.raises(DivisionsError, match="the header lacks 级别"):
        parse_divisions("代码,名称\n440781000000,台山市\n")


@pytest.mark.backend_independent
def test_addresses_are_matched_by_code_then_names_and_never_guessed():
    divisions = parse_divisions(EXAMPLE + "440781101203,新村村民委员会,village\n")
    assert divisions.match("广东省台山市大江镇公益村3号", "440781").village == "440781101201"
    assert divisions.match("广东省台山市大江镇新村8号").village == "440781101203"  # 新村村民委员会 written as 新村
    assert divisions.match("随便写的地址", "440781101202").village == "440781101202"  # a 12-digit code decides
    unknown = divisions.match("广东省台山市大江镇新围村5号", "440781")
    assert (unknown.status, unknown.township, unknown.village) == ("unmatched", "440781101000", None)
    assert divisions.match("广东省台山市某某路1号", "440781").status == "unmatched"
    assert divisions.match("广东省江门市蓬江区", "440703").status == "elsewhere"
    with pytest.raises(DivisionsError, match="Valid choices: 440781101201 公益村"):
        divisions.find("不存在村", "village", within="440781101000")


# -- the register from the feeds ------------------------------------------------------------


def test_births_marriage_death_and_a_correction_change_the_register(gateway, county):
    drop(county, "hospital", "births_a.csv", hospital_file(
        hospital_row("Q440781269001", WANG, "广东省台山市大江镇公益村3号"),
        hospital_row("Q440781269002", ZHAO, "广东省台山市大江镇新围村5号"),
        hospital_row("Q440781269003", OLD, "广东省台山市大江镇麦巷村9号"),
    ))
    _, first = run_pass(gateway, county)
    assert first.records == 3 and first.people == 3
    wang = person(gateway.engine, WANG[1])
    assert (wang.village_code, wang.children, wang.marital_status, wang.last_change_kind) == ("440781101201", 1, None, "生育")
    zhao = person(gateway.engine, ZHAO[1])
    assert (zhao.place_status, zhao.township_code, zhao.village_code) == ("unmatched", "440781101000", None)
    assert roster_numbers(gateway.engine, county, "440781101000", "440781101201") == [WANG[1]]
    # the township's roster: both young women, never the 56-year-old; 赵 is in the township, in no village
    assert roster_numbers(gateway.engine, county, "440781101000") == sorted([WANG[1], ZHAO[1]])
    assert roster_numbers(gateway.engine, county, "440781101000", "440781101202") == []

    drop(county, "civil-affairs", "marriages.xml", marriage_file())
    run_pass(gateway, county)
    wang = person(gateway.engine, WANG[1])
    assert (wang.marital_status, wang.last_change_kind, wang.last_change_source) == ("20", "结婚", "civil-affairs")
    assert json.loads(wang.state)["spouse"] == HUSBAND[1]

    # a correction of the mother's birth date (her number with it): she is now 36, on the roster
    drop(county, "hospital", "births_b.csv", hospital_file(hospital_row("Q440781269003", YOUNG, "广东省台山市大江镇麦巷村9号")))
    outcomes, corrected = run_pass(gateway, county)
    assert outcomes[0].corrected == 1 and corrected.removed == 1
    assert person(gateway.engine, OLD[1]) is None
    assert roster_numbers(gateway.engine, county, "440781101000", "440781101202") == [YOUNG[1]]

    drop(county, "police", "deaths.csv", police_death(WANG))
    run_pass(gateway, county)
    wang = person(gateway.engine, WANG[1])
    assert wang.dead_on == dt.date(2026, 11, 5) and wang.last_change_kind == "死亡"
    assert roster_numbers(gateway.engine, county, "440781101000", "440781101201") == []

    # rebuilt from the same stored records: the same bytes
    before = export_register(gateway.engine)
    assert before.count(b"\n") == 4  # 王 (dead, kept with her death), 赵, 李 (corrected), 王's husband
    rebuilt = rebuild(gateway.engine, county)
    assert rebuilt.records == 6 and export_register(gateway.engine) == before


def test_a_file_dropped_twice_and_a_second_fold_count_nothing_twice(gateway, county):
    data = hospital_file(hospital_row("Q440781269001", WANG, "广东省台山市大江镇公益村3号"))
    drop(county, "hospital", "births.csv", data)
    _, first = run_pass(gateway, county)
    digest = register_digest(gateway.engine)
    drop(county, "hospital", "births-again.csv", data)
    outcomes, second = run_pass(gateway, county)
    assert outcomes[0].status == "duplicate"
    assert (second.records, second.facts, second.people) == (0, 0, 0)
    assert fold(gateway.engine, county).facts == 0
    with Session(gateway.engine) as session:
        facts = session.execute(select(RegisterFact).where(RegisterFact.id_number == WANG[1])).scalars().all()
    assert first.facts == len(facts) and person(gateway.engine, WANG[1]).children == 1
    assert register_digest(gateway.engine) == digest


def test_a_late_record_takes_its_place_at_its_event_date(gateway, county):
    drop(county, "civil-affairs", "marriages.xml", marriage_file())
    run_pass(gateway, county)
    # the divorce registered on 2026-10-20 is reported together with the marriage... but here a
    # marriage dated later arrives first: the later event wins whatever the order of arrival
    divorce = marriage_file("L440781-2026-009002", "离婚").replace(b"2026-10-20", b"2026-11-02")
    drop(county, "civil-affairs", "divorce.xml", divorce)
    run_pass(gateway, county)
    assert person(gateway.engine, WANG[1]).marital_status == "40"
    late = marriage_file("J440781-2026-000100").replace(b"2026-10-20", b"2026-01-05")
    drop(county, "civil-affairs", "late.xml", late)  # 补报: an earlier marriage, reported late
    run_pass(gateway, county)
    wang = person(gateway.engine, WANG[1])
    assert wang.marital_status == "40" and json.loads(wang.state)["spouse"] is None
    dates = [h["date"] for h in json.loads(wang.state)["history"]]
    assert dates == sorted(dates) and dates[0] == "2026-01-05"


def test_authority_decides_and_disagreements_are_listed(gateway, county, home, tmp_path):
    wcba = tmp_path / "wcba.csv"
    wcba.write_text(f"公民身份号码,姓名,类别,内容,登记日期\n{WANG[1]},王方,01,未婚；户籍在本县,2026-03-01\n"
                    f"{WANG[1]},王方,03,孕16周,2026-10-20\n", encoding="utf-8")
    from gateway.platform import assist_checks

    assist_checks.import_table(gateway.engine, "wcba", wcba)
    fold(gateway.engine, county)
    only_wcba = person(gateway.engine, WANG[1])
    assert (only_wcba.name, only_wcba.marital_status) == ("王方", "10")  # the hand import, for want of a feed
    drop(county, "civil-affairs", "marriages.xml", marriage_file())
    run_pass(gateway, county)
    wang = person(gateway.engine, WANG[1])
    state = json.loads(wang.state)
    assert wang.marital_status == "20" and state["attributes"]["marital_status"]["others"] == {"wcba": "10"}
    assert {(d["attribute"], d["other_source"]) for d in state["disagreements"]} == {("marital_status", "wcba"), ("name", "wcba")}
    with Session(gateway.engine) as session:
        found = dict(lookup(session, WANG[1], ["01", "02", "03", "07"]))
    assert ("婚姻状况", "已婚", "text") in found["01"] and found["02"][-1] == ("配偶公民身份号码", HUSBAND[1], "id_number")
    assert found["03"] == [("", "孕16周（2026-10-20）", "text")] and "07" not in found

    listed = run_gateway(home, "register", "discrepancies")
    assert "marital_status" in listed.stdout and "育龄妇女台账" in listed.stdout and WANG[1] not in listed.stdout
    (home / "gateway.toml").write_text((home / "gateway.toml").read_text(encoding="utf-8")
                                       + '\n[population_register.authority]\nmarital_status = ["wcba", "civil-affairs"]\n', encoding="utf-8")
    configured = load_settings(home)
    rebuild(gateway.engine, configured)
    assert person(gateway.engine, WANG[1]).marital_status == "10"
    with pytest.raises(ConfigError, match="Valid choices: name, household_address"):
        register_settings(configured.model_copy(update={"population_register": {"authority": {"eyes": ["police"]}}}))
    with pytest.raises(ConfigError, match="'nobody' is not a department|nobody is not a department"):
        register_settings(configured.model_copy(update={"population_register": {"authority": {"name": ["nobody"]}}}))


# -- the commands: masked, audited ----------------------------------------------------------


def test_the_commands_show_the_roster_masked_and_audit_every_view(gateway, county, home, tmp_path):
    drop(county, "hospital", "births.csv", hospital_file(
        hospital_row("Q440781269001", WANG, "广东省台山市大江镇公益村3号"),
        hospital_row("Q440781269002", ZHAO, "广东省台山市大江镇新围村5号"),
    ))
    gateway.run_once()
    csv_path, xlsx_path = tmp_path / "roster.csv", tmp_path / "roster.xlsx"
    shown = run_gateway(home, "register", "women", "--township", "大江镇", "--village", "公益村",
                        "--csv", str(csv_path), "--xlsx", str(xlsx_path), "--as-of", ON.isoformat())
    assert "台山市大江镇公益村育龄妇女花名册" in shown.stdout and "1 人" in shown.stdout
    assert "王**" in shown.stdout and WANG[1] not in shown.stdout and WANG[0] not in shown.stdout
    text = csv_path.read_text(encoding="utf-8-sig")
    PRIVACY.outputs.append(("register women --csv", text))
    lines = text.splitlines()
    assert lines[0] == "姓名,公民身份号码,出生日期,婚姻状况,现有子女数,户籍地,现居住地,变动情况,变动日期,信息来源"
    assert len(lines) == 2 and lines[1].startswith(f"王**,{WANG[1][:6]}***********{WANG[1][-1:]},1994-05-06,")
    assert ",1,区划代码 440781,广东省台山市****," in lines[1] and lines[1].endswith(",生育,2026-10-03,医院")
    sheet = load_workbook(xlsx_path).active
    assert [c.value for c in sheet[2]][:2] == ["姓名", "公民身份号码"] and sheet.max_row == 3

    refused = run_gateway(home, "register", "women", "--township", "大江镇", "--reveal", check=False)
    assert refused.returncode == 2 and "--reason" in refused.stderr
    revealed = run_gateway(home, "register", "show", WANG[1], "--reveal", "--reason", "核实身份 verify identity")
    assert WANG[1] in revealed.stdout
    PRIVACY.outputs.pop()  # revealed on purpose, with a reason (audited below)
    person_view = run_gateway(home, "register", "show", WANG[1])
    assert "王**" in person_view.stdout and "生育" in person_view.stdout and WANG[1] not in person_view.stdout
    legacy = run_gateway(home, "register", "show", WANG[1][:6] + WANG[1][8:17])  # the 15-digit form: the same person
    assert "王**" in legacy.stdout and "生育" in legacy.stdout
    unmatched = run_gateway(home, "register", "unmatched")
    assert "1" in unmatched.stdout and "赵**" in unmatched.stdout and "no village of the township named" in unmatched.stdout
    places = run_gateway(home, "register", "divisions", "--as-of", ON.isoformat())
    row = next(line for line in places.stdout.splitlines() if "440781101201" in line)
    assert row.split("│")[-3].strip() == "1" and row.split("│")[-2].strip() == "1"
    assert "town-440781101" in places.stdout
    rebuilt = run_gateway(home, "register", "rebuild")
    assert "与重建前相同 / same" in rebuilt.stdout
    with Session(gateway.engine) as session:
        events = session.execute(select(AuditEvent).where(AuditEvent.action.like("register.%"))).scalars().all()  # type: ignore[attr-defined]
    actions = [e.action for e in events]
    assert actions.count("register.women") == 1 and actions.count("register.view") == 3 and "register.unmatched" in actions
    assert any("revealed: 核实身份" in e.detail for e in events) and not any(WANG[1] in e.detail for e in events)
    bad = run_gateway(home, "register", "show", WANG[1][:-1] + ("0" if WANG[1][-1] != "0" else "1"), check=False)
    assert bad.returncode == 2 and "not a valid ID number" in bad.stderr


def test_a_wrong_divisions_file_is_a_clear_error(gateway, county, home):
    (home / "divisions.csv").write_text("代码,名称,级别\n440781000000,台山市,county\n44078110100X,大江镇,township\n", encoding="utf-8")
    result = run_gateway(home, "register", "women", "--township", "大江镇", check=False)
    assert result.returncode == 2 and "row 3" in result.stderr and "12-digit" in result.stderr
    with pytest.raises(GatewayError):
        fold(gateway.engine, county)
    # gateway run's inbox job says so and goes on: the drop is processed, nothing folded
    import threading

    from gateway.platform.jobs import inbox_job
    from gateway.scheduler.runner import JobContext

    drop(county, "hospital", "births.csv", hospital_file(hospital_row("Q440781269001", WANG, "广东省台山市大江镇公益村3号")))
    result = inbox_job(gateway).run(JobContext(None, threading.Event()))
    assert result.summary == "1 file(s)" and person(gateway.engine, WANG[1]) is None


def test_an_assist_check_about_a_mother_in_a_hospital_birth_is_drafted_from_the_register(gateway, county):
    from gateway.platform import assist_checks

    drop(county, "hospital", "births.csv", hospital_file(hospital_row("Q440781269001", WANG, "广东省台山市大江镇公益村3号")))
    run_pass(gateway, county)
    with Session(gateway.engine) as session:
        draft = assist_checks.draft_answer(session, WANG[1], ["01", "04", "08"])
    assert draft.result == "1" and draft.searched[0] == "register" and draft.missing == ["08"]
    assert [(f.category, f.source) for f in draft.findings] == [("01", "register"), ("04", "register")]
    assert "姓名：王芳" in draft.findings[0].text() and draft.findings[1].text() == "现有子女数：1"
    assert draft.findings[0].masked(WANG[0]).startswith("姓名：王**")


def test_a_sample_month_makes_a_register_with_the_manifests_figures(gateway, county):
    from gateway.devkit.sample_month import UNLISTED_VILLAGE, VILLAGES, generate_month
    from gateway.platform import assist_checks

    month = generate_month(2026, 8)
    expected = month.manifest()["counts"]["register"]
    assert sum(expected["women_by_village"].values()) >= 3 and expected["unmatched_mothers"] >= 1
    month.drop(county.mailbox_root)
    gateway.run_once()
    assist_checks.sync(gateway.engine, county)  # what the inbox job does after a platform file: folds the register first
    on = dt.date.fromisoformat(expected["as_of"])
    rs = register_settings(county)
    with Session(gateway.engine) as session:
        for town, listed in VILLAGES.items():
            for code, _ in listed:
                found = women(session, on, rs, code[:9] + "000", code)
                assert len(found) == expected["women_by_village"].get(code, 0), code
                married = [p for p in found if p.marital_status == "20"]
                assert len(married) == expected["married_women_by_village"].get(code, 0), code
        unmatched = session.execute(select(RegisterPerson).where(RegisterPerson.place_status == "unmatched")).scalars().all()
    assert sum(UNLISTED_VILLAGE in (p.residence_address or "") for p in unmatched) == expected["unmatched_mothers"]

    # the roster of one village lists exactly the mothers whose address names it
    code = max(expected["women_by_village"], key=expected["women_by_village"].get)
    town, name = next((t, n) for t, listed in VILLAGES.items() for c, n in listed if c == code)
    rows = [line.split(",") for line in month.files["hospital"][0][1].decode("gb18030").splitlines()[1:]]
    mothers = sorted({row[9] for row in rows if row[15] == "440781" and f"{town}{name}" in row[14]})
    with Session(gateway.engine) as session:
        assert [p.id_number for p in women(session, on, rs, code[:9] + "000", code)] == mothers

    draft = assist_checks.get_check(gateway.engine, expected["assist_check_about_a_mother"]).draft
    assert draft.result == "1" and draft.findings[0].source == "register"
    assert "婚姻状况：已婚" in draft.findings[0].text()


def test_a_fold_stopped_between_batches_finishes_later_and_equals_a_rebuild(gateway, county, monkeypatch):
    """`gateway run` folds a batch per transaction and stops between two (Ctrl-C): the next
    fold takes the rest, and the register is the one a rebuild gives, byte for byte."""
    from gateway.devkit.sample_month import generate_month
    from gateway.register import build

    month = generate_month(2026, 8)
    month.drop(county.mailbox_root)
    gateway.run_once()
    with Session(gateway.engine) as session:
        stored = session.execute(select(func.count()).select_from(Record)).scalar_one()
    monkeypatch.setattr(build, "BATCH", 20)  # small batches, so this month makes several transactions
    monkeypatch.setattr(build, "TRANSACTION", 50)
    first = fold(gateway.engine, county, should_continue=lambda: False)
    assert first.records == 50 and stored > 100
    rest = fold(gateway.engine, county)
    assert first.records + rest.records == stored
    assert fold(gateway.engine, county).records == 0
    folded = export_register(gateway.engine)
    rebuild(gateway.engine, county)
    assert export_register(gateway.engine) == folded


# -- the name lists of the regulations, per township, delivered encrypted -------------------

MOVER = ("林小燕", make_id("440781", "1998-04-04", 82), "1998-04-04")
ARRIVER = ("覃桂兰", make_id("450102", "1996-06-11", 24), "1996-06-11")
MAN = ("梁伟强", make_id("440781", "2000-09-01", 35), "2000-09-01")
CHILD = ("王小宝", make_id("440781", "2026-10-03", 15), "2026-10-03")
TOWN = "town-440781101"


def police_rows(*rows: str) -> bytes:
    return (POLICE_HEADER + "\n" + "\n".join(rows) + "\n").encode("utf-8")


def list_month(county) -> bytes:
    compact = lambda p: p[2].replace("-", "")  # noqa: E731
    return police_rows(
        f"出生登记,{CHILD[1]},{CHILD[0]},1,01,{compact(CHILD)},440781000123,20,广东省台山市大江镇公益村3号,440781,20261020,出生,,,,,,Q440781269001,大江派出所",
        f"死亡注销,{OLD[1]},{OLD[0]},2,01,{compact(OLD)},440781000456,01,广东省台山市大江镇麦巷村9号,440781,20261011,死亡,,,,,,,大江派出所",
        f"迁出,{MOVER[1]},{MOVER[0]},2,01,{compact(MOVER)},440781000999,03,广东省台山市大江镇麦巷村7号,440781,20260910,升学,广东省广州市天河区,440106,ZQ2026-1234,,,,大江派出所",
        f"迁出,{MAN[1]},{MAN[0]},1,01,{compact(MAN)},440781000998,03,广东省台山市大江镇麦巷村8号,440781,20260911,升学,广东省广州市天河区,440106,ZQ2026-1235,,,,大江派出所",
        f"迁入,{ARRIVER[1]},{ARRIVER[0]},2,12,{compact(ARRIVER)},440781000789,02,广东省台山市大江镇公益村2号,440781,20260815,投靠配偶,广西壮族自治区南宁市兴宁区,450102,ZQ2026-0789,,,,大江派出所",
    )


def test_the_name_lists_of_a_township_and_their_encrypted_delivery(home, monkeypatch, recipients):
    from gateway.exchange.lifecycle import Gateway
    from gateway.receipts.keys import DepartmentKeys
    from gateway.register.divisions import load_divisions
    from gateway.register.lists import deliver_due, period, rows_for

    (home / "divisions.csv").write_text(EXAMPLE, encoding="utf-8")
    departments = ["police", "hospital", "civil-affairs", "school", "housing", "national-platform", "population-office", TOWN]
    monkeypatch.setenv("GATEWAY_DEPARTMENTS", json.dumps(departments))
    monkeypatch.setenv("GATEWAY_SETTLE_SECONDS", "0")
    settings = load_settings(home)
    for folder in ("inbox", "outbox", "processed", "rejected"):
        (settings.mailbox_root / TOWN / folder).mkdir(parents=True, exist_ok=True)
    gateway = Gateway(settings)
    try:
        drop(settings, "hospital", "births.csv", hospital_file(
            hospital_row("Q440781269001", WANG, "广东省台山市大江镇公益村3号"),
            hospital_row("Q440781269003", OLD, "广东省台山市大江镇麦巷村9号"),
        ))
        drop(settings, "civil-affairs", "marriages.xml", marriage_file())
        drop(settings, "police", "police.csv", list_month(settings))
        run_pass(gateway, settings)
        divisions, rs = load_divisions(home), register_settings(settings)
        dajiang = "440781101000"
        with Session(gateway.engine) as session:
            rows = lambda kind, text, village=None: rows_for(session, kind, period(text), dajiang, village, divisions, rs)  # noqa: E731
            assert rows("newlyweds", "2026-10") == [["2026-10-20", HUSBAND[0], HUSBAND[1], WANG[0], WANG[1], "公益村"]]
            assert rows("newlyweds", "2026-09") == []
            assert rows("infants", "2026-10") == [[CHILD[0], "男", CHILD[2], CHILD[1], "广东省台山市大江镇公益村3号", "公益村"]]
            assert rows("deaths", "2026-10") == [[OLD[0], OLD[1], "女", OLD[2], "2026-10-11", "公安户籍", "麦巷村"]]
            assert rows("women-moves", "2026-Q3") == [
                [ARRIVER[0], ARRIVER[1], ARRIVER[2], "迁入", "2026-08-15", "公益村"],
                [MOVER[0], MOVER[1], MOVER[2], "迁出", "2026-09-10", "麦巷村"],  # by the address she left
            ]
            assert rows("women-moves", "2026-Q3", "440781101201") == [[ARRIVER[0], ARRIVER[1], ARRIVER[2], "迁入", "2026-08-15", "公益村"]]
            assert rows_for(session, "deaths", period("2026-10"), "440781001000", None, divisions, rs) == []

        listed = home.parent / "moves.csv"
        shown = run_gateway(home, "register", "lists", "women-moves", "--period", "2026-Q3", "--township", "大江镇",
                            "--csv", str(listed), env={"GATEWAY_DEPARTMENTS": json.dumps(departments)})
        assert "育龄妇女迁出迁入名单" in shown.stdout and "林**" in shown.stdout and MOVER[1] not in shown.stdout
        text = listed.read_text(encoding="utf-8-sig")
        PRIVACY.outputs.append(("register lists --csv", text))
        assert text.splitlines()[2].startswith(f"林**,{MOVER[1][:6]}***********{MOVER[1][-1:]},1998-04-04,迁出,2026-09-10,麦巷村")
        wrong = run_gateway(home, "register", "lists", "women-moves", "--period", "2026-09", "--township", "大江镇", check=False)
        assert wrong.returncode == 2 and "quarterly" in wrong.stderr

        held = deliver_due(gateway, dt.date(2026, 11, 5))
        assert {o.status for o in held} == {"held"} and len(held) == 8
        assert "no public key is registered for town-440781101" in held[0].reason
        ring, fingerprint = recipients["population-office"]
        DepartmentKeys(settings.keys_dir).import_key(ring.export(fingerprint), TOWN)
        ring.trust_gateway(settings.keys_dir)
        sent = deliver_due(gateway, dt.date(2026, 11, 5))
        assert {o.status for o in sent} == {"delivered"}
        by_name = {o.file_name: o for o in sent}
        assert by_name["NAMELIST-women-moves-2026-Q3.csv.gpg"].rows == 2 and by_name["NAMELIST-deaths-2026-10.csv.gpg"].rows == 1
        plain, status = ring.decrypt(settings.mailbox_root / TOWN / "outbox" / "NAMELIST-newlyweds-2026-10.csv.gpg")
        assert "GOODSIG" in status or "VALIDSIG" in status
        assert plain.decode("utf-8-sig").splitlines() == [
            "登记日期,男方姓名,男方公民身份号码,女方姓名,女方公民身份号码,村（居）",
            f"2026-10-20,{HUSBAND[0]},{HUSBAND[1]},{WANG[0]},{WANG[1]},公益村",
        ]
        assert {o.status for o in deliver_due(gateway, dt.date(2026, 11, 6))} == {"already"}
    finally:
        gateway.close()


def test_a_clerk_resolves_a_disagreement_until_a_source_says_something_else(gateway, county, home, tmp_path):
    from gateway.platform import assist_checks
    from gateway.register.discrepancies import disagreements, resolve

    wcba = tmp_path / "wcba.csv"
    wcba.write_text(f"公民身份号码,姓名,类别,内容,登记日期\n{WANG[1]},{WANG[0]},01,未婚,2026-03-01\n", encoding="utf-8")
    assist_checks.import_table(gateway.engine, "wcba", wcba)
    drop(county, "civil-affairs", "marriages.xml", marriage_file())
    run_pass(gateway, county)
    with Session(gateway.engine) as session:
        assert [d.item["attribute"] for d in disagreements(session)] == ["marital_status"]
    with pytest.raises(GatewayError, match="needs a reason"):
        resolve(gateway.engine, WANG[1], "marital_status", " ")
    done = run_gateway(home, "register", "resolve", WANG[1], "marital_status", "--reason", "台账过期，以民政登记为准")
    assert "1 disagreement(s) resolved" in done.stdout and WANG[1] not in done.stdout
    assert "0 open" in run_gateway(home, "register", "discrepancies").stdout
    assert "台账过期" in run_gateway(home, "register", "discrepancies", "--all").stdout
    rebuild(gateway.engine, county)  # a resolution is not derived: it outlives a rebuild
    with Session(gateway.engine) as session:
        assert disagreements(session) == []
    wcba.write_text(f"公民身份号码,姓名,类别,内容,登记日期\n{WANG[1]},{WANG[0]},01,丧偶,2026-06-01\n", encoding="utf-8")
    assist_checks.import_table(gateway.engine, "wcba", wcba)
    fold(gateway.engine, county)
    with Session(gateway.engine) as session:
        [again] = disagreements(session)
    assert (again.item["other_value"], again.resolution) == ("30", None)


def test_the_registers_disagreements_are_discrepancies_of_the_reconciliation(gateway, county, home, tmp_path):
    """One mechanism (多元校核): a disagreement of the register is a discrepancy of the rule
    `register-disagreements`, listed by `gateway reconcile` masked, to the source that
    disagrees; resolved there, the register's own list agrees; another value opens it again;
    the sources agreeing close it."""
    from gateway.masking import mask_id
    from gateway.platform import assist_checks
    from gateway.reconcile import evaluate, open_items
    from gateway.register.discrepancies import disagreements

    rule = "register-disagreements"
    wcba = tmp_path / "wcba.csv"
    wcba.write_text(f"公民身份号码,姓名,类别,内容,登记日期\n{WANG[1]},{WANG[0]},01,未婚,2026-03-01\n", encoding="utf-8")
    assist_checks.import_table(gateway.engine, "wcba", wcba)
    drop(county, "civil-affairs", "marriages.xml", marriage_file())
    run_pass(gateway, county)
    on = dt.date(2026, 11, 2)
    assert evaluate(gateway.engine, county, on).rules[rule].opened == 1
    assert evaluate(gateway.engine, county, on).rules[rule].opened == 0  # evaluating again opens nothing twice
    [item] = open_items(gateway.engine, [rule])[rule]
    shown = item.to_json()
    assert WANG[1] not in json.dumps(shown, ensure_ascii=False) and shown["subject"].startswith(mask_id(WANG[1]) + ":marital_status:")
    assert shown["notify"] == ["civil-affairs"] and shown["record"]["contract"] == "MarriageEvent"
    assert (shown["details"]["source"], shown["details"]["value"], shown["details"]["other_source"], shown["details"]["other_value"]) == (
        "civil-affairs", "20 已婚", "wcba", "10 未婚")
    listed = json.loads(run_gateway(home, "reconcile", "--as-of", on.isoformat(), "--json").stdout)
    assert listed["rules"][rule]["open"] == 1 and WANG[1] not in json.dumps(listed, ensure_ascii=False)

    done = run_gateway(home, "reconcile", "resolve", str(item.discrepancy.id), "--reason", "台账过期，以民政登记为准")
    assert WANG[1] not in done.stdout
    with Session(gateway.engine) as session:
        assert disagreements(session) == []  # the register's view agrees: resolved there too
    assert evaluate(gateway.engine, county, on).rules[rule].open == 0

    wcba.write_text(f"公民身份号码,姓名,类别,内容,登记日期\n{WANG[1]},{WANG[0]},01,丧偶,2026-06-01\n", encoding="utf-8")
    assist_checks.import_table(gateway.engine, "wcba", wcba)
    fold(gateway.engine, county)
    assert evaluate(gateway.engine, county, on).rules[rule].opened == 1  # another value: open again
    wcba.write_text(f"公民身份号码,姓名,类别,内容,登记日期\n{WANG[1]},{WANG[0]},01,已婚,2026-09-01\n", encoding="utf-8")
    assist_checks.import_table(gateway.engine, "wcba", wcba)
    fold(gateway.engine, county)
    closed = evaluate(gateway.engine, county, on).rules[rule]
    assert (closed.closed, closed.open) == (1, 0)
    assert query(home, "SELECT closure FROM discrepancy WHERE rule = ? ORDER BY id", rule) == [("resolved",), ("matched",)]


def test_the_township_breakdown_of_the_reports_items(gateway, county, home, tmp_path):
    from gateway.register.divisions import load_divisions
    from gateway.register.lists import period
    from gateway.register.township_report import table_rows, township_figures

    late = ("黄小满", make_id("440781", "2025-12-30", 17), "2025-12-30")
    infant = ("黄小安", make_id("440781", "2026-05-01", 19), "2026-05-01")
    compact = lambda p: p[2].replace("-", "")  # noqa: E731
    drop(county, "hospital", "births.csv", hospital_file(
        hospital_row("Q440781269001", WANG, "广东省台山市大江镇公益村3号"),
        hospital_row("Q440781269003", OLD, "广东省台山市大江镇麦巷村9号"),
        hospital_row("Q440781269004", ZHAO, "广东省台山市四九镇四九村1号", born="2026-09-30"),  # another month
    ))
    drop(county, "police", "police.csv", police_rows(
        f"出生登记,{CHILD[1]},{CHILD[0]},1,01,{compact(CHILD)},440781000123,20,广东省台山市大江镇公益村3号,440781,20261020,出生,,,,,,Q440781269001,大江派出所",
        f"出生登记,{late[1]},{late[0]},1,01,{compact(late)},440781000124,20,广东省台山市大江镇公益村4号,440781,20261015,出生,,,,,,Q440781259999,大江派出所",
        f"死亡注销,{OLD[1]},{OLD[0]},2,01,{compact(OLD)},440781000456,01,广东省台山市大江镇麦巷村9号,440781,20261011,死亡,,,,,,,大江派出所",
        f"死亡注销,{infant[1]},{infant[0]},1,01,{compact(infant)},440781000457,20,广东省台山市大江镇公益村5号,440781,20261002,死亡,,,,,,,大江派出所",
    ))
    run_pass(gateway, county)
    divisions = load_divisions(home)
    figures = township_figures(gateway.engine, period("2026-10"), divisions)
    dajiang = figures["440781101000"]
    assert dajiang.hospital_births == {"1": 2, "2": 0} and dajiang.infant_deaths == {"1": 1, "2": 0}
    assert dajiang.deaths["0"] == {"1": 1, "2": 0} and dajiang.deaths["50-64"] == {"1": 0, "2": 1}
    assert (dajiang.registrations, dajiang.late_registrations) == (1, 1)
    assert figures["440781103000"].hospital_births == {"1": 0, "2": 0}  # 赵's birth is September's
    assert township_figures(gateway.engine, period("2026-09"), divisions)["440781103000"].hospital_births == {"1": 1, "2": 0}
    rows = {row[0]: row for row in table_rows(figures, divisions)}
    assert rows["440781101000"][1:6] == ["大江镇", "2", "0", "1", "0"] and rows["440781101000"][-2:] == ["1", "1"]
    shown = run_gateway(home, "register", "report", "--month", "2026-10", "--csv", str(tmp_path / "t.csv"))
    assert "围产期保健" in shown.stdout and "not held by any feed" in shown.stdout
    text = (tmp_path / "t.csv").read_text(encoding="utf-8-sig")
    assert text.splitlines()[0].startswith("乡镇代码,乡镇,住院分娩 男") and "440781101000,大江镇,2,0,1,0" in text


@pytest.mark.slow
def test_the_console_api_serves_the_roster_to_operators_and_the_population_office_only(template_home, request):
    import requests
    from console_helpers import PASSWORDS, Served, scan_text

    from conftest import BACKEND
    from gateway.web.accounts import add_user

    served = Served(template_home, request.getfixturevalue("postgres_server") if BACKEND == "postgresql" else None)
    try:
        (served.home / "divisions.csv").write_text(EXAMPLE, encoding="utf-8")
        served.run("register", "divisions")  # places everyone in the new divisions
        engine = served.engine()
        try:
            add_user(engine, "office", "department", "lantern-ferry-census-9", "population-office", list(served.settings.departments))
        finally:
            engine.dispose()
        url = served.console.url + "/api/register/women"

        def signed_in(name: str, password: str) -> requests.Session:
            http = requests.Session()
            assert http.post(served.console.url + "/api/session", json={"name": name, "password": password}, timeout=30).status_code == 200
            return http

        for name in ("op", "office"):
            http = signed_in(name, PASSWORDS.get(name, "lantern-ferry-census-9"))
            answer = http.get(url, params={"township": "台城街道", "as_of": "2026-11-30"}, timeout=30)
            assert answer.status_code == 200, answer.text
            scan_text(f"register api as {name}", answer.text)
            rows = answer.json()
            assert {row["id_number"] for row in rows} == {"440781***********5", "430102***********2", "450102***********6"}
            assert all(row["name"].endswith("**") for row in rows)
            bad = http.get(url, params={"township": "没有这个镇"}, timeout=30)
            assert bad.status_code == 400 and "Valid choices" in bad.json()["detail"]
        for name in ("clerk", "sec"):  # a hospital clerk, a security officer: never
            refused = signed_in(name, PASSWORDS[name]).get(url, params={"township": "台城街道"}, timeout=30)
            assert refused.status_code == 403 and "population office" in refused.json()["detail"]
        assert requests.get(url, params={"township": "台城街道"}, timeout=30).status_code == 401
        audited = [e.detail for e in served.audit(action="register.women")]  # the console's own log
        assert len(audited) == 2 and any("office (department:population-office)" in d for d in audited)
    finally:
        served.close()
