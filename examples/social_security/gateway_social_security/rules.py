"""社保局报告死亡而公安未注销户口: a death the bureau was told of with no police death
registration (死亡注销) of the same person a month later. The police follow it up; the
bureau learns when the registration arrives (the discrepancy then closes as matched)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from gateway.reconcile import Evidence, Reconciliation, Subject
from gateway.reconcile.base import StoredRecord, as_date, at, identifier


class PensionDeathsUnregistered(Reconciliation):
    name = "pension-deaths-unregistered"
    description = "社保局报告的死亡一个月后仍无公安死亡注销 (a reported pensioner's death with no police death registration)"
    subject_contract = "PensionDeathReport"
    evidence_contract = "DeathEvent"
    matching_keys = ("deceased.id_number", "deceased.id_number")
    grace = "1 month"
    notify = ("police", "social-security")

    def subjects(self, records: Iterable[StoredRecord]) -> Iterator[Subject]:
        for record in records:
            p = record.payload
            number = identifier(at(p, "deceased.id_number"))
            died = as_date(p.get("death_date"))
            if number is None or died is None:
                continue
            yield Subject(
                record, number, number, died, "deceased.id_number", "id_number",
                at(p, "deceased.name"), "deceased.name", None, {"death_date": p.get("death_date")},
            )

    def evidence(self, records: Iterable[StoredRecord]) -> Iterator[Evidence]:
        for record in records:
            number = identifier(at(record.payload, "deceased.id_number"))
            if number is not None:
                yield Evidence(record, number, at(record.payload, "deceased.name"), None)
