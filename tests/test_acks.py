"""Acknowledgements: a recipient drops ACK-<delivery id>.json (optionally signed) into its
inbox; the gateway records who received what, and lists what is overdue."""

from __future__ import annotations

import csv
import hashlib
import json

import pytest
from conftest import drop, execute, query, run_gateway, specimen

SPECIMEN = "hospital_births_202610.csv"


def delivered(gateway, settings) -> dict[str, tuple[int, str, str]]:
    """A hospital drop fanned out: recipient -> (delivery id, file name, sha256)."""
    drop(settings, "hospital", SPECIMEN, specimen(SPECIMEN))
    gateway.run_once()
    rows = query(settings, "SELECT recipient, id, file_name, sha256 FROM delivery WHERE status = 'delivered'")
    return {recipient: (delivery_id, name, sha) for recipient, delivery_id, name, sha in rows}


def folder(settings, department: str, name: str) -> list[str]:
    return sorted(p.name for p in (settings.mailbox_root / department / name).iterdir())


def ack_state(settings, delivery_id: int) -> tuple:
    return query(settings, "SELECT status, acknowledged_at IS NOT NULL, ack_signed_by FROM delivery WHERE id = ?", delivery_id)[0]


def refusal(settings, department: str, name: str) -> str:
    with open(settings.mailbox_root / department / "rejected" / f"{name}.errors.csv", encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[1][5]


def test_an_acknowledgement_is_matched_recorded_and_moved(gateway, settings, register_recipients):
    sent = delivered(gateway, settings)
    school_id, name, sha256 = sent["school"]
    drop(settings, "school", f"ACK-{school_id}.json", json.dumps({"delivery": school_id, "sha256": sha256}).encode())
    gateway.run_once()
    assert ack_state(settings, school_id) == ("acknowledged", 1, None)
    assert folder(settings, "school", "inbox") == [] and folder(settings, "school", "processed") == [f"ACK-{school_id}.json"]
    assert query(settings, "SELECT count(*) FROM exchange WHERE department = 'school'") == [(0,)]  # never a data drop
    assert query(settings, "SELECT department, delivery_id, status FROM acknowledgement") == [("school", school_id, "accepted")]
    # The same acknowledgement again changes nothing.
    drop(settings, "school", f"ACK-{school_id}.json", json.dumps({"delivery": school_id, "sha256": sha256}).encode())
    gateway.run_once()
    assert query(settings, "SELECT count(*) FROM acknowledgement") == [(1,)]
    assert len(folder(settings, "school", "processed")) == 2


def test_unacknowledged_deliveries_past_their_deadline_are_listed(gateway, settings, register_recipients, home):
    sent = delivered(gateway, settings)
    listed = run_gateway(home, "deliveries", "list", "--unacknowledged").stdout
    assert "0 delivered file(s) past their acknowledgement deadline" in listed  # 72 hours to go

    police_id = sent["police"][0]
    execute(settings, f"UPDATE delivery SET ack_due_at = '2000-01-01 00:00:00' WHERE id <> {police_id}")
    drop(settings, "school", f"ACK-{sent['school'][0]}.json", b"{}")
    gateway.run_once()
    listed = run_gateway(home, "deliveries", "list", "--unacknowledged").stdout
    assert "1 delivered file(s) past their acknowledgement deadline" in listed
    assert sent["population-office"][1] in listed and sent["school"][1] not in listed and sent["police"][1] not in listed


def test_an_ack_for_an_unknown_delivery_is_refused_with_a_report(gateway, settings, register_recipients):
    delivered(gateway, settings)
    drop(settings, "school", "ACK-999.json", b"{}")
    drop(settings, "school", "ACK-draft.json", b"{}")
    gateway.run_once()
    assert folder(settings, "school", "inbox") == []
    assert folder(settings, "school", "rejected") == sorted(
        ["ACK-999.json", "ACK-999.json.errors.csv", "ACK-draft.json", "ACK-draft.json.errors.csv"]
    )
    assert refusal(settings, "school", "ACK-999.json") == "no delivery 999 was delivered to school"
    assert "ACK-<delivery id>.json" in refusal(settings, "school", "ACK-draft.json")
    assert query(settings, "SELECT status FROM acknowledgement ORDER BY id") == [("refused",), ("refused",)]
    assert query(settings, "SELECT count(*) FROM exchange WHERE department = 'school'") == [(0,)]


def test_an_ack_for_another_departments_delivery_is_refused_like_an_unknown_one(gateway, settings, register_recipients):
    sent = delivered(gateway, settings)
    police_id = sent["police"][0]
    drop(settings, "school", f"ACK-{police_id}.json", b"{}")
    gateway.run_once()
    assert refusal(settings, "school", f"ACK-{police_id}.json") == f"no delivery {police_id} was delivered to school"
    assert ack_state(settings, police_id)[:2] == ("delivered", 0)


def test_an_ack_naming_other_bytes_or_another_delivery_is_refused(gateway, settings, register_recipients):
    sent = delivered(gateway, settings)
    school_id = sent["school"][0]
    drop(settings, "school", f"ACK-{school_id}.json", json.dumps({"sha256": hashlib.sha256(b"x").hexdigest()}).encode())
    drop(settings, "police", f"ACK-{sent['police'][0]}.json", json.dumps({"delivery": school_id}).encode())
    drop(settings, "population-office", f"ACK-{sent['population-office'][0]}.json", b"not json")
    gateway.run_once()
    assert "acknowledges a file with sha256" in refusal(settings, "school", f"ACK-{school_id}.json")
    assert f"names delivery '{school_id}' inside" in refusal(settings, "police", f"ACK-{sent['police'][0]}.json")
    assert "not a JSON object" in refusal(settings, "population-office", f"ACK-{sent['population-office'][0]}.json")
    assert query(settings, "SELECT count(*) FROM delivery WHERE status = 'acknowledged'") == [(0,)]


@pytest.fixture
def signed_acks(gateway):
    gateway.settings.require_signed_acks = True
    gateway.settings.signature_wait_seconds = 0.0
    return gateway


def test_a_well_signed_ack_is_accepted_and_names_its_signer(signed_acks, settings, register_recipients):
    gateway = signed_acks
    sent = delivered(gateway, settings)
    ring, fingerprint = register_recipients["school"]
    school_id = sent["school"][0]
    body = json.dumps({"delivery": school_id}).encode()
    drop(settings, "school", f"ACK-{school_id}.json.asc", ring.sign(body, fingerprint))
    drop(settings, "school", f"ACK-{school_id}.json", body)
    gateway.run_once()
    assert ack_state(settings, school_id) == ("acknowledged", 1, fingerprint)
    assert folder(settings, "school", "processed") == [f"ACK-{school_id}.json", f"ACK-{school_id}.json.asc"]


def test_a_forged_ack_signature_is_refused_when_signed_acks_are_required(signed_acks, settings, register_recipients):
    gateway = signed_acks
    sent = delivered(gateway, settings)
    police_ring, police_key = register_recipients["police"]
    school_id = sent["school"][0]
    body = json.dumps({"delivery": school_id}).encode()
    drop(settings, "school", f"ACK-{school_id}.json.asc", police_ring.sign(body, police_key))  # the police's key, not the school's
    drop(settings, "school", f"ACK-{school_id}.json", body)
    police_id = sent["police"][0]
    police_body = json.dumps({"delivery": police_id}).encode()
    drop(settings, "police", f"ACK-{police_id}.json.asc", police_ring.sign(b"other bytes", police_key))
    drop(settings, "police", f"ACK-{police_id}.json", police_body)
    office_id = sent["population-office"][0]
    drop(settings, "population-office", f"ACK-{office_id}.json", b"{}")  # unsigned
    gateway.run_once()
    assert "is not a good signature by school's registered key" in refusal(settings, "school", f"ACK-{school_id}.json")
    assert "is not a good signature by police's registered key" in refusal(settings, "police", f"ACK-{police_id}.json")
    assert "signed acknowledgements are required" in refusal(settings, "population-office", f"ACK-{office_id}.json")
    assert folder(settings, "school", "rejected") == [
        f"ACK-{school_id}.json", f"ACK-{school_id}.json.asc", f"ACK-{school_id}.json.errors.csv"
    ]
    assert query(settings, "SELECT count(*) FROM delivery WHERE status = 'acknowledged'") == [(0,)]
    assert query(settings, "SELECT count(*) FROM auditevent WHERE action = 'ack_refused'") == [(3,)]


def test_an_unsigned_ack_waits_for_its_signature_before_it_is_refused(gateway, settings, register_recipients):
    sent = delivered(gateway, settings)
    gateway.settings.require_signed_acks = True  # signature_wait_seconds stays an hour
    school_id = sent["school"][0]
    drop(settings, "school", f"ACK-{school_id}.json", b"{}", age=5)
    gateway.run_once()
    assert folder(settings, "school", "inbox") == [f"ACK-{school_id}.json"]  # waiting, not taken as a drop
    assert query(settings, "SELECT count(*) FROM acknowledgement") == [(0,)]


@pytest.mark.parametrize("department", ["housing", "hospital", "population-office"])
def test_ack_files_are_never_taken_as_data_drops(gateway, settings, department):
    """Even in the housing inbox, whose adapter reads .json drops."""
    drop(settings, department, "ACK-1.json", json.dumps({"delivery": 1}).encode())
    drop(settings, department, "ack-2.JSON", b"{}")
    assert gateway.run_once() == []
    assert query(settings, "SELECT count(*) FROM exchange") == [(0,)]
    # Each one still has an outcome a person sees: refused as an acknowledgement, with why.
    assert folder(settings, department, "inbox") == []
    assert sorted(folder(settings, department, "rejected")) == sorted(
        ["ACK-1.json", "ACK-1.json.errors.csv", "ack-2.JSON", "ack-2.JSON.errors.csv"]
    )


def test_a_housing_page_whose_name_starts_with_ack_is_a_drop(gateway, settings):
    """Housing receives no deliveries: `ack-…` there is a page like any other."""
    page = specimen("housing_occupancy_page1.json")
    drop(settings, "housing", "ack-2026-11-page1.json", page)
    [outcome] = gateway.run_once()
    assert (outcome.file_name, outcome.status) == ("ack-2026-11-page1.json", "processed")
    assert outcome.accepted > 0


def test_acknowledgements_show_in_the_audit_trail(gateway, settings, register_recipients, home):
    sent = delivered(gateway, settings)
    drop(settings, "school", f"ACK-{sent['school'][0]}.json", b"{}")
    run_gateway(home, "deliveries", "send", env={"GATEWAY_SETTLE_SECONDS": "0"})
    shown = run_gateway(home, "audit", "list", "--recipient", "school", "--events").stdout
    assert "acknowledged" in shown and sent["school"][1] in shown
    assert shown.count("hospital|Q4407812600") == 3
