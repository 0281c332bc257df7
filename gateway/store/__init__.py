"""Storage: SQLModel tables and the queries on them; SQLite (WAL) by default."""

from gateway.store.db import create_schema, make_engine, session_scope
from gateway.store.models import Exchange, Receipt, Record, RowError

__all__ = ["Exchange", "Receipt", "Record", "RowError", "create_schema", "make_engine", "session_scope"]
