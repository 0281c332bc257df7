"""A plugin's own contract, field kind and reason texts are first-class (issue 19): the test
plugin `gateway_pension_test` (tests/data/plugins/), registered in-process, brings
`PensionDeathReport` with a phone field. An agreement may name it (`agreements check` and
`explain`), `gateway contracts list/show` describe it, the JSON Schema export includes it, a
reconciliation rule may join it, its adapter's reason code shows its Chinese text in the
rejection report, and a phone number in a file never reaches a log or report unmasked. The
console's /contracts page lists it, the plugin found through its entry point by a real
`gateway serve`."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import sys
from pathlib import Path

import pytest
from conftest import BACKEND, PRIVACY, drop, error_report

from gateway.config import load_settings
from gateway.errors import ConfigError, PluginError
from gateway.plugins import get_manager

PLUGINS = Path(__file__).parent / "data" / "plugins"
PHONE = "13912345678"          # the informant's phone of an accepted row: never shown whole
BAD_PHONE = "13987654321-"     # a malformed one: refused, and shown masked
LANDLINE = "0762-7654321"
FULL_NAME = "欧阳养老"
PENSION_AGREEMENT = """
[[agreements]]
name = "pension-deaths-to-population-office"
recipient = "population-office"
contracts = ["PensionDeathReport"]
fields = ["pension_no", "death_date", "informant_phone"]
purpose = "stop paying a pension after the pensioner's death"
format = "csv-utf8"
schedule = "immediate"
[agreements.filters]
event_from = 2026-01-01
"""


def _module():  # type: ignore[no-untyped-def]
    """The plugin module, imported from its file (its folder is not put on sys.path, so the
    suite's own process never finds its entry point)."""
    if "gateway_pension_test" in sys.modules:
        return sys.modules["gateway_pension_test"]
    spec = importlib.util.spec_from_file_location(
        "gateway_pension_test", PLUGINS / "gateway_pension_test" / "__init__.py",
        submodule_search_locations=[str(PLUGINS / "gateway_pension_test")],
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gateway_pension_test"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def pension():  # type: ignore[no-untyped-def]
    """The test plugin registered in the process-wide manager, unregistered afterwards."""
    module = _module()
    manager = get_manager()
    manager.register(module, name="pension-test")
    try:
        yield module
    finally:
        manager.unregister(module)
    assert "PensionDeathReport" not in manager.contracts()


def _id_number(body: str) -> str:
    from stdnum.cn import ric

    return body + ric.calc_check_digit(body + "0")  # it reads the first 17 of 18


def _cli(*args: str):  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from gateway.cli import app

    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "220"})
    PRIVACY.outputs.append((f"gateway {' '.join(args)}", result.output))
    assert result.exit_code == 0, result.output
    return result.output


def test_an_agreement_may_name_a_plugin_contract_and_explain_shows_it(home, pension):
    from gateway.routing.agreements import DEFAULT_AGREEMENTS, load_agreements

    (home / "agreements.toml").write_text(DEFAULT_AGREEMENTS + PENSION_AGREEMENT, encoding="utf-8")
    result = load_agreements(load_settings(home))
    assert not result.errors, result.errors
    [mine] = result.for_recipient("population-office")[-1:]
    assert mine.agreement.contracts == ["PensionDeathReport"]
    assert mine.columns["PensionDeathReport"] == ["pension_no", "death_date", "informant_phone"]
    assert mine.date_field["PensionDeathReport"] == "death_date", "the contract's own event_date_field"

    explained = _cli("agreements", "explain", "population-office", "--home", str(home))
    assert "PensionDeathReport" in explained and "death_date from 2026-01-01" in explained
    assert "报告人电话" in explained and "phone" in explained

    # Without the plugin the same agreement names an unknown contract.
    get_manager().unregister(pension)
    try:
        errors = " ".join(str(p) for p in load_agreements(load_settings(home)).errors)
        assert "unknown contract 'PensionDeathReport'" in errors
    finally:
        get_manager().register(pension, name="pension-test")


def test_gateway_contracts_list_and_show_describe_a_plugin_contract(pension):
    listed = _cli("contracts", "list")
    [row] = [line for line in listed.splitlines() if "PensionDeathReport" in line]
    assert "养老金领取人死亡报告" in row and "gateway_pension_test" in row
    assert " 8 " in row, row  # its leaf fields: pension_no, deceased (4), death_date, informant_phone, remark
    assert "DeathEvent" in listed and "死亡" in listed

    shown = _cli("contracts", "show", "PensionDeathReport")
    assert "养老金领取人死亡报告" in shown and "业务键 business key: pension_no, death_date" in shown
    [phone] = [line for line in shown.splitlines() if "informant_phone" in line]
    assert "报告人电话" in phone and "是 yes" in phone and "phone 电话号码" in phone and "139****0000" in phone
    [pension_no] = [line for line in shown.splitlines() if line.strip("│ ").startswith("pension_no")]
    assert "pension_number 养老金编号" in pension_no and "YL******01" in pension_no
    [date] = [line for line in shown.splitlines() if line.strip("│ ").startswith("death_date ")]
    assert "否 no" in date


def test_the_schema_export_includes_a_plugin_contract_beside_the_builtins(pension, tmp_path):
    from contracts.export import SCHEMA_DIR

    _cli("contracts", "export", "--directory", str(tmp_path))
    schema = json.loads((tmp_path / "PensionDeathReport.json").read_text(encoding="utf-8"))
    assert schema["$id"] == "urn:gateway:contracts:PensionDeathReport:1.0"
    assert schema["properties"]["informant_phone"]["anyOf"][0]["kind"] == "phone"
    assert (tmp_path / "DeathEvent.json").read_bytes() == (SCHEMA_DIR / "DeathEvent.json").read_bytes()
    assert not (SCHEMA_DIR / "PensionDeathReport.json").exists(), "the committed schemas stay the built-ins'"
    assert "Schemas are up to date." in _cli("contracts", "export", "--check"), "the built-ins still match"


def test_a_reconciliation_rule_may_name_a_plugin_contract(pension):
    import gateway
    from gateway.plugins import PluginManager
    from gateway.reconcile import Evidence, Reconciliation

    class DeathsWithoutPensionReport(Reconciliation):
        name = "deaths-without-pension-report"
        subject_contract, evidence_contract = "DeathEvent", "PensionDeathReport"
        matching_keys = ("deceased.id_number", "deceased.id_number")
        grace = "1 month"
        notify = ("civil-affairs",)

        def subjects(self, records):  # type: ignore[no-untyped-def]
            return iter(())

        def evidence(self, records):  # type: ignore[no-untyped-def]
            return (Evidence(r, None) for r in records)

    class Rules:
        @gateway.hookimpl
        def register_reconciliations(self, register):  # type: ignore[no-untyped-def]
            register(DeathsWithoutPensionReport)

    manager = PluginManager(load_entry_points=False)
    manager.register(Rules(), name="rules")
    with pytest.raises(PluginError, match="evidence_contract 'PensionDeathReport' is not a contract; one of AdoptionEvent"):
        manager.reconciliations()
    manager.register(pension, name="pension-test")
    assert manager.reconciliations()["deaths-without-pension-report"] is DeathsWithoutPensionReport


def _pension_file(rows: list[str]) -> bytes:
    header = "养老金编号,姓名,公民身份号码,死亡日期,报告人电话,备注"
    return ("\r\n".join([header, *rows]) + "\r\n").encode("utf-8")


def test_a_plugin_reason_shows_its_chinese_text_and_a_phone_never_leaves_unmasked(settings, pension, caplog):
    from gateway.exchange.lifecycle import Gateway

    good, other = _id_number("44078119500101123"), _id_number("44078119480202234")
    data = _pension_file([
        f"YL20260001,{FULL_NAME},{good},2026-10-01,{PHONE},家属来电",     # row 2: accepted
        f"YL20260002,{FULL_NAME},{other},2026-10-02,{BAD_PHONE},",        # row 3: phone_format
        f"X-17,{FULL_NAME},{other},2026-10-03,{LANDLINE},",                # row 4: the plugin's own code
    ])
    drop(settings, "civil-affairs", "pension_deaths_202610.csv", data)
    caplog.set_level(logging.DEBUG, logger="gateway")
    gw = Gateway(settings)
    try:
        [outcome] = gw.run_once()
    finally:
        gw.close()
    report = error_report(settings, "civil-affairs", "pension_deaths_202610.csv", (1, 2, 3, 4, 6))
    assert (outcome.status, outcome.accepted, outcome.rejected) == ("processed", 1, 2), report
    report = error_report(settings, "civil-affairs", "pension_deaths_202610.csv", (1, 2, 3, 4, 6))
    assert report[3] == [("报告人电话", "informant_phone", "139****4321",
                          "电话号码格式错误(只能含数字和“-”:手机号11位数字,固定电话写作 区号-号码)", "phone_format")]
    assert report[4] == [("养老金编号", "", "", "养老金编号格式错误(应为 YL 加 8 位数字)", "pension_no_format")]

    outbox = settings.mailbox_root / "civil-affairs" / "outbox"
    texts = [path.read_text(encoding="utf-8-sig") for path in sorted(outbox.iterdir()) if path.suffix in (".csv", ".json")]
    texts.append(caplog.text)
    for text in texts:
        for secret in (PHONE, BAD_PHONE.rstrip("-"), LANDLINE, FULL_NAME, good, other):
            assert secret not in text
    from gateway.store.audit import IdScanner

    assert not [f for text in texts for f in IdScanner(phones=(PHONE, LANDLINE), any_phone=True).scan(text)]


def test_the_privacy_scan_finds_an_unmasked_phone_number():
    from gateway.store.audit import IdScanner

    scanner = PRIVACY.scanner or PRIVACY.make_scanner()
    assert PHONE in scanner.phones and LANDLINE in scanner.phones, "the test modules' phone numbers are known"
    [found] = scanner.scan(f"row 2: informant {PHONE} refused", "planted")
    assert str(found) == "planted:1: unmasked phone number 139****5678"
    assert not scanner.scan("row 2: informant 139****5678 refused")
    assert IdScanner(any_phone=True).scan("call 0762-1234567")[0].masked == "0762-***4567"


@pytest.mark.slow
def test_the_console_lists_a_plugin_contract_with_its_fields_and_masking(template_home, request, tmp_path):
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    from console_helpers import PASSWORDS, Served, scan_text
    from playwright.sync_api import sync_playwright

    postgres_server = request.getfixturevalue("postgres_server") if BACKEND == "postgresql" else None
    served = Served(template_home, postgres_server, env={"PYTHONPATH": str(PLUGINS)})
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"])
            try:
                page = chromium.new_page()
                base = served.console.url

                def sign_in(name: str) -> None:
                    page.goto(base + "/")
                    page.fill("input[name=name]", name)
                    page.fill("input[name=password]", PASSWORDS[name])
                    page.click("form[action='/login'] button[type=submit]")

                sign_in("op")
                page.goto(base + "/deliveries")
                scan_text("console /deliveries", page.content())
                page.click("#contracts-link")
                assert page.url == base + "/contracts"
                html = page.content()
                scan_text("console /contracts", html)
                listed = page.inner_text("#contracts")
                assert "PensionDeathReport" in listed and "养老金领取人死亡报告" in listed and "gateway-pension-test" in listed
                assert "DeathEvent" in listed and "死亡" in listed
                fields = page.inner_text("table[data-contract=PensionDeathReport]")
                [phone] = [line for line in fields.splitlines() if line.startswith("informant_phone")]
                assert "报告人电话" in phone and "\t是\t" in phone and "phone 电话号码" in phone and "139****0000" in phone
                assert "pension_number 养老金编号" in fields
                page.screenshot(path=str(tmp_path / "contracts.png"), full_page=True)
                assert page.is_visible("nav a[href='/contracts']")

                clerk = chromium.new_page()
                clerk.goto(base + "/")
                clerk.fill("input[name=name]", "clerk")
                clerk.fill("input[name=password]", PASSWORDS["clerk"])
                clerk.click("form[action='/login'] button[type=submit]")
                answer = clerk.goto(base + "/contracts")
                assert answer is not None and answer.status == 403, "a department clerk does not see the catalogue"
            finally:
                chromium.close()
    finally:
        served.close()


def test_a_plugin_contract_gives_the_register_facts_by_its_source(settings, pension):
    """`Contract.person_facts`: the pension office's report of a death is folded into the
    register beside the police's registration of it, each by its source; the two death
    dates disagree, so the register lists it (多元校核), and the pension file owed the
    register an update (变动信息更新) that the fold met."""
    from sqlmodel import Session, select

    from gateway.exchange.lifecycle import Gateway
    from gateway.obligations.hooks import register_contracts
    from gateway.register.build import fold
    from gateway.store.obligation_models import Obligation
    from gateway.store.register_models import RegisterFact, RegisterPerson

    assert "PensionDeathReport" in register_contracts()
    number = _id_number("44078119380405013")
    police = ("YWLX,GMSFHM,XM,XBDM,MZDM,CSRQ,HH,YHZGXDM,HJDZ,HJDZ_XZQHDM,BDRQ,BDYY,QYDZ,QYDZ_XZQHDM,ZQZBH,JZZBH,JZZYXQZ,CSYXZMBH,DJPCS\n"
              f"死亡注销,{number},{FULL_NAME},1,01,19380405,440781000456,01,广东省台山市白沙镇,440781,20261011,死亡,,,,,,,白沙派出所\n")
    drop(settings, "police", "police_hukou_202610.csv", police.encode("utf-8"))
    drop(settings, "civil-affairs", "pension_deaths_202610.csv",
         _pension_file([f"YL20260001,{FULL_NAME},{number},2026-10-12,{PHONE},家属来电"]))
    gw = Gateway(settings)
    try:
        outcomes = gw.run_once()
        assert sorted((o.status, o.accepted) for o in outcomes) == [("processed", 1), ("processed", 1)]
        folded = fold(gw.engine, settings)
        with Session(gw.engine) as session:
            facts = {(f.source, f.attribute, f.value) for f in session.exec(
                select(RegisterFact).where(RegisterFact.id_number == number)).all()}
            deceased = session.get(RegisterPerson, number)
            updates = session.exec(select(Obligation).where(Obligation.kind == "update")).all()
    finally:
        gw.close()
    assert folded.records == 2
    assert ("civil-affairs", "death_date", "2026-10-12") in facts and ("police", "death_date", "2026-10-11") in facts
    assert not [f for f in facts if f[1] == "not_kept"]  # an attribute the register does not keep is ignored
    assert deceased is not None
    state = json.loads(deceased.state)
    assert {(d["attribute"], d["other_source"]) for d in state["disagreements"]} >= {("death_date", "civil-affairs")}
    assert len(updates) == 2 and {u.status for u in updates} == {"met"}


def test_a_retention_rule_may_name_a_plugin_contract_and_purges_its_records(settings, pension, monkeypatch):
    """`[retention]` (保存期限, issue 21) names a plugin's own contract as it names a built-in
    one: its records past the rule lose their payload and business key, keep their hashes,
    and the receipt's home still verifies; without the plugin the rule names no contract."""
    from conftest import query

    from gateway.exchange.home_check import verify_home
    from gateway.exchange.lifecycle import Gateway
    from gateway.retention.home import StoredRetention
    from gateway.retention.purge import run_retention
    from gateway.retention.rules import load_rules
    from gateway.store import make_engine

    number = _id_number("44078119500101123")
    drop(settings, "civil-affairs", "pension_deaths_202610.csv",
         _pension_file([f"YL20260001,{FULL_NAME},{number},2026-10-01,{PHONE},家属来电"]))
    monkeypatch.setenv("GATEWAY_NOW", "2026-11-02T09:00:00+08:00")
    gw = Gateway(settings)
    try:
        [outcome] = gw.run_once()
        assert (outcome.status, outcome.accepted) == ("processed", 1)
        [(record_id, payload, record_hash)] = query(
            settings, "SELECT id, payload, record_hash FROM record WHERE contract = 'PensionDeathReport'")
        assert number in payload
        rules = load_rules({"PensionDeathReport": "1y"})
        assert [rule.text for rule in rules.records] == ["PensionDeathReport = 1y"]
        monkeypatch.setenv("GATEWAY_NOW", "2028-01-15T10:00:00+08:00")
        report = run_retention(gw.engine, settings, rules)
        assert "PensionDeathReport(规则 PensionDeathReport = 1y):已清除记录 1 条" in "\n".join(report.lines())
        assert query(settings, "SELECT payload, record_hash, business_key FROM record WHERE id = ?", record_id) == [
            ("{}", record_hash, f"purged:{record_id}")]
        assert query(settings, "SELECT rule, contract FROM retentionpurge WHERE record_id = ?", record_id) == [
            ("PensionDeathReport = 1y", "PensionDeathReport")]
        # as `gateway verify-home` reads it: a read-only engine of its own
        readonly = make_engine(settings.db_url, readonly=True)
        try:
            retention = StoredRetention(readonly)
            checked = verify_home(settings, readonly, None, retention)
        finally:
            readonly.dispose()
        assert checked.ok, [f.text() for f in checked.findings]
        assert retention.counts["record", "PensionDeathReport = 1y"] == 1
    finally:
        gw.close()
    get_manager().unregister(pension)
    try:
        with pytest.raises(ConfigError, match="没有名为 'PensionDeathReport' 的数据契约"):
            load_rules({"PensionDeathReport": "1y"})
    finally:
        get_manager().register(pension, name="pension-test")
