"""Deadlines: calendar and working days (adjusted workdays included), provisional beyond
the holiday calendar's years, the regulations' defaults and their overrides. The 2026
holiday arrangement these tests rely on is pinned here, not read from the package."""

from __future__ import annotations

import datetime as dt

import pytest

from conftest import run_gateway
from contracts.platform import AssistCheckRequest
from gateway.config import load_settings
from gateway.obligations.deadlines import DEFAULT_RULES, Deadlines, WorkCalendar, assist_check_rule, use_calendar
from gateway.errors import ConfigError, UnknownName

D = dt.date

# 国务院办公厅关于2026年部分节假日安排的通知, as chinesecalendar 1.11.0 has it.
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


@pytest.fixture(autouse=True)
def calendar_2026():
    calendar = WorkCalendar(holidays=HOLIDAYS_2026, workdays=WORKDAYS_2026, years={2026}, source="pinned 2026 tables")
    use_calendar(calendar)
    yield calendar
    use_calendar(None)


@pytest.mark.backend_independent
def test_the_regulations_defaults():
    assert {name: (rule.days, rule.count, rule.start) for name, rule in DEFAULT_RULES.items()} == {
        "department_feedback": (3, "working", "received"),
        "forward_to_town": (2, "working", "received"),
        "update": (5, "working", "received"),
        "assist_check_urgent": (15, "calendar", "sent"),
        "assist_check": (30, "calendar", "sent"),
        "notice": (30, "calendar", "sent"),
        "sign_off": (3, "working", "received"),
        "notice_submit": (5, "working", "received"),  # the county's own notices (通报): 5 working days
    }
    assert [name for name, rule in DEFAULT_RULES.items() if not rule.roll_to_workday] == [
        "assist_check_urgent", "assist_check", "notice"]  # the platform's own dates
    assert assist_check_rule("1") == "assist_check_urgent" and assist_check_rule("2") == "assist_check"


@pytest.mark.parametrize(
    ("rule", "start", "due"),
    [
        # National Day: 10-01..10-07 off, Saturday 10-10 an adjusted working day.
        ("department_feedback", D(2026, 9, 30), D(2026, 10, 10)),
        ("forward_to_town", D(2026, 9, 30), D(2026, 10, 9)),
        # Spring Festival: Saturday 02-14 worked, 02-15..02-23 off.
        ("update", D(2026, 2, 12), D(2026, 2, 26)),
        # A plain week: Friday + 3 working days is Wednesday.
        ("department_feedback", D(2026, 11, 20), D(2026, 11, 25)),
        # Calendar days, as the platform's rules state them.
        ("assist_check_urgent", D(2026, 11, 2), D(2026, 11, 17)),
        ("assist_check", D(2026, 11, 2), D(2026, 12, 2)),
        ("notice", D(2026, 11, 2), D(2026, 12, 2)),
    ],
)
@pytest.mark.backend_independent
def test_due_dates(rule, start, due):
    result = Deadlines().due(rule, start)
    assert (result.date, result.provisional) == (due, False)


@pytest.mark.backend_independent
def test_a_rolled_calendar_deadline_in_an_uncovered_year_is_provisional():
    # A Tuesday, but a 2027 Tuesday could still be a bridging day off (调休): provisional.
    result = Deadlines({"assist_check": {"roll_to_workday": True}}).due("assist_check", D(2026, 12, 20))
    assert (result.date, result.provisional) == (D(2027, 1, 19), True)
    fixed = Deadlines().due("assist_check", D(2026, 12, 20))
    assert (fixed.date, fixed.provisional) == (D(2027, 1, 19), False)


@pytest.mark.backend_independent
def test_the_contract_derives_the_same_due_date_as_the_default_rules():
    for urgency, days in (("1", 15), ("2", 30)):
        rule = assist_check_rule(urgency)
        assert Deadlines().due(rule, D(2026, 11, 2)).date == D(2026, 11, 2) + dt.timedelta(days=days)
        assert AssistCheckRequest.model_fields["due_date"] is not None


@pytest.mark.backend_independent
def test_a_year_the_calendar_does_not_cover_is_provisional_never_guessed():
    result = Deadlines().due("update", D(2026, 12, 29))
    # 12-30, 12-31, then 2027 with weekends and the statutory holidays: Fri 01-01 is New
    # Year's Day by law, so Mon 01-04, Tue 01-05, Wed 01-06.
    assert result.date == D(2027, 1, 6) and result.provisional
    assert "2027" in result.note and "pinned 2026 tables covers 2026-2026" in result.note
    assert result.label() == "2027-01-06 (provisional)"
    assert not Deadlines().due("update", D(2026, 12, 21)).provisional


@pytest.mark.backend_independent
def test_roll_to_workday_moves_a_calendar_deadline_off_a_holiday():
    rolled = Deadlines({"assist_check_urgent": {"roll_to_workday": True}})
    # 09-20 + 15 days = 10-05 (National Day) -> 10-08, the first working day after.
    assert rolled.due("assist_check_urgent", D(2026, 9, 20)).date == D(2026, 10, 8)
    assert Deadlines().due("assist_check_urgent", D(2026, 9, 20)).date == D(2026, 10, 5)
    # A new calendar-day rule rolls by default (民法典 §203).
    assert Deadlines({"reply": {"days": 15}}).due("reply", D(2026, 9, 20)).date == D(2026, 10, 8)
    beyond = rolled.due("assist_check_urgent", D(2026, 12, 20))  # 2027-01-04, a year not covered
    assert beyond.provisional


def test_rules_can_be_changed_in_gateway_toml(home):
    (home / "gateway.toml").write_text(
        '[deadlines.assist_check_urgent]\ncount = "working"\n[deadlines.notice]\ndays = 20\nstart = "received"\n', encoding="utf-8"
    )
    deadlines = Deadlines(load_settings(home).deadlines)
    assert deadlines.rule("assist_check_urgent").count == "working" and deadlines.rule("assist_check_urgent").days == 15
    assert deadlines.due("assist_check_urgent", D(2026, 9, 24)).date == D(2026, 10, 22)
    assert deadlines.rule("notice").days == 20 and deadlines.rule("notice").start == "received"
    assert deadlines.rule("assist_check").days == 30  # untouched


@pytest.mark.backend_independent
def test_bad_rules_are_clear_errors():
    with pytest.raises(UnknownName, match="department_feedback"):
        Deadlines({"assist_checks": {"count": "working"}})  # a new rule without its days: a misspelling
    with pytest.raises(ConfigError, match="count"):
        Deadlines({"notice": {"count": "lunar"}})
    with pytest.raises(ConfigError, match="days"):
        Deadlines({"notice": {"days": 0}})
    with pytest.raises(UnknownName):
        Deadlines().due("nope", D(2026, 1, 1))


@pytest.mark.backend_independent
def test_working_days_between():
    deadlines = Deadlines()
    assert deadlines.working_days_between(D(2026, 9, 30), D(2026, 10, 10)) == (3, False)
    # 12-31, (01-01 New Year's Day by law), 01-04.
    assert deadlines.working_days_between(D(2026, 12, 30), D(2027, 1, 4)) == (2, True)


@pytest.mark.backend_independent
def test_the_package_calendar_marks_far_years_provisional():
    use_calendar(None)
    package = WorkCalendar()
    assert package.source.startswith("chinesecalendar ") and 2026 in package.years
    result = Deadlines(calendar=package).due("department_feedback", D(2099, 3, 2))
    assert result.provisional and "2099" in result.note


def test_the_deadlines_commands(home):
    shown = run_gateway(home, "deadlines", "rules")
    for expected in ("department_feedback", "forward_to_town", "assist_check_urgent", "working days", "calendar days"):
        assert expected in shown.stdout
    due = run_gateway(home, "deadlines", "due", "assist_check_urgent", "--from", "2026-11-02")
    assert "due 2026-11-17" in due.stdout
    far = run_gateway(home, "deadlines", "due", "update", "--from", "2099-06-01")
    assert "(provisional)" in far.stdout and "2099" in far.stdout


@pytest.mark.backend_independent
def test_three_working_days_from_2026_12_30_is_2027_01_05_provisional():
    """1 January is a holiday by law even before the 2027 arrangement is published."""
    result = Deadlines().due("department_feedback", D(2026, 12, 30))
    assert (result.date, result.provisional) == (D(2027, 1, 5), True)
    assert "调休" in result.note


@pytest.mark.parametrize(
    ("year", "days"),
    [
        # 2027: Spring Festival on 02-06 (除夕 02-05), 清明 04-05, 端午 06-09, 中秋 09-15.
        (2027, [D(2027, 1, 1), D(2027, 2, 5), D(2027, 2, 6), D(2027, 2, 7), D(2027, 2, 8), D(2027, 4, 5),
                D(2027, 5, 1), D(2027, 5, 2), D(2027, 6, 9), D(2027, 9, 15), D(2027, 10, 1), D(2027, 10, 2), D(2027, 10, 3)]),
        # 2028: Spring Festival on 01-26 (除夕 01-25), 清明 04-04, 端午 05-28, 中秋 10-03 (with National Day).
        (2028, [D(2028, 1, 1), D(2028, 1, 25), D(2028, 1, 26), D(2028, 1, 27), D(2028, 1, 28), D(2028, 4, 4),
                D(2028, 5, 1), D(2028, 5, 2), D(2028, 5, 28), D(2028, 10, 1), D(2028, 10, 2), D(2028, 10, 3)]),
    ],
)
@pytest.mark.backend_independent
def test_statutory_holidays_beyond_the_calendar(year, days):
    from gateway.obligations.deadlines import statutory_holidays

    assert sorted(statutory_holidays(year)) == days


@pytest.mark.backend_independent
def test_the_spring_festival_of_an_uncovered_year_is_counted():
    # Thu 2027-02-04 + 3 working days: 02-05 (除夕), 02-08 (初三) are off by law -> 02-09, 02-10, 02-11.
    result = Deadlines().due("department_feedback", D(2027, 2, 4))
    assert (result.date, result.provisional) == (D(2027, 2, 11), True)


def test_a_new_rule_from_gateway_toml_and_end_of_day(home):
    deadlines = Deadlines({"reply_letter": {"days": 10, "count": "calendar"}})
    # 09-24 + 10 = 10-04 (National Day) -> rolled to 10-08.
    due = deadlines.due("reply_letter", D(2026, 9, 24))
    assert due.date == D(2026, 10, 8)
    assert due.ends_at == dt.datetime(2026, 10, 8, 16, 0, tzinfo=dt.UTC)  # 24:00 China time
    with pytest.raises(ConfigError, match="lowercase"):
        Deadlines({"Reply-Letter": {"days": 10}})


@pytest.mark.backend_independent
def test_fixed_dates_never_roll():
    # 2026-02-28 is an adjusted working Saturday, 2027-02-28 a Sunday: the 28th either way.
    assert Deadlines().fixed_date("submission", D(2027, 2, 28)).date == D(2027, 2, 28)
    assert not Deadlines().fixed_date("submission", D(2027, 2, 28)).provisional
