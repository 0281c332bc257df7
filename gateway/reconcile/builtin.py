"""The built-in reconciliation rules, registered through `register_reconciliations` like
any plugin's (`trylast=True`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from gateway.hookspecs import hookimpl
from gateway.reconcile.base import Evidence, Reconciliation, StoredRecord, Subject, as_date, at, identifier


POLICE = "police"  # the household registry: the one department whose DeathEvent is a 死亡注销


def _person(payload: dict, prefix: str) -> tuple[str | None, object]:
    return at(payload, f"{prefix}.name"), as_date(at(payload, f"{prefix}.birth_date"))


def _people(records: Iterable[StoredRecord], prefix: str) -> Iterator[Evidence]:
    """Each record as evidence for the person under `prefix` (`deceased`, `holder`): their
    ID number to match exactly, their name and birth date for the fallback."""
    for record in records:
        name, born = _person(record.payload, prefix)
        yield Evidence(record, identifier(at(record.payload, f"{prefix}.id_number")), name, born)  # type: ignore[arg-type]


class _BirthCertificateRule(Reconciliation):
    """A birth registered by one side (`registration` hospital or police) whose birth
    certificate number (出生医学证明编号, CSYXZMBH) the other side never cited. The two
    birth rules are mirror images of each other."""

    subject_contract = evidence_contract = "BirthEvent"
    matching_keys = ("birth_certificate_no", "birth_certificate_no")
    grace = "1 month"
    registered_by: str
    evidence_from: str
    detail_field: tuple[str, str]  # (detail name, payload field) shown with each item

    def subjects(self, records: Iterable[StoredRecord]) -> Iterator[Subject]:
        label, field = self.detail_field
        for record in records:
            p = record.payload
            born = as_date(at(p, "child.birth_date"))
            if p.get("registration") != self.registered_by or born is None:
                continue
            cert = identifier(p.get("birth_certificate_no"))
            name, _ = _person(p, "child")
            yield Subject(
                record, cert or f"record-{record.id}", cert, born, "birth_certificate_no", "document_number",
                name, "child.name", born, {"sex": at(p, "child.sex"), label: p.get(field)},
            )

    def evidence(self, records: Iterable[StoredRecord]) -> Iterator[Evidence]:
        for record in records:
            p = record.payload
            if p.get("registration") == self.evidence_from:
                name, born = _person(p, "child")
                yield Evidence(record, identifier(p.get("birth_certificate_no")), name, born)  # type: ignore[arg-type]


class UnregisteredBirths(_BirthCertificateRule):
    """A hospital birth (出生医学证明) with no police newborn registration (出生登记) citing
    its certificate number (CSYXZMBH) one month after the birth: a child not registered
    in a household (未落户)."""

    name = "unregistered-births"
    description = "hospital birth with no police newborn registration (CSYXZMBH) a month after the birth"
    notify = ("police", "hospital")
    registered_by, evidence_from = "hospital", "police"
    detail_field = ("division", "registered_division_code")


class BirthsWithoutHospitalRecord(_BirthCertificateRule):
    """A police newborn registration whose birth certificate number matches no hospital
    birth: a home birth, or a birth outside the county (在外地出生)."""

    name = "births-without-hospital-record"
    description = "police newborn registration whose certificate number matches no hospital birth"
    notify = ("hospital", "police")
    registered_by, evidence_from = "police", "hospital"
    detail_field = ("registered_on", "registered_on")


class DeathsWithoutCremation(Reconciliation):
    """A police death cancellation (死亡注销) with no cremation (火化登记) of the same ID
    number 15 days after the death."""

    name = "deaths-without-cremation"
    description = "police death cancellation with no cremation of the same ID number 15 days after the death"
    subject_contract = "DeathEvent"
    evidence_contract = "CremationEvent"
    matching_keys = ("deceased.id_number", "deceased.id_number")
    grace = "15 days"
    notify = ("civil-affairs", "police")

    def subjects(self, records: Iterable[StoredRecord]) -> Iterator[Subject]:
        for record in records:
            if record.department != POLICE:  # another department's report of a death is no 死亡注销
                continue
            p = record.payload
            died = as_date(p.get("death_date"))
            number = identifier(at(p, "deceased.id_number"))
            if died is None or number is None:
                continue
            name, born = _person(p, "deceased")
            yield Subject(record, number, number, died, "deceased.id_number", "id_number", name, "deceased.name", born)  # type: ignore[arg-type]

    def evidence(self, records: Iterable[StoredRecord]) -> Iterator[Evidence]:
        return _people(records, "deceased")


class CremationsWithoutDeath(Reconciliation):
    """A cremation whose ID number has no police death cancellation 15 days after the
    cremation. A cremation recorded without the ID number is a discrepancy (keyed by its
    certificate number, 证号) that the fallback may propose a match for."""

    name = "cremations-without-death"
    description = "cremation whose ID number has no police death cancellation 15 days after the cremation"
    subject_contract = "CremationEvent"
    evidence_contract = "DeathEvent"
    matching_keys = ("deceased.id_number", "deceased.id_number")
    grace = "15 days"
    notify = ("police", "civil-affairs")

    def subjects(self, records: Iterable[StoredRecord]) -> Iterator[Subject]:
        for record in records:
            p = record.payload
            cremated = as_date(p.get("cremation_date"))
            if cremated is None:
                continue
            number = identifier(at(p, "deceased.id_number"))
            name, born = _person(p, "deceased")
            if number is not None:
                yield Subject(record, number, number, cremated, "deceased.id_number", "id_number", name, "deceased.name", born)  # type: ignore[arg-type]
            else:
                cert = identifier(p.get("certificate_no")) or f"record-{record.id}"
                yield Subject(record, cert, None, cremated, "certificate_no", "document_number", name, "deceased.name", born,  # type: ignore[arg-type]
                              {"id_number": "missing"})

    def evidence(self, records: Iterable[StoredRecord]) -> Iterator[Evidence]:
        # only the police's 死亡注销 cancels the registration; a DeathEvent another
        # department reports (keyed by its sender) does not answer for it
        return _people((record for record in records if record.department == POLICE), "deceased")


class TenantsWithoutResidencePermit(Reconciliation):
    """A housing occupant with role tenant (承租人), still living in the property and moved
    in more than 30 days ago, with no residence permit (居住证) for the same ID number.

    Only a property's latest occupancy record (by `updated_at`) counts: a tenant who has
    moved out, or who is gone from the latest record, is no longer a subject."""

    name = "tenants-without-residence-permit"
    description = "tenant moved in more than 30 days ago with no residence permit for the same ID number"
    subject_contract = "HousingOccupancy"
    evidence_contract = "ResidencePermit"
    matching_keys = ("occupants.id_number", "holder.id_number")
    grace = "30 days"
    notify = ("police", "housing")

    def subjects(self, records: Iterable[StoredRecord]) -> Iterator[Subject]:
        latest: dict[str, StoredRecord] = {}
        for record in records:
            cert = str(record.payload.get("property_cert_no"))
            current = latest.get(cert)
            if current is None or str(record.payload.get("updated_at")) > str(current.payload.get("updated_at")):
                latest[cert] = record
        for record in latest.values():
            for index, occupant in enumerate(record.payload.get("occupants") or []):
                moved_in = as_date(occupant.get("move_in"))
                if occupant.get("role") != "tenant" or occupant.get("move_out") or moved_in is None:
                    continue
                number = identifier(occupant.get("id_number"))
                yield Subject(
                    record, number or f"record-{record.id}-occupant-{index + 1}", number, moved_in,
                    "occupants.id_number", "id_number", occupant.get("name"), "occupants.name",
                    as_date(occupant.get("birth_date")), {"division": record.payload.get("division_code")},
                )

    def evidence(self, records: Iterable[StoredRecord]) -> Iterator[Evidence]:
        return _people(records, "holder")


BUILTIN = (
    UnregisteredBirths,
    BirthsWithoutHospitalRecord,
    DeathsWithoutCremation,
    CremationsWithoutDeath,
    TenantsWithoutResidencePermit,
)


@hookimpl(trylast=True)
def register_reconciliations(register):  # type: ignore[no-untyped-def]
    for rule in BUILTIN:
        register(rule)
