"""Corrections: a record re-sent with the same business key and other content is a new
version, and everyone who received an earlier version receives it, marked as such."""

from __future__ import annotations

import csv
import io
import json

from conftest import drop, query, specimen

from gateway.receipts.keys import DepartmentKeys

SPECIMEN = "hospital_births_202610.csv"


def fixed(old: str, new: str) -> bytes:
    return specimen(SPECIMEN).decode("gb18030").replace(old, new).encode("gb18030")


def delivered(settings, recipient: str) -> list[tuple]:
    return query(
        settings,
        "SELECT id, status, file_name, records, corrections, withdrawals FROM delivery WHERE recipient = ? ORDER BY id",
        recipient,
    )


def read(settings, recipients, department: str, name: str) -> list[list[str]]:
    ring, _ = recipients[department]
    plain, _ = ring.decrypt(settings.mailbox_root / department / "outbox" / name)
    encoding = {"school": "gb18030", "police": "utf-8-sig"}[department]
    return list(csv.reader(io.StringIO(plain.decode(encoding), newline="")))


def test_a_correction_reaches_everyone_who_received_the_old_version(gateway, settings, register_recipients):
    drop(settings, "hospital", SPECIMEN, specimen(SPECIMEN))
    gateway.run_once()
    first = {d: delivered(settings, d)[0] for d in ("population-office", "school", "police")}

    # The hospital sends the first birth again with the address corrected (a new version).
    drop(settings, "hospital", "hospital_births_202610_fix.csv", fixed("环城南路12号", "环城南路21号"))
    [outcome] = gateway.run_once()
    assert (outcome.accepted, outcome.corrected, outcome.duplicates) == (1, 1, 2)

    for department in ("school", "police"):
        [_, (_, status, name, records, corrections, _)] = delivered(settings, department)
        assert (status, records, corrections) == ("delivered", 1, 1)
        original = read(settings, register_recipients, department, first[department][2])
        correction = read(settings, register_recipients, department, name)
        assert correction[0] == original[0]
        [row] = correction[1:]
        assert row[:3] == [original[1][0], "2", "更正"]  # the same reference, version 2, marked as a correction
        assert "广东省台山市台城街道环城南路21号" in row
    ring, _ = register_recipients["population-office"]
    [_, (_, _, name, *_)] = delivered(settings, "population-office")
    plain, _ = ring.decrypt(settings.mailbox_root / "population-office" / "outbox" / name)
    [line] = [json.loads(text) for text in plain.decode().splitlines()]
    assert (line["change"], line["version"], line["record"]) == ("correction", 2, "BirthEvent-1")

    # The audit trail: the correction names the delivery that carried the old version.
    rows = query(
        settings,
        "SELECT d.recipient, r.version, r.change, r.corrects_delivery_id FROM deliveryrecord r "
        "JOIN delivery d ON d.id = r.delivery_id WHERE r.version = 2 ORDER BY d.recipient",
    )
    assert rows == [
        ("police", 2, "correction", first["police"][0]),
        ("population-office", 2, "correction", first["population-office"][0]),
        ("school", 2, "correction", first["school"][0]),
    ]


def test_a_change_the_recipient_may_not_see_is_not_sent_to_it(gateway, settings, register_recipients):
    drop(settings, "hospital", SPECIMEN, specimen(SPECIMEN))
    gateway.run_once()
    drop(settings, "hospital", "weight_fix.csv", fixed(",3250,", ",3260,"))  # the birth weight: only the population office sees it
    [outcome] = gateway.run_once()
    assert outcome.corrected == 1
    assert [d[1:4] for d in delivered(settings, "school")] == [("delivered", "DELIVERY-2.csv.gpg", 3), ("empty", None, 0)]
    assert len(list((settings.mailbox_root / "school" / "outbox").iterdir())) == 1
    assert [d[1] for d in delivered(settings, "police")] == ["delivered", "empty"]
    assert [(d[1], d[3], d[4]) for d in delivered(settings, "population-office")] == [("delivered", 3, 0), ("delivered", 1, 1)]


def test_a_record_the_agreement_no_longer_admits_is_withdrawn(gateway, settings, register_recipients):
    (settings.home / "agreements.toml").write_text(
        """
[[agreements]]
name = "school-county-births"
recipient = "school"
contracts = ["BirthEvent"]
fields = ["child.name", "home_address"]
purpose = "planning school places in the county"
format = "csv-gb18030"
[agreements.filters]
division_prefix = "440781"
""",
        encoding="utf-8",
    )
    drop(settings, "hospital", SPECIMEN, specimen(SPECIMEN))
    gateway.run_once()
    [(_, _, first, records, _, _)] = delivered(settings, "school")
    assert records == 2  # 440703 is outside the county
    # The first child's registered division is corrected to 440703: no longer the school's.
    data = fixed("环城南路12号,440781", "环城南路12号,440703")
    drop(settings, "hospital", "division_fix.csv", data)
    gateway.run_once()
    [_, (_, status, name, records, corrections, withdrawals)] = delivered(settings, "school")
    assert (status, records, corrections, withdrawals) == ("delivered", 1, 0, 1)
    [row] = read(settings, register_recipients, "school", name)[1:]
    reference = read(settings, register_recipients, "school", first)[1][0]
    assert row == [reference, "2", "撤回", "", ""]  # only the reference: nothing the school may no longer see

    # Corrected back into the county (and the name too): the school receives it again, as new.
    drop(settings, "hospital", "division_back.csv", fixed("陈小明", "陈晓明"))
    gateway.run_once()
    last = delivered(settings, "school")[-1]
    [row] = read(settings, register_recipients, "school", last[2])[1:]
    assert row[:4] == [reference, "3", "新增", "陈晓明"]


def test_a_correction_never_overtakes_the_record_it_corrects(gateway, settings, recipients):
    drop(settings, "hospital", SPECIMEN, specimen(SPECIMEN))
    gateway.run_once()
    drop(settings, "hospital", "fix.csv", fixed("环城南路12号", "环城南路21号"))
    gateway.run_once()
    assert [d[1] for d in delivered(settings, "school")] == ["held", "held"]  # no key yet

    ring, fingerprint = recipients["school"]
    DepartmentKeys(settings.keys_dir).import_key(ring.export(fingerprint), "school")
    ring.trust_gateway(settings.keys_dir)
    gateway.routing.run_pass()
    [(first, status1, name1, records1, _, _), (second, status2, name2, records2, corrections, _)] = delivered(settings, "school")
    assert (status1, records1, status2, records2, corrections) == ("delivered", 3, "delivered", 1, 1)
    order = query(settings, "SELECT id FROM delivery WHERE recipient = 'school' ORDER BY delivered_at, id")
    assert [row[0] for row in order] == [first, second]
    [row] = read(settings, recipients, "school", name2)[1:]
    assert row[1:3] == ["2", "更正"]
    assert query(settings, "SELECT corrects_delivery_id FROM deliveryrecord WHERE delivery_id = ?", second) == [(first,)]


def test_an_older_version_never_follows_a_newer_one(gateway, settings, register_recipients):
    """Versions are given at commit; were an exchange with version 1 routed after the one
    with version 2, the recipient must not be sent the older content as a correction."""
    drop(settings, "hospital", SPECIMEN, specimen(SPECIMEN))
    gateway.run_once()
    drop(settings, "hospital", "fix.csv", fixed("环城南路12号", "环城南路21号"))
    gateway.run_once()
    from gateway.routing.delivery import Router

    router: Router = gateway.routing
    # Deliver the first exchange's records again, as if routed late, into a new delivery.
    agreements = router.agreements()
    from gateway.store import session_scope
    from gateway.store.models import Delivery, DeliveryExchange

    with session_scope(gateway.engine) as session:
        late = Delivery(recipient="school", agreement="schools-births", contract="BirthEvent", batch_key="late", format="csv-gb18030")
        session.add(late)
        session.flush()
        session.add(DeliveryExchange(delivery_id=late.id, exchange_id=1))
        late_id = late.id
    router.deliver_due(agreements, only=[late_id])
    assert query(settings, "SELECT status, records FROM delivery WHERE id = ?", late_id) == [("empty", 0)]
