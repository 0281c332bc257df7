"""The national platform's assist-checks (协查) and notices (通报) as obligations.

The platform package (gateway/platform/) keeps its own rows (AssistCheck, NoticeItem,
with the due dates the platform itself judges by); `mirror_platform` copies them into the
one obligations table, so the overdue list and the rates hold them too. It reads the
store's tables only, never gateway.platform. Once the platform code calls
`open_obligation`/`fulfil` (gateway/obligations/service.py) itself, the same subjects
(`assist-check:XXBH`, `notice:XXBH`) make this a no-op.

May import: `gateway.store`, `gateway.obligations`, the top-level modules.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TypeVar

from sqlmodel import Session, select

from gateway.obligations.deadlines import Due
from gateway.obligations.service import fulfil, open_obligation
from gateway.store.models import AssistCheck, NoticeItem
from gateway.store.obligation_models import Obligation

# Who answers the platform: the county's population office (县人口办).
PLATFORM_PARTY = "population-office"

Row = TypeVar("Row", AssistCheck, NoticeItem)


def mirror_platform(session: Session) -> int:
    """Open an obligation per assist-check and notice not mirrored yet, and close those the
    platform code recorded answered or handled; how many rows changed."""
    changed = _mirror(
        session, "assist-check", AssistCheck, lambda item: item.status == "answered", lambda item: item.answered_at or item.sent_at
    )
    changed += _mirror(session, "notice", NoticeItem, lambda item: item.status == "handled", lambda item: item.handled_at)
    return changed


def _mirror(
    session: Session, kind: str, table: type[Row], done: Callable[[Row], bool], done_at: Callable[[Row], dt.datetime | None]
) -> int:
    changed = 0
    mirrored = {
        subject: status
        for subject, status in session.exec(select(Obligation.subject, Obligation.status).where(Obligation.kind == kind)).all()
    }
    for item in session.exec(select(table)).all():
        subject = f"{kind}:{item.message_id}"
        if subject not in mirrored:
            open_obligation(
                session, kind=kind, party=PLATFORM_PARTY, subject=subject, start=item.received_at, rule=item.due_rule,
                due=Due(item.due_rule, item.sent_date, item.due_date, item.due_provisional),
                detail=f"{'协查' if kind == 'assist-check' else '通报'} {item.message_id} from {item.partner}",
            )
            mirrored[subject] = "open"
            changed += 1
        if mirrored[subject] == "open" and done(item):
            fulfil(session, kind, subject, done_at(item), by=getattr(item, "answered_by", None) or getattr(item, "handled_by", None))
            changed += 1
    return changed
