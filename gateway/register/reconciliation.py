"""The register's disagreements (来源不一致, 多元校核) as a reconciliation rule.

A disagreement of the register (gateway/register/discrepancies.py: the authoritative source
and another say different things about a person, or a source records a death the police has
not) is a discrepancy of the rule `register-disagreements`, through the same hook as any
plugin's rule (`register_reconciliations`) and the same machinery: `gateway reconcile`
lists it, the daily reconcile job opens and closes it, the discrepancy lists delivered to
the departments carry it (to the two sources that disagree), `gateway reconcile resolve`
resolves it, the console's reconciliation page shows it, the early warning counts it.

- Its key is the person's ID number, the attribute and the first 16 hex digits of the
  disagreement's fingerprint: the same facts keep the same discrepancy; a source that sends
  another value makes a new one (the old one closes).
- It closes by itself when the sources agree (`matched`), and as `resolved` when a clerk
  resolved it in the register (`gateway register resolve`); resolving it through `gateway
  reconcile resolve` records the register's resolution too, so both views agree.
- What it shows is masked: the person's number, a name value; codes and dates as they are.

May import: `gateway.reconcile` (below it), `gateway.register`, `gateway.store`, the top-level modules.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from gateway.hookspecs import hookimpl
from gateway.masking import mask_name
from gateway.reconcile.base import DerivedReconciliation, StoredRecord, Subject
from gateway.register.discrepancies import ATTRIBUTE_ZH, Disagreement, disagreements, fingerprint
from gateway.register.settings import WCBA
from gateway.register.women import MARITAL
from gateway.store import Exchange, Record
from gateway.store.audit import mask_text
from gateway.store.register_models import RegisterFact, RegisterResolution

NAME = "register-disagreements"


def subject_key(id_number: str, item: dict[str, Any]) -> str:
    return f"{id_number}:{item['attribute']}:{fingerprint(item)[:16]}"


def _shown(attribute: str, value: Any) -> str:
    if value is None:
        return "（未登记 none）"
    if attribute == "name":
        return mask_name(str(value))
    if attribute == "marital_status":
        return f"{value} {MARITAL.get(str(value), '')}".strip()
    return mask_text(str(value))


def _record(session: Session, disagreement: Disagreement) -> StoredRecord | None:
    """The stored record behind the other source's value (else the authoritative one's)."""
    item = disagreement.item
    for source, value in ((item["other_source"], item["other_value"]), (item["source"], item["value"])):
        if source == WCBA:
            continue
        query = (
            select(RegisterFact.record_id, RegisterFact.event_date, Record.contract, Record.business_key, Record.version,
                   Exchange.department)
            .join(Record, Record.id == RegisterFact.record_id)
            .join(Exchange, Exchange.id == Record.exchange_id)
            .where(RegisterFact.id_number == disagreement.id_number, RegisterFact.attribute == item["attribute"],
                   RegisterFact.source == source)
            .order_by(RegisterFact.event_date.desc(), RegisterFact.record_id.desc())  # type: ignore[attr-defined]
        )
        if value is not None:
            query = query.where(RegisterFact.value == value)
        row = session.execute(query.limit(1)).first()
        if row is not None:
            record_id, event_date, contract, key, version, department = row
            return StoredRecord(int(record_id), contract, key, int(version), department, {"event_date": event_date.isoformat()})
    return None


class RegisterDisagreements(DerivedReconciliation):
    """人口库来源不一致 (多元校核): the register's authoritative source and another disagree."""

    name = NAME
    description = "人口库来源不一致（多元校核）：权威来源与其他来源所报不同 the register's sources disagree about a person"
    grace = "0 days"  # listed the day the register sees it
    notify = ("police",)  # the household registry answers for identity; each item goes to its two sources

    def derive(self, session: Session) -> Iterator[Subject]:
        for disagreement in disagreements(session):
            record = _record(session, disagreement)
            if record is None:
                continue
            item = disagreement.item
            attribute = item["attribute"]
            yield Subject(
                record=record, key=subject_key(disagreement.id_number, item), match_key=None,
                event_date=dt.date.fromisoformat(record.payload["event_date"]), identifier_field="id_number",
                identifier_kind="other",  # the key: a masked ID number, the attribute, a hash
                shown={
                    "attribute": f"{ATTRIBUTE_ZH.get(attribute, attribute)} {attribute}",
                    "source": item["source"], "value": _shown(attribute, item["value"]),
                    "other_source": item["other_source"], "other_value": _shown(attribute, item["other_value"]),
                },
            )

    def notify_for(self, subject: Subject) -> tuple[str, ...]:
        sources = [subject.shown["source"], subject.shown["other_source"]]
        return tuple(dict.fromkeys(s for s in sources if s != WCBA)) or self.notify

    def _resolution(self, session: Session, key: str) -> RegisterResolution | None:
        id_number, attribute, short = key.rsplit(":", 2)
        return session.execute(
            select(RegisterResolution).where(
                RegisterResolution.id_number == id_number, RegisterResolution.attribute == attribute,
                RegisterResolution.value_sha256.like(f"{short}%"),  # type: ignore[attr-defined]
            ).limit(1)
        ).scalars().first()

    def gone(self, session: Session, key: str) -> tuple[str, str]:
        resolution = self._resolution(session, key)
        if resolution is not None:
            return "resolved", f"在人口库中处理 resolved in the register by {resolution.resolved_by}: {mask_text(resolution.reason)}"
        return "matched", "来源已一致 the sources agree now"

    def resolved(self, session: Session, key: str, reason: str, by: str) -> None:
        if self._resolution(session, key) is not None:
            return
        id_number, attribute, short = key.rsplit(":", 2)
        for disagreement in disagreements(session):
            if disagreement.id_number == id_number and subject_key(id_number, disagreement.item) == key:
                session.add(RegisterResolution(id_number=id_number, attribute=attribute,
                                               value_sha256=fingerprint(disagreement.item), reason=reason, resolved_by=by))


@hookimpl(trylast=True)
def register_reconciliations(register):  # type: ignore[no-untyped-def]
    register(RegisterDisagreements)
