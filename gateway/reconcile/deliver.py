"""Delivering each department its open discrepancies through the routing's channel: one
JSON list per department, encrypted to the department's pinned keys and signed by the
gateway in one OpenPGP message, written to its outbox as `DISCREPANCIES-<id>.json.gpg`.

The list is the department's *whole* open list, not the changes since the last one: a
department reads one file to know everything it must act on, a lost or skipped file
costs nothing, and an item closed meanwhile simply is not there any more. A new list goes
out only when that content changed since the last list delivered (so a daily job does not
fill the outbox with copies); an empty list goes out once when the last items closed.

Identifiers: a department sees an identifier (and the name) in full only when it is
entitled to that record anyway: it sent the record itself, or a sharing agreement gives
it that field of that contract (docs/routing.md). Everyone else gets them masked. Full
values travel only inside the encrypted file, never in logs, the database's summaries or
command output.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, select

from contracts import canonical_json

from gateway.store.audit import now_utc, record_event
from gateway.errors import ConfigError, GatewayError, TransportError
from gateway.masking import mask_value
from gateway.routing.minimize import values_at
from gateway.store.models import Record
from gateway.store.reconcile_models import Discrepancy, DiscrepancyList
from gateway.reconcile.evaluate import configured_rules, open_items

if TYPE_CHECKING:
    from gateway.routing.delivery import Router
    from gateway.services import GatewayServices

log = logging.getLogger("gateway")

FORMAT = "gateway-discrepancies/1"


@dataclass
class ListOutcome:
    department: str
    status: str  # delivered | held | unchanged | nothing
    items: int
    list_id: int | None = None
    file_name: str | None = None
    reason: str | None = None


def deliver(gateway: GatewayServices, as_of: dt.date, names: list[str] | None = None) -> list[ListOutcome]:
    """Send every department concerned its open discrepancies (of the rules named, or all)."""
    from gateway.routing.delivery import Router

    settings = gateway.settings
    rules = configured_rules(settings, names)
    departments: list[str] = []
    for configured in rules.values():
        for department in configured.rule.notify:
            if department not in departments:
                departments.append(department)
    router = Router(gateway)
    try:
        agreements = router.agreements()
        entitled_by = agreements.for_recipient if not agreements.errors else (lambda _d: [])
    except ConfigError:
        entitled_by = lambda _d: []  # noqa: E731 - broken agreements entitle nobody to anything
    outcomes = []
    for department in departments:
        if department not in settings.departments:
            log.warning("reconciliation: %s is not a department of this gateway; its discrepancy list is not sent", department)
            continue
        items = open_items(gateway.engine, list(rules), department=department)
        outcomes.append(_deliver_one(gateway, router, department, as_of, items, entitled_by(department)))
    return outcomes


def _content(gateway: GatewayServices, department: str, items: dict[str, list[Any]], agreements: list[Any]) -> dict[str, Any]:
    with Session(gateway.engine) as session:
        rules: dict[str, Any] = {}
        for name, open_list in items.items():
            entries = []
            for item in open_list:
                d: Discrepancy = item.discrepancy
                record = session.get(Record, d.record_id)
                payload = json.loads(record.payload) if record is not None else {}
                department_of = json.loads(d.summary or "{}").get("department")
                shown = item.to_json()
                identifier_field = str(shown["identifier"]).split(" ")[0]
                if _entitled(department, department_of, d.contract, identifier_field, payload, agreements):
                    shown["subject"] = d.subject_key
                    shown["identifier_masked"] = False
                    name_field = _name_field(identifier_field)
                    names = values_at(payload, name_field) if name_field else []
                    if len(names) == 1 and _entitled(department, department_of, d.contract, name_field, payload, agreements):
                        shown["name"] = names[0]
                else:
                    shown["identifier_masked"] = True
                entries.append(shown)
            if entries:
                rules[name] = {"open": len(entries), "items": entries}
    return {"format": FORMAT, "department": department, "rules": rules}


def _name_field(identifier_field: str) -> str | None:
    prefix = identifier_field.rsplit(".", 1)[0] if "." in identifier_field else None
    if identifier_field == "birth_certificate_no":
        return "child.name"
    return f"{prefix}.name" if prefix else None


def _entitled(department: str, source: str | None, contract: str, path: str, payload: dict[str, Any], agreements: list[Any]) -> bool:
    """The department sent the record, or an agreement gives it this field of this record."""
    if department == source:
        return True
    for agreement in agreements:
        if agreement.covers(contract) and path in agreement.columns.get(contract, []) and agreement.admits(contract, payload):
            return True
    return False


def _deliver_one(gateway: GatewayServices, router: Router, department: str, as_of: dt.date, items: dict[str, list[Any]],
                 agreements: list[Any]) -> ListOutcome:
    content = _content(gateway, department, items, agreements)
    count = sum(rule["open"] for rule in content["rules"].values())
    digest = hashlib.sha256(canonical_json(content)).hexdigest()
    with Session(gateway.engine) as session:
        last_sent = session.exec(
            select(DiscrepancyList).where(DiscrepancyList.department == department, DiscrepancyList.status == "delivered")
            .order_by(DiscrepancyList.id.desc())  # type: ignore[union-attr]
        ).first()
        held = session.exec(
            select(DiscrepancyList).where(DiscrepancyList.department == department, DiscrepancyList.status == "held")
            .order_by(DiscrepancyList.id.desc())  # type: ignore[union-attr]
        ).first()
    if (last_sent is not None and last_sent.content_sha256 == digest) or (last_sent is None and count == 0):
        return ListOutcome(department, "unchanged" if last_sent is not None else "nothing", count, last_sent.id if last_sent else None)
    check = router.check_keys(department)
    with Session(gateway.engine) as session:
        row = session.get(DiscrepancyList, held.id) if held is not None else None
        if row is None:
            row = DiscrepancyList(department=department, as_of=as_of, items=count, content_sha256=digest, status="held")
        row.as_of, row.items, row.content_sha256 = as_of, count, digest
        if check.problem is not None:
            changed = row.reason != check.problem
            row.status, row.reason = "held", check.problem
            session.add(row)
            if changed:
                record_event(session, "discrepancies_held", department, None, f"{count} open discrepancies held: {check.problem}")
                log.warning("discrepancy list for %s held: %s", department, check.problem)
            session.commit()
            return ListOutcome(department, "held", count, row.id, reason=check.problem)
        session.add(row)
        session.commit()
        session.refresh(row)
        list_id = row.id
    name = f"DISCREPANCIES-{list_id}.json.gpg"
    document = {**content, "list": list_id, "as_of": as_of.isoformat(), "generated_at": now_utc().isoformat()}
    signer = gateway.signer
    result = signer.gpg.encrypt(
        json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8"), check.usable, sign=signer.fingerprint,
        always_trust=True,  # the recipients are pinned by full fingerprint in the key registry
        passphrase=signer.passphrase, armor=False, extra_args=["--digest-algo", "SHA256"],
    )
    if not result.ok:
        raise GatewayError(
            f"gpg could not encrypt and sign the discrepancy list for {department} ({getattr(result, 'status', None) or 'failed'}). "
            "Check GATEWAY_KEY_PASSPHRASE and the keyring in HOME/gnupg"
        )
    target = router.folder / name
    target.write_bytes(result.data)
    try:
        gateway.transport_for(department).put(department, "outbox", name, target)
    except (TransportError, OSError) as exc:
        reason = f"not written to the outbox of {department} ({type(exc).__name__}); tried again on the next run"
        with Session(gateway.engine) as session:
            row = session.get(DiscrepancyList, list_id)
            assert row is not None
            row.status, row.reason = "held", reason
            session.add(row)
            session.commit()
        target.unlink(missing_ok=True)
        return ListOutcome(department, "held", count, list_id, reason=reason)
    with Session(gateway.engine) as session:
        row = session.get(DiscrepancyList, list_id)
        assert row is not None
        row.status, row.reason, row.file_name = "delivered", None, name
        row.sha256 = hashlib.sha256(result.data).hexdigest()
        row.encrypted_to, row.signing_key, row.delivered_at = ",".join(check.usable), signer.fingerprint, now_utc()
        session.add(row)
        record_event(session, "discrepancies_delivered", department, None,
                     f"{name}: {count} open discrepancies as of {as_of}, sha256 {row.sha256}")
        session.commit()
    target.unlink(missing_ok=True)
    log.info("discrepancy list %s to %s: %s/outbox/%s, %d open", list_id, department, department, name, count)
    return ListOutcome(department, "delivered", count, list_id, name)
