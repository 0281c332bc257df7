"""The feedback rate (反馈率) as the regulation defines it: requests the other side
submitted (FQSJ) from the 21st of the previous month to the 20th, answered (the FKXX left)
by the end of the 27th; the rehearsal clock (GATEWAY_NOW); the quarter's ranking view;
`gateway simulate platform --serve`. The platform is the partner simulator over real HTTP."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
from importlib.resources import files

import pytest

from conftest import add_pulls, run_gateway
from gateway import clock
from gateway.config import load_settings
from gateway.devkit.simulator import PartnerSimulator, make_id
from gateway.exchange.lifecycle import Gateway
from gateway.obligations.deadlines import WorkCalendar, use_calendar
from gateway.platform import assist_checks
from gateway.platform.cycle_report import build, build_quarter, csv_rows, quarter_months
from gateway.errors import GatewayError
from gateway.pulls import Puller

REHEARSAL = [(files("gateway") / "demo_data" / f"national_platform_rehearsal_{n}.xml").read_bytes() for n in (1, 2)]
BANNER = "【演练时钟】"


def china(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=clock.CHINA)


@pytest.fixture(autouse=True)
def pinned_calendar():
    use_calendar(WorkCalendar(holidays=[], workdays=[], years={2026, 2027}))
    yield
    use_calendar(None)


@pytest.fixture
def platform(home, monkeypatch):
    """The simulated platform serving the rehearsal's first document, on loopback."""
    monkeypatch.setenv("GATEWAY_SETTLE_SECONDS", "0")
    simulator = PartnerSimulator(("platform",), token="test-token", serve_documents=[REHEARSAL[0]]).start()
    add_pulls(home, simulator, monkeypatch, sources=("platform",))
    try:
        yield simulator
    finally:
        simulator.stop()


def pull(gateway: Gateway) -> None:
    puller = Puller(gateway, "platform", gateway.settings.pulls["platform"])
    try:
        report = puller.run()
    finally:
        puller.close()
    assert report.ok, report.error
    assist_checks.sync(gateway.engine, gateway.settings)


def message(number: str, sent: str, *, urgent: bool = False, person: int = 1) -> str:
    born = dt.date(1990, 1, 1) + dt.timedelta(days=person)
    return (
        f'<XCXX XXBH="{number}" JJCD="{1 if urgent else 2}" FQSJ="{sent}" FX="HJD_TO_XJZD">'
        f'<DX XM="测试{person}" GMSFHM="{make_id("510722", born, person * 2)}" CSRQ="{born}" XJZD="广东省台山市台城街道"/>'
        f'<XCNR LB="01">基本信息</XCNR></XCXX>'
    )


def answer(gateway: Gateway, number: str, at: dt.datetime) -> None:
    with clock.pinned(at):
        result = assist_checks.answer(gateway, gateway.settings, number, found=False, remark="经查未查到")
    assert result.sent, result.error


# -- the worked example ---------------------------------------------------------------------


def test_the_worked_example_gives_75_percent_for_november(home, platform):
    gateway = Gateway(load_settings(home))
    try:
        with clock.pinned(china(2026, 10, 29, 19, 0)):
            pull(gateway)
        answer(gateway, "XC-510722-20261022-0001", china(2026, 11, 10, 10, 0))
        platform.platform.serve(REHEARSAL[1])
        with clock.pinned(china(2026, 11, 21, 9, 0)):
            pull(gateway)
        answer(gateway, "XC-510722-20261121-0005", china(2026, 11, 25, 10, 0))
        answer(gateway, "XC-510722-20261120-0004", china(2026, 11, 26, 10, 0))
        answer(gateway, "XC-510722-20261029-0002", china(2026, 11, 27, 23, 59))
        answer(gateway, "XC-510722-20261029-0003", china(2026, 11, 28, 0, 1))

        november = build(gateway.engine, "2026-11", as_of=china(2026, 11, 28, 9, 0))
        assert (november.received, november.answered_by_cutoff, november.rate) == (4, 3, 0.75)
        assert not november.meets_target and not november.provisional
        assert november.as_dict()["requests"] == {"received": 4, "answered_in_time": 3, "rate": 0.75, "meets_target": False}
        # The 11-21 request is December's, answered in time for it.
        december = build(gateway.engine, "2026-12", as_of=china(2026, 12, 28, 9, 0))
        assert (december.received, december.answered_by_cutoff) == (1, 1)
        # The platform really took every answer, each stamped at its business moment.
        taken = {f.message_id: f.answered_at for f in platform.platform.feedback}
        assert taken["XC-510722-20261029-0002"] == "2026-11-27T23:59:00+08:00"
        assert taken["XC-510722-20261029-0003"] == "2026-11-28T00:01:00+08:00"
        # While November is open, the figures are provisional and count only what was done.
        early = build(gateway.engine, "2026-11", as_of=china(2026, 11, 26, 12, 0))
        assert early.provisional and (early.received, early.answered_by_cutoff) == (4, 2)
        # Before the second pull the gateway held three of November's requests.
        assert build(gateway.engine, "2026-11", as_of=china(2026, 11, 20, 12, 0)).received == 3
    finally:
        gateway.close()


def test_the_worked_example_through_the_commands_with_the_rehearsal_clock(home, platform, tmp_path):
    """The README's tour: every step a `gateway` command under GATEWAY_NOW."""

    def at(moment: str, *args: str):  # type: ignore[no-untyped-def]
        result = run_gateway(home, *args, env={"GATEWAY_NOW": moment})
        assert BANNER in result.stderr and "rehearsal clock" in result.stderr, result.stderr
        assert BANNER not in result.stdout
        return result

    at("2026-10-29T19:00:00+08:00", "pulls", "run", "platform")
    at("2026-11-10T10:00:00+08:00", "assist-checks", "answer", "XC-510722-20261022-0001", "--not-found", "--remark", "经查未查到")
    platform.platform.serve(REHEARSAL[1])
    at("2026-11-21T09:00:00+08:00", "pulls", "run", "platform")
    for number, moment in (
        ("XC-510722-20261121-0005", "2026-11-25T10:00:00+08:00"),
        ("XC-510722-20261120-0004", "2026-11-26T10:00:00+08:00"),
        ("XC-510722-20261029-0002", "2026-11-27T23:59:00+08:00"),
        ("XC-510722-20261029-0003", "2026-11-28T00:01:00+08:00"),
    ):
        at(moment, "assist-checks", "answer", number, "--not-found", "--remark", "经查未查到")
    shown = at("2026-11-28T09:00:00+08:00", "report", "cycle", "--month", "2026-11", "--json")
    data = json.loads(shown.stdout)
    assert data["month"] == "2026-11" and data["provisional"] is False
    assert data["requests"] == {"received": 4, "answered_in_time": 3, "rate": 0.75, "meets_target": False}
    assert data["notices"] == {"received": 0, "answered_in_time": 0, "rate": None, "meets_target": True}
    # Without --month the pinned clock chooses the cycle: the 28th opens December's.
    assert json.loads(at("2026-11-28T09:00:00+08:00", "report", "cycle", "--json").stdout)["month"] == "2026-12"
    # --as-of still sets what the report evaluates; the pinned clock is everything else's now.
    provisional = json.loads(at("2026-12-01T09:00:00+08:00", "report", "cycle", "--month", "2026-11", "--as-of", "2026-11-26T12:00", "--json").stdout)
    assert provisional["provisional"] is True and provisional["requests"]["answered_in_time"] == 2
    # The table and the CSV in the clerk's headers.
    table = at("2026-11-28T09:00:00+08:00", "report", "cycle", "--month", "2026-11", "--csv", str(tmp_path / "c.csv"))
    assert "对方地区/单位" in table.stdout and "截止日前反馈" in table.stdout and "75.0% (3/4)" in table.stdout
    header = (tmp_path / "c.csv").read_text(encoding="utf-8-sig").splitlines()[0]
    assert header.split(",")[2] == "对方地区/单位" and "截止日前反馈" in header
    # Unpinned: no banner.
    plain = run_gateway(home, "report", "cycle", "--month", "2026-11", "--json", env={"GATEWAY_NOW": ""})
    assert BANNER not in plain.stderr


def test_a_bad_gateway_now_is_refused_clearly(home):
    result = run_gateway(home, "report", "cycle", "--json", env={"GATEWAY_NOW": "end of November"}, check=False)
    assert result.returncode == 2
    assert "GATEWAY_NOW" in result.stderr and "不是时间点" in result.stderr


@pytest.mark.backend_independent
def test_gateway_now_pins_the_clock_in_process(monkeypatch):
    monkeypatch.setenv("GATEWAY_NOW", "2026-11-27T23:59")  # no offset: China time
    assert clock.now() == china(2026, 11, 27, 23, 59)
    assert clock.today() == dt.date(2026, 11, 27)
    with clock.pinned(china(2027, 1, 1)):  # a test's pin wins
        assert clock.today() == dt.date(2027, 1, 1)
    assert "2026-11-27 23:59:00" in (clock.pinned_banner() or "")
    monkeypatch.setenv("GATEWAY_NOW", "2026-11-27T15:59:00Z")
    assert clock.china_now() == china(2026, 11, 27, 23, 59)
    monkeypatch.delenv("GATEWAY_NOW")
    assert clock.pinned_banner() is None


# -- the boundaries -------------------------------------------------------------------------


def test_the_20th_and_21st_the_27th_and_28th(home, platform):
    """Submitted on the 20th: this month's; on the 21st: the next. Answered at 23:59:59
    on the 27th: in time; at 00:00:00 on the 28th: not."""
    page = ([
        message("XC-B-1", "2026-10-20", person=1), message("XC-B-2", "2026-10-21", person=2),
        message("XC-B-3", "2026-11-20", person=3), message("XC-B-4", "2026-11-21", person=4),
    ])
    platform.platform.add_page(page, sent=china(2026, 11, 21, 8, 0), sender="510722")
    gateway = Gateway(load_settings(home))
    try:
        with clock.pinned(china(2026, 11, 21, 9, 0)):
            pull(gateway)
        answer(gateway, "XC-B-2", china(2026, 11, 27, 23, 59, 59))
        answer(gateway, "XC-B-3", china(2026, 11, 28, 0, 0, 0))
        answer(gateway, "XC-B-1", china(2026, 11, 22, 9, 0))
        october = build(gateway.engine, "2026-10", as_of=china(2026, 12, 1))
        november = build(gateway.engine, "2026-11", as_of=china(2026, 12, 1))
        december = build(gateway.engine, "2026-12", as_of=china(2026, 12, 1))
        ids = lambda report: sorted(  # noqa: E731
            v.item.message_id for v in assist_checks.list_checks(gateway.engine, include_answered=True)
            if report.cycle.submission_start <= v.item.sent_date <= report.cycle.submission_end
        )
        assert "XC-B-1" in ids(october) and "XC-B-2" not in ids(october)
        assert {"XC-B-2", "XC-B-3"} <= set(ids(november)) and "XC-B-4" not in ids(november)
        assert "XC-B-4" in ids(december)
        # November: XC-B-2 answered 23:59:59 on the 27th (in time), XC-B-3 at 00:00 on the 28th (late),
        # plus the rehearsal's three October requests, unanswered.
        assert (november.received, november.answered_by_cutoff) == (5, 1)
        # October's cut-off was 10-27: XC-B-1, answered in November, is counted but not in time.
        assert (october.received, october.answered_by_cutoff) == (1, 0)
        assert (december.received, december.answered_by_cutoff) == (1, 0) and december.provisional
        late = next(row for row in november.requests if row.late)
        assert late.late == 1
    finally:
        gateway.close()


def test_a_cycle_across_new_year(home, platform):
    page = ([
        message("XC-NY-1", "2026-12-20", person=11), message("XC-NY-2", "2026-12-21", person=12),
        message("XC-NY-3", "2026-12-31", person=13), message("XC-NY-4", "2027-01-20", person=14),
        message("XC-NY-5", "2027-01-21", person=15),
    ])
    platform.platform.add_page(page, sent=china(2027, 1, 21, 8, 0), sender="510722")
    gateway = Gateway(load_settings(home))
    try:
        with clock.pinned(china(2027, 1, 21, 9, 0)):
            pull(gateway)
        answer(gateway, "XC-NY-2", china(2027, 1, 2, 9, 0))
        answer(gateway, "XC-NY-3", china(2027, 1, 27, 23, 0))
        answer(gateway, "XC-NY-4", china(2027, 1, 28, 8, 0))
        january = build(gateway.engine, "2027-01", as_of=china(2027, 2, 1))
        assert january.cycle.submission_start == dt.date(2026, 12, 21) and january.cycle.feedback_end == dt.date(2027, 1, 27)
        assert (january.received, january.answered_by_cutoff) == (3, 2)  # NY-2, NY-3, NY-4 (late)
        assert build(gateway.engine, "2026-12", as_of=china(2027, 2, 1)).received == 1  # NY-1
        assert build(gateway.engine, "2027-02", as_of=china(2027, 2, 1)).received == 1  # NY-5
        quarter = build_quarter(gateway.engine, "2027Q1", as_of=china(2027, 4, 1))
        assert [m.cycle.month for m in quarter.months] == ["2027-01", "2027-02", "2027-03"]
        assert (quarter.requests.received, quarter.requests.answered_in_time) == (4, 2)
    finally:
        gateway.close()


def test_the_quarter_pools_its_months(home, platform):
    gateway = Gateway(load_settings(home))
    try:
        with clock.pinned(china(2026, 10, 29, 19, 0)):
            pull(gateway)
        platform.platform.serve(REHEARSAL[1])
        with clock.pinned(china(2026, 11, 21, 9, 0)):
            pull(gateway)
        for number in ("XC-510722-20261022-0001", "XC-510722-20261029-0002", "XC-510722-20261120-0004"):
            answer(gateway, number, china(2026, 11, 22, 9, 0))
        answer(gateway, "XC-510722-20261121-0005", china(2026, 12, 2, 9, 0))
        quarter = build_quarter(gateway.engine, "2026Q4", as_of=china(2026, 12, 28, 9, 0))
        rates = {m.cycle.month: (m.request_rate.received, m.request_rate.answered_in_time) for m in quarter.months}
        assert rates == {"2026-10": (0, 0), "2026-11": (4, 3), "2026-12": (1, 1)}
        assert (quarter.requests.received, quarter.requests.answered_in_time) == (5, 4)
        assert quarter.requests.rate == pytest.approx(0.8) and not quarter.requests.meets_target
        assert quarter.as_dict()["months"][1]["requests"]["rate"] == 0.75
    finally:
        gateway.close()
    shown = run_gateway(home, "report", "cycle", "--quarter", "2026Q4", "--as-of", "2026-12-28T09:00")
    assert "季度排序" in shown.stdout and "80.0%" in shown.stdout and "75.0%" in shown.stdout
    data = json.loads(run_gateway(home, "report", "cycle", "--quarter", "2026Q4", "--as-of", "2026-12-28T09:00", "--json").stdout)
    assert data["quarter"] == "2026Q4" and data["requests"]["received"] == 5 and data["requests"]["answered_in_time"] == 4
    assert quarter_months("2027q1") == ["2027-01", "2027-02", "2027-03"]
    with pytest.raises(GatewayError, match="YYYYQn"):
        quarter_months("2026-Q5")


# -- the simulator's --serve -----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_simulate_platform_serve_plays_the_given_month(home, monkeypatch, tmp_path):
    """`gateway simulate platform --serve FILE.xml` as its own process: the inbox is the
    file, and an answer to one of its requests is taken."""
    served = tmp_path / "month.xml"
    served.write_bytes(REHEARSAL[0])
    port = _free_port()
    gateway_cmd = os.path.join(os.path.dirname(sys.executable), "gateway")
    process = subprocess.Popen(
        [gateway_cmd, "simulate", "platform", "--port", str(port), "--token", "test-token", "--serve", str(served)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        else:
            raise AssertionError("the simulator did not start: " + (process.stderr.read() if process.poll() is not None else ""))

        class Where:
            url = f"http://127.0.0.1:{port}"
            token = "test-token"

        monkeypatch.setenv("GATEWAY_SETTLE_SECONDS", "0")
        add_pulls(home, Where, monkeypatch, sources=("platform",))
        env = {"GATEWAY_NOW": "2026-10-30T09:00:00+08:00"}
        run_gateway(home, "pulls", "run", "platform", env=env)
        listed = run_gateway(home, "assist-checks", "list", env=env).stdout
        assert "XC-510722-20261022-0001" in listed and "XC-510722-20261029-0003" in listed
        assert "XC-510722-20261102" not in listed  # not the built-in specimen
        run_gateway(home, "assist-checks", "answer", "XC-510722-20261029-0003", "--not-found", "--remark", "经查未查到", env=env)
        data = json.loads(run_gateway(home, "report", "cycle", "--month", "2026-11", "--json", env=env).stdout)
        assert data["requests"]["received"] == 3 and data["requests"]["answered_in_time"] == 1 and data["provisional"]
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_simulate_serve_refuses_what_is_not_a_jhxx(home, tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_text("<FKXX/>", encoding="utf-8")
    gateway_cmd = os.path.join(os.path.dirname(sys.executable), "gateway")
    result = subprocess.run([gateway_cmd, "simulate", "platform", "--port", "0", "--serve", str(bad)],
                            capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, timeout=60)
    assert result.returncode == 2 and "expected <JHXX>" in result.stderr


def test_the_csv_carries_both_rates(home, platform):
    gateway = Gateway(load_settings(home))
    try:
        with clock.pinned(china(2026, 10, 29, 19, 0)):
            pull(gateway)
        answer(gateway, "XC-510722-20261022-0001", china(2026, 11, 10, 10, 0))
        report = build(gateway.engine, "2026-11", as_of=china(2026, 11, 28))
    finally:
        gateway.close()
    rates = [row for row in csv_rows(report) if row[1] == "反馈率"]
    assert [(row[3], row[6], row[9]) for row in rates] == [("协查", "3", "1"), ("通报", "0", "0")]
