"""Obligations (issue 17): every duty with a due day on the working-day calendar, closed
when fulfilled, listed when overdue, counted in the rates. Real gateway, real database
(SQLite and PostgreSQL), the business clock pinned; the 2026 holiday arrangement pinned
here (国务院办公厅关于2026年部分节假日安排的通知, as chinesecalendar 1.11.0 has it)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlmodel import Session

from conftest import drop, hospital_births_file, query, run_gateway, specimen
from gateway import clock
from gateway.obligations.deadlines import Deadlines, WorkCalendar, use_calendar
from gateway.obligations.service import (
    ensure_submissions,
    fulfil,
    list_obligations,
    month_span,
    open_obligation,
    period_of,
    rates,
    statistical_month,
    submission_received,
    waive,
    SubmissionSchedule,
)
from gateway.errors import ConfigError, GatewayError
from gateway.store import session_scope
from gateway.store.obligation_models import Obligation

D = dt.date
HOLIDAYS_2026 = [
    *(D(2026, 1, d) for d in (1, 2, 3)),
    *(D(2026, 2, d) for d in range(15, 24)),
    *(D(2026, 4, d) for d in (4, 5, 6)),
    *(D(2026, 5, d) for d in range(1, 6)),
    *(D(2026, 6, d) for d in (19, 20, 21)),
    *(D(2026, 9, d) for d in (25, 26, 27)),
    *(D(2026, 10, d) for d in range(1, 8)),
]
WORKDAYS_2026 = [D(2026, 1, 4), D(2026, 2, 14), D(2026, 2, 28), D(2026, 5, 9), D(2026, 9, 20), D(2026, 10, 10)]


def china(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=clock.CHINA)


@pytest.fixture(autouse=True)
def calendar_2026():
    use_calendar(WorkCalendar(holidays=HOLIDAYS_2026, workdays=WORKDAYS_2026, years={2026}, source="pinned 2026 tables"))
    yield
    use_calendar(None)


def sign_offs(settings) -> dict[str, tuple]:
    rows = query(settings, "SELECT party, subject, due_date, status, provisional FROM obligation WHERE kind = 'sign-off'")
    return {party: (subject, str(due)[:10], status, bool(provisional)) for party, subject, due, status, provisional in rows}


def overdue_parties(engine, moment: dt.datetime, kind: str) -> set[str]:
    return {v.party for v in list_obligations(engine, overdue=True, now=moment.astimezone(dt.UTC)) if v.kind == kind}


# -- sign-off of deliveries (签收) -----------------------------------------------------------


def test_a_delivery_on_30_september_at_17_00_is_due_on_the_working_saturday_10_october(gateway, settings, register_recipients):
    with clock.pinned(china(2026, 9, 30, 17, 0)):
        drop(settings, "hospital", "hospital_births_202610.csv", specimen("hospital_births_202610.csv"))
        gateway.run_once()
    due = sign_offs(settings)
    assert set(due) == {"school", "police", "population-office"}
    for party, (subject, day, status, provisional) in due.items():
        assert (day, status, provisional) == ("2026-10-10", "open", False), party
        delivery_id = int(subject.split(":")[1])
        delivered, ack_due = query(settings, "SELECT delivered_at, ack_due_at FROM delivery WHERE id = ?", delivery_id)[0]
        assert str(delivered).startswith("2026-09-30 09:00")  # the business clock, in UTC
        assert str(ack_due).startswith("2026-10-10 16:00")  # 24:00 China time of the due day
    # Not overdue in the last minute of 10 October, overdue from midnight.
    assert overdue_parties(gateway.engine, china(2026, 10, 10, 23, 59), "sign-off") == set()
    assert overdue_parties(gateway.engine, china(2026, 10, 11, 0, 0), "sign-off") == {"school", "police", "population-office"}

    # The school signs off on 10-09 (met), the police on 10-12 (late), the population office never.
    ids = {party: int(subject.split(":")[1]) for party, (subject, *_rest) in due.items()}
    with clock.pinned(china(2026, 10, 9, 11, 0)):
        drop(settings, "school", f"ACK-{ids['school']}.json", json.dumps({"delivery": ids["school"]}).encode())
        gateway.run_once()
    with clock.pinned(china(2026, 10, 12, 9, 30)):
        drop(settings, "police", f"ACK-{ids['police']}.json", b"{}")
        gateway.run_once()
    after = sign_offs(settings)
    assert (after["school"][2], after["police"][2], after["population-office"][2]) == ("met", "late", "open")
    assert query(settings, "SELECT closed_by FROM obligation WHERE subject = ?", f"delivery:{ids['police']}") == [("police",)]

    result = rates(gateway.engine, "2026-10", now=china(2026, 10, 20, 12, 0))
    by_party = {(r.kind, r.party): r for r in result.rows}
    assert (by_party["sign-off", "school"].met, by_party["sign-off", "school"].rate) == (1, 1.0)
    assert (by_party["sign-off", "police"].late, by_party["sign-off", "police"].rate) == (1, 0.0)
    assert (by_party["sign-off", "population-office"].missed, by_party["sign-off", "population-office"].target) == (1, 1.0)
    total = next(r for r in result.totals if r.kind == "sign-off")
    assert (total.due, total.met, total.late, total.missed, total.rate) == (3, 1, 1, 1, pytest.approx(1 / 3))


def test_an_agreement_names_its_own_sign_off_rule(gateway, settings, register_recipients, home):
    """签收并核对报数 in 5 working days: a new rule in gateway.toml, named by the agreement."""
    toml = home / "gateway.toml"
    toml.write_text(toml.read_text(encoding="utf-8") + '\n[deadlines.sign_off_and_count]\ndays = 5\ncount = "working"\n', encoding="utf-8")
    agreements = home / "agreements.toml"
    text = agreements.read_text(encoding="utf-8")
    assert 'recipient = "school"' in text
    agreements.write_text(text.replace('recipient = "school"', 'recipient = "school"\nsign_off_rule = "sign_off_and_count"', 1), encoding="utf-8")
    from gateway.config import load_settings
    from gateway.exchange.lifecycle import Gateway

    again = Gateway(load_settings(home))
    try:
        with clock.pinned(china(2026, 9, 30, 17, 0)):
            drop(again.settings, "hospital", "hospital_births_202610.csv", specimen("hospital_births_202610.csv"))
            again.run_once()
    finally:
        again.close()
    due = sign_offs(settings)
    # 10-08, 10-09, 10-10 (worked Saturday), 10-12, 10-13.
    assert due["school"][1] == "2026-10-13" and due["police"][1] == "2026-10-10"
    assert query(settings, "SELECT rule FROM obligation WHERE party = 'school'") == [("sign_off_and_count",)]


# -- department submissions ------------------------------------------------------------------


def test_a_police_monthly_file_not_received_by_the_28th_is_missed_on_the_29th(gateway, settings):
    with session_scope(gateway.engine) as session:
        ensure_submissions(session, settings, china(2026, 10, 29, 0, 0).astimezone(dt.UTC))
    rows = query(settings, "SELECT subject, due_date, started_at FROM obligation WHERE party = 'police' ORDER BY subject")
    subjects = {subject: str(due)[:10] for subject, due, _ in rows}
    assert subjects["police:births:2026-10"] == "2026-10-28" and subjects["police:deaths:2026-10"] == "2026-10-28"
    assert subjects["police:births:2026-11"] == "2026-11-28"
    assert subjects["police:migration:2026-Q4"] == "2026-12-28"  # the quarter's last month, the 28th
    assert overdue_parties(gateway.engine, china(2026, 10, 28, 23, 59), "submission") == set()
    missed = [v for v in list_obligations(gateway.engine, overdue=True, now=china(2026, 10, 29, 0, 0)) if v.party == "police"]
    assert {v.subject for v in missed} == {"police:births:2026-10", "police:deaths:2026-10"}
    # Running it again opens nothing new.
    with session_scope(gateway.engine) as session:
        assert ensure_submissions(session, settings, china(2026, 10, 29, 8, 0)) == 0


def test_the_same_police_file_arriving_on_27_october_meets_it(gateway, settings):
    with clock.pinned(china(2026, 10, 1, 9, 0)):  # the gateway was running before the month ended
        with session_scope(gateway.engine) as session:
            ensure_submissions(session, settings)
    with clock.pinned(china(2026, 10, 27, 15, 0)):
        drop(settings, "police", "police_hukou_202610.csv", specimen("police_hukou_202610.csv"))
        gateway.run_once()
    status = dict(query(settings, "SELECT subject, status FROM obligation WHERE party = 'police'"))
    # The file holds births, deaths and moves: each monthly obligation of October is met;
    # its moves close the oldest open quarter, Q3 (due 09-28, tracked from the first run's
    # previous statistical month), late; Q4 stays open.
    assert status["police:births:2026-10"] == "met" and status["police:deaths:2026-10"] == "met"
    assert (status["police:migration:2026-Q3"], status["police:migration:2026-Q4"]) == ("late", "open")
    assert status["police:births:2026-11"] == "open"
    closed_by = query(settings, "SELECT closed_by FROM obligation WHERE subject = 'police:births:2026-10'")[0][0]
    assert closed_by.startswith("exchange ")
    assert overdue_parties(gateway.engine, china(2026, 10, 29, 0, 0), "submission") >= {"civil-affairs", "hospital"}


def test_a_late_file_closes_the_overdue_month_first(gateway, settings):
    settings.obligations = {"submissions_from": "2026-10"}  # tracked from the statistical month 09-21..10-20
    with session_scope(gateway.engine) as session:
        ensure_submissions(session, settings, china(2026, 10, 1, 9, 0))
        done = submission_received(session, settings, "hospital", {"BirthEvent"}, china(2026, 10, 30, 10, 0))
        assert [(o.subject, o.status) for o in done] == [("hospital:births:2026-10", "late")]
        done = submission_received(session, settings, "hospital", {"BirthEvent"}, china(2026, 11, 25, 10, 0))
        assert [(o.subject, o.status) for o in done] == [("hospital:births:2026-11", "met")]
        assert submission_received(session, settings, "hospital", {"SchoolEnrolment"}, china(2026, 11, 26)) == []


@pytest.mark.parametrize(
    ("every", "day", "label", "first", "last", "due"),
    [
        ("monthly", D(2026, 10, 20), "2026-10", D(2026, 9, 21), D(2026, 10, 20), D(2026, 10, 28)),
        ("monthly", D(2026, 12, 21), "2027-01", D(2026, 12, 21), D(2027, 1, 20), D(2027, 1, 28)),
        ("quarterly", D(2026, 10, 21), "2026-Q4", D(2026, 9, 21), D(2026, 12, 20), D(2026, 12, 28)),
        ("half-year", D(2026, 3, 1), "2026-H1", D(2025, 12, 21), D(2026, 6, 20), D(2026, 6, 28)),
        ("annual", D(2026, 7, 1), "2026", D(2025, 12, 21), D(2026, 12, 20), D(2027, 1, 10)),
    ],
)
@pytest.mark.backend_independent
def test_periods_and_their_fixed_due_days(every, day, label, first, last, due):
    period = period_of(SubmissionSchedule(department="police", what="x", every=every), day)
    assert (period.label, period.first, period.last, period.due) == (label, first, last, due)


@pytest.mark.backend_independent
def test_statistical_months_run_from_the_21st_to_the_20th():
    assert statistical_month(D(2026, 10, 20)) == "2026-10" and statistical_month(D(2026, 10, 21)) == "2026-11"
    assert statistical_month(D(2026, 12, 21)) == "2027-01"
    assert month_span("2027-01") == (D(2026, 12, 21), D(2027, 1, 20))
    with pytest.raises(GatewayError, match="YYYY-MM"):
        month_span("2026-13")


# -- the one mechanism: any kind, waivers, holidays -------------------------------------------


def test_feedback_check_forward_and_a_configured_kind_across_the_spring_festival(gateway, settings):
    deadlines = Deadlines({"reply_letter": {"days": 10, "count": "calendar"}})
    with session_scope(gateway.engine) as session:
        # Thursday 2026-02-12: Saturday 02-14 is worked, 02-15..02-23 off.
        check = open_obligation(session, kind="feedback-check", party="population-office", subject="exchange:1",
                                start=china(2026, 2, 12, 16, 0), deadlines=deadlines)
        forward = open_obligation(session, kind="forward", party="population-office", subject="exchange:2",
                                  start=china(2026, 2, 12, 8, 0), deadlines=deadlines)
        letter = open_obligation(session, kind="reply-letter", party="police", subject="letter:7", rule="reply_letter",
                                 start=china(2026, 2, 12, 8, 0), deadlines=deadlines)
        again = open_obligation(session, kind="forward", party="population-office", subject="exchange:2",
                                start=china(2026, 3, 1), deadlines=deadlines)
        # 02-13, the worked Saturday 02-14, then 02-24 after the holiday.
        assert (check.due_date, forward.due_date) == (D(2026, 2, 24), D(2026, 2, 14))
        assert letter.due_date == D(2026, 2, 24)  # 02-22 falls in the holiday: rolled (民法典 §203)
        assert again.id == forward.id  # idempotent per kind and subject
        assert fulfil(session, "feedback-check", "exchange:1", china(2026, 2, 24, 23, 59)).status == "met"
        assert fulfil(session, "feedback-check", "exchange:1", china(2026, 2, 26)) is None  # closed already
        assert fulfil(session, "forward", "exchange:2", china(2026, 2, 15, 0, 0)).status == "late"
        far = open_obligation(session, kind="update", party="police", subject="record:9", start=china(2026, 12, 30, 9, 0),
                              deadlines=deadlines)
        assert (far.due_date, far.provisional) == (D(2027, 1, 7), True)  # 5 working days; 1 January off by law
        forward_id = forward.id
    with pytest.raises(GatewayError, match="already late"):
        waive(gateway.engine, forward_id, "again", "clerk-li")
    with session_scope(gateway.engine) as session:
        town = open_obligation(session, kind="forward", party="population-office", subject="exchange:3",
                               start=china(2026, 2, 10, 8, 0), deadlines=deadlines).id
    waived = waive(gateway.engine, town, "转送对象乡镇已合并 the township was merged", "clerk-li")
    assert (waived.status, waived.closed_by) == ("waived", "clerk-li")
    with pytest.raises(GatewayError, match="already waived"):
        waive(gateway.engine, town, "again", "clerk-li")
    with pytest.raises(GatewayError, match="reason"):
        waive(gateway.engine, far.id, "  ", "clerk-li")
    kinds = {(r.kind, r.party): r for month in ("2026-02", "2026-03") for r in rates(gateway.engine, month, now=china(2026, 3, 1)).rows}
    # Each counts in the statistical month of its event (02-10, 02-12: 2026-02), whenever due.
    assert {r.month for r in kinds.values()} == {"2026-02"}
    forward_rate = kinds["forward", "population-office"]
    assert (forward_rate.waived, forward_rate.due, forward_rate.late, forward_rate.rate) == (1, 1, 1, 0.0)
    assert kinds["feedback-check", "population-office"].rate == 1.0
    assert kinds["reply-letter", "police"].missed == 1


def test_an_unknown_kind_or_rule_is_a_clear_error(gateway, settings):
    with session_scope(gateway.engine) as session:
        with pytest.raises(ConfigError, match=r"\[obligations.kinds\]"):
            open_obligation(session, kind="reply-letter", party="police", subject="x", settings=settings)
    settings.obligations = {"kinds": {"reply-letter": "no_such_rule"}}
    with pytest.raises(ConfigError, match=r"\[deadlines.no_such_rule\]"):
        ensure_submissions(Session(gateway.engine), settings)


# -- the commands -----------------------------------------------------------------------------


def test_the_obligations_commands(home, settings, gateway):
    with session_scope(gateway.engine) as session:
        ensure_submissions(session, settings, china(2026, 10, 1, 9, 0))
        submission_received(session, settings, "police", {"BirthEvent", "DeathEvent"}, china(2026, 10, 27, 10, 0))
        open_obligation(session, kind="sign-off", party="school", subject="delivery:41", start=china(2026, 9, 30, 17, 0))
    listed = json.loads(run_gateway(home, "obligations", "list", "--json").stdout)
    assert listed and all({"id", "kind", "party", "due", "status", "overdue"} <= set(item) for item in listed)
    sign_off = next(item for item in listed if item["kind"] == "sign-off")
    assert (sign_off["party"], sign_off["due"], sign_off["status"], sign_off["overdue"]) == ("school", "2026-10-10", "open", True)
    assert all(item["status"] == "open" for item in listed)
    assert not any(item["subject"] == "police:births:2026-10" for item in listed)  # met
    school = json.loads(run_gateway(home, "obligations", "list", "--json", "--department", "school").stdout)
    assert [item["subject"] for item in school] == ["delivery:41"]
    before = json.loads(run_gateway(home, "obligations", "list", "--json", "--due-before", "2026-10-28").stdout)
    assert all(item["due"] <= "2026-10-28" for item in before) and "delivery:41" in {item["subject"] for item in before}
    assert len(before) < len(listed)
    overdue = json.loads(run_gateway(home, "obligations", "list", "--overdue", "--json", "--as-of", "2026-10-11").stdout)
    assert "delivery:41" in {item["subject"] for item in overdue}
    assert all(item["due"] <= "2026-10-10" and item["overdue"] for item in overdue)  # September's files too, due 09-28
    table = run_gateway(home, "obligations", "list", "--overdue").stdout
    assert "签收" in table and "逾期" in table and "delivery:41" in table and "新生儿登记" in table
    alias = run_gateway(home, "deadlines", "list", "--as-of", "2026-10-11").stdout
    assert "delivery:41" in alias

    shown = run_gateway(home, "obligations", "show", str(sign_off["id"])).stdout
    assert "到期 due: 2026-10-10 24:00 北京时间" in shown and "school" in shown
    waived = run_gateway(home, "obligations", "waive", str(sign_off["id"]), "--reason", "重复交付 sent twice", "--by", "clerk-wang")
    assert "已豁免" in waived.stdout
    refused = run_gateway(home, "obligations", "waive", str(sign_off["id"]), "--reason", "x", check=False)
    assert refused.returncode != 0 and "already waived" in (refused.stdout + refused.stderr)

    month = json.loads(run_gateway(home, "obligations", "rates", "--month", "2026-10", "--json").stdout)
    rows = {(r["kind"], r["party"]): r for r in month["rows"]}
    assert rows["submission", "police"]["met"] == 2 and rows["submission", "police"]["target"] == 1.0
    assert rows["sign-off", "school"]["waived"] == 1 and rows["sign-off", "school"]["rate"] is None
    assert month["first"] == "2026-09-21" and month["last"] == "2026-10-20"
    assert "platform_feedback" in month and month["platform_feedback"]["received"] == 0
    text = run_gateway(home, "obligations", "rates", "--month", "2026-10").stdout
    assert "报送" in text and "国家平台协查反馈率" in text
    bad = run_gateway(home, "obligations", "list", "--due-before", "28/10", check=False)
    assert bad.returncode != 0 and "YYYY-MM-DD" in (bad.stdout + bad.stderr)


def test_rates_match_a_hand_count_on_a_generated_month(gateway):
    """A seeded month of sign-offs and checks for four parties, closed on time, late, never
    or waived at random; the rates equal a count made here from the generated facts."""
    import random

    generator = random.Random(17)
    deadlines = Deadlines()
    parties = ["police", "school", "hospital", "civil-affairs"]
    facts = []
    with session_scope(gateway.engine) as session:
        for number in range(120):
            kind = generator.choice(["sign-off", "feedback-check"])
            party = generator.choice(parties)
            start = china(2026, 9, 21, 9, 0) + dt.timedelta(days=generator.randrange(30), hours=generator.randrange(10))
            row = open_obligation(session, kind=kind, party=party, subject=f"generated:{number}", start=start, deadlines=deadlines)
            fate = generator.choice(["met", "late", "never", "waived", "pending"])
            facts.append((kind, party, fate, row.id))
            if fate == "met":
                fulfil(session, kind, row.subject, start + dt.timedelta(hours=1))
            elif fate == "late":
                fulfil(session, kind, row.subject, clock.in_china(row.due_at) + dt.timedelta(hours=5))
    for kind, party, fate, row_id in facts:
        if fate == "waived":
            waive(gateway.engine, row_id, "generated", "test")
    # "pending": evaluated before they are due; "never": after. Evaluate late enough that
    # only a pending one still due later stays pending: re-open the pending ones' due days.
    moment = china(2026, 11, 30, 12, 0)
    with session_scope(gateway.engine) as session:
        for kind, party, fate, row_id in facts:
            if fate == "pending":
                row = session.get(Obligation, row_id)
                row.due_date, row.due_at = D(2026, 12, 31), china(2027, 1, 1).astimezone(dt.UTC)
    result = rates(gateway.engine, "2026-10", now=moment)
    for rate in result.rows:
        mine = [fate for kind, party, fate, _ in facts if (kind, party) == (rate.kind, rate.party)]
        counted = {fate: mine.count(fate) for fate in ("met", "late", "never", "waived", "pending")}
        assert (rate.met, rate.late, rate.missed, rate.waived, rate.pending) == (
            counted["met"], counted["late"], counted["never"], counted["waived"], counted["pending"])
        due = counted["met"] + counted["late"] + counted["never"]
        assert rate.due == due and rate.rate == (counted["met"] / due if due else None)
    assert {(r.kind, r.party) for r in result.rows} == {(kind, party) for kind, party, *_ in facts}
    for total in result.totals:
        assert total.met == sum(1 for kind, _, fate, _ in facts if kind == total.kind and fate == "met")


def test_the_obligations_job_opens_what_is_due_without_a_command(gateway, settings):
    import threading

    from gateway.scheduler.runner import JobContext, gateway_jobs

    job = next(job for job in gateway_jobs(gateway) if job.name == "obligations")
    try:
        with clock.pinned(china(2026, 10, 29, 0, 30)):
            result = job.run(JobContext(None, threading.Event()))
    finally:
        if job.close:
            job.close()
    assert "submission obligation(s) opened" in result.summary and result.error is None
    assert "police" in overdue_parties(gateway.engine, china(2026, 10, 29, 0, 30), "submission")


def test_the_platforms_assist_checks_and_notices_are_obligations_too(gateway, settings):
    from gateway.obligations.platform_mirror import mirror_platform
    from gateway.platform import assist_checks

    with clock.pinned(china(2026, 11, 3, 10, 0)):
        drop(settings, "national-platform", "national_platform_inbound_20261102.xml",
             specimen("national_platform_inbound_20261102.xml"))
        gateway.run_once()
        assist_checks.sync(gateway.engine, settings)
        with session_scope(gateway.engine) as session:
            first = mirror_platform(session)
    checks = query(settings, "SELECT message_id, due_date FROM assistcheck ORDER BY message_id")
    notices = query(settings, "SELECT message_id, due_date FROM noticeitem")
    assert checks and first == len(checks) + len(notices)
    mirrored = dict(query(settings, "SELECT subject, due_date FROM obligation WHERE kind IN ('assist-check', 'notice')"))
    for message_id, due in checks:
        assert str(mirrored[f"assist-check:{message_id}"])[:10] == str(due)[:10]  # the platform's own date
    # Answered (as the platform code records it) one day before its due day: met on the next mirror.
    message_id, due = checks[0]
    answered = dt.datetime.combine(dt.date.fromisoformat(str(due)[:10]) - dt.timedelta(days=1), dt.time(2, 0))
    from conftest import execute

    execute(settings, f"UPDATE assistcheck SET status = 'answered', answered_at = '{answered:%Y-%m-%d %H:%M:%S}' "
                      f"WHERE message_id = '{message_id}'")
    with session_scope(gateway.engine) as session:
        assert mirror_platform(session) == 1
        assert mirror_platform(session) == 0  # nothing new
    assert query(settings, "SELECT status, party FROM obligation WHERE subject = ?", f"assist-check:{message_id}") == [
        ("met", "population-office")]


def test_the_friday_reminder_goes_to_each_department_encrypted_and_signed(gateway, settings, register_recipients, home):
    with session_scope(gateway.engine) as session:
        open_obligation(session, kind="sign-off", party="school", subject="delivery:7", start=china(2026, 9, 30, 17, 0))
        open_obligation(session, kind="sign-off", party="police", subject="delivery:8", start=china(2026, 9, 30, 17, 0))
        open_obligation(session, kind="sign-off", party="police", subject="delivery:9", start=china(2026, 10, 16, 9, 0))
    from gateway.reminders.weekly import send_reminders

    assert send_reminders(gateway, china(2026, 10, 15, 10, 0)) == []  # a Thursday
    friday = china(2026, 10, 16, 10, 0)
    outcomes = {o.department: o for o in send_reminders(gateway, friday)}
    assert (outcomes["school"].status, outcomes["school"].items) == ("delivered", 1)
    assert (outcomes["police"].status, outcomes["police"].items) == ("delivered", 1)  # delivery:9 not overdue yet
    assert outcomes["population-office"].status == "delivered"
    ring, _ = register_recipients["police"]
    plain, status = ring.decrypt(settings.mailbox_root / "police" / "outbox" / "REMINDER-20261016.json.gpg")
    assert "GOODSIG" in status and "DECRYPTION_OKAY" in status
    document = json.loads(plain)
    assert [item["subject"] for item in document["overdue"]] == ["delivery:8"] and document["overdue"][0]["days_overdue"] == 6
    office_ring, _ = register_recipients["population-office"]
    office = json.loads(office_ring.decrypt(settings.mailbox_root / "population-office" / "outbox" / "REMINDER-20261016.json.gpg")[0])
    assert office["summary"]["parties"] == {"school": {"sign-off": 1}, "police": {"sign-off": 1}} and office["summary"]["total"] == 2
    # Again the same day: nothing new; a department without a key is held, nothing in clear.
    assert {o.status for o in send_reminders(gateway, friday)} == {"already"}
    with session_scope(gateway.engine) as session:
        open_obligation(session, kind="submission", party="hospital", subject="hospital:x:1", start=china(2026, 9, 1),
                        due=Deadlines().fixed_date("fixed", D(2026, 9, 28)))
    held = {o.department: o for o in send_reminders(gateway, friday)}
    assert held["hospital"].status == "held" and not (settings.mailbox_root / "hospital" / "outbox" / "REMINDER-20261016.json.gpg").exists()


def test_the_early_warning_counts_missed_submissions(gateway, settings):
    from gateway.population_reports.warning import build_warning

    settings.obligations = {"submissions_from": "2026-10"}
    with session_scope(gateway.engine) as session:
        ensure_submissions(session, settings, china(2026, 10, 1, 9, 0))
        submission_received(session, settings, "police", {"BirthEvent", "DeathEvent"}, china(2026, 10, 27, 10, 0))
        submission_received(session, settings, "hospital", {"BirthEvent"}, china(2026, 11, 2, 10, 0))
    # Statistical month 2026-11 (10-21..11-20) holds the 28 October due day of the October files.
    warning = build_warning(gateway.engine, settings, "2026-11", as_of=china(2026, 11, 21, 0, 0))
    [line] = [line for line in warning.lines if line.kind == "missed-submissions"]
    assert line.raised and line.count == 2
    assert sorted(line.details) == ["civil-affairs:marriages:2026-10 due 2026-10-28: missed 未报送",
                                    "hospital:births:2026-10 due 2026-10-28: late 逾期报送"]


def test_a_department_is_silent_when_its_submission_is_missed_not_before_the_28th(gateway, settings):
    """沉默部门: police's October file (2026-09-21..10-20, due 10-28) is judged after its due day."""
    from gateway.population_reports.warning import build_warning

    settings.obligations = {"submissions_from": "2026-10"}
    with session_scope(gateway.engine) as session:
        ensure_submissions(session, settings, china(2026, 10, 1, 9, 0))

    def silent(**when):
        [line] = [line for line in build_warning(gateway.engine, settings, "2026-10", **when).lines if line.kind == "silent-departments"]
        return line, {d.split(":")[0]: d for d in line.details}

    # On the 21st the October files are not due yet: nobody scheduled is silent.
    line, details = silent(as_of=china(2026, 10, 21, 0, 0))
    assert "police" not in line.text and details["police"].startswith("police: not due yet 未到期 police:births:2026-10 (due 2026-10-28)")
    assert "civil-affairs" not in line.text and "hospital" not in line.text
    # Departments without a schedule keep the exchange count, and the line says so.
    assert "无报送计划 no submission schedule" in details["school"] and "school" in line.text
    # On the 29th (the rehearsal clock, no as_of) the missing files are missed: silent.
    with clock.pinned(china(2026, 10, 29, 0, 0)):
        line, details = silent()
    assert line.raised and "police" in line.text and "judged 2026-10-29 00:00" in line.text
    assert details["police"] == "police: missed 未报送 police:births:2026-10 (due 2026-10-28), police:deaths:2026-10 (due 2026-10-28)"
    assert {"civil-affairs", "hospital"} <= set(line.text.split(": ", 1)[1].split(", "))
    # A second before midnight of the 28th it is not missed yet.
    line, _ = silent(as_of=china(2026, 10, 28, 23, 59))
    assert "police" not in line.text.split(": ", 1)[-1]
    # The file arriving on 27 October meets it: police is not silent on the 29th.
    with session_scope(gateway.engine) as session:
        submission_received(session, settings, "police", {"BirthEvent", "DeathEvent"}, china(2026, 10, 27, 10, 0))
    line, details = silent(as_of=china(2026, 10, 29, 0, 0))
    assert "police" not in line.text.split(": ", 1)[1].split(", ") and line.count == len(line.text.split(": ", 1)[1].split(", "))
    assert details["police"].startswith("police: none missed 无未报送 (2 submission(s)")


def test_an_officer_records_a_configured_kind_and_marks_it_done(home, settings, gateway):
    """A reply letter in 10 calendar days: a rule and a kind of the operator's own."""
    toml = home / "gateway.toml"
    toml.write_text(toml.read_text(encoding="utf-8")
                    + '\n[deadlines.reply_letter]\ndays = 10\ncount = "calendar"\n[obligations.kinds]\nreply-letter = "reply_letter"\n',
                    encoding="utf-8")
    added = run_gateway(home, "obligations", "add", "reply-letter", "--party", "police", "--subject", "letter:2026-17",
                        "--from", "2026-09-24").stdout
    assert "due 2026-10-08" in added and "reply_letter" in added  # 10-04 in the National Day holiday: rolled
    again = run_gateway(home, "obligations", "add", "reply-letter", "--party", "police", "--subject", "letter:2026-17", check=False)
    assert again.returncode != 0 and "already obligation" in (again.stdout + again.stderr)
    unknown = run_gateway(home, "obligations", "add", "visit", "--party", "police", "--subject", "v:1", check=False)
    assert unknown.returncode != 0 and "[obligations.kinds]" in (unknown.stdout + unknown.stderr)
    [(obligation_id,)] = query(settings, "SELECT id FROM obligation WHERE kind = 'reply-letter'")
    done = run_gateway(home, "obligations", "done", str(obligation_id), "--by", "clerk-zhao").stdout
    assert "已办结" in done and "late" in done  # done now, long after 2026-10-08
    assert query(settings, "SELECT status, closed_by FROM obligation WHERE id = ?", obligation_id) == [("late", "clerk-zhao")]
    twice = run_gateway(home, "obligations", "done", str(obligation_id), check=False)
    assert twice.returncode != 0 and "already late" in (twice.stdout + twice.stderr)


# -- obligations opened by the events themselves (update, feedback-check) -----------------


NOTICE_PERSON = "510722199402122287"  # 杨春梅, the demo notice's subject


def _notice_on(day: str) -> bytes:
    """The demo platform file, sent on `day` (FQSJ) instead of 2026-11-02."""
    return specimen("national_platform_inbound_20261102.xml").decode("utf-8").replace("2026-11-02", day).replace(
        "20261102", day.replace("-", "")).encode("utf-8")


def _receive_notice(gateway, settings, moment: dt.datetime, day: str) -> str:
    from gateway.platform import assist_checks

    with clock.pinned(moment):
        drop(settings, "national-platform", f"national_platform_inbound_{day.replace('-', '')}.xml", _notice_on(day))
        gateway.run_once()
        assist_checks.sync(gateway.engine, settings)
    (message_id,) = query(settings, "SELECT message_id FROM noticeitem")[0]
    return message_id


def test_a_notice_opens_the_registers_5_working_day_update_across_national_day(gateway, settings, tmp_path):
    from gateway.platform import assist_checks
    from gateway.register import fold

    message_id = _receive_notice(gateway, settings, china(2026, 9, 30, 10, 0), "2026-09-29")
    rows = query(settings, "SELECT party, due_date, status, detail FROM obligation WHERE subject = ?", f"update:notice:{message_id}")
    # 5 working days from 30 September: 8, 9, the worked Saturday 10, 12 and 13 October.
    assert [(party, str(due)[:10], status) for party, due, status, _ in rows] == [("population-office", "2026-10-13", "open")]
    assert NOTICE_PERSON not in rows[0][3]  # the detail names the message, never the person
    assert {v.subject for v in list_obligations(gateway.engine, overdue=True, now=china(2026, 10, 14, 0, 0))} >= {
        f"update:notice:{message_id}"}
    # Another woman's row folded into the register makes nothing of it ...
    other = tmp_path / "other.csv"
    other.write_text("公民身份号码,姓名,类别,内容,登记日期\n11010519491231002X,王芳,01,未婚,2026-10-09\n", encoding="utf-8")
    with clock.pinned(china(2026, 10, 9, 11, 0)):
        assist_checks.import_table(gateway.engine, "wcba", other)
        fold(gateway.engine, settings)
    assert query(settings, "SELECT status FROM obligation WHERE subject = ?", f"update:notice:{message_id}") == [("open",)]
    # ... the clerk's 育龄妇女 row for the notice's woman, folded on 13 October, meets it.
    mine = tmp_path / "mine.csv"
    mine.write_text(f"公民身份号码,姓名,类别,内容,登记日期\n{NOTICE_PERSON},杨春梅,04,生育一孩,2026-10-13\n", encoding="utf-8")
    with clock.pinned(china(2026, 10, 13, 16, 0)):
        assist_checks.import_table(gateway.engine, "wcba", mine)
        fold(gateway.engine, settings)
    assert query(settings, "SELECT status, closed_by FROM obligation WHERE subject = ?", f"update:notice:{message_id}") == [
        ("met", "register")]


def test_a_notice_update_made_after_its_due_day_is_late(gateway, settings, tmp_path):
    from gateway.platform import assist_checks
    from gateway.register import fold

    message_id = _receive_notice(gateway, settings, china(2026, 11, 3, 10, 0), "2026-11-02")
    assert str(query(settings, "SELECT due_date FROM obligation WHERE subject = ?", f"update:notice:{message_id}")[0][0])[:10] == "2026-11-10"
    mine = tmp_path / "mine.csv"
    mine.write_text(f"公民身份号码,姓名,类别,内容,登记日期\n{NOTICE_PERSON},杨春梅,04,生育一孩,2026-11-11\n", encoding="utf-8")
    with clock.pinned(china(2026, 11, 11, 0, 0)):
        assist_checks.import_table(gateway.engine, "wcba", mine)
        fold(gateway.engine, settings)
    assert query(settings, "SELECT status FROM obligation WHERE subject = ?", f"update:notice:{message_id}") == [("late",)]


def test_a_department_file_answering_its_discrepancy_list_is_checked_in_3_working_days(gateway, settings):
    from gateway.reconcile import evaluate
    from gateway.store.reconcile_models import DiscrepancyList

    with session_scope(gateway.engine) as session:  # the police were sent their list of open discrepancies
        session.add(DiscrepancyList(department="police", as_of=D(2026, 9, 28), items=2, content_sha256="0" * 64,
                                    status="delivered", file_name="DISCREPANCIES-1.json.gpg",
                                    delivered_at=china(2026, 9, 28, 9, 0).astimezone(dt.UTC)))
        for items in (3, 0):  # the hospital's last list said nothing was open any more
            session.add(DiscrepancyList(department="hospital", as_of=D(2026, 9, 20 + items), items=items,
                                        content_sha256=str(items) * 64, status="delivered"))
    with clock.pinned(china(2026, 9, 30, 17, 0)):
        drop(settings, "police", "police_hukou_202610.csv", specimen("police_hukou_202610.csv"))
        gateway.run_once()
        drop(settings, "hospital", "hospital_births_202610.csv", specimen("hospital_births_202610.csv"))
        gateway.run_once()
    rows = query(settings, "SELECT party, subject, due_date, status FROM obligation WHERE kind = 'feedback-check'")
    # Only the police hold a list with open items: the hospital's file is no feedback. Due 10 October (the worked Saturday).
    assert [(party, str(due)[:10], status) for party, _, due, status in rows] == [("population-office", "2026-10-10", "open")]
    subject = rows[0][1]
    assert overdue_parties(gateway.engine, china(2026, 10, 10, 23, 59), "feedback-check") == set()
    assert overdue_parties(gateway.engine, china(2026, 10, 11, 0, 0), "feedback-check") == {"population-office"}
    with clock.pinned(china(2026, 10, 9, 6, 0)):  # the next reconciliation run checks it
        evaluate(gateway.engine, settings, D(2026, 10, 9))
    assert query(settings, "SELECT status, closed_by FROM obligation WHERE subject = ?", subject) == [("met", "reconcile")]


def test_the_monthly_early_warning_is_delivered_to_the_member_departments(gateway, settings, register_recipients):
    from gateway.population_reports.periods import monthly
    from gateway.population_reports.scheduled import produce

    settings.obligations = {"submissions_from": "2026-10"}
    with session_scope(gateway.engine) as session:
        ensure_submissions(session, settings, china(2026, 10, 1, 9, 0))
    with clock.pinned(china(2026, 11, 21, 8, 0)):
        produce(gateway, monthly("2026-11"))
    ring, _ = register_recipients["police"]
    plain, status = ring.decrypt(settings.mailbox_root / "police" / "outbox" / "WARNING-2026-11.json.gpg")
    assert "GOODSIG" in status and "DECRYPTION_OKAY" in status
    document = json.loads(plain)
    assert document["month"] == "2026-11" and document["department"] == "police"
    [line] = [line for line in document["lines"] if line["kind"] == "missed-submissions"]
    assert line["raised"] and any(d.startswith("police:births:2026-10 due 2026-10-28") for d in line["details"])
    # The hospital has no registered key: held, nothing in clear; the office has its report, not a copy.
    assert not (settings.mailbox_root / "hospital" / "outbox" / "WARNING-2026-11.json.gpg").exists()
    assert not (settings.mailbox_root / "population-office" / "outbox" / "WARNING-2026-11.json.gpg").exists()
    # Produced again: the warning already there is left alone.
    before = (settings.mailbox_root / "police" / "outbox" / "WARNING-2026-11.json.gpg").read_bytes()
    with clock.pinned(china(2026, 11, 22, 8, 0)):
        produce(gateway, monthly("2026-11"))
    assert (settings.mailbox_root / "police" / "outbox" / "WARNING-2026-11.json.gpg").read_bytes() == before


def test_a_file_of_changes_owes_the_register_its_update_in_5_working_days(gateway, settings):
    """A hospital file (births: changes to people, 变动信息) stored on 30 September opens the
    register's update, due 13 October across National Day; the fold of its records meets it.
    A second file, folded only after its due day (the register stuck), is late."""
    from gateway.register import fold

    drop(settings, "hospital", "hospital_births_202610.csv", specimen("hospital_births_202610.csv"))
    with clock.pinned(china(2026, 9, 30, 17, 0)):
        [outcome] = gateway.run_once()
    subject = f"update:exchange:{outcome.exchange_id}"
    rows = query(settings, "SELECT party, due_date, status FROM obligation WHERE subject = ?", subject)
    assert [(party, str(due)[:10], status) for party, due, status in rows] == [("population-office", "2026-10-13", "open")]
    with clock.pinned(china(2026, 10, 8, 9, 0)):
        fold(gateway.engine, settings)
    assert query(settings, "SELECT status, closed_by FROM obligation WHERE subject = ?", subject) == [("met", "register")]

    drop(settings, "hospital", "hospital_births_202611.csv", hospital_births_file(7, 3))
    with clock.pinned(china(2026, 11, 2, 9, 0)):
        [late] = gateway.run_once()
    with clock.pinned(china(2026, 11, 10, 0, 0)):  # 5 working days: 3, 4, 5, 6, 9 November
        assert f"update:exchange:{late.exchange_id}" in {v.subject for v in list_obligations(gateway.engine, overdue=True)}
        fold(gateway.engine, settings)
    assert query(settings, "SELECT status FROM obligation WHERE subject = ?", f"update:exchange:{late.exchange_id}") == [("late",)]
