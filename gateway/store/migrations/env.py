"""Alembic environment: the gateway's SQLModel metadata, on the connection it is handed."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from gateway.store import models  # noqa: F401 - registers the tables

target_metadata = SQLModel.metadata
connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `gateway db upgrade` (gateway.store.migrate)")
context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
