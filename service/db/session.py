"""Engines and sessions: one place that knows the backends' connection quirks.

SQLite gets WAL (readers do not block the writer), a busy timeout (a second
process waits instead of failing), foreign keys, and `BEGIN IMMEDIATE`
transactions: the driver's own lazy BEGIN would let a transaction that read
first fail later when it tries to write.  PostgreSQL needs nothing special.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from ..errors import StoreError

SQLITE_BUSY_TIMEOUT_MS = 15_000


def make_engine(database_url: str, **kwargs: Any) -> Engine:
    """An engine for `database_url` (sqlite:///path or postgresql+psycopg://...)."""
    try:
        url = make_url(database_url)
    except ArgumentError as exc:
        raise StoreError(f"bad database_url {database_url!r}: {exc}") from exc
    if url.get_backend_name() == "postgresql" and url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")  # the driver we ship
    if url.get_backend_name() == "sqlite":
        kwargs.setdefault("connect_args", {}).setdefault("check_same_thread", False)
    else:
        kwargs.setdefault("pool_pre_ping", True)
    try:
        engine = sa.create_engine(url, **kwargs)
    except (ArgumentError, ImportError) as exc:
        raise StoreError(f"cannot use database_url {url.render_as_string()}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        _sqlite_setup(engine)
    return engine


def _sqlite_setup(engine: Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA foreign_keys = ON")
            cur.execute("PRAGMA synchronous = NORMAL")
        finally:
            cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
