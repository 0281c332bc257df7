"""The county's own notices (通报 TBXX) to the place of household registration: a hospital
birth to a woman registered elsewhere is drafted as a notice due in 5 working days, sent
to the simulated platform (real HTTP on loopback), receipted, its feedback brought back by
the pull; refused before it leaves without a village-level address; sent automatically
where gateway.toml says so; counted as the county's submissions in the cycle report."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from conftest import add_pulls, drop, query, run_gateway, specimen
from gateway import clock
from gateway.config import load_settings
from gateway.exchange.lifecycle import Gateway
from gateway.obligations.deadlines import WorkCalendar, use_calendar
from gateway.platform import assist_checks, notices_out
from gateway.platform.cycle_report import build
from gateway.pulls import Puller
from gateway.receipts.check import verify_receipt

HUANG = ("黄敏", "440703199507221268")  # the mother in the hospital specimen registered in 440703 (蓬江区)
STREET_ONLY = "广东省江门市蓬江区白沙街道"  # her address in the specimen: no village level
VILLAGE = "广东省台山市台城街道桂水村委会"
NOW = dt.datetime(2026, 11, 6, 9, 0, tzinfo=clock.CHINA)  # a Friday


@pytest.fixture(autouse=True)
def pinned():
    use_calendar(WorkCalendar(holidays=[dt.date(2026, 11, 11)], workdays=[], years={2026}))  # one day off the week after
    with clock.pinned(NOW):
        yield
    use_calendar(None)


def births(address: str) -> bytes:
    text = specimen("hospital_births_202610.csv").decode("gb18030")
    assert text.count(STREET_ONLY) == 1
    return text.replace(STREET_ONLY, address).encode("gb18030")


def configure(home, partner, monkeypatch, *extra: str) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("GATEWAY_SETTLE_SECONDS", "0")
    add_pulls(home, partner, monkeypatch, sources=("platform",))
    with open(home / "gateway.toml", "a", encoding="utf-8") as handle:
        handle.write("\n".join(['division = "440781"', *extra]) + "\n")  # appended to [pulls.platform], the last table


@pytest.fixture
def gw(home, partner, monkeypatch):
    configure(home, partner, monkeypatch)
    gateway = Gateway(load_settings(home))
    yield gateway
    gateway.close()


def pull(gateway: Gateway) -> None:
    puller = Puller(gateway, "platform", gateway.settings.pulls["platform"])
    try:
        report = puller.run()
    finally:
        puller.close()
    assert report.ok, report.error
    assist_checks.sync(gateway.engine, gateway.settings)


def test_a_birth_triggers_a_notice_sent_within_its_five_working_days(gw, home, partner):
    drop(gw.settings, "hospital", "hospital_births_202610.csv", births(VILLAGE))
    gw.run_once()
    followed = notices_out.follow_up(gw, gw.settings)
    assert followed.drafted == 1 and followed.sent == 0  # only the mother registered in another county; not sent by itself
    assert notices_out.follow_up(gw, gw.settings).drafted == 0  # once per record
    [view] = notices_out.list_drafts(gw.engine, gw.settings)
    item = view.item
    assert item.message_id == "TB-440781-20261106-0001" and item.to_division == "440703" and item.category == "09"
    # Friday 11-06 + 5 working days, the 11th a day off: 9, 10, 12, 13, 16.
    assert item.due_date == dt.date(2026, 11, 16) and item.status == "draft" and view.problems == []
    assert view.subject.startswith("黄*") and HUANG[1] not in view.subject
    subject = f"notice-send:{item.message_id}"
    [(status, due, party)] = query(home, "SELECT status, due_date, party FROM obligation WHERE subject = ?", subject)
    assert (status, str(due), party) == ("open", "2026-11-16", "population-office")
    assert partner.platform.county_notices == []
    # Sent on the 13th, within its 5 working days.
    with clock.pinned(dt.datetime(2026, 11, 13, 16, 0, tzinfo=clock.CHINA)):
        result = notices_out.send(gw, gw.settings, str(item.id), operator="clerk")
    assert result.sent and result.notice.status == "sent" and result.notice.sent_date == dt.date(2026, 11, 13)
    [taken] = partner.platform.county_notices
    assert (taken["XXBH"], taken["FSDW"], taken["JSDW"], taken["LB"], taken["XYFK"], taken["FQSJ"]) == (
        item.message_id, "440781", "440703", "09", "1", "2026-11-13")
    assert f'XM="{HUANG[0]}"' in result.notice.notice_xml and f'XJZD="{VILLAGE}"' in result.notice.notice_xml
    assert query(home, "SELECT status, closed_by FROM obligation WHERE subject = ?", subject) == [("met", "clerk")]
    # Receipted like any exchange, and not taken for a notice sent *to* the county.
    assert verify_receipt(gw.settings.mailbox_root / Path(result.receipt), gw.settings.keys_dir, gw.engine).genuine
    assert query(home, "SELECT adapter, accepted FROM exchange WHERE id = ?", result.notice.exchange_id) == [("national-platform-outgoing", 1)]
    assert query(home, "SELECT contract FROM record WHERE exchange_id = ?", result.notice.exchange_id) == [("PlatformNotice",)]
    assist_checks.sync(gw.engine, gw.settings)
    assert item.message_id not in [v.item.message_id for v in assist_checks.list_notices(gw.engine, include_handled=True)]
    # Sending again does nothing more.
    assert notices_out.send(gw, gw.settings, item.message_id).sent and len(partner.platform.county_notices) == 1
    # The partner's feedback comes through the pull and closes the notice.
    pull(gw)
    assert notices_out.follow_up(gw, gw.settings).answered == 1
    [done] = notices_out.list_drafts(gw.engine, gw.settings, include_sent=True)
    assert done.item.status == "answered" and clock.in_china(done.item.answered_at).date() == dt.date(2026, 11, 14)
    assert notices_out.list_drafts(gw.engine, gw.settings) == []
    # The cycle report counts it as the county's submission of November (sent 11-13, before the 20th).
    november = build(gw.engine, "2026-11", as_of=dt.datetime(2026, 11, 28, tzinfo=clock.CHINA))
    assert november.as_dict()["submitted"]["notices"] == 1
    assert build(gw.engine, "2026-12", as_of=dt.datetime(2026, 12, 28, tzinfo=clock.CHINA)).submitted_notices == 0


def test_a_notice_without_a_village_address_is_refused_before_it_leaves(home, partner, monkeypatch):
    configure(home, partner, monkeypatch)
    env = {"GATEWAY_NOW": "2026-11-06T09:00:00+08:00"}
    gateway = Gateway(load_settings(home))
    try:
        drop(gateway.settings, "hospital", "hospital_births_202610.csv", births(STREET_ONLY))
        gateway.run_once()
    finally:
        gateway.close()
    listed = run_gateway(home, "notices", "drafts", env=env).stdout
    assert "TB-440781-20261106-0001" in listed and "村/社区居委会" in listed and HUANG[1] not in listed and HUANG[0] not in listed
    refused = run_gateway(home, "notices", "send", "TB-440781-20261106-0001", env=env, check=False)
    assert refused.returncode == 1 and "不能发出" in refused.stdout and "村/社区居委会" in refused.stdout
    assert HUANG[1] not in refused.stdout + refused.stderr and STREET_ONLY not in refused.stdout + refused.stderr
    assert partner.platform.county_notices == [] and partner.calls_to("/exchange/notices") == []
    [(status, error, sent_at)] = query(home, "SELECT status, send_error, sent_at FROM outgoingnotice")
    assert status == "draft" and "村/社区居委会" in error and sent_at is None
    # Past its due day, still unsent: overdue in the obligations list.
    late = {"GATEWAY_NOW": "2026-11-14T09:00:00+08:00"}
    overdue = json.loads(run_gateway(home, "obligations", "list", "--overdue", "--json", env=late).stdout)
    assert [(o["kind"], o["subject"], o["due"]) for o in overdue if o["kind"] == "notice-send"] == [
        ("notice-send", "notice-send:TB-440781-20261106-0001", "2026-11-13")]  # drafted by the command: chinesecalendar's 2026
    # The hospital corrects the address (a new version of the same record): no second notice, and the corrected one leaves.
    gateway = Gateway(load_settings(home))
    try:
        drop(gateway.settings, "hospital", "hospital_births_202610_corrected.csv", births(VILLAGE))
        gateway.run_once()
    finally:
        gateway.close()
    listed = run_gateway(home, "notices", "drafts", env=env).stdout
    assert "TB-440781-20261106-0001" in listed and "TB-440781-20261106-0002" not in listed and "村/社区居委会" not in listed
    sent = run_gateway(home, "notices", "send", "1", env={"GATEWAY_NOW": "2026-11-16T09:00:00+08:00"})  # after its due day: late
    assert "已发出" in sent.stdout and HUANG[1] not in sent.stdout
    assert [(n["XXBH"], n["FQSJ"]) for n in partner.platform.county_notices] == [("TB-440781-20261106-0001", "2026-11-16")]
    assert query(home, "SELECT status FROM obligation WHERE kind = 'notice-send'") == [("late",)]


def test_notices_go_by_themselves_where_gateway_toml_says_so(home, partner, monkeypatch):
    configure(home, partner, monkeypatch, "send_notices = true")
    env = {"GATEWAY_NOW": "2026-11-06T09:00:00+08:00"}
    gateway = Gateway(load_settings(home))
    try:
        drop(gateway.settings, "hospital", "hospital_births_202610.csv", births(VILLAGE))
        gateway.run_once()
    finally:
        gateway.close()
    listed = run_gateway(home, "notices", "drafts", "--all", env=env).stdout  # follows up: drafts, and sends
    assert "TB-440781-20261106-0001" in listed and "sent" in listed
    assert [n["XXBH"] for n in partner.platform.county_notices] == ["TB-440781-20261106-0001"]
    data = json.loads(run_gateway(home, "report", "cycle", "--month", "2026-11", "--json", env=env).stdout)
    assert data["submitted"]["notices"] == 1
