"""Engine and sessions. SQLite runs in WAL mode with full fsync: a source file is moved
to processed/ right after the commit, so the commit must survive a power cut."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, event
from sqlmodel import Session, create_engine

from gateway.store import models  # noqa: F401 - registers the tables


def make_engine(url: str, *, readonly: bool = False) -> Engine:
    """An engine for the gateway database. On SQLite a writer's transactions start with
    BEGIN IMMEDIATE; a `readonly` engine (listings, verification) keeps SQLite's deferred
    BEGIN, so in WAL mode it reads while a long exchange is being written."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            # Let SQLAlchemy's begin event issue BEGIN IMMEDIATE instead of pysqlite's
            # deferred BEGIN, so two writers queue at the start, not fail at commit.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=60000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(connection):  # type: ignore[no-untyped-def]
            connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

        return engine
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]  # psycopg 3, not the psycopg2 default
    # pool_pre_ping: a connection the server dropped (restart, failover) is replaced on
    # checkout instead of failing the next transaction; connect_timeout: an unreachable
    # host fails a pass in seconds rather than hanging it (store/faults.py backs off).
    connect_args = {} if "connect_timeout=" in url else {"connect_timeout": 10}
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, connect_args=connect_args)


def create_schema(engine: Engine) -> None:
    """Bring the database to the current schema through the Alembic migrations."""
    from gateway.store.migrate import upgrade

    upgrade(engine)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: committed on success, rolled back on any exception."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
