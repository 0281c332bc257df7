"""The exchange cycle report: the regulations' cycles, the feedback rate against 95%,
overdue items, CSV; and a clock that moves past the cut-off during a run."""

from __future__ import annotations

import datetime as dt

import pytest

from conftest import add_pulls, run_gateway
from gateway import clock
from gateway.platform import assist_checks
from gateway.config import load_settings
from gateway.platform.cycle_report import build, csv_rows, cycle_containing, cycle_for, write_csv
from gateway.obligations.deadlines import WorkCalendar, use_calendar
from gateway.errors import GatewayError
from gateway.exchange.lifecycle import Gateway
from gateway.pulls import Puller

D = dt.date


def china(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=clock.CHINA)


@pytest.fixture(autouse=True)
def pinned_calendar():
    use_calendar(WorkCalendar(holidays=[], workdays=[], years={2026}))
    yield
    use_calendar(None)


@pytest.fixture
def gw(home, partner, monkeypatch):
    monkeypatch.setenv("GATEWAY_SETTLE_SECONDS", "0")
    add_pulls(home, partner, monkeypatch, sources=("platform",))
    gateway = Gateway(load_settings(home))
    yield gateway
    gateway.close()


def pull(gateway: Gateway, on_page=None):  # type: ignore[no-untyped-def]
    puller = Puller(gateway, "platform", gateway.settings.pulls["platform"], on_page=on_page)
    try:
        report = puller.run()
    finally:
        puller.close()
    assert report.ok, report.error
    return report


@pytest.mark.backend_independent
def test_the_regulations_cycles():
    november = cycle_for("2026-11")
    assert (november.submission_start, november.submission_end) == (D(2026, 10, 21), D(2026, 11, 20))
    assert (november.feedback_start, november.feedback_end) == (D(2026, 10, 28), D(2026, 11, 27))
    assert november.cutoff == china(2026, 11, 28, 0, 0)
    january = cycle_for("2027-01")
    assert (january.submission_start, january.feedback_start, january.feedback_end) == (D(2026, 12, 21), D(2026, 12, 28), D(2027, 1, 27))
    march = cycle_for("2027-03")
    assert march.feedback_start == D(2027, 2, 28) and march.submission_start == D(2027, 2, 21)
    assert cycle_containing(D(2026, 11, 27)).month == "2026-11"
    assert cycle_containing(D(2026, 11, 28)).month == "2026-12"
    assert cycle_containing(D(2026, 12, 30)).month == "2027-01"
    with pytest.raises(GatewayError, match="YYYY-MM"):
        cycle_for("November")


def test_feedback_rate_overdue_and_what_the_cut_off_leaves_out(gw, partner):
    with clock.pinned(china(2026, 11, 6, 9, 0)):
        pull(gw)
        assist_checks.sync(gw.engine, gw.settings)
    views = {v.item.message_id: v.item for v in assist_checks.list_checks(gw.engine)}
    received = len(views)
    ids = sorted(views)
    # Before the cut-off: all but two answered (one of them after its due date).
    late_one = next(i for i in ids if views[i].due_date < D(2026, 11, 25))
    for message_id in ids[:-2]:
        moment = china(2026, 11, 26, 10, 0) if message_id == late_one else china(2026, 11, 10, 10, 0)
        with clock.pinned(moment):
            assert assist_checks.answer(gw, gw.settings, message_id, found=False, remark="未查到").sent
    # After the cut-off: too late for this cycle.
    with clock.pinned(china(2026, 11, 28, 0, 0, 30)):
        assert assist_checks.answer(gw, gw.settings, ids[-2], found=False, remark="未查到").sent

    report = build(gw.engine, "2026-11", as_of=china(2026, 11, 28, 9, 0))
    assert not report.provisional and report.evaluated_at == report.cycle.cutoff
    assert (report.received, report.answered_by_cutoff) == (received, received - 2)
    assert report.rate == pytest.approx((received - 2) / received)
    assert not report.meets_target and "BELOW the required 95%" in report.rate_text()
    assert sum(row.late for row in report.requests) == 1
    assert sum(row.received for row in report.requests) == received
    overdue = {item.message_id for item in report.overdue if item.kind == "assist-check"}
    still_open = {m for m in ids[-2:] if views[m].due_date < D(2026, 11, 28)}
    assert overdue == still_open
    notices = sum(row.received for row in report.notices)
    assert notices == len(assist_checks.list_notices(gw.engine, include_handled=True))

    # Before the cut-off the same report is provisional and evaluated at that moment.
    early = build(gw.engine, "2026-11", as_of=china(2026, 11, 10, 12, 0))
    assert early.provisional and early.answered_by_cutoff == received - 3  # the late one came on the 26th
    # The next cycle received nothing.
    assert build(gw.engine, "2026-12", as_of=china(2026, 12, 28, 9, 0)).received == 0


def test_a_report_running_across_the_cut_off_reads_the_clock_once(gw):
    with clock.pinned(china(2026, 11, 6, 9, 0)):
        pull(gw)
        assist_checks.sync(gw.engine, gw.settings)
    first = assist_checks.list_checks(gw.engine)[0].item.message_id
    ticks = iter([china(2026, 11, 27, 23, 59, 59)] + [china(2026, 11, 28, 0, 0, 5)] * 100)
    with clock.pinned(lambda: next(ticks)):
        report = build(gw.engine, "2026-11")  # reads 23:59:59 once...
        assist_checks.answer(gw, gw.settings, first, found=False, remark="未查到")  # ...answered at 00:00:05
    assert report.as_of == china(2026, 11, 27, 23, 59, 59) and report.provisional
    assert report.answered_by_cutoff == 0
    again = build(gw.engine, "2026-11", as_of=china(2026, 11, 28, 8, 0))
    assert again.answered_by_cutoff == 0  # answered after the cut-off: not in this cycle's rate


def test_a_clock_moving_past_the_cut_off_during_a_pull_changes_no_cycle(gw):
    """The pull runs from 23:59:58 on the 27th; the clock passes midnight after the first
    page. A request belongs to the month of its FQSJ (the other side's submission), not to
    the moment the gateway pulled it: every one of them is November's."""
    moments = {"now": china(2026, 11, 27, 23, 59, 58)}
    registered = []

    def after_page(outcome):  # type: ignore[no-untyped-def]
        registered.append(assist_checks.sync(gw.engine, gw.settings).requests)
        moments["now"] = china(2026, 11, 28, 0, 0, 2)

    with clock.pinned(lambda: moments["now"]):
        pull(gw, on_page=after_page)
    assert registered[0] == 2 and sum(registered) >= 4
    november = build(gw.engine, "2026-11", as_of=china(2026, 11, 28, 9, 0))
    december = build(gw.engine, "2026-12", as_of=china(2026, 12, 28, 9, 0))
    assert november.received == sum(registered) == len(assist_checks.list_checks(gw.engine, include_answered=True))
    assert november.answered_by_cutoff == 0 and december.received == 0


def test_the_csv_and_the_command(gw, home, tmp_path):
    with clock.pinned(china(2026, 11, 6, 9, 0)):
        pull(gw)
        assist_checks.sync(gw.engine, gw.settings)
    report = build(gw.engine, "2026-11", as_of=china(2026, 11, 28, 9, 0))
    path = tmp_path / "cycle.csv"
    write_csv(report, path)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8-sig")
    header, *lines = text.splitlines()
    assert header.startswith("周期,部分,对方地区/单位,类别")
    assert any(line.startswith("2026-11,反馈率,national-platform,协查,") and "要求 0.95" in line for line in lines)
    assert any(",逾期 协查," in line and "********" in line for line in lines)
    assert len(lines) == len(csv_rows(report))

    shown = run_gateway(home, "report", "cycle", "--month", "2026-11", "--as-of", "2026-11-28T09:00", "--csv", str(tmp_path / "out.csv"))
    assert "Exchange cycle 2026-11" in shown.stdout and "截止 cut-off 2026-11-28 00:00" in shown.stdout
    assert "反馈率 Feedback rate" in shown.stdout and "0.0%" in shown.stdout and "未达标 BELOW the required 95%" in shown.stdout
    assert "Overdue" in shown.stdout and "Evaluated at the cut-off" in shown.stdout
    assert (tmp_path / "out.csv").read_bytes() == raw
    early = run_gateway(home, "report", "cycle", "--month", "2026-11", "--as-of", "2026-11-20")
    assert "Provisional" in early.stdout


def test_a_formula_in_a_partner_value_is_defused_in_the_csv(gw, partner, tmp_path):
    partner.platform.add_page([
        '<XCXX XXBH="=HYPERLINK(1)" JJCD="1" FQSJ="2026-11-05" FX="HJD_TO_XJZD"><DX XM="吴秀英" GMSFHM="341222198805050027" '
        'CSRQ="1988-05-05"/><XCNR LB="01">x</XCNR></XCXX>'
    ])
    with clock.pinned(china(2026, 11, 6, 9, 0)):
        pull(gw)
        assist_checks.sync(gw.engine, gw.settings)
    report = build(gw.engine, "2026-11", as_of=china(2026, 12, 1, 9, 0))
    path = tmp_path / "cycle.csv"
    write_csv(report, path)
    assert "'=HYPERLINK(1)" in path.read_text(encoding="utf-8-sig")
