"""Assist-checks (协查) end to end over loopback HTTP: requests pulled from the simulated
platform get due dates and drafts from the county's own records (women of childbearing
age, then the ledger, then the police household records), an officer answers with one
command, the FKXX goes back to the platform and is receipted; notices; imports."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from lxml import etree

from conftest import add_pulls, drop, query, run_gateway, specimen
from gateway import clock
from gateway.platform import assist_checks
from gateway.config import load_settings
from gateway.obligations.deadlines import WorkCalendar, use_calendar
from gateway.errors import GatewayError
from gateway.exchange.lifecycle import Gateway
from gateway.pulls import Puller
from gateway.receipts.check import verify_receipt

NOW = dt.datetime(2026, 11, 6, 9, 0, tzinfo=clock.CHINA)
# People of the specimens: 陈丽 (hospital and housing specimens), 彭小红 (police: residence permit).
CHEN = ("陈丽", "440781199203154325", "1992-03-15")
PENG = ("彭小红", "430102199303031082", "1993-03-03")
STRANGER = ("吴秀英", "341222198805050027", "1988-05-05")


def xcxx(number: str, person: tuple[str, str, str], categories: str, urgency: str = "1", sent: str = "2026-11-05") -> str:
    name, id_number, born = person
    return (
        f'<XCXX XXBH="{number}" JJCD="{urgency}" FQSJ="{sent}" FX="HJD_TO_XJZD"><DX XM="{name}" GMSFHM="{id_number}" '
        f'CSRQ="{born}" XJZD="广东省台山市台城街道"/><XCNR LB="{categories}">请协查</XCNR></XCXX>'
    )


@pytest.fixture(autouse=True)
def pinned():
    use_calendar(WorkCalendar(holidays=[], workdays=[], years={2026}))
    with clock.pinned(NOW):
        yield
    use_calendar(None)


@pytest.fixture
def gw(home, partner, monkeypatch):
    monkeypatch.setenv("GATEWAY_SETTLE_SECONDS", "0")
    add_pulls(home, partner, monkeypatch, sources=("platform",))
    gateway = Gateway(load_settings(home))
    yield gateway
    gateway.close()


def pull_platform(gateway: Gateway) -> None:
    puller = Puller(gateway, "platform", gateway.settings.pulls["platform"])
    try:
        report = puller.run()
    finally:
        puller.close()
    assert report.ok, report.error
    assist_checks.sync(gateway.engine, gateway.settings)


def write_csv(path, rows: list[str], encoding: str = "utf-8-sig") -> None:
    path.write_bytes(("\r\n".join(["公民身份号码,姓名,类别,内容,登记日期", *rows]) + "\r\n").encode(encoding))


def test_requests_and_notices_get_due_dates_and_a_place_on_the_deadlines_list(gw, home, partner):
    pull_platform(gw)
    records = query(home, "SELECT business_key, payload FROM record WHERE contract = 'AssistCheckRequest'")
    checks = {row[0]: row for row in query(home, "SELECT message_id, urgency, sent_date, due_date, due_rule, status, received_at FROM assistcheck")}
    assert set(checks) == {key for key, _ in records} and len(checks) >= 5
    for key, payload in records:
        request = json.loads(payload)
        _, urgency, sent, due, rule, status, _ = checks[key]
        days = 15 if request["urgency"] == "1" else 30
        assert str(due)[:10] == (dt.date.fromisoformat(request["sent_date"]) + dt.timedelta(days=days)).isoformat()
        assert rule == ("assist_check_urgent" if urgency == "1" else "assist_check") and status == "open"
    notices = query(home, "SELECT message_id, sent_date, due_date, feedback_required FROM noticeitem")
    assert len(notices) == query(home, "SELECT count(*) FROM record WHERE contract = 'PlatformNotice'")[0][0] >= 1
    for _, sent, due, _ in notices:
        assert (dt.date.fromisoformat(str(due)[:10]) - dt.date.fromisoformat(str(sent)[:10])).days == 30

    # The deadlines list: soonest due first; --overdue and --due-within as of a given day.
    views = assist_checks.list_checks(gw.engine)
    assert [v.item.due_date for v in views] == sorted(v.item.due_date for v in views)
    overdue = assist_checks.list_checks(gw.engine, overdue=True, today=dt.date(2026, 11, 18))
    assert {v.item.message_id for v in overdue} >= {"XC-510722-20261102-0001"}  # 紧急, sent 11-02, due 11-17
    soon = assist_checks.list_checks(gw.engine, due_within=3, today=dt.date(2026, 11, 15))
    assert all(v.item.due_date <= dt.date(2026, 11, 18) for v in soon) and soon
    listing = run_gateway(home, "assist-checks", "list", "--overdue", "--as-of", "2026-11-18")
    assert "XC-510722-20261102-0001" in listing.stdout and "1d overdue" in listing.stdout
    assert "杨**" in listing.stdout and "510722***********7" in listing.stdout
    within = run_gateway(home, "assist-checks", "list", "--due-within", "3d", "--as-of", "2026-11-15")
    assert "XC-510722-20261102-0001" in within.stdout and "XC-510722-20261102-0002" not in within.stdout
    assert "2026-11-17" in run_gateway(home, "deadlines", "list", "--as-of", "2026-11-15").stdout
    shown = run_gateway(home, "notices", "list")
    assert "TB-510722-20261102-0001" in shown.stdout and "feedback" in shown.stdout


def test_the_draft_looks_in_wcba_then_the_ledger_then_the_police(gw, home, partner, tmp_path):
    drop(gw.settings, "police", "police_hukou_202610.csv", specimen("police_hukou_202610.csv"))
    gw.run_once()
    wcba, ledger = tmp_path / "wcba.csv", tmp_path / "ledger.csv"
    write_csv(wcba, [f"{CHEN[1]},{CHEN[0]},01,已婚；户籍在本县,2026-03-01", f"{CHEN[1]},{CHEN[0]},妊娠信息,未孕,2026-10-30"])
    write_csv(ledger, [f"{CHEN[1]},{CHEN[0]},01,台账：已婚,", f"{CHEN[1]},{CHEN[0]},02,配偶 李*,", f"{PENG[1]},{PENG[0]},04,育有一女,"], "gb18030")
    assert assist_checks.import_table(gw.engine, "wcba", wcba).added == 2
    assert assist_checks.import_table(gw.engine, "ledger", ledger).added == 3
    partner.platform.add_page([
        xcxx("XC-510722-20261105-0101", CHEN, "01,02,03,04"),
        xcxx("XC-430102-20261105-0102", PENG, "01,04,05", urgency="2"),
        xcxx("XC-341222-20261105-0103", STRANGER, "01,03"),
    ])
    pull_platform(gw)

    chen = assist_checks.get_check(gw.engine, "XC-510722-20261105-0101").draft
    # the register first (育龄妇女信息库: here only the hand import knows 陈), then the ledger, then the police
    assert chen.result == "1" and chen.searched == ["register", "ledger", "police", "records"]
    assert [(f.category, f.source) for f in chen.findings] == [("01", "register"), ("02", "ledger"), ("03", "register")]
    assert chen.missing == ["04"] and chen.findings[0].text() == "已婚；户籍在本县（2026-03-01）"
    peng = assist_checks.get_check(gw.engine, "XC-430102-20261105-0102").draft
    # 彭's residence permit is in the register (01 from the feeds); her inflow details still from the police records
    assert [(f.category, f.source) for f in peng.findings] == [("01", "register"), ("04", "ledger"), ("05", "police")]
    basic = peng.findings[0].text()
    assert "姓名：彭小红" in basic and "性别：女" in basic and "出生日期：1993-03-03" in basic
    assert "居住证：JZ440781-2026-00088" in peng.findings[2].text()
    assert peng.findings[0].masked(PENG[0]).startswith("姓名：彭**")
    stranger = assist_checks.get_check(gw.engine, "XC-341222-20261105-0103").draft
    assert stranger.result == "0" and stranger.findings == [] and "未查到" in stranger.remark

    shown = run_gateway(home, "assist-checks", "show", "XC-430102-20261105-0102")
    assert "(police)" in shown.stdout and "彭**" in shown.stdout and "JZ440781-2026-00088" in shown.stdout


def test_the_lookup_order_is_a_list_of_functions(gw, monkeypatch, tmp_path):
    wcba, ledger = tmp_path / "wcba.csv", tmp_path / "ledger.csv"
    write_csv(wcba, [f"{CHEN[1]},,01,来自育龄妇女信息,"])
    write_csv(ledger, [f"{CHEN[1]},,01,来自台账,"])
    assist_checks.import_table(gw.engine, "wcba", wcba)
    assist_checks.import_table(gw.engine, "ledger", ledger)
    from sqlmodel import Session

    from gateway.register import fold

    fold(gw.engine, gw.settings)  # the register takes in the imported 育龄妇女 row
    with Session(gw.engine) as session:
        assert assist_checks.draft_answer(session, CHEN[1], ["01"]).findings[0].source == "register"
        monkeypatch.setattr(assist_checks, "LOOKUPS", [("ledger", assist_checks.lookup_ledger), ("wcba", assist_checks.lookup_wcba)])
        assert assist_checks.draft_answer(session, CHEN[1], ["01"]).findings[0].source == "ledger"


def test_an_answer_goes_back_to_the_platform_as_fkxx_and_is_receipted(gw, home, partner, tmp_path):
    wcba = tmp_path / "wcba.csv"
    write_csv(wcba, [f"{CHEN[1]},{CHEN[0]},01,已婚,", f"{CHEN[1]},{CHEN[0]},03,未孕,"])
    assist_checks.import_table(gw.engine, "wcba", wcba)
    partner.platform.add_page([xcxx("XC-510722-20261105-0201", CHEN, "01,03,04")])
    pull_platform(gw)
    check = assist_checks.get_check(gw.engine, "XC-510722-20261105-0201").item
    before = len(assist_checks.list_checks(gw.engine))

    answer = run_gateway(home, "assist-checks", "answer", str(check.id), "--found", "--finding", "04=无子女", "--remark", "核查属实")
    assert "Sent to the platform" in answer.stdout and "left the deadlines list" in answer.stdout
    [received] = partner.platform.feedback
    root = etree.fromstring(received.body)
    assert root.tag == "FKXX" and root.get("XXBH") == check.message_id and root.get("PDJG") == "1"
    assert root.get("BZ") == "核查属实" and root.get("FSDW") == "440781" and root.get("JSDW") == "510722"
    assert dt.datetime.fromisoformat(root.get("FKSJ")).utcoffset() == dt.timedelta(hours=8)
    assert [(el.get("LB"), el.text) for el in root] == [("01", "已婚"), ("03", "未孕"), ("04", "无子女")]

    row = query(home, "SELECT status, answer_result, sent_at IS NOT NULL, feedback_exchange_id FROM assistcheck WHERE id = ?", check.id)[0]
    assert row[:3] == ("answered", "1", True)
    assert len(assist_checks.list_checks(gw.engine)) == before - 1
    exchange = query(home, "SELECT department, adapter, status, file_name, sha256 FROM exchange WHERE id = ?", row[3])[0]
    assert exchange[:3] == ("national-platform", "national-platform-feedback", "processed")
    assert exchange[4] == __import__("hashlib").sha256(received.body).hexdigest()  # the receipt covers the bytes sent
    receipt = home / "mailbox" / "national-platform" / "outbox" / f"{exchange[3]}.receipt.json"
    assert verify_receipt(receipt, gw.settings.keys_dir, gw.engine).genuine
    stored = query(home, "SELECT business_key, payload FROM record WHERE contract = 'AssistCheckFeedback'")
    assert stored[0][0] == check.message_id and json.loads(stored[0][1])["result"] == "1"

    twice = run_gateway(home, "assist-checks", "answer", str(check.id), "--not-found", "--remark", "x", check=False)
    assert twice.returncode == 2 and "cannot be answered twice" in twice.stderr
    assert len(partner.platform.feedback) == 1


def test_a_not_found_answer_without_a_remark_is_refused(gw, home, partner):
    pull_platform(gw)
    refused = run_gateway(home, "assist-checks", "answer", "XC-510722-20261102-0002", "--not-found", check=False)
    assert refused.returncode == 2 and "remark" in refused.stderr
    neither = run_gateway(home, "assist-checks", "answer", "XC-510722-20261102-0002", check=False)
    assert neither.returncode == 2 and "--found or --not-found" in neither.stderr
    assert partner.platform.feedback == []
    assert query(home, "SELECT status FROM assistcheck WHERE message_id = 'XC-510722-20261102-0002'") == [("open",)]
    found_nothing = run_gateway(home, "assist-checks", "answer", "XC-510722-20261102-0002", "--found", check=False)
    assert found_nothing.returncode == 2 and "--finding" in found_nothing.stderr
    run_gateway(home, "assist-checks", "answer", "XC-510722-20261102-0002", "--not-found", "--remark", "经查本县无此人")
    [sent] = partner.platform.feedback
    root = etree.fromstring(sent.body)
    assert (root.get("PDJG"), root.get("BZ"), len(root)) == ("0", "经查本县无此人", 0)


def test_an_answer_given_while_the_platform_is_away_is_sent_later(gw, home, partner):
    from gateway.platform.jobs import assist_check_job
    from gateway.scheduler.runner import run_job

    pull_platform(gw)
    partner.stop()
    away = run_gateway(home, "assist-checks", "answer", "XC-510722-20261102-0002", "--not-found", "--remark", "未查到", check=False)
    assert away.returncode == 3 and "Saved, not sent yet" in away.stdout and "unreachable" in away.stdout
    assert query(home, "SELECT status, send_attempts FROM assistcheck WHERE message_id = 'XC-510722-20261102-0002'") == [("sending", 1)]
    assert "sending" in run_gateway(home, "assist-checks", "list").stdout  # still on the list until the platform has it

    partner.start()
    job = assist_check_job(gw.settings)
    try:
        result = run_job(gw.engine, job, lease_seconds=30, force=True)
    finally:
        job.close()
    assert result is not None and result.error is None and "1 answer(s) sent" in result.summary
    assert query(home, "SELECT status FROM assistcheck WHERE message_id = 'XC-510722-20261102-0002'") == [("answered",)]
    assert [f.message_id for f in partner.platform.feedback] == ["XC-510722-20261102-0002"]


def test_an_answer_the_platform_refuses_comes_back_to_the_officer(gw, home, partner):
    pull_platform(gw)
    partner.platform.requests.discard("XC-510722-20261102-0002")  # the platform no longer knows it
    refused = run_gateway(home, "assist-checks", "answer", "XC-510722-20261102-0002", "--not-found", "--remark", "未查到", check=False)
    assert refused.returncode == 1 and "refused the answer" in refused.stdout and "no request" in refused.stdout
    assert query(home, "SELECT status FROM assistcheck WHERE message_id = 'XC-510722-20261102-0002'") == [("refused",)]
    partner.platform.requests.add("XC-510722-20261102-0002")
    run_gateway(home, "assist-checks", "answer", "XC-510722-20261102-0002", "--not-found", "--remark", "经核查未查到")
    assert query(home, "SELECT status FROM assistcheck WHERE message_id = 'XC-510722-20261102-0002'") == [("answered",)]


def test_imports_report_bad_rows_masked_and_never_double(gw, home, tmp_path):
    path = tmp_path / "wcba.csv"
    write_csv(path, [
        f"{CHEN[1]},{CHEN[0]},01,已婚,2026-03-01",
        "440781199203154326,某人,01,校验位错,",
        f"{CHEN[1]},{CHEN[0]},99,未知类别,",
        f"{CHEN[1]},{CHEN[0]},03,,",
        f"{CHEN[1]},{CHEN[0]},03,未孕,2026/10/30",
    ], "gb18030")
    result = run_gateway(home, "assist-checks", "import", "wcba", str(path))
    assert "2 added, 0 already there, 3 refused" in result.stdout
    assert "440781***********6" in result.stdout and "not a category" in result.stdout
    again = run_gateway(home, "assist-checks", "import", "wcba", str(path))
    assert "0 added, 2 already there" in again.stdout
    assert query(home, "SELECT count(*) FROM lookupentry")[0][0] == 2
    bad_header = tmp_path / "bad.csv"
    bad_header.write_text("姓名,内容\n张三,x\n", encoding="utf-8")
    with pytest.raises(GatewayError, match="公民身份号码"):
        assist_checks.import_table(gw.engine, "wcba", bad_header)
    with pytest.raises(GatewayError, match="ledger, wcba"):
        assist_checks.import_table(gw.engine, "women", path)


def test_notices_are_handled_with_a_remark_when_feedback_is_due(gw, home):
    pull_platform(gw)
    with pytest.raises(GatewayError, match="--remark"):
        assist_checks.handle_notice(gw.engine, "TB-510722-20261102-0001", remark=None)
    done = run_gateway(home, "notices", "done", "TB-510722-20261102-0001", "--remark", "已核实并录入")
    assert "left the deadlines list" in done.stdout
    assert "TB-510722-20261102-0001" not in run_gateway(home, "notices", "list").stdout
    assert query(home, "SELECT status, remark FROM noticeitem WHERE message_id = 'TB-510722-20261102-0001'") == [("handled", "已核实并录入")]


def test_a_corrected_request_updates_an_open_one(gw, home, partner):
    partner.platform.add_page([xcxx("XC-510722-20261105-0301", STRANGER, "01")])
    pull_platform(gw)
    partner.platform.add_page([xcxx("XC-510722-20261105-0301", STRANGER, "01,03", urgency="2")])
    pull_platform(gw)
    item = assist_checks.get_check(gw.engine, "XC-510722-20261105-0301").item
    assert (item.categories, item.urgency, item.due_date) == ("01,03", "2", dt.date(2026, 12, 5))
    assert query(home, "SELECT count(*) FROM assistcheck WHERE message_id = 'XC-510722-20261105-0301'") == [(1,)]


@pytest.mark.slow
def test_the_workflow_end_to_end_from_the_command_line(home, partner, monkeypatch, tmp_path):
    """pull -> list -> import -> answer -> the request left the list -> cycle report, all
    through the `gateway` command against the simulated platform over loopback HTTP, on
    the rehearsal clock (GATEWAY_NOW: November's cycle, whatever the real date)."""
    monkeypatch.setenv("GATEWAY_NOW", "2026-11-06T09:00:00+08:00")
    add_pulls(home, partner, monkeypatch, sources=("platform",))
    pulled = run_gateway(home, "pulls", "run", "platform")
    assert "4 page(s) as exchanges" in pulled.stdout and "new assist-check request(s)" in pulled.stdout
    listing = run_gateway(home, "assist-checks", "list")
    assert "XC-510722-20261102-0001" in listing.stdout
    wcba = tmp_path / "wcba.csv"
    write_csv(wcba, ["510722199402122287,,01,已婚,", "510722199402122287,,03,孕12周,", "510722199402122287,,07,三查正常,"])
    run_gateway(home, "assist-checks", "import", "wcba", str(wcba))
    answered = run_gateway(home, "assist-checks", "answer", "XC-510722-20261102-0001", "--found")
    assert "Sent to the platform" in answered.stdout
    assert "XC-510722-20261102-0001" not in run_gateway(home, "assist-checks", "list").stdout
    assert "XC-510722-20261102-0001" in run_gateway(home, "assist-checks", "list", "--all").stdout
    report = run_gateway(home, "report", "cycle")
    assert "Feedback rate" in report.stdout and "(1/" in report.stdout and "required 95%" in report.stdout
    assert "Exchange cycle 2026-11" in report.stdout and "【演练时钟】" in report.stderr
    assert [f.message_id for f in partner.platform.feedback] == ["XC-510722-20261102-0001"]
