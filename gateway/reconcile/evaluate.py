"""Evaluating the rules against the stored records: opening discrepancies once due,
closing them when the missing record arrives, proposing fallback matches. Idempotent:
evaluating twice opens nothing twice (and a unique index on the open subject holds that
when two processes evaluate at once).

Each subject a run first sees without its counterpart is a reconciliation item
(`ReconciliationItem`) and a `reconcile-evidence` obligation (补报核对) of the rule's
`owed_by`, due on the grace end (gateway/obligations/hooks.py): met when a run by that day
finds the match, late after, waived when a clerk resolves the discrepancy or the record no
longer calls for a counterpart."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, and_, func, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from gateway.store.audit import now_utc, record_event
from gateway import clock
from gateway.config import Settings
from gateway.errors import ConfigError, GatewayError, UnknownName
from gateway.masking import mask_value
from gateway.obligations.hooks import (
    RECONCILE,
    reconcile_item_matched,
    reconcile_item_resolved,
    reconcile_item_seen,
    reconcile_item_withdrawn,
    reconciliation_checked,
)
from gateway.store.models import Exchange, Record
from gateway.store.obligation_models import Obligation
from gateway.store.reconcile_models import Discrepancy, DiscrepancyProposal, ReconciliationItem, ReconciliationLink
from gateway.store.retention_models import not_purged
from gateway.reconcile.base import DerivedReconciliation, Evidence, Grace, Reconciliation, StoredRecord, Subject

log = logging.getLogger("gateway")

SETTLED = ("resolved", "confirmed")  # a person decided: never opened again for the same subject


@dataclass
class ConfiguredRule:
    """A registered rule with the grace period in force (default or gateway.toml)."""

    rule: Reconciliation
    grace: Grace
    grace_source: str
    owed_by: str = ""
    """who owes the missing counterparts (补报核对): `[reconciliation.owed_by]`, the rule's, or its first notify department"""

    @property
    def name(self) -> str:
        return self.rule.name


def configured_rules(settings: Settings, names: list[str] | None = None) -> dict[str, ConfiguredRule]:
    """Every registered rule (or those named), with `[reconciliation.grace]` applied.
    An unknown rule name, here or in gateway.toml, is an error listing the valid ones."""
    from gateway.plugins import get_manager

    classes = get_manager().reconciliations()
    options = settings.reconciliation or {}
    unknown_options = sorted(set(options) - {"grace", "at", "deliver", "owed_by"})
    if unknown_options:
        raise ConfigError(f"[reconciliation]: unknown option(s) {', '.join(unknown_options)}; valid: grace, at, deliver, owed_by")
    overrides = options.get("grace") or {}
    if not isinstance(overrides, dict):
        raise ConfigError("[reconciliation.grace] must be a table: rule name = \"15 days\" or \"1 month\"")
    owed = options.get("owed_by") or {}
    if not isinstance(owed, dict):
        raise ConfigError("[reconciliation.owed_by] must be a table: rule name = \"department\" (e.g. unregistered-births = \"police\")")
    for name in [*overrides, *owed]:
        if name not in classes:
            raise UnknownName("reconciliation rule", name, list(classes))
    for name, party in owed.items():
        if not isinstance(party, str) or not party.strip():
            raise ConfigError(f"[reconciliation.owed_by] {name} = {party!r}: name the department that owes the counterpart, e.g. \"police\"")
    rules = {}
    for name, cls in classes.items():
        if name in overrides:
            grace, source = Grace.parse(overrides[name], f"[reconciliation.grace] {name}"), "gateway.toml"
        else:
            grace, source = Grace.parse(cls.grace, f"rule {name}"), "default"
        owed_by = str(owed.get(name) or cls.owed_by or (cls.notify[0] if cls.notify else "")).strip()
        rules[name] = ConfiguredRule(cls(), grace, source, owed_by)
    for name in names or []:
        if name not in rules:
            raise UnknownName("reconciliation rule", name, list(rules))
    return {name: rules[name] for name in (names or list(rules))}


def current_records(session: Session, contract: str) -> list[StoredRecord]:
    """The current (highest) version of every business key of `contract`, with the sending department."""
    latest = (
        select(Record.business_key, func.max(Record.version).label("version"))  # type: ignore[call-overload]
        .where(Record.contract == contract)
        .group_by(Record.business_key)
        .subquery()
    )
    rows = session.exec(
        select(Record.id, Record.business_key, Record.version, Record.payload, Exchange.department)  # type: ignore[call-overload]
        .join(latest, and_(Record.business_key == latest.c.business_key, Record.version == latest.c.version))
        .join(Exchange, Exchange.id == Record.exchange_id)  # type: ignore[arg-type]
        .where(Record.contract == contract, not_purged())  # a purged record (保存期限) says nothing any more
        .order_by(Record.id)
    ).all()
    return [StoredRecord(int(i), contract, key, int(v), department, json.loads(payload)) for i, key, v, payload, department in rows]


@dataclass
class RuleOutcome:
    opened: int = 0
    closed: int = 0
    withdrawn: int = 0
    proposed: int = 0
    open: int = 0


@dataclass
class Evaluation:
    as_of: dt.date
    rules: dict[str, RuleOutcome] = field(default_factory=dict)

    def summary(self) -> str:
        opened = sum(o.opened for o in self.rules.values())
        closed = sum(o.closed + o.withdrawn for o in self.rules.values())
        still = sum(o.open for o in self.rules.values())
        return f"as of {self.as_of}: {opened} opened, {closed} closed, {still} open"


def evaluate(engine: Engine, settings: Settings, as_of: dt.date, names: list[str] | None = None) -> Evaluation:
    """Evaluate the rules (all, or those named) as of `as_of`; a run of all of them checks
    the departments' feedback received before it (`feedback-check` obligations met)."""
    started = clock.now()
    result = Evaluation(as_of)
    for name, configured in configured_rules(settings, names).items():
        for attempt in range(3):
            try:
                result.rules[name] = _evaluate_rule(engine, configured, as_of)
                break
            except IntegrityError:  # another process opened the same subject meanwhile: read again
                if attempt == 2:
                    raise
    if names is None:
        reconciliation_checked(engine, started)
    return result


def _within(a: dt.date | None, b: dt.date | None, days: int) -> bool:
    return a is not None and b is not None and abs((a - b).days) <= days


def _summary(subject: Subject) -> str:
    shown = {
        "subject": mask_value(subject.key, subject.identifier_kind),
        "identifier": subject.identifier_field if subject.match_key is not None else f"{subject.identifier_field} (no ID number)",
        "name": mask_value(subject.name, "name") if subject.name else "",
        "department": subject.record.department,
        **{k: v for k, v in subject.shown.items() if v is not None},
    }
    return json.dumps(shown, ensure_ascii=False, sort_keys=True)


def _evaluate_derived(engine: Engine, configured: ConfiguredRule, as_of: dt.date) -> RuleOutcome:
    """A derived rule (base.DerivedReconciliation): what it derives is open once its grace
    ended; an open one no longer derived is closed as the rule says (agreed, resolved where
    the rule keeps its own resolutions). Nothing is owed by another department, so no
    `reconcile-evidence` obligation: the discrepancy itself is the work."""
    rule, outcome = configured.rule, RuleOutcome()
    assert isinstance(rule, DerivedReconciliation)
    with Session(engine) as session:
        subjects: dict[str, Subject] = {}
        for subject in rule.derive(session):
            subjects.setdefault(subject.key, subject)
        rows = session.exec(select(Discrepancy).where(Discrepancy.rule == rule.name)).all()
        open_rows = {row.subject_key: row for row in rows if row.status == "open"}
        settled = {row.subject_key for row in rows if row.status == "closed" and row.closure in SETTLED}
        now = now_utc()
        for key, subject in subjects.items():
            row = open_rows.pop(key, None)
            if row is None:
                due_on = configured.grace.after(subject.event_date)
                if key in settled or as_of < due_on:
                    continue
                session.add(Discrepancy(
                    rule=rule.name, subject_key=key, open_key=key, status="open", record_id=subject.record.id,
                    contract=subject.record.contract, business_key=subject.record.business_key,
                    event_date=subject.event_date, due_on=due_on, departments=",".join(rule.notify_for(subject)),
                    summary=_summary(subject), opened_at=now, opened_as_of=as_of,
                ))
                session.flush()
                outcome.opened += 1
            outcome.open += 1
        for key, row in open_rows.items():
            closure, reason = rule.gone(session, key)
            _close(row, closure, now, as_of, reason=reason, by=rule.name if closure == "resolved" else None)
            session.add(row)
            if closure == "withdrawn":
                outcome.withdrawn += 1
            else:
                outcome.closed += 1
        session.commit()
    return outcome


def _evaluate_rule(engine: Engine, configured: ConfiguredRule, as_of: dt.date) -> RuleOutcome:
    rule, outcome = configured.rule, RuleOutcome()
    if rule.derived:
        return _evaluate_derived(engine, configured, as_of)
    with Session(engine) as session:
        subjects: dict[str, Subject] = {}
        for subject in rule.subjects(current_records(session, rule.subject_contract)):
            subjects.setdefault(subject.key, subject)
        evidence = list(rule.evidence(current_records(session, rule.evidence_contract)))
        exact: dict[str, Evidence] = {}
        by_name: dict[str, list[Evidence]] = defaultdict(list)
        by_business_key: dict[str, Evidence] = {}
        for item in evidence:
            if item.match_key is not None:
                exact.setdefault(item.match_key, item)
            if item.name:
                by_name[item.name].append(item)
            by_business_key[item.record.business_key] = item
        links: dict[str, set[str]] = defaultdict(set)
        for link in session.exec(
            select(ReconciliationLink).where(
                or_(
                    and_(ReconciliationLink.left_contract == rule.subject_contract, ReconciliationLink.right_contract == rule.evidence_contract),
                    and_(ReconciliationLink.left_contract == rule.evidence_contract, ReconciliationLink.right_contract == rule.subject_contract),
                )
            )
        ).all():
            if link.left_contract == rule.subject_contract:
                links[link.left_key].add(link.right_key)
            if link.right_contract == rule.subject_contract:
                links[link.right_key].add(link.left_key)
        rows = session.exec(select(Discrepancy).where(Discrepancy.rule == rule.name)).all()
        open_rows = {row.subject_key: row for row in rows if row.status == "open"}
        settled = {row.subject_key for row in rows if row.status == "closed" and row.closure in SETTLED}
        now = now_utc()
        items = {item.subject_key: item for item in session.exec(select(ReconciliationItem).where(ReconciliationItem.rule == rule.name)).all()}
        owing = set(session.exec(select(Obligation.subject).where(
            Obligation.kind == "reconcile-evidence", Obligation.status == "open",
            Obligation.subject.like(f"{RECONCILE}{rule.name}:item:%"),  # type: ignore[attr-defined]
        )).all())
        seen_at = clock.now()

        for key, subject in subjects.items():
            match = exact.get(subject.match_key) if subject.match_key is not None else None
            if match is None:
                linked = [by_business_key[k] for k in links.get(subject.record.business_key, ()) if k in by_business_key]
                match = linked[0] if linked else None
            row = open_rows.pop(key, None)
            item = items.get(key)
            if match is not None:
                if item is not None and _owed(item, owing):
                    reconcile_item_matched(session, rule.name, item.id or 0, seen_at, by=match.record.department)
                if row is not None:
                    _close(row, "matched", now, as_of, matched=match.record.id, reason=f"{match.record.contract} record {match.record.id} arrived")
                    session.add(row)
                    outcome.closed += 1
                continue
            if key in settled:
                continue
            due_on = configured.grace.after(subject.event_date)
            if item is None and configured.owed_by:
                item = _new_item(session, configured, subject, due_on, seen_at)
                items[key] = item
            if row is None:
                if as_of < due_on:
                    continue
                row = Discrepancy(
                    rule=rule.name, subject_key=key, open_key=key, status="open", record_id=subject.record.id,
                    contract=subject.record.contract, business_key=subject.record.business_key,
                    event_date=subject.event_date, due_on=due_on, departments=",".join(rule.notify),
                    summary=_summary(subject), opened_at=now, opened_as_of=as_of,
                )
                session.add(row)
                session.flush()
                outcome.opened += 1
            elif row.record_id != subject.record.id:  # a corrected version: show the current one
                row.record_id, row.business_key, row.summary = subject.record.id, subject.record.business_key, _summary(subject)
                row.event_date, row.due_on = subject.event_date, due_on
                session.add(row)
            outcome.open += 1
            outcome.proposed += _propose(session, rule, row, subject, by_name)
        for row in open_rows.values():  # the record no longer calls for a counterpart
            _close(row, "withdrawn", now, as_of, reason="the record no longer calls for a counterpart (corrected, moved out or gone)")
            session.add(row)
            outcome.withdrawn += 1
        for key, item in items.items():
            if key not in subjects and _owed(item, owing):
                reconcile_item_withdrawn(session, rule.name, item.id or 0)
        session.commit()
    return outcome


def _owed(item: ReconciliationItem, owing: set[str]) -> bool:
    return f"{RECONCILE}{item.rule}:item:{item.id}" in owing


def _new_item(session: Session, configured: ConfiguredRule, subject: Subject, due_on: dt.date, at: dt.datetime) -> ReconciliationItem:
    """The first sight of a subject without its counterpart: the item and its obligation (补报核对)."""
    rule = configured.rule
    item = ReconciliationItem(
        rule=rule.name, subject_key=subject.key, record_id=subject.record.id, event_date=subject.event_date,
        due_on=due_on, owed_by=configured.owed_by, first_seen_at=at.replace(microsecond=0),
    )
    session.add(item)
    session.flush()
    reconcile_item_seen(
        session, rule=rule.name, item_id=item.id or 0, owed_by=configured.owed_by, at=at, grace_end=due_on,
        detail=f"补报核对 {rule.name}: {rule.evidence_contract} for {subject.record.contract} record {subject.record.id} "
               f"({subject.record.department}, {subject.event_date.isoformat()}), grace {configured.grace} ends {due_on.isoformat()}",
    )
    return item


def _propose(session: Session, rule: Reconciliation, row: Discrepancy, subject: Subject, by_name: dict[str, list[Evidence]]) -> int:
    """Fallback proposals where an identifier is missing on either side: same name, birth
    dates within `fallback_days`. Kept for a person to decide; they never close anything."""
    if not subject.name or subject.birth_date is None:
        return 0
    found = 0
    known = set(session.exec(select(DiscrepancyProposal.record_id).where(DiscrepancyProposal.discrepancy_id == row.id)).all())
    for item in by_name.get(subject.name, []):
        if subject.match_key is not None and item.match_key is not None:
            continue  # both identified and different: exact matching has spoken
        if not _within(subject.birth_date, item.birth_date, rule.fallback_days):
            continue
        if item.record.id in known:
            continue
        days = abs((subject.birth_date - item.birth_date).days)  # type: ignore[operator]
        session.add(DiscrepancyProposal(
            discrepancy_id=row.id, record_id=item.record.id, contract=item.record.contract,
            business_key=item.record.business_key, status="proposed",
            basis=f"same name, birth dates {days} day(s) apart; {'subject' if subject.match_key is None else 'counterpart'} has no identifier",
        ))
        found += 1
    return found


def _close(row: Discrepancy, closure: str, now: dt.datetime, as_of: dt.date | None, *, matched: int | None = None,
           by: str | None = None, reason: str | None = None) -> None:
    row.status, row.open_key, row.closure = "closed", None, closure
    row.closed_at, row.closed_as_of, row.matched_record_id = now, as_of, matched
    row.closed_by, row.close_reason = by, reason


# -- reading ------------------------------------------------------------------------------------


@dataclass
class OpenItem:
    discrepancy: Discrepancy
    proposals: list[tuple[DiscrepancyProposal, dict[str, Any]]]

    def to_json(self) -> dict[str, Any]:
        d = self.discrepancy
        summary = json.loads(d.summary or "{}")
        return {
            "id": d.id,
            "subject": summary.pop("subject", ""),
            "identifier": summary.pop("identifier", ""),
            "name": summary.pop("name", ""),
            "record": {"contract": d.contract, "id": d.record_id, "department": summary.pop("department", "")},
            "event_date": d.event_date.isoformat(),
            "due_on": d.due_on.isoformat(),
            "opened_as_of": d.opened_as_of.isoformat(),
            "notify": d.departments.split(","),
            "details": summary,
            "proposals": [
                {"id": p.id, "record": {"contract": p.contract, "id": p.record_id}, "basis": p.basis, **shown}
                for p, shown in self.proposals
            ],
        }


def open_items(engine: Engine, names: list[str], department: str | None = None) -> dict[str, list[OpenItem]]:
    """The open discrepancies of each rule named, oldest first, with their pending proposals."""
    found: dict[str, list[OpenItem]] = {name: [] for name in names}
    with Session(engine) as session:
        rows = session.exec(
            select(Discrepancy).where(Discrepancy.status == "open", Discrepancy.rule.in_(names))  # type: ignore[attr-defined]
            .order_by(Discrepancy.event_date, Discrepancy.id)  # type: ignore[arg-type]
        ).all()
        ids = [row.id for row in rows]
        proposals: dict[int, list[tuple[DiscrepancyProposal, dict[str, Any]]]] = defaultdict(list)
        if ids:
            for proposal, payload in session.exec(
                select(DiscrepancyProposal, Record.payload)
                .join(Record, Record.id == DiscrepancyProposal.record_id)  # type: ignore[arg-type]
                .where(DiscrepancyProposal.discrepancy_id.in_(ids), DiscrepancyProposal.status == "proposed")  # type: ignore[attr-defined]
                .order_by(DiscrepancyProposal.id)  # type: ignore[arg-type]
            ).all():
                proposals[proposal.discrepancy_id].append((proposal, _proposal_shown(json.loads(payload))))
        for row in rows:
            if department is not None and department not in row.departments.split(","):
                continue
            found[row.rule].append(OpenItem(row, proposals.get(row.id or 0, [])))
    return found


def _proposal_shown(payload: dict[str, Any]) -> dict[str, Any]:
    for part in ("deceased", "holder", "child", "person"):
        person = payload.get(part)
        if isinstance(person, dict):
            return {
                "name": mask_value(person.get("name"), "name"),
                "id_number": mask_value(person.get("id_number"), "id_number") if person.get("id_number") else "",
                "birth_date": person.get("birth_date"),
            }
    return {}


def open_counts(engine: Engine, settings: Settings, as_of: dt.date) -> dict[str, int]:
    """Open discrepancies per rule as of `as_of` (evaluating first; every rule listed, 0 included).
    For the monthly report's early warning."""
    names = list(evaluate(engine, settings, as_of).rules)
    with Session(engine) as session:
        rows = session.exec(
            select(Discrepancy.rule, func.count()).where(Discrepancy.status == "open").group_by(Discrepancy.rule)  # type: ignore[call-overload]
        ).all()
    counts = {name: 0 for name in names}
    counts.update({rule: int(n) for rule, n in rows if rule in counts})
    return counts


# -- decisions by a person ------------------------------------------------------------------------


def default_actor() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "unknown"


def _rule_named(name: str) -> Reconciliation | None:
    from gateway.plugins import get_manager

    cls = get_manager().reconciliations().get(name)
    return cls() if cls is not None else None


def _open_row(session: Session, discrepancy_id: int) -> Discrepancy:
    row = session.get(Discrepancy, discrepancy_id)
    if row is None:
        raise GatewayError(f"No discrepancy {discrepancy_id}; see `gateway reconcile` for the open ones")
    if row.status != "open":
        raise GatewayError(
            f"Discrepancy {discrepancy_id} is already closed ({row.closure}"
            + (f" by {row.closed_by}" if row.closed_by else "") + ")"
        )
    return row


def resolve(engine: Engine, discrepancy_id: int, reason: str, by: str | None = None, as_of: dt.date | None = None) -> Discrepancy:
    """Close a discrepancy by hand (a home birth registered elsewhere, say), recording who and why."""
    if not reason or not reason.strip():
        raise GatewayError("Say why with --reason TEXT (e.g. --reason \"home birth, certificate issued in another county\")")
    by = by or default_actor()
    with Session(engine) as session:
        row = _open_row(session, discrepancy_id)
        _close(row, "resolved", now_utc(), as_of, by=by, reason=reason.strip())
        session.add(row)
        item = session.exec(select(ReconciliationItem).where(
            ReconciliationItem.rule == row.rule, ReconciliationItem.subject_key == row.subject_key)).first()
        if item is not None:
            reconcile_item_resolved(session, row.rule, item.id or 0, by)  # nothing owed any more: waived
        rule = _rule_named(row.rule)
        if isinstance(rule, DerivedReconciliation):  # the rule keeps its own resolutions too (the register's)
            rule.resolved(session, row.subject_key, reason.strip(), by)
        record_event(session, "discrepancy_resolved", row.departments.split(",")[0], None,
                     f"discrepancy {row.id} ({row.rule}) resolved by {by}: {reason.strip()}")
        session.commit()
        session.refresh(row)
        return row


def decide_proposal(engine: Engine, discrepancy_id: int, confirm: bool, proposal_id: int | None = None,
                    by: str | None = None, as_of: dt.date | None = None) -> Discrepancy:
    """Confirm (closing the discrepancy, and linking the two records for every rule) or
    reject a proposed match."""
    by = by or default_actor()
    with Session(engine) as session:
        row = _open_row(session, discrepancy_id)
        pending = session.exec(
            select(DiscrepancyProposal).where(
                DiscrepancyProposal.discrepancy_id == discrepancy_id, DiscrepancyProposal.status == "proposed"
            )
        ).all()
        if proposal_id is not None:
            pending = [p for p in pending if p.id == proposal_id]
        if not pending:
            raise GatewayError(f"Discrepancy {discrepancy_id} has no pending proposal" + (f" {proposal_id}" if proposal_id else ""))
        if len(pending) > 1:
            raise GatewayError(
                f"Discrepancy {discrepancy_id} has {len(pending)} proposals; name one with --proposal "
                + " or ".join(str(p.id) for p in pending)
            )
        proposal, now = pending[0], now_utc()
        proposal.status, proposal.decided_at, proposal.decided_by = ("confirmed" if confirm else "rejected"), now, by
        session.add(proposal)
        if confirm:
            session.add(ReconciliationLink(
                left_contract=row.contract, left_key=row.business_key, right_contract=proposal.contract,
                right_key=proposal.business_key, rule=row.rule, discrepancy_id=row.id, confirmed_by=by, confirmed_at=now,
            ))
            _close(row, "confirmed", now, as_of, matched=proposal.record_id, by=by,
                   reason=f"proposed match {proposal.id} ({proposal.contract} record {proposal.record_id}) confirmed")
            session.add(row)
            item = session.exec(select(ReconciliationItem).where(
                ReconciliationItem.rule == row.rule, ReconciliationItem.subject_key == row.subject_key)).first()
            if item is not None:  # the counterpart was there: met (or late) as of the confirmation
                reconcile_item_matched(session, row.rule, item.id or 0, clock.now(), by=by)
        record_event(session, "match_confirmed" if confirm else "match_rejected", row.departments.split(",")[0], None,
                     f"discrepancy {row.id} ({row.rule}): proposal {proposal.id} {'confirmed' if confirm else 'rejected'} by {by}")
        session.commit()
        session.refresh(row)
        return row
