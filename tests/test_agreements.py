"""Sharing agreements: the county's defaults, their checking against the contracts, and
what each department receives (issue 7)."""

from __future__ import annotations

import tomllib

import pytest
from conftest import drop, query, run_gateway, specimen

from gateway.config import DEPARTMENTS, load_settings
from gateway.errors import ConfigError
from gateway.routing.agreements import DEFAULT_AGREEMENTS, Agreement, check_agreement, load_agreements

SPECIMEN = "hospital_births_202610.csv"


def write(home, text: str) -> None:
    (home / "agreements.toml").write_text(text, encoding="utf-8")


def agreement(**fields) -> Agreement:  # type: ignore[no-untyped-def]
    base = {"name": "a", "recipient": "school", "contracts": ["BirthEvent"], "fields": ["child.name"], "purpose": "test"}
    return Agreement.model_validate({**base, **fields})



def test_gateway_init_writes_the_countys_agreements_and_they_are_valid(home):
    assert (home / "agreements.toml").read_text(encoding="utf-8") == DEFAULT_AGREEMENTS
    assert 'agreements_file = "agreements.toml"' in (home / "gateway.toml").read_text(encoding="utf-8")
    checked = run_gateway(home, "agreements", "check")
    assert "4 agreement(s) valid" in checked.stdout
    result = load_agreements(load_settings(home))
    by_recipient = {a.recipient: a for a in result.agreements}
    assert set(by_recipient) == {"population-office", "school", "police", "civil-affairs"}
    assert by_recipient["population-office"].agreement.contracts == [
        "BirthEvent", "DeathEvent", "Migration", "MarriageEvent", "SchoolEnrolment"
    ]
    school = by_recipient["school"]
    assert school.columns["BirthEvent"] == [
        "child.name", "child.sex", "child.birth_date", "home_address", "registered_division_code"
    ]
    assert school.agreement.filters.match == {"registration": ["hospital"]}
    assert by_recipient["police"].agreement.filters.match == {"registration": ["hospital"]}
    assert by_recipient["civil-affairs"].agreement.contracts == ["DeathEvent"]


def test_a_field_the_contract_lacks_is_a_clear_error(home):
    write(home, DEFAULT_AGREEMENTS.replace('"child.name", "child.sex"', '"child.name", "mother.id_nmber", "child.sex"'))
    result = run_gateway(home, "agreements", "check", check=False)
    assert result.returncode == 1
    text = " ".join(result.stdout.split())
    assert "agreement 'schools-births': BirthEvent: 'mother.id_nmber' is not a field of BirthEvent" in text
    assert "Did you mean mother.id_number," in text
    assert "nothing is routed until they are fixed" in text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"contracts": ["BirthEvnt"]}, "unknown contract 'BirthEvnt'. Valid choices: AdoptionEvent, AssistCheckFeedback"),
        ({"recipient": "schools"}, "recipient 'schools' is not a department. Valid choices: civil-affairs"),
        ({"fields": {"DeathEvent": ["deceased.name"]}}, "fields are given for 'DeathEvent', which is not in contracts"),
        ({"filters": {"match": {"child": "x"}}}, "filters.match: BirthEvent.child is a part with fields of its own"),
        ({"contracts": ["MarriageEvent"], "fields": ["certificate_no"], "filters": {"division_prefix": "4407"}},
         "MarriageEvent has no field known to hold a division code; name one with filters.division_field"),
        ({"filters": {"date_field": "child.name", "event_from": "2026-01-01", "event_until": "2025-01-01"}},
         "filters.event_from 2026-01-01 is after filters.event_until 2025-01-01"),
    ],
)
@pytest.mark.backend_independent
def test_bad_agreements_are_clear_errors(change, message):
    checked, problems = check_agreement(agreement(**change), list(DEPARTMENTS))
    assert checked is None
    assert any(message in str(p) for p in problems), [str(p) for p in problems]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"format": "xlsx"}, "format: Input should be 'csv-gb18030', 'csv-utf8' or 'jsonl'"),
        ({"schedule": "hourly"}, "schedule: Input should be 'immediate', 'daily' or 'monthly'"),
        ({"purpose": ""}, "purpose: String should have at least 1 character"),
        ({"filters": {"division_prefix": "44a"}}, "must be 2 to 6 digits"),
        ({"unknown": 1}, "unknown: Extra inputs are not permitted"),
    ],
)
def test_malformed_tables_are_reported_with_their_place(home, table, message):
    base = 'name = "x"\nrecipient = "school"\ncontracts = ["BirthEvent"]\nfields = ["child.name"]\npurpose = "p"\n'
    data = tomllib.loads(base)
    data.update(table)
    lines = []
    for key, value in data.items():
        if isinstance(value, dict):
            continue
        lines.append(f"{key} = {value!r}".replace("'", '"'))
    text = "[[agreements]]\n" + "\n".join(lines) + "\n"
    if "filters" in data:
        text += "[agreements.filters]\n" + "\n".join(f'{k} = "{v}"' for k, v in data["filters"].items()) + "\n"
    write(home, text)
    result = load_agreements(load_settings(home))
    assert result.agreements == []
    assert any(message in str(p) and "agreements.toml [[agreements]] #1" in str(p) for p in result.errors), [
        str(p) for p in result.errors
    ]


def test_a_missing_or_broken_agreements_file_is_a_config_error(home):
    (home / "agreements.toml").unlink()
    with pytest.raises(ConfigError, match="does not exist"):
        load_agreements(load_settings(home))
    write(home, "[[agreements]\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_agreements(load_settings(home))
    write(home, "[other]\nx = 1\n")
    with pytest.raises(ConfigError, match="only \\[\\[agreements\\]\\] tables belong here"):
        load_agreements(load_settings(home))


def test_fields_default_to_none(home):
    checked, problems = check_agreement(
        Agreement.model_validate({"name": "n", "recipient": "police", "contracts": ["BirthEvent"], "purpose": "p"}),
        list(DEPARTMENTS),
    )
    assert checked is not None and checked.columns == {"BirthEvent": []} and not checked.covers("BirthEvent")
    assert [p.level for p in problems] == ["warning"] and "receives none of its records" in str(problems[0])


def test_agreements_may_live_in_gateway_toml(home):
    (home / "gateway.toml").write_text(
        'agreements_file = ""\n\n[[agreements]]\nname = "inline"\nrecipient = "police"\ncontracts = ["DeathEvent"]\n'
        'fields = ["deceased"]\npurpose = "p"\n',
        encoding="utf-8",
    )
    result = load_agreements(load_settings(home))
    [inline] = result.agreements
    assert inline.columns["DeathEvent"] == [
        "deceased.name", "deceased.id_number", "deceased.sex", "deceased.birth_date", "deceased.ethnicity"
    ]


def test_an_old_ack_within_hours_is_ignored_with_a_warning_naming_sign_off_rule(home):
    """Sign-off is due by the working-day rule `sign_off_rule`; an installation whose
    agreements still set the retired clock-hours key keeps routing and is told why."""
    (home / "gateway.toml").write_text(
        'agreements_file = ""\n\n[[agreements]]\nname = "old"\nrecipient = "police"\ncontracts = ["DeathEvent"]\n'
        'fields = ["deceased"]\npurpose = "p"\nack_within_hours = 48\n',
        encoding="utf-8",
    )
    result = load_agreements(load_settings(home))
    [old] = result.agreements
    assert old.agreement.sign_off_rule == "sign_off" and result.errors == []
    [warning] = result.warnings
    assert "ack_within_hours 已停用" in warning.message and "sign_off_rule" in warning.message
    shown = run_gateway(home, "agreements", "check").stdout
    assert "warn" in shown and "ack_within_hours" in shown and "1 agreement(s) valid" in shown


def test_explain_tells_field_by_field_what_a_department_receives(home):
    shown = run_gateway(home, "agreements", "explain", "school").stdout
    rows = {line.split()[0]: line.split() for line in shown.splitlines() if line.strip() and "│" in line}
    assert rows["child.name"][-1] == "yes" and "新生儿姓名" in rows["child.name"]
    assert rows["home_address"][-1] == "yes"
    for hidden in ("mother.id_number", "mother.name", "child.id_number", "birth_certificate_no", "father.id_number"):
        assert rows[hidden][-1] == "no", hidden
    assert "only records where registration is hospital" in shown
    assert "5 of 29 fields" in shown and "CSV, GB18030, Chinese headers" in shown
    assert "学位规划" in shown

    nothing = run_gateway(home, "agreements", "explain", "housing").stdout
    assert "housing receives nothing" in nothing
    unknown = run_gateway(home, "agreements", "explain", "schools", check=False)
    assert unknown.returncode == 2 and "Valid choices" in unknown.stderr


@pytest.mark.backend_independent
def test_filters_decide_which_records_fall_under_an_agreement():
    checked, _ = check_agreement(
        agreement(filters={"match": {"registration": "hospital"}, "division_prefix": ["440781", "440703"],
                           "event_from": "2026-10-01", "event_until": "2026-10-31"}),
        list(DEPARTMENTS),
    )
    assert checked is not None
    record = {"registration": "hospital", "registered_division_code": "440781", "child": {"birth_date": "2026-10-03"}}
    assert checked.admits("BirthEvent", record)
    assert not checked.admits("BirthEvent", {**record, "registration": "police"})
    assert checked.admits("BirthEvent", {**record, "registered_division_code": "440703"})
    assert not checked.admits("BirthEvent", {**record, "registered_division_code": "440106"})
    assert not checked.admits("BirthEvent", {**record, "registered_division_code": None})
    assert not checked.admits("BirthEvent", {**record, "child": {"birth_date": "2026-11-01"}})
    assert not checked.admits("BirthEvent", {**record, "child": {}})


def test_broken_agreements_hold_routing_and_nothing_is_lost(gateway, settings, register_recipients, caplog):
    good = (settings.home / "agreements.toml").read_text(encoding="utf-8")
    write(settings.home, good.replace('"home_address"', '"home_adress"'))
    drop(settings, "hospital", SPECIMEN, specimen(SPECIMEN))
    [outcome] = gateway.run_once()
    assert (outcome.status, outcome.accepted) == ("processed", 3)  # the exchange is accepted regardless
    assert query(settings, "SELECT count(*) FROM delivery") == [(0,)]
    assert "sharing agreements have errors; nothing is routed" in caplog.text and "home_adress" in caplog.text

    write(settings.home, good)
    gateway.run_once()
    assert query(settings, "SELECT recipient, status FROM delivery ORDER BY recipient") == [
        ("police", "delivered"), ("population-office", "delivered"), ("school", "delivered"),
    ]


def test_a_removed_agreement_cancels_what_it_had_not_sent(gateway, settings, recipients):
    drop(settings, "hospital", SPECIMEN, specimen(SPECIMEN))
    gateway.run_once()  # no keys: everything held
    text = (settings.home / "agreements.toml").read_text(encoding="utf-8")
    start = text.index("[[agreements]]\nname = \"schools-births\"")
    end = text.index("# The police")
    write(settings.home, text[:start] + text[end:])
    gateway.routing.run_pass()
    assert query(settings, "SELECT status FROM delivery WHERE recipient = 'school'") == [("cancelled",)]
