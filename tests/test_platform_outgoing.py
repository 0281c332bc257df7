"""The county's own assist-check requests (XCXX) to the national platform: built from the
county's records, sent, receipted, answered by the simulated partner through the inbox
(real HTTP on loopback), closed; due in 15 or 30 days, overdue listed; counted as the
county's submissions in the cycle report, and a blank cycle flagged."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from conftest import add_pulls, drop, query, run_gateway, specimen
from gateway import clock
from gateway.config import load_settings
from gateway.errors import GatewayError
from gateway.exchange.lifecycle import Gateway
from gateway.obligations.deadlines import WorkCalendar, use_calendar
from gateway.platform import assist_checks, outgoing
from gateway.platform.cycle_report import build
from gateway.pulls import Puller
from gateway.receipts.check import verify_receipt

CHEN = ("陈丽", "440781199203154325", "1992-03-15")  # the mother in the hospital specimen
NOW = dt.datetime(2026, 11, 6, 9, 0, tzinfo=clock.CHINA)


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


def pull(gateway: Gateway):  # type: ignore[no-untyped-def]
    puller = Puller(gateway, "platform", gateway.settings.pulls["platform"])
    try:
        report = puller.run()
    finally:
        puller.close()
    assert report.ok, report.error
    return assist_checks.sync(gateway.engine, gateway.settings)


def test_a_round_trip_request_answer_close(gw, home, partner):
    drop(gw.settings, "hospital", "hospital_births_202610.csv", specimen("hospital_births_202610.csv"))
    gw.run_once()
    with pytest.raises(GatewayError, match="division"):  # nothing received yet, no division configured
        outgoing.request(gw, gw.settings, subject_id=CHEN[1], categories=["01", "05"], urgent=True, to="510722")
    incoming = pull(gw).requests
    result = outgoing.request(gw, gw.settings, subject_id=CHEN[1], categories=["01", "05"], urgent=True, to="510722")
    assert result.sent and result.request.status == "sent"
    item = result.request
    assert item.message_id == "XC-440781-20261106-0001" and item.due_date == dt.date(2026, 11, 21)  # 15 days, urgent
    # What the platform got: the county's JHXX, the name from the hospital's record.
    taken = partner.platform.county_requests
    assert [(r["XXBH"], r["FSDW"], r["JSDW"], r["JJCD"], r["FQSJ"]) for r in taken] == [
        ("XC-440781-20261106-0001", "440781", "510722", "1", "2026-11-06")]
    assert f'XM="{CHEN[0]}"' in item.request_xml and f'GMSFHM="{CHEN[1]}"' in item.request_xml
    # Receipted like any exchange; not registered as a request *to* the county.
    from pathlib import Path

    assert verify_receipt(gw.settings.mailbox_root / Path(result.receipt), gw.settings.keys_dir, gw.engine).genuine
    assert query(home, "SELECT adapter, accepted FROM exchange WHERE id = ?", item.exchange_id) == [("national-platform-outgoing", 1)]
    assert len(assist_checks.list_checks(gw.engine, include_answered=True)) == incoming
    listed = outgoing.list_outgoing(gw.engine)
    assert [v.item.message_id for v in listed] == [item.message_id] and listed[0].subject.startswith("陈*")
    # The partner's answer comes through the pull and closes the request.
    synced = pull(gw)
    assert synced.answers == 1 and synced.requests == 0
    answered = outgoing.list_outgoing(gw.engine, include_answered=True)[0]
    assert answered.item.status == "answered" and answered.item.answer_result == "1"
    assert [code for code, _ in answered.findings] == ["01", "05"]
    assert clock.in_china(answered.item.answered_at).date() == dt.date(2026, 11, 7)
    assert outgoing.list_outgoing(gw.engine) == []
    # The cycle report counts it as the county's submission.
    november = build(gw.engine, "2026-11", as_of=dt.datetime(2026, 11, 28, tzinfo=clock.CHINA))
    assert november.submitted_requests == 1 and not november.submitted_nothing
    assert november.as_dict()["submitted"] == {"requests": 1, "notices": 0, "blank": False}
    # Not counted as a partner's submission.
    assert all(row.category != "AssistCheckRequest" or row.received == incoming for row in november.submissions)
    december = build(gw.engine, "2026-12", as_of=dt.datetime(2026, 12, 28, tzinfo=clock.CHINA))
    assert december.submitted_nothing


def test_the_commands_overdue_and_the_blank_cycle(home, partner, monkeypatch):
    monkeypatch.setenv("GATEWAY_SETTLE_SECONDS", "0")
    add_pulls(home, partner, monkeypatch, sources=("platform",))
    with open(home / "gateway.toml", "a", encoding="utf-8") as handle:
        handle.write('division = "440781"\n')  # appended to [pulls.platform], the last table
    partner.platform.answer_delay = 3600.0  # the other side is slow
    env = {"GATEWAY_NOW": "2026-11-06T09:00:00+08:00"}
    blank = run_gateway(home, "report", "cycle", "--month", "2026-11", env=env)
    assert "本期空白" in blank.stdout
    refused = run_gateway(home, "assist-checks", "request", "--subject-id", "510722199402122287", "--categories", "01",
                          "--ordinary", "--to", "510722", env=env, check=False)
    assert refused.returncode == 2 and "--name" in refused.stderr and "510722199402122287" not in refused.stderr
    sent = run_gateway(home, "assist-checks", "request", "--subject-id", "510722199402122287", "--name", "杨春梅",
                       "--categories", "01,03", "--ordinary", "--to", "510722", env=env)
    assert "XC-440781-20261106-0001" in sent.stdout and "due 2026-12-06" in sent.stdout and "已发送" in sent.stdout
    bad = run_gateway(home, "assist-checks", "request", "--subject-id", "510722199402122287", "--name", "杨春梅",
                      "--categories", "01", "--urgent", "--to", "Sichuan", env=env, check=False)
    assert bad.returncode == 2 and "6 digits" in bad.stderr
    run_gateway(home, "pulls", "run", "platform", env=env)
    late = {"GATEWAY_NOW": "2026-12-08T09:00:00+08:00"}
    overdue = run_gateway(home, "assist-checks", "sent", "--overdue", env=late).stdout
    assert "XC-440781-20261106-0001" in overdue and "overdue" in overdue and "杨**" in overdue and "510722199402122287" not in overdue
    data = json.loads(run_gateway(home, "report", "cycle", "--month", "2026-11", "--json", env=late).stdout)
    assert data["submitted"]["requests"] == 1 and data["submitted"]["blank"] is False


def test_a_notice_asking_for_feedback_is_answered_to_the_platform(gw, home, partner, monkeypatch):
    monkeypatch.setenv("GATEWAY_NOW", "2026-11-06T09:00:00+08:00")  # the commands' business clock
    pull(gw)
    notice = "TB-510722-20261102-0001"  # XYFK 1 in the specimen
    partner.stop()  # the platform is away: the feedback waits, the notice stays on the list
    away = run_gateway(home, "notices", "done", notice, "--remark", "已核实并录入", check=False)
    assert away.returncode == 3 and "not sent yet" in away.stdout
    assert notice in run_gateway(home, "notices", "list").stdout
    assert query(home, "SELECT status, handled_at FROM noticeitem WHERE message_id = ?", notice) == [("sending", None)]
    partner.start()
    sent = run_gateway(home, "assist-checks", "send")
    assert "1 notice feedback(s) sent" in sent.stdout
    taken = [f for f in partner.platform.feedback if f.message_id == notice]
    assert len(taken) == 1 and taken[0].result == "1" and "已核实并录入" in taken[0].body.decode("utf-8")
    row = query(home, "SELECT status, feedback_exchange_id FROM noticeitem WHERE message_id = ?", notice)[0]
    assert row[0] == "handled" and row[1] is not None
    assert query(home, "SELECT adapter FROM exchange WHERE id = ?", row[1]) == [("national-platform-feedback",)]
    assert notice not in run_gateway(home, "notices", "list").stdout
    # The notices' rate counts it as answered in time (November, handled on the 6th).
    november = build(gw.engine, "2026-11", as_of=dt.datetime(2026, 11, 28, tzinfo=clock.CHINA))
    assert november.notice_rate.answered_in_time == 1
