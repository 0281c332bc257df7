"""Reconciliation (issue 9): a generated month across all six departments, ingested through
the mailbox, finds exactly the planted discrepancies per rule; a second month closes
exactly those it supplies; closing by hand, proposals, grace periods, idempotence, a
plugin's rule, and the encrypted lists in the departments' outboxes."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from conftest import PRIVACY, query, run_gateway

from gateway.masking import mask_value
from gateway.devkit.sample_month import RULES, generate_month

AUGUST_AS_OF = "2026-09-30"  # every planted August item is due by then, whatever its rule
SEPTEMBER_AS_OF = "2026-10-31"
IDENTIFIER_KIND = {
    "unregistered-births": "document_number",
    "births-without-hospital-record": "document_number",
    "deaths-without-cremation": "id_number",
    "cremations-without-death": None,  # an ID number, or the certificate number when it is missing
    "tenants-without-residence-permit": "id_number",
}


@pytest.fixture(scope="module")
def months():
    august = generate_month(2026, 8)
    return august, generate_month(2026, 9, plant=False, supply=august)


def ingest(gateway, month) -> None:
    month.drop(gateway.settings.mailbox_root)
    outcomes = gateway.run_once()
    assert sorted(o.status for o in outcomes) == ["processed"] * 6, [(o.file_name, o.status, o.reason) for o in outcomes]
    assert sum(o.rejected for o in outcomes) == 0
    assert sum(o.accepted for o in outcomes) == sum(month.counts["records"].values())


class Result:
    def __init__(self, code: int, stdout: str, stderr: str):
        self.returncode, self.stdout, self.stderr = code, stdout, stderr


def cli(home, *args: str, check: bool = True) -> Result:
    """`gateway ARGS --home HOME` in this process (a subprocess per call costs seconds on a
    busy machine); the output goes to the privacy scan like `run_gateway`'s."""
    from typer.testing import CliRunner

    from gateway.cli.app import app

    result = CliRunner().invoke(app, [*args, "--home", str(home)], env={"COLUMNS": "200"})
    error = f"Error: {result.exception}" if result.exception is not None and not isinstance(result.exception, SystemExit) else ""
    try:
        stderr = result.stderr + error
    except ValueError:  # an older Click mixes stderr into stdout
        stderr = error
    PRIVACY.outputs.append((f"gateway {' '.join(args)} (in process)", result.stdout + stderr))
    if check and result.exit_code != 0:
        raise AssertionError(f"gateway {' '.join(args)} exited {result.exit_code}\n{result.stdout}\n{stderr}")
    return Result(result.exit_code, result.stdout, stderr)


def reconcile_json(home, *args: str) -> dict:
    return json.loads(cli(home, "reconcile", "--json", *args).stdout)


def open_keys(home) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {rule: set() for rule in RULES}
    for rule, key in query(home, "SELECT rule, subject_key FROM discrepancy WHERE status = 'open'"):
        found.setdefault(rule, set()).add(key)
    return found


def masked(rule: str, key: str) -> str:
    kind = IDENTIFIER_KIND[rule] or ("id_number" if key[:6].isdigit() else "document_number")
    return mask_value(key, kind)


def test_a_generated_month_finds_exactly_the_planted_discrepancies_and_the_next_month_closes_exactly_those_supplied(
    home, gateway, months
):
    august, september = months
    ingest(gateway, august)

    report = json.loads(run_gateway(home, "reconcile", "--json", "--as-of", AUGUST_AS_OF).stdout)  # the real command
    # the five join rules and the register's disagreements (none: nothing folded the register here)
    assert report["as_of"] == AUGUST_AS_OF and sorted(report["rules"]) == sorted([*RULES, "register-disagreements"])
    assert report["rules"]["register-disagreements"]["open"] == 0
    assert open_keys(home) == {rule: august.planted_keys(rule) for rule in RULES}
    for rule in RULES:
        section = report["rules"][rule]
        assert section["open"] == len(august.planted_keys(rule)) == len(section["items"]) > 0
        assert sorted(item["subject"] for item in section["items"]) == sorted(masked(rule, k) for k in august.planted_keys(rule))
        for item in section["items"]:
            assert item["notify"] and item["name"].endswith("**")
    # Full identifiers never reach the command's output.
    text = json.dumps(report, ensure_ascii=False)
    assert not any(key in text for rule in RULES for key in august.planted_keys(rule))
    departments = {rule: report["rules"][rule]["items"][0]["notify"] for rule in RULES}
    assert departments["unregistered-births"] == ["police", "hospital"]
    assert departments["tenants-without-residence-permit"] == ["police", "housing"]

    # Idempotent: evaluating again opens nothing twice.
    rows_before = query(home, "SELECT id, rule, subject_key FROM discrepancy ORDER BY id")
    again = reconcile_json(home, "--as-of", AUGUST_AS_OF)
    assert query(home, "SELECT id, rule, subject_key FROM discrepancy ORDER BY id") == rows_before
    assert again["rules"] == report["rules"]

    ingest(gateway, september)
    after = json.loads(run_gateway(home, "reconcile", "--json", "--as-of", SEPTEMBER_AS_OF).stdout)
    expected_open = {rule: august.planted_keys(rule) - september.supplied_keys(rule) for rule in RULES}
    assert open_keys(home) == expected_open
    assert {rule: section["open"] for rule, section in after["rules"].items()} == {**{r: len(k) for r, k in expected_open.items()}, "register-disagreements": 0}
    closed = query(home, "SELECT rule, subject_key, closure, matched_record_id FROM discrepancy WHERE status = 'closed'")
    assert {(rule, key) for rule, key, _, _ in closed} == {(p.rule, p.key) for p in september.supplied}
    assert all(closure == "matched" and record is not None for _, _, closure, record in closed)
    assert all(september.supplied_keys(rule) for rule in RULES), "the second month supplies something for every rule"


def test_the_fallback_proposes_a_match_and_never_decides_it(home, gateway, months):
    august, september = months
    ingest(gateway, august)
    report = reconcile_json(home, "--as-of", AUGUST_AS_OF)
    proposed = {
        rule: {item["subject"] for item in report["rules"][rule]["items"] if item["proposals"]} for rule in RULES
    }
    expected = {rule: {masked(rule, p.key) for p in august.planted if p.rule == rule and p.proposal} for rule in RULES}
    assert proposed == expected
    assert len(expected["deaths-without-cremation"]) == 1 and len(expected["cremations-without-death"]) == 1
    [death] = [i for i in report["rules"]["deaths-without-cremation"]["items"] if i["proposals"]]
    [cremation] = [i for i in report["rules"]["cremations-without-death"]["items"] if i["proposals"]]
    assert death["proposals"][0]["record"]["contract"] == "CremationEvent"
    assert "birth dates 1 day(s) apart" in death["proposals"][0]["basis"]

    # A month later, with other records arriving, the proposal still decides nothing.
    ingest(gateway, september)
    later = reconcile_json(home, "--as-of", SEPTEMBER_AS_OF)
    assert death["id"] in [i["id"] for i in later["rules"]["deaths-without-cremation"]["items"]]
    assert cremation["id"] in [i["id"] for i in later["rules"]["cremations-without-death"]["items"]]

    # Rejecting keeps it open; nothing is left to confirm then.
    cli(home, "reconcile", "reject", str(cremation["id"]), "--by", "clerk-li")
    assert query(home, "SELECT status FROM discrepancy WHERE id = ?", cremation["id"]) == [("open",)]
    refused = cli(home, "reconcile", "confirm", str(cremation["id"]), check=False)
    assert refused.returncode != 0 and "no pending proposal" in refused.stderr

    # Confirming the death's proposal closes it, and links the records: the cremation closes too.
    confirmed = cli(home, "reconcile", "confirm", str(death["id"]), "--by", "clerk-wang")
    assert "confirmed by clerk-wang" in confirmed.stdout
    assert query(home, "SELECT status, closure, closed_by FROM discrepancy WHERE id = ?", death["id"]) == [
        ("closed", "confirmed", "clerk-wang")
    ]
    reconcile_json(home, "--as-of", SEPTEMBER_AS_OF)
    assert query(home, "SELECT status, closure FROM discrepancy WHERE id = ?", cremation["id"]) == [("closed", "matched")]
    actions = [a for (a,) in query(home, "SELECT action FROM auditevent ORDER BY id")]
    assert "match_rejected" in actions and "match_confirmed" in actions


def test_a_discrepancy_is_closed_by_hand_with_who_and_why_and_stays_closed(home, gateway, months):
    august, _ = months
    ingest(gateway, august)
    report = reconcile_json(home, "--as-of", AUGUST_AS_OF, "--rule", "births-without-hospital-record")
    assert list(report["rules"]) == ["births-without-hospital-record"]
    item = report["rules"]["births-without-hospital-record"]["items"][0]

    missing = cli(home, "reconcile", "resolve", str(item["id"]), "--reason", "  ", check=False)
    assert missing.returncode != 0 and "--reason" in missing.stderr
    done = run_gateway(home, "reconcile", "resolve", str(item["id"]), "--reason", "home birth, registered elsewhere", "--by", "clerk-wang")
    assert "resolved by clerk-wang" in done.stdout
    assert query(home, "SELECT status, closure, closed_by, close_reason FROM discrepancy WHERE id = ?", item["id"]) == [
        ("closed", "resolved", "clerk-wang", "home birth, registered elsewhere")
    ]
    [(detail,)] = query(home, "SELECT detail FROM auditevent WHERE action = 'discrepancy_resolved'")
    assert "clerk-wang" in detail and "home birth" in detail
    # Evaluating again does not reopen it; closing it twice is refused.
    after = reconcile_json(home, "--as-of", AUGUST_AS_OF)
    assert item["id"] not in [i["id"] for i in after["rules"]["births-without-hospital-record"]["items"]]
    assert after["rules"]["births-without-hospital-record"]["open"] == len(august.planted_keys("births-without-hospital-record")) - 1
    twice = cli(home, "reconcile", "resolve", str(item["id"]), "--reason", "again", check=False)
    assert twice.returncode != 0 and "already closed (resolved by clerk-wang)" in twice.stderr
    unknown = cli(home, "reconcile", "--rule", "no-such-rule", check=False)
    assert unknown.returncode != 0 and "unregistered-births" in unknown.stderr


def test_grace_periods_come_from_gateway_toml(home, gateway, months):
    august, _ = months
    ingest(gateway, august)
    with open(home / "gateway.toml", "a", encoding="utf-8") as handle:
        handle.write('\n[reconciliation.grace]\nunregistered-births = "3 months"\ndeaths-without-cremation = 40\n')
    as_of = dt.date(2026, 9, 20)
    report = reconcile_json(home, "--as-of", as_of.isoformat())
    assert report["rules"]["unregistered-births"]["open"] == 0
    expected_deaths = {p.key for p in august.planted if p.rule == "deaths-without-cremation"
                       and p.event_date + dt.timedelta(days=40) <= as_of}
    assert 0 < len(expected_deaths) < len(august.planted_keys("deaths-without-cremation")), "the date splits them"
    assert open_keys(home)["deaths-without-cremation"] == expected_deaths
    # The rules not overridden keep their defaults (cremations: 15 days, all due by then).
    assert open_keys(home)["cremations-without-death"] == august.planted_keys("cremations-without-death")
    listing = cli(home, "reconcile", "rules")
    assert "3 months (gateway.toml)" in listing.stdout and "15 days (default)" in listing.stdout

    with open(home / "gateway.toml", "a", encoding="utf-8") as handle:
        handle.write('no-such-rule = "1 day"\n')
    wrong = cli(home, "reconcile", check=False)
    assert wrong.returncode != 0 and "no-such-rule" in wrong.stderr and "tenants-without-residence-permit" in wrong.stderr


def test_a_plugin_rule_appears_in_gateway_reconcile(home, gateway, months):
    from typer.testing import CliRunner

    import gateway as gateway_package
    from gateway.cli.app import app
    from gateway.plugins import get_manager
    from gateway.reconcile import Evidence, Reconciliation, Subject
    from gateway.reconcile.base import as_date

    class DivorcesWithoutMarriage(Reconciliation):
        name = "divorces-without-marriage"
        description = "a divorce whose marriage certificate (原结婚证号) is not on record"
        subject_contract = evidence_contract = "MarriageEvent"
        matching_keys = ("original_certificate_no", "certificate_no")
        grace = "0 days"
        notify = ("civil-affairs",)

        def subjects(self, records):
            for record in records:
                if record.payload["kind"] == "divorce":
                    key = record.payload["original_certificate_no"]
                    yield Subject(record, key, key, as_date(record.payload["registered_on"]), "original_certificate_no",
                                  "document_number")

        def evidence(self, records):
            for record in records:
                if record.payload["kind"] == "marriage":
                    yield Evidence(record, record.payload["certificate_no"])

    class Plugin:
        @gateway_package.hookimpl
        def register_reconciliations(self, register):
            register(DivorcesWithoutMarriage)

    august, _ = months
    ingest(gateway, august)
    manager = get_manager()
    plugin = Plugin()
    manager.register(plugin, name="divorce-plugin")
    try:
        result = CliRunner().invoke(app, ["reconcile", "--json", "--as-of", AUGUST_AS_OF, "--home", str(home)])
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["rules"]["divorces-without-marriage"]["open"] == august.counts["divorces"] > 0
        assert report["rules"]["divorces-without-marriage"]["items"][0]["notify"] == ["civil-affairs"]
        assert report["rules"]["unregistered-births"]["open"] == len(august.planted_keys("unregistered-births"))
    finally:
        manager.unregister(plugin)
    assert "divorces-without-marriage" not in manager.reconciliations()


def test_each_department_receives_its_open_list_encrypted_in_its_outbox(home, settings, gateway, months, recipients):
    from gateway.receipts.keys import DepartmentKeys
    from gateway.scheduler.runner import job_named, run_job

    august, _ = months
    ingest(gateway, august)  # before the keys: a department with a key must sign its drops
    registry = DepartmentKeys(settings.keys_dir)
    for department in ("police", "civil-affairs"):
        ring, fingerprint = recipients[department]
        registry.import_key(ring.export(fingerprint), department)
        ring.trust_gateway(settings.keys_dir)

    result = run_gateway(home, "reconcile", "--deliver", "--as-of", AUGUST_AS_OF)
    assert "list for police: delivered" in result.stdout and "list for housing: held" in result.stdout
    outbox = settings.mailbox_root / "police" / "outbox"
    [name] = [p.name for p in outbox.glob("DISCREPANCIES-*.json.gpg")]
    encrypted = (outbox / name).read_bytes()
    assert not any(key.encode() in encrypted for rule in RULES for key in august.planted_keys(rule))
    ring, _ = recipients["police"]
    plain, status = ring.decrypt(outbox / name)
    assert "GOODSIG" in status and "DECRYPTION_OKAY" in status
    document = json.loads(plain)
    assert document["department"] == "police" and document["as_of"] == AUGUST_AS_OF
    rules = document["rules"]
    assert set(rules) >= {"unregistered-births", "births-without-hospital-record", "deaths-without-cremation",
                          "cremations-without-death", "tenants-without-residence-permit"}
    assert not rules.get("register-disagreements", {}).get("items")  # the register is not folded here
    # In full where the police may see the record anyway: births (agreement police-hospital-births),
    # its own death cancellations; masked where not: the housing registry's tenants, cremations.
    assert {i["subject"] for i in rules["unregistered-births"]["items"]} == august.planted_keys("unregistered-births")
    assert {i["subject"] for i in rules["deaths-without-cremation"]["items"]} == august.planted_keys("deaths-without-cremation")
    assert {i["subject"] for i in rules["tenants-without-residence-permit"]["items"]} == {
        masked("tenants-without-residence-permit", k) for k in august.planted_keys("tenants-without-residence-permit")
    }
    assert all(i["identifier_masked"] for i in rules["cremations-without-death"]["items"])
    # Civil affairs receives deaths under its agreement: the deaths' ID numbers in full.
    civil_ring, _ = recipients["civil-affairs"]
    [civil_name] = [p.name for p in (settings.mailbox_root / "civil-affairs" / "outbox").glob("DISCREPANCIES-*.json.gpg")]
    civil = json.loads(civil_ring.decrypt(settings.mailbox_root / "civil-affairs" / "outbox" / civil_name)[0])
    assert set(civil["rules"]) == {"deaths-without-cremation", "cremations-without-death"}
    assert {i["subject"] for i in civil["rules"]["deaths-without-cremation"]["items"]} == august.planted_keys("deaths-without-cremation")
    assert list((settings.mailbox_root / "housing" / "outbox").glob("DISCREPANCIES-*")) == []
    assert query(home, "SELECT status FROM discrepancylist WHERE department = 'housing'") == [("held",)]

    # Unchanged lists are not sent again; the daily job (as `gateway run` schedules it) runs the same way.
    from gateway import clock

    with clock.pinned(dt.datetime(2026, 9, 30, 1, 0, tzinfo=dt.UTC)):
        job = job_named(gateway, "reconcile")
        try:
            outcome = run_job(gateway.engine, job, lease_seconds=30, force=True)
        finally:
            job.close()
    assert outcome is not None and outcome.error is None, outcome and outcome.error
    assert "0 opened" in outcome.summary and "0 list(s) delivered" in outcome.summary
    assert len(list(outbox.glob("DISCREPANCIES-*.json.gpg"))) == 1
    actions = query(home, "SELECT department FROM auditevent WHERE action = 'discrepancies_delivered' ORDER BY department")
    assert actions == [("civil-affairs",), ("police",)]


def test_current_versions_count_a_corrected_record_is_followed_and_a_tenant_who_moved_out_is_withdrawn(home, gateway, months):
    from gateway.devkit.sample_month import HOUSING

    august, _ = months
    ingest(gateway, august)
    reconcile_json(home, "--as-of", AUGUST_AS_OF)
    tenants = sorted(august.planted_keys("tenants-without-residence-permit"))
    page = json.loads(august.files[HOUSING][0][1])
    items = {o["idNo"]: item for item in page["items"] for o in item["occupants"] if o["idNo"] in tenants}
    corrected = json.loads(json.dumps(items[tenants[0]]))
    corrected["room"] = "9999"  # same certificate and time, other content: version 2
    moved = json.loads(json.dumps(items[tenants[1]]))
    moved["updatedAt"] = "2026-09-25T10:00:00+08:00"  # a later change: the tenant moved out
    moved["occupants"][0]["moveOut"] = "2026-09-24"
    name = "housing_occupancy_20260925.json"
    (gateway.settings.mailbox_root / "housing" / "inbox" / name).write_text(
        json.dumps({"items": [corrected, moved]}, ensure_ascii=False), encoding="utf-8")
    import os
    import time

    os.utime(gateway.settings.mailbox_root / "housing" / "inbox" / name, (time.time() - 60, time.time() - 60))
    [outcome] = gateway.run_once()
    assert (outcome.status, outcome.accepted, outcome.corrected) == ("processed", 2, 1)

    report = reconcile_json(home, "--as-of", AUGUST_AS_OF)
    assert open_keys(home)["tenants-without-residence-permit"] == set(tenants) - {tenants[1]}
    assert query(home, "SELECT closure FROM discrepancy WHERE subject_key = ?", tenants[1]) == [("withdrawn",)]
    [(record_id, version)] = query(
        home, "SELECT r.id, r.version FROM discrepancy d JOIN record r ON r.id = d.record_id WHERE d.subject_key = ?", tenants[0])
    assert version == 2
    [item] = [i for i in report["rules"]["tenants-without-residence-permit"]["items"] if i["record"]["id"] == record_id]
    assert item["subject"] == masked("tenants-without-residence-permit", tenants[0])


@pytest.mark.backend_independent
def test_the_generated_month_is_deterministic_and_its_manifest_adds_up(months):
    from gateway.devkit.sample_month import PLANTED

    august, september = months
    assert generate_month(2026, 8).files == august.files
    assert generate_month(2026, 8, seed=7).files != august.files
    manifest = json.loads(json.dumps(august.manifest(), ensure_ascii=False))
    with_fallback_pair = {"deaths-without-cremation", "cremations-without-death"}
    assert {rule: len(keys) for rule, keys in manifest["planted"].items()} == {
        rule: PLANTED[rule] + (rule in with_fallback_pair) for rule in RULES
    }
    assert {rule for rule, keys in manifest["proposals"].items() if keys} == with_fallback_pair
    counts = manifest["counts"]
    assert counts["hospital_births"] == sum(v["male"] + v["female"] for v in counts["births_by_division_and_sex"].values())
    assert counts["hospital_births"] == counts["police_birth_registrations"] + len(manifest["planted"]["unregistered-births"]) \
        - len(manifest["planted"]["births-without-hospital-record"])
    assert sorted(manifest["files"]) == ["civil-affairs", "hospital", "housing", "national-platform", "police", "school"]
    later = september.manifest()
    assert all(not keys for keys in later["planted"].values())
    for rule in RULES:
        assert set(later["supplied"][rule]) <= set(manifest["planted"][rule]) - set(manifest["proposals"][rule])
        assert len(later["supplied"][rule]) == (len(manifest["planted"][rule]) - len(manifest["proposals"][rule])) // 2


def test_gateway_sample_month_drops_a_month_or_writes_it_with_its_manifest(home, settings, tmp_path):
    dropped = cli(home, "sample-month", "2026-08")
    assert "Dropped 6 files" in dropped.stdout and "unregistered-births 4" in dropped.stdout
    assert (settings.mailbox_root / "police" / "inbox" / "police_hukou_202608.csv").read_bytes() == \
        generate_month(2026, 8).files["police"][0][1]
    written = cli(home, "sample-month", "2026-09", "--no-plant", "--supply-from", "2026-08", "--out", str(tmp_path / "m"))
    assert "Supplied: unregistered-births 2" in written.stdout
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["month"] == "2026-09" and all(not keys for keys in manifest["planted"].values())
    assert (tmp_path / "m" / "hospital" / "hospital_births_202609.csv").exists()
    wrong = cli(home, "sample-month", "2026-13", check=False)
    assert wrong.returncode != 0 and "YYYY-MM" in wrong.stderr
