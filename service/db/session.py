"""Engines and sessions: one place that knows the backends' connection quirks.

SQLite gets WAL (readers do not block the writer), a busy timeout (a second
process waits instead of failing), foreign keys, and `BEGIN IMMEDIATE`
transactions: the driver's own lazy BEGIN would let a transaction that read
first fail later when it tries to write.  PostgreSQL connections are checked
when taken from the pool (`_pg_setup`) without a round trip of their own.

SQLite has one writer at a time.  `WriterQueue` makes the others wait their
turn in a queue rather than in SQLite's busy handler, which polls with sleeps
of up to 100 ms: threads of a process queue on a lock, and processes (page
workers, a `figwatch check` beside `figwatch run`) on an advisory file lock
next to the database, which hands over the moment it is released.
"""

from __future__ import annotations

import fcntl
import os
import select
import threading
import time
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from ..errors import StoreError

SQLITE_BUSY_TIMEOUT_MS = 15_000
SQLITE_WAL_CHECKPOINT_PAGES = 16_000
PING_AFTER_IDLE_SECONDS = 30.0  # a pooled connection idle this long is pinged on checkout


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
    ping = url.get_backend_name() != "postgresql" or "pool_pre_ping" in kwargs
    if url.get_backend_name() != "sqlite" and ping:
        kwargs.setdefault("pool_pre_ping", True)
    try:
        engine = sa.create_engine(url, **kwargs)
    except (ArgumentError, ImportError) as exc:
        raise StoreError(f"cannot use database_url {url.render_as_string()}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        _sqlite_setup(engine)
    elif not ping:
        _pg_setup(engine)
    return engine


def _pg_setup(engine: Engine) -> None:
    """A checkout check instead of `pool_pre_ping`'s `SELECT 1`, a round trip per
    transaction (a page's ingest is three): an idle connection whose server went
    away (restart, idle timeout) has something to read, its termination notice or
    EOF, so one zero-timeout poll of its socket finds it; one idle longer than
    `PING_AFTER_IDLE_SECONDS` (a silent network) is still pinged.  A dead one is
    replaced before use, as `pool_pre_ping` would."""

    @sa.event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["checked_in"] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop("checked_in", None)
        if since is None:  # a new connection
            return
        try:
            if dbapi_conn.closed or dbapi_conn.pgconn.status != 0:  # CONNECTION_OK
                raise sa.exc.DisconnectionError("connection closed")
            poller = select.poll()  # not select(): a descriptor may be above FD_SETSIZE
            poller.register(dbapi_conn.fileno(), select.POLLIN)
            if poller.poll(0):
                raise sa.exc.DisconnectionError("server sent to an idle connection")
            if time.monotonic() - since > PING_AFTER_IDLE_SECONDS:
                engine.dialect.do_ping(dbapi_conn)
        except sa.exc.DisconnectionError:
            raise
        except Exception as exc:  # whatever the driver raises: reconnect
            raise sa.exc.DisconnectionError(str(exc)) from exc


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
            # A checkpoint syncs the file while the writer waits: one per 64 MB of
            # WAL rather than the default 4 MB.
            cur.execute(f"PRAGMA wal_autocheckpoint = {SQLITE_WAL_CHECKPOINT_PAGES}")
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
