"""issue 19: who reported a death is part of its identity (DeathEvent keys include the source)

`DeathEvent.business_key_includes_source` is now True: the stored business key of a death is
`<sending department>|<ID number>|<death date>` (`contracts.base.stored_business_key`). This
rewrites the keys already stored, and splits the records the old key had made a later version
of another department's record (a social-security bureau's report stored as version 2 of the
police's death cancellation): each department's records are renumbered 1, 2, ... in their
old order, so the current version of each (the highest) is that department's own latest.

Business keys and versions only: never a stored payload or `record_hash`, so every receipt's
Merkle root and every record proof still verify (the leaves are the payloads). The copies of
a record's key and version kept beside it follow the record (by `record_id`): what the
deliveries sent (`deliveryrecord`: a later correction is compared with it), the register's
facts, the discrepancies and proposals; a confirmed link names the keys of every source that
had the old one. The exchanges' counts (`corrected`) stay as their signed receipts say.

Everything goes in batches of ids, so a county's many records are never all in memory.

Revision ID: d19b00000001
Revises: f17b00000001
Create Date: 2026-12-03 13:30:00
"""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa
from alembic import op

from contracts.base import keyed_by_source

revision = 'd19b00000001'
down_revision = 'f17b00000001'
branch_labels = None
depends_on = None

CONTRACT = "DeathEvent"
BATCH = 2000
# Tables that keep a copy of a record's business key (and version) beside its record_id.
COPIES: tuple[tuple[str, bool], ...] = (
    ("deliveryrecord", True), ("registerfact", True), ("discrepancy", False), ("discrepancyproposal", False),
)


def _record_pages(connection: sa.Connection) -> Iterator[list[sa.Row[tuple[int, str, int, str]]]]:
    """(id, business key, version, sending department) of the DeathEvent records, by id, a batch at a time."""
    last = 0
    while True:
        rows = connection.execute(
            sa.text(
                "SELECT r.id, r.business_key, r.version, e.department FROM record r JOIN exchange e ON e.id = r.exchange_id "
                "WHERE r.contract = :contract AND r.id > :last ORDER BY r.id LIMIT :size"
            ),
            {"contract": CONTRACT, "last": last, "size": BATCH},
        ).all()
        if not rows:
            return
        last = rows[-1][0]
        yield list(rows)  # type: ignore[arg-type]


def _renumber(connection: sa.Connection, keys: list[str]) -> None:
    """Versions 1, 2, ... in the old order within each of `keys` (ascending: each new number is
    at most the old one, and the place it takes was left by a lower one already moved)."""
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        rows = connection.execute(
            sa.text("SELECT id, business_key, version FROM record WHERE contract = :contract AND business_key IN :keys "
                    "ORDER BY business_key, version").bindparams(sa.bindparam("keys", expanding=True)),
            {"contract": CONTRACT, "keys": chunk},
        ).all()
        updates, previous, number = [], None, 0
        for record_id, key, version in rows:
            number = number + 1 if key == previous else 1
            previous = key
            if number != version:
                updates.append({"id": record_id, "version": number})
        if updates:
            connection.execute(sa.text("UPDATE record SET version = :version WHERE id = :id"), updates)


def _gapped_keys(connection: sa.Connection) -> list[str]:
    """The DeathEvent keys whose versions are not 1..n: the ones a split left with gaps."""
    return [
        key for (key,) in connection.execute(
            sa.text("SELECT business_key FROM record WHERE contract = :contract GROUP BY business_key "
                    "HAVING MIN(version) <> 1 OR MAX(version) <> COUNT(*)"),
            {"contract": CONTRACT},
        )
    ]


def _follow_records(connection: sa.Connection) -> None:
    """Each copy of a DeathEvent record's key (and version) takes the record's, in id ranges."""
    for table, versioned in COPIES:
        bounds = connection.execute(sa.text(f"SELECT MIN(id), MAX(id) FROM {table} WHERE contract = :contract"),
                                    {"contract": CONTRACT}).one()
        if bounds[0] is None:
            continue
        assignments = "business_key = (SELECT r.business_key FROM record r WHERE r.id = {t}.record_id)"
        if versioned:
            assignments += ", version = (SELECT r.version FROM record r WHERE r.id = {t}.record_id)"
        statement = sa.text(
            f"UPDATE {table} SET {assignments.format(t=table)} "
            f"WHERE contract = :contract AND record_id IS NOT NULL AND id >= :low AND id < :high"
        )
        for low in range(int(bounds[0]), int(bounds[1]) + 1, BATCH * 5):
            connection.execute(statement, {"contract": CONTRACT, "low": low, "high": low + BATCH * 5})


def _relink(connection: sa.Connection, key_for: "dict[str, list[str]] | None") -> None:
    """Confirmed links naming a DeathEvent: upgrade (`key_for` None) names the key of every
    department that has a record under the old key; downgrade names the old key again."""
    departments = [d for (d,) in connection.execute(sa.text("SELECT DISTINCT department FROM exchange ORDER BY department"))]
    links = connection.execute(
        sa.text("SELECT id, left_contract, left_key, right_contract, right_key, rule, discrepancy_id, confirmed_by, confirmed_at "
                "FROM reconciliationlink WHERE left_contract = :contract OR right_contract = :contract ORDER BY id"),
        {"contract": CONTRACT},
    ).all()
    exists = sa.text("SELECT 1 FROM record WHERE contract = :contract AND business_key = :key")
    seen: set[tuple[str, str, str, str]] = set()
    for link in links:
        def keys(contract: str, key: str) -> list[str]:
            if contract != CONTRACT:
                return [key]
            if key_for is not None:  # downgrade: back to the contract's own key
                return [key.split("|", 1)[1] if key.split("|", 1)[0] in departments else key]
            found = [keyed_by_source(d, key) for d in departments
                     if connection.execute(exists, {"contract": CONTRACT, "key": keyed_by_source(d, key)}).first()]
            return found or [key]

        pairs = [(left, right) for left in keys(link[1], link[2]) for right in keys(link[3], link[4])]
        first, *others = [(link[1], left, link[3], right) for left, right in pairs]
        if first in seen:
            connection.execute(sa.text("DELETE FROM reconciliationlink WHERE id = :id"), {"id": link[0]})
        else:
            connection.execute(sa.text("UPDATE reconciliationlink SET left_key = :left, right_key = :right WHERE id = :id"),
                               {"id": link[0], "left": first[1], "right": first[3]})
        seen.add(first)
        for other in others:
            if other in seen:
                continue
            seen.add(other)
            connection.execute(
                sa.text("INSERT INTO reconciliationlink (left_contract, left_key, right_contract, right_key, rule, discrepancy_id, "
                        "confirmed_by, confirmed_at) VALUES (:lc, :lk, :rc, :rk, :rule, :discrepancy, :by, :at)"),
                {"lc": other[0], "lk": other[1], "rc": other[2], "rk": other[3], "rule": link[5], "discrepancy": link[6],
                 "by": link[7], "at": link[8]},
            )


def upgrade() -> None:
    connection = op.get_bind()
    # Old keys ("ID|date") and new ones ("department|ID|date") have different numbers of
    # parts, so no rewritten key meets one not yet rewritten under the unique constraint.
    for page in _record_pages(connection):
        connection.execute(
            sa.text("UPDATE record SET business_key = :key WHERE id = :id"),
            [{"id": record_id, "key": keyed_by_source(department, key)} for record_id, key, _, department in page],
        )
    _renumber(connection, _gapped_keys(connection))
    _follow_records(connection)
    _relink(connection, None)


def downgrade() -> None:
    """Back to the old key: one version chain per ID number and death date, all departments'
    records in id order (as the old code numbered them, one after the other)."""
    connection = op.get_bind()
    chains: dict[str, list[int]] = {}
    for page in _record_pages(connection):
        for record_id, key, _, department in page:
            chains.setdefault(key.removeprefix(f"{department}|"), []).append(record_id)
    # Negative versions first: two departments' version 1 become one chain's 1 and 2.
    while True:
        page = connection.execute(
            sa.text("SELECT id FROM record WHERE contract = :contract AND version > 0 ORDER BY id LIMIT :size"),
            {"contract": CONTRACT, "size": BATCH},
        ).all()
        if not page:
            break
        connection.execute(sa.text("UPDATE record SET version = -id WHERE id IN :ids").bindparams(sa.bindparam("ids", expanding=True)),
                           {"ids": [row[0] for row in page]})
    updates = [{"id": record_id, "key": key, "version": number}
               for key, ids in chains.items() for number, record_id in enumerate(sorted(ids), start=1)]
    for start in range(0, len(updates), BATCH):
        connection.execute(sa.text("UPDATE record SET business_key = :key, version = :version WHERE id = :id"),
                           updates[start : start + BATCH])
    _follow_records(connection)
    _relink(connection, {})
