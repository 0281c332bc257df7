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
