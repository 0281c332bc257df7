"""Alembic migrations: from an empty database they give exactly the models' schema, on
SQLite and PostgreSQL alike, and they run backwards too. Fails when a model changes
without a migration (`python -c "from gateway.store.migrate import revision; ..."`)."""

from __future__ import annotations

import subprocess

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from conftest import REPO
from gateway.store import make_engine
from gateway.store.migrate import alembic_config, current_revision, head_revision, upgrade


def _empty_url(tmp_path, another_database) -> str:
    return another_database or f"sqlite:///{tmp_path / 'empty.db'}"


def test_migrations_give_exactly_the_models_schema(tmp_path, another_database):
    engine = make_engine(_empty_url(tmp_path, another_database))
    try:
        assert current_revision(engine) is None
        assert upgrade(engine) == head_revision()
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
        assert differences == [], f"models and migrations differ: {differences}"
        assert upgrade(engine) == head_revision()  # a second upgrade is a no-op
    finally:
        engine.dispose()


def test_migrations_run_down_to_nothing_and_up_again(tmp_path, another_database):
    engine = make_engine(_empty_url(tmp_path, another_database))
    try:
        upgrade(engine)
        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), "base")
        assert current_revision(engine) is None
        upgrade(engine)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_db_commands(home):
    gateway = str(REPO / ".venv" / "bin" / "gateway")
    upgraded = subprocess.run([gateway, "db", "upgrade", "--home", str(home)], capture_output=True, text=True)
    assert upgraded.returncode == 0, upgraded.stderr
    assert head_revision() in upgraded.stdout
    current = subprocess.run([gateway, "db", "current", "--home", str(home)], capture_output=True, text=True)
    assert current.returncode == 0 and f"database {head_revision()}" in current.stdout


PREVIOUS_RELEASE = "e20a00000001"  # the schema the gateway had before issue 21's and issue 20's audit-log revisions


def test_an_upgrade_from_the_previous_release_keeps_every_record_and_every_receipt(settings, home):
    """docs/operations.md, "Upgrading": a home with data at the previous release's schema,
    then `gateway doctor` (says the schema is behind), `gateway db upgrade`, `gateway
    verify-home` and a new pass: nothing lost, every receipt still verifies."""
    from conftest import drop, query, run_gateway, specimen

    settled = {"GATEWAY_SETTLE_SECONDS": "0", "GATEWAY_ARRIVAL_WAIT_SECONDS": "0"}
    drop(settings, "police", "police_hukou_202610.csv", specimen("police_hukou_202610.csv"))
    drop(settings, "hospital", "hospital_births_202610.csv", specimen("hospital_births_202610.csv"))
    run_gateway(home, "run", "--once", env=settled)
    records = query(settings, "SELECT count(*) FROM record")[0][0]
    receipts = query(settings, "SELECT count(*) FROM receipt")[0][0]
    assert records > 0 and receipts == 2
    engine = make_engine(settings.db_url)
    try:
        with engine.begin() as connection:  # the database as the previous release left it
            command.downgrade(alembic_config(connection), PREVIOUS_RELEASE)
        assert current_revision(engine) == PREVIOUS_RELEASE
    finally:
        engine.dispose()

    behind = run_gateway(home, "doctor", check=False)
    assert behind.returncode != 0 and PREVIOUS_RELEASE in behind.stdout and "gateway db upgrade" in behind.stdout
    upgraded = run_gateway(home, "db", "upgrade")
    assert head_revision() in upgraded.stdout
    assert query(settings, "SELECT count(*) FROM record")[0][0] == records
    assert query(settings, "SELECT count(*) FROM receipt")[0][0] == receipts
    checked = run_gateway(home, "verify-home")
    assert "主目录完整 / HOME COMPLETE" in checked.stdout
    doctor = run_gateway(home, "doctor", check=False)
    assert "数据库结构版本为" not in doctor.stdout  # the schema finding is gone
    drop(settings, "hospital", "hospital_births_202611.csv", specimen("hospital_births_202610.csv"))  # the same bytes again
    run_gateway(home, "run", "--once", env=settled)
    assert query(settings, "SELECT count(*) FROM receipt")[0][0] == receipts + 1  # a duplicate, receipted after the old ones
    run_gateway(home, "ledger", "verify")
