"""Engines and sessions: one place that knows the backends' connection quirks.

SQLite gets WAL (readers do not block the writer), a busy timeout (a second
process waits instead of failing), foreign keys, and `BEGIN IMMEDIATE`
transactions: the driver's own lazy BEGIN would let a transaction that read
first fail later when it tries to write.  PostgreSQL needs nothing special.

SQLite has one writer at a time.  `WriterQueue` makes the others wait their
turn in a queue rather than in SQLite's busy handler, which polls with sleeps
of up to 100 ms: threads of a process queue on a lock, and processes (page
workers, a `figwatch check` beside `figwatch run`) on an advisory file lock
next to the database, which hands over the moment it is released.
"""

from __future__ import annotations

import fcntl
import os
import threading
from types import TracebackType
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


class WriterQueue:
    """One SQLite writer at a time: a thread lock, and `flock` on `<database>-writer.lock`
    for other processes (see the module docstring).  Re-entrant within a thread."""

    def __init__(self, database: str | None) -> None:
        self._threads = threading.RLock()
        self._depth = 0
        self._path = f"{database}-writer.lock" if database and database != ":memory:" else None
        self._fd: int | None = None

    def __enter__(self) -> WriterQueue:
        self._threads.acquire()
        self._depth += 1
        if self._depth == 1 and self._path is not None:
            try:
                if self._fd is None:
                    self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except OSError:  # a read-only directory, say: SQLite's busy handler still works
                self._path = None
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None and self._path is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._threads.release()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
