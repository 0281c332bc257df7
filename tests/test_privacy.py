"""Privacy: no log line, report, exception message or table shows a full ID number or name.

The whole suite is scanned by the session fixture `privacy_scan` (tests/conftest.py); these
tests prove that its scanner is not trivially passing, and check the routing commands."""

from __future__ import annotations

import logging

import pytest
from conftest import PRIVACY, PrivacyState, drop, run_gateway, specimen

from gateway.store.audit import known_ids, mask_text
from gateway.receipts.keys import DepartmentKeys
from gateway.routing.delivery import safe_error

# Built, never written out whole: a literal would be found in this file's own source by
# tracebacks, and the known-number list is read from the test sources.
PLANTED = "44078119" + "9203154325"  # the first mother in the hospital specimen
INVALID = "44078119" + "8802140660"  # a wrong check character: still somebody's mistyped number
GENERATED = "11010519" + "491231002X"  # not in any specimen, with a right check character


@pytest.mark.backend_independent
def test_the_scanner_catches_a_planted_unmasked_id_number(tmp_path):
    scanner = PRIVACY.scanner or PRIVACY.make_scanner()
    assert PLANTED in scanner.known and INVALID in scanner.known
    findings = scanner.scan(f"line one\nexchange 7: mother {PLANTED} refused\n", "planted.log")
    assert [str(f) for f in findings] == ["planted.log:2: unmasked ID number 440781***********5"]
    assert scanner.scan(f"a typo {INVALID}.")  # known, although its check character is wrong
    assert scanner.scan(f"generated,{GENERATED.lower()},row")  # unknown, but a right check character
    # Masked numbers, longer digit runs, hashes and timestamps are not findings.
    clean = "440781***********5 4407811992031543251 sha256 9f86d081884c7d659a2feaa0c55ad015 1795446397 12440781MB2C23455K"
    assert scanner.scan(clean) == []

    report = tmp_path / "home" / "mailbox" / "hospital" / "outbox" / "x.csv.errors.csv"
    report.parent.mkdir(parents=True)
    report.write_text(f"\ufeff行号,值\r\n5,{PLANTED}\r\n", encoding="utf-8")
    try:
        state = PrivacyState()
        state.scanner = scanner
        state.collect_files([tmp_path / "home"])
        assert [f.masked for f in state.findings()] == ["440781***********5"]
    finally:
        report.unlink()  # planted for this check only, not for the session's scan


@pytest.mark.backend_independent
def test_the_scanner_catches_a_full_name_of_the_specimens():
    scanner = PRIVACY.scanner or PRIVACY.make_scanner()
    assert "陈小明" in scanner.names and "黄\U0002003e然" in scanner.names
    [finding] = scanner.scan("newborn 陈小明 registered")
    assert (finding.kind, finding.masked) == ("full name", "陈**")
    assert scanner.scan("newborn 陈** registered") == []


def test_the_session_scan_is_collecting_logs_and_command_output(home):
    before = len(PRIVACY.logs.texts)
    logging.getLogger("gateway").debug("privacy self-test: masked %s", "440781***********5")
    assert len(PRIVACY.logs.texts) == before + 1 and "privacy self-test" in PRIVACY.logs.texts[-1][1]
    outputs = len(PRIVACY.outputs)
    run_gateway(home, "agreements", "check")
    assert len(PRIVACY.outputs) == outputs + 1 and "agreement(s) valid" in PRIVACY.outputs[-1][1]


@pytest.mark.backend_independent
def test_known_ids_come_from_the_specimens_and_test_data():
    found = known_ids([specimen("police_hukou_202610.csv").decode("utf-8-sig"), f"x {GENERATED} y"])
    assert "440781193804050137" in found and GENERATED in found


@pytest.mark.backend_independent
def test_error_messages_are_masked():
    secret = PLANTED
    assert safe_error(ValueError(f"duplicate key ({secret}, 2026-10-11)")) == "ValueError: duplicate key (440781***********5, 2026-10-11)"
    assert mask_text(f"{secret}|2026-10-11") == "440781***********5|2026-10-11"


def test_routing_commands_show_ids_masked(gateway, settings, recipients, home):
    """Civil affairs receives deaths, whose business key is the deceased's ID number."""
    ring, fingerprint = recipients["civil-affairs"]
    DepartmentKeys(settings.keys_dir).import_key(ring.export(fingerprint), "civil-affairs")
    drop(settings, "police", "police_hukou_202610.csv", specimen("police_hukou_202610.csv"))  # unsigned: police has no key here
    gateway.run_once()
    audit = run_gateway(home, "audit", "list", "--recipient", "civil-affairs", "--events").stdout
    assert "440781***********7|2026-10-11" in audit and "civil-affairs-deaths" in audit
    deliveries = run_gateway(home, "deliveries", "list", "--all").stdout
    [delivery_id] = [line.split("│")[1].strip() for line in deliveries.splitlines() if "civil-affairs" in line and "DeathEvent" in line]
    shown = run_gateway(home, "deliveries", "show", delivery_id).stdout
    for text in (audit, deliveries, shown):
        assert "440781193804050137" not in text and "刘大爷" not in text
    assert "440781***********7" in shown


def test_gateway_audit_scan_finds_unmasked_numbers_in_logs(home, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "clean.log").write_text("exchange 1: 440781***********5 refused\n", encoding="utf-8")
    assert run_gateway(home, "audit", "scan", str(logs)).returncode == 0
    (logs / "leaky.log").write_text(f"exchange 2: {GENERATED} refused\n", encoding="gb18030")
    try:
        result = run_gateway(home, "audit", "scan", str(logs), check=False)
    finally:
        (logs / "leaky.log").unlink()  # planted for this check only, not for the session's scan
    assert result.returncode == 1
    assert "leaky.log:1: unmasked ID number 110105***********X" in result.stdout and GENERATED not in result.stdout
