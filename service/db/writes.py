"""Writes of one transaction, queued and sent together.

An ingest computes all its writes from a few reads; none of them is read back
before the transaction ends, so they need not wait for each other.  `Writes`
queues them (`execute`, the `Session.execute` shape) and `flush` sends them in
order.  On PostgreSQL they go in one libpq pipeline: one network round trip
for all of them instead of one each (round trips, not work, bound ingest
there).  Elsewhere they run one after the other, exactly as queued.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable


class Writes:
    """Queued write statements of one session's transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._queued: list[tuple[Executable, Sequence[dict[str, Any]] | None]] = []

    def execute(self, statement: Executable,
                params: Sequence[dict[str, Any]] | None = None) -> None:
        """Queue `statement` (with a list of `params`: an executemany)."""
        self._queued.append((statement, params))

    def flush(self) -> None:
        """Send everything queued, in order; errors surface here, as SQLAlchemy errors."""
        queued, self._queued = self._queued, []
        if not queued:
            return
        # Core statements only: straight to the connection, past the ORM's execute path.
        conn = self.session.connection()
        if conn.dialect.name != "postgresql" or len(queued) == 1:
            for statement, params in queued:
                conn.execute(statement, params)
            return
        import psycopg  # the PostgreSQL driver we ship; only needed on that backend

        driver = conn.connection.driver_connection
        try:
            with driver.pipeline():  # type: ignore[union-attr]
                for statement, params in queued:
                    conn.execute(statement, params)
        except psycopg.Error as exc:  # raised at the pipeline's sync, outside SQLAlchemy
            raise DBAPIError(f"{len(queued)} batched writes", None, exc) from exc


Target = Session | Writes
"""Where a write goes: straight to the session, or queued."""
