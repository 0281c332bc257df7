"""Signed drops: a department with a registered key must sign what it drops (NAME.asc)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from conftest import drop, specimen
from gpg_helpers import DepartmentKeyring

from gateway.masking import mask_file_name
from gateway.receipts.check import verify_receipt
from gateway.receipts.keys import DepartmentKeys

SPECIMEN = "hospital_births_202610.csv"


@pytest.fixture(scope="module")
def keyring() -> Iterator[tuple[DepartmentKeyring, str, str]]:
    ring = DepartmentKeyring()
    hospital, stranger = ring.new_key("Hospital Exchange"), ring.new_key("Someone Else")
    yield ring, hospital, stranger
    ring.close()


@pytest.fixture
def registered(settings, keyring):
    ring, hospital, _ = keyring
    DepartmentKeys(settings.keys_dir).import_key(ring.export(hospital), "hospital")
    return keyring


def variant(n: int) -> bytes:
    """The specimen with other certificate numbers, so each drop stores new records."""
    text = specimen(SPECIMEN).decode("gb18030").replace("Q4407812600", f"Q44078127{n}0")
    return text.encode("gb18030")


def folder(settings, name: str) -> list[str]:
    return sorted(p.name for p in (settings.mailbox_root / "hospital" / name).iterdir())


def test_a_well_signed_drop_is_taken_and_its_signature_moves_with_it(gateway, settings, registered):
    ring, hospital, _ = registered
    data, signature = variant(1), ring.sign(variant(1), hospital)
    drop(settings, "hospital", "births.csv.asc", signature)
    drop(settings, "hospital", "births.csv", data)
    [outcome] = gateway.run_once()
    assert (outcome.status, outcome.accepted) == ("processed", 3)
    assert folder(settings, "inbox") == []
    assert folder(settings, "processed") == ["births.csv", "births.csv.asc"]
    assert (settings.mailbox_root / "hospital" / "processed" / "births.csv.asc").read_bytes() == signature


def test_a_signature_by_another_key_is_refused_at_once(gateway, settings, registered):
    ring, _, stranger = registered
    data = variant(2)
    drop(settings, "hospital", "births.csv.asc", ring.sign(data, stranger))
    drop(settings, "hospital", "births.csv", data)
    [outcome] = gateway.run_once()
    assert outcome.status == "rejected" and outcome.accepted == 0
    assert "registered key" in outcome.reason and mask_file_name("births.csv.asc") in outcome.reason
    assert folder(settings, "rejected") == ["births.csv", "births.csv.asc", "births.csv.errors.csv"]
    receipt_path = settings.mailbox_root / outcome.receipt
    receipt = json.loads(receipt_path.read_bytes())
    assert receipt["status"] == "rejected" and "signature" in receipt["reason"]
    assert verify_receipt(receipt_path, settings.keys_dir).genuine  # the refusal itself is receipted and signed


def test_a_signature_over_other_bytes_is_refused(gateway, settings, registered):
    ring, hospital, _ = registered
    drop(settings, "hospital", "births.csv.asc", ring.sign(variant(3), hospital))
    drop(settings, "hospital", "births.csv", variant(4))
    [outcome] = gateway.run_once()
    assert outcome.status == "rejected" and "signature" in outcome.reason


def test_a_drop_waits_for_its_signature_then_is_refused(gateway, settings, registered):
    ring, hospital, _ = registered
    drop(settings, "hospital", "waiting.csv", variant(5), age=60)
    assert gateway.run_once() == []
    assert folder(settings, "inbox") == ["waiting.csv"]
    # The signature arrives within the wait: the drop is taken.
    drop(settings, "hospital", "waiting.csv.asc", ring.sign(variant(5), hospital))
    [outcome] = gateway.run_once()
    assert outcome.status == "processed"
    # A drop older than the wait with no signature is refused, saying why.
    drop(settings, "hospital", "late.csv", variant(6), age=settings.signature_wait_seconds + 60)
    [outcome] = gateway.run_once()
    assert outcome.status == "rejected"
    assert mask_file_name("late.csv.asc") in outcome.reason and "did not arrive" in outcome.reason
    assert "late.csv" in folder(settings, "rejected")


def test_the_wait_is_configurable(gateway, settings, registered):
    settings.signature_wait_seconds = 30
    drop(settings, "hospital", "short.csv", variant(7), age=60)
    [outcome] = gateway.run_once()
    assert outcome.status == "rejected" and "30s" in outcome.reason


def test_signature_files_are_never_taken_as_drops(gateway, settings, keyring):
    ring, hospital, _ = keyring
    # No key registered: drops are taken unsigned; a .asc beside one moves along with it,
    # and a lone .asc is left alone.
    drop(settings, "hospital", "lone.csv.asc", ring.sign(b"x", hospital))
    drop(settings, "hospital", "births.csv.asc", ring.sign(variant(8), hospital))
    drop(settings, "hospital", "births.csv", variant(8))
    outcomes = gateway.run_once()
    assert [(o.file_name, o.status) for o in outcomes] == [("births.csv", "processed")]
    assert folder(settings, "processed") == ["births.csv", "births.csv.asc"]
    assert folder(settings, "inbox") == ["lone.csv.asc"]


def test_removing_the_key_lifts_the_rule(gateway, settings, registered):
    ring, hospital, _ = registered
    DepartmentKeys(settings.keys_dir).remove("hospital")
    drop(settings, "hospital", "births.csv", variant(9))
    [outcome] = gateway.run_once()
    assert outcome.status == "processed"


def test_only_the_departments_own_keys_count(gateway, settings, keyring):
    ring, hospital, stranger = keyring
    # The stranger's key is registered, but for the police: it cannot sign hospital drops.
    DepartmentKeys(settings.keys_dir).import_key(ring.export(stranger), "police")
    DepartmentKeys(settings.keys_dir).import_key(ring.export(hospital), "hospital")
    drop(settings, "hospital", "births.csv.asc", ring.sign(variant(10), stranger))
    drop(settings, "hospital", "births.csv", variant(10))
    [outcome] = gateway.run_once()
    assert outcome.status == "rejected" and f"expected a signature by {hospital}" in outcome.reason
