"""Issue 3's "done means": every department's specimen, dropped into its own inbox, is
ingested by one `gateway run --once` with the counts the formats README gives."""

from __future__ import annotations

import json

from conftest import drop, run_gateway, specimen

EXPECTED = {
    # specimen: (department, accepted, rejected)
    "hospital_births_202610.csv": ("hospital", 3, 3),
    "police_hukou_202610.csv": ("police", 5, 1),
    "civil_affairs_202610.xml": ("civil-affairs", 4, 1),
    "school_enrolments_202609.csv": ("school", 4, 1),
    "housing_occupancy_page1.json": ("housing", 2, 0),
    "national_platform_inbound_20261102.xml": ("national-platform", 3, 0),
}


def test_every_specimen_in_one_pass(home, settings):
    for name, (department, _, _) in EXPECTED.items():
        drop(settings, department, name, specimen(name))
    result = run_gateway(home, "run", "--once", env={"GATEWAY_SETTLE_SECONDS": "0"})
    assert "Traceback" not in result.stderr
    for name, (department, accepted, rejected) in EXPECTED.items():
        receipt = json.loads((settings.mailbox_root / department / "outbox" / f"{name}.receipt.json").read_bytes())
        assert receipt["status"] == "processed", (name, receipt.get("reason"))
        assert (receipt["counts"]["accepted"], receipt["counts"]["rejected"]) == (accepted, rejected), name
        assert (settings.mailbox_root / department / "processed" / name).exists()
        report = settings.mailbox_root / department / "outbox" / f"{name}.errors.csv"
        assert report.exists() == bool(rejected), name
    verified = run_gateway(
        home, "receipts", "verify",
        *[str(settings.mailbox_root / d / "outbox" / f"{n}.receipt.json") for n, (d, _, _) in EXPECTED.items()],
    )
    assert verified.stdout.count("GENUINE") == len(EXPECTED) and "NOT GENUINE" not in verified.stdout
