"""The weekly reminder (每週星期五催辦): on Fridays each department with overdue obligations
receives its list, and the population office a summary of everyone's, each as one JSON
document encrypted to the department's registered keys and signed by the gateway (like the
reconciliation lists), written to its outbox as `REMINDER-<YYYYMMDD>.json.gpg`.

One file per department per day: sent again the same day, a reminder already in the
outbox is left alone. A department without a usable key is held (reported, nothing sent in
clear). The lists hold the obligations' subjects and details, never personal data.

Uses the routing's key checks and the gateway's signer, imported only when it runs (like
`gateway.reconcile.deliver`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway import clock
from gateway.errors import GatewayError, TransportError
from gateway.obligations.service import KIND_NAMES_ZH, ObligationView, list_obligations
from gateway.store import session_scope
from gateway.store.audit import record_event

if TYPE_CHECKING:
    from gateway.routing.delivery import Router
    from gateway.services import GatewayServices

log = logging.getLogger("gateway")

FORMAT = "gateway-obligation-reminder/1"
OFFICE = "population-office"
FRIDAY = 4


@dataclass
class ReminderOutcome:
    department: str
    status: str  # delivered | held | already | failed
    items: int
    file_name: str | None = None
    reason: str | None = None


def _item(view: ObligationView, today: dt.date) -> dict[str, Any]:
    return {
        "id": view.id, "kind": view.kind, "kind_zh": KIND_NAMES_ZH.get(view.kind, view.kind), "subject": view.subject,
        "detail": view.detail, "due": view.due.isoformat(), "provisional": view.provisional,
        "days_overdue": (today - view.due).days,
    }


def send_reminders(gateway: GatewayServices, now: dt.datetime | None = None, *, only_on_friday: bool = True) -> list[ReminderOutcome]:
    """Send this week's reminders (on a Friday, China time, unless `only_on_friday` is false)."""
    from gateway.routing.delivery import Router

    now = now if now is not None else clock.now()
    today = clock.in_china(now).date()
    if only_on_friday and today.weekday() != FRIDAY:
        return []
    overdue = list_obligations(gateway.engine, overdue=True, now=now)
    by_party: dict[str, list[ObligationView]] = {}
    for view in overdue:
        by_party.setdefault(view.party, []).append(view)
    documents: dict[str, dict[str, Any]] = {}
    for party, views in by_party.items():
        if party in gateway.settings.departments:
            documents[party] = {
                "format": FORMAT, "department": party, "as_of": today.isoformat(),
                "title": "逾期义务催办 Overdue obligations", "overdue": [_item(v, today) for v in views],
            }
    if overdue and OFFICE in gateway.settings.departments:
        summary: dict[str, dict[str, int]] = {}
        for view in overdue:
            summary.setdefault(view.party, {}).setdefault(view.kind, 0)
            summary[view.party][view.kind] += 1
        office = documents.setdefault(OFFICE, {
            "format": FORMAT, "department": OFFICE, "as_of": today.isoformat(),
            "title": "逾期义务催办 Overdue obligations", "overdue": [],
        })
        office["summary"] = {"title": "各单位逾期义务汇总 Overdue obligations of every party", "parties": summary,
                             "total": len(overdue)}
    router = Router(gateway)
    return [_send(gateway, router, department, document, today) for department, document in sorted(documents.items())]


def _send(gateway: GatewayServices, router: Router, department: str, document: dict[str, Any], today: dt.date) -> ReminderOutcome:
    return send_document(gateway, router, department, f"REMINDER-{today:%Y%m%d}.json.gpg", document,
                         items=len(document["overdue"]), what="reminder")


def send_document(gateway: GatewayServices, router: Router, department: str, name: str, document: dict[str, Any], *,
                  items: int, what: str) -> ReminderOutcome:
    """Write `document` (JSON, no personal data in clear anywhere but inside) to `department`'s
    outbox as `name`, encrypted to its registered keys and signed by the gateway; once (a file
    of that name already there is left alone); held without a usable key. `what` names it
    in the audit log (`reminder_delivered`, `warning_delivered` ...)."""
    transport = gateway.transport_for(department)
    try:
        if transport.exists(department, "outbox", name):
            return ReminderOutcome(department, "already", items, name)
    except (TransportError, OSError) as exc:
        return ReminderOutcome(department, "failed", items, reason=f"outbox not readable ({type(exc).__name__})")
    check = router.check_keys(department)
    if check.problem is not None:
        with session_scope(gateway.engine) as session:
            record_event(session, f"{what}_held", department, None, f"{name} ({items} item(s)): {check.problem}")
        log.warning("%s for %s held: %s", what, department, check.problem)
        return ReminderOutcome(department, "held", items, reason=check.problem)
    signer = gateway.signer
    result = signer.gpg.encrypt(
        json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8"), check.usable, sign=signer.fingerprint,
        always_trust=True,  # the recipients are pinned by full fingerprint in the key registry
        passphrase=signer.passphrase, armor=False, extra_args=["--digest-algo", "SHA256"],
    )
    if not result.ok:
        raise GatewayError(
            f"gpg could not encrypt and sign the {what} for {department}. Check GATEWAY_KEY_PASSPHRASE and the keyring in HOME/gnupg"
        )
    target = router.folder / name
    target.write_bytes(result.data)
    try:
        transport.put(department, "outbox", name, target)
    except (TransportError, OSError) as exc:
        return ReminderOutcome(department, "failed", items, reason=f"not written to the outbox ({type(exc).__name__}); tried next time")
    finally:
        target.unlink(missing_ok=True)
    digest = hashlib.sha256(result.data).hexdigest()
    with session_scope(gateway.engine) as session:
        record_event(session, f"{what}_delivered", department, None, f"{name}: {items} item(s), sha256 {digest}")
    log.info("%s to %s: %s/outbox/%s, %d item(s)", what, department, department, name, items)
    return ReminderOutcome(department, "delivered", items, name)
