"""Schema migrations (Alembic) for SQLite and PostgreSQL: `gateway db upgrade`, also run by
`gateway init` and whenever a gateway process opens its database.

Several processes may open one database at once (workers): on PostgreSQL an advisory lock
serializes the upgrade; on SQLite the upgrade runs inside BEGIN IMMEDIATE.
"""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

MIGRATIONS = Path(__file__).parent / "migrations"
_LOCK_KEY = 0x6757_6462  # "gWdb": the advisory lock id for schema upgrades


def alembic_config(connection=None) -> Config:  # type: ignore[no-untyped-def]
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@functools.cache
def head_revision() -> str:
    # Parsing the migration scripts costs more than the query that compares against them,
    # and every Gateway (each scheduler job thread builds one) asks.
    return ScriptDirectory.from_config(alembic_config()).get_current_head() or ""


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> str:
    """Bring the schema to the newest revision; return it. A no-op when already there."""
    head = head_revision()
    if current_revision(engine) == head:
        return head
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        if MigrationContext.configure(connection).get_current_revision() != head:
            command.upgrade(alembic_config(connection), "head")
    return head


def revision(message: str, engine: Engine) -> None:
    """Autogenerate a new revision from the models (for developers: `gateway db revision`)."""
    with engine.begin() as connection:
        command.revision(alembic_config(connection), message=message, autogenerate=True)
