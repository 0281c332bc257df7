"""Storage: SQLModel tables and the queries on them; SQLite (WAL) by default."""

from gateway.store.db import create_schema, make_engine, session_scope
from gateway.store.models import Exchange, Receipt, Record, RowError

# Every table on SQLModel.metadata whichever model module is imported first (importing
# any gateway.store.* module runs this file first); models.py imports neither (issue 15).
from gateway.store import mail_models, obligation_models, reconcile_models, register_models, retention_models, web_models  # noqa: E402,F401 - issues 9, 10, 17, 18, 21, 22

__all__ = ["Exchange", "Receipt", "Record", "RowError", "create_schema", "make_engine", "session_scope"]
