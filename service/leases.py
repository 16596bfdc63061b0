"""Source leases: which replica checks which due source, with next-due times in the database.

Several `figwatch run` replicas share one PostgreSQL.  The `sources` row of a
source holds when it is next due (`next_due_at`) and who is checking it now
(`lease_owner`, `lease_until`), so replicas split the work without talking to
each other, and a restart resumes where the last process left off:

    claim   SELECT ... WHERE enabled AND next_due_at <= now AND lease expired
            ... FOR UPDATE SKIP LOCKED LIMIT n; set lease_owner/lease_until; commit
    check   the pipeline runs (service.scheduler); a heartbeat pushes lease_until
            out while it does
    finish  next_due_at = now + every (+ up to 10% jitter; doubled per consecutive
            failure, at most a day); lease cleared -- only if we still own it

A replica that dies keeps its leases only until `lease_until`; then any other
replica claims those sources.  SKIP LOCKED lets concurrent claimers take
disjoint rows without waiting; on SQLite (`BEGIN IMMEDIATE`) claims are
serial and the same code serves the single replica.  Times come from the
replicas' clocks (keep them in NTP sync); the lease TTL absorbs small skew.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from .db.models import Source

__all__ = ["DEFAULT_LEASE_TTL", "JITTER", "MAX_BACKOFF", "Claim", "SourceLeases", "replica_id",
           "startup_lock"]

log = logging.getLogger(__name__)

DEFAULT_LEASE_TTL = timedelta(seconds=60)
JITTER = 0.1  # a check's next due time: `every` plus up to this fraction of it
MAX_BACKOFF = timedelta(days=1)  # the longest a failing source waits
_STARTUP_LOCK_KEY = 0x66697773  # "fiws"; not the migration lock's key


def replica_id() -> str:
    """`host/pid/random`: unique per process, readable in the sources table and the logs."""
    return f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(3)}"


@contextmanager
def startup_lock(engine: Engine) -> Iterator[None]:
    """Serialise start-up and reload work (migrate, sync sources) across replicas.

    Two replicas syncing an empty sources table at once would both insert the
    same names; on PostgreSQL a session advisory lock makes them take turns.
    SQLite serialises writers by itself.
    """
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _STARTUP_LOCK_KEY})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _STARTUP_LOCK_KEY})
            conn.commit()


@dataclass(frozen=True, slots=True)
class Claim:
    """A source this replica holds the lease of, and when it was due (None: never checked)."""

    name: str
    due_at: datetime | None
    every_seconds: int | None = None


class SourceLeases:
    """The lease operations on the `sources` table, for one replica (`owner`)."""

    def __init__(self, engine: Engine, owner: str, ttl: timedelta = DEFAULT_LEASE_TTL, *,
                 max_backoff: timedelta = MAX_BACKOFF, rng: random.Random | None = None) -> None:
        self.engine, self.owner, self.ttl = engine, owner, ttl
        self.max_backoff = max_backoff
        self._rng = rng or random.Random()
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._skip_locked = engine.dialect.name == "postgresql"

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    def claim_due(self, now: datetime, limit: int,
                  exclude: Collection[str] = ()) -> list[Claim]:
        """Lease up to `limit` enabled sources due by `now` whose lease is free or expired."""
        if limit <= 0:
            return []
        q = (sa.select(Source)
             .where(Source.enabled,
                    sa.or_(Source.next_due_at.is_(None), Source.next_due_at <= now),
                    sa.or_(Source.lease_until.is_(None), Source.lease_until < now))
             .order_by(Source.next_due_at.is_not(None), Source.next_due_at, Source.id)
             .limit(limit))
        if exclude:
            q = q.where(Source.name.not_in(list(exclude)))
        if self._skip_locked:
            q = q.with_for_update(skip_locked=True)
        with self._tx() as session:
            rows = session.scalars(q).all()
            for row in rows:
                row.lease_owner, row.lease_until = self.owner, now + self.ttl
            return [Claim(r.name, r.next_due_at, r.every_seconds) for r in rows]

    def claim(self, name: str, now: datetime) -> Claim | None:
        """Lease one source whether or not it is due ("check now"); None if someone holds it.

        Raises KeyError when no enabled source has that name.
        """
        with self._tx() as session:
            row = session.scalars(sa.select(Source).where(Source.name == name, Source.enabled)
                                  .with_for_update()).first()
            if row is None:
                raise KeyError(name)
            if row.lease_until is not None and row.lease_until >= now:
                return None
            row.lease_owner, row.lease_until = self.owner, now + self.ttl
            return Claim(row.name, row.next_due_at, row.every_seconds)

    def holder(self, name: str) -> tuple[str | None, datetime | None]:
        """Who holds a source's lease, and until when (for error messages and the API)."""
        with self._tx() as session:
            row = session.execute(sa.select(Source.lease_owner, Source.lease_until)
                                  .where(Source.name == name)).first()
            return (row[0], row[1]) if row else (None, None)

    def renew(self, now: datetime, names: Collection[str]) -> int:
        """Push out the leases of the sources still being checked; returns how many we hold."""
        return self._update_ours(names, lease_until=now + self.ttl)

    def finish(self, name: str, now: datetime, *, failed: bool,
               every_seconds: int | None = None) -> datetime | None:
        """Set the next due time after a check and free the lease.

        Returns the next due time, or None when the lease was lost (it expired and
        another replica took the source): then that replica's schedule stands.
        A success with `every_seconds` known (from the claim) is one UPDATE.
        """
        with self._tx() as session:
            if not failed and every_seconds is not None:
                nxt = now + self.delay(every_seconds, 0)
                result = session.execute(
                    sa.update(Source)
                    .where(Source.name == name, Source.lease_owner == self.owner)
                    .values(next_due_at=nxt, lease_owner=None, lease_until=None))
                found = bool(getattr(result, "rowcount", 0))
            else:
                row = session.scalars(sa.select(Source).where(Source.name == name,
                                                              Source.lease_owner == self.owner)
                                      .with_for_update()).first()
                found = row is not None
                if row is not None:
                    nxt = now + self.delay(row.every_seconds,
                                           row.consecutive_failures if failed else 0)
                    row.next_due_at, row.lease_owner, row.lease_until = nxt, None, None
        if not found:
            log.warning("lease of source %s was lost while it was checked", name,
                        extra={"source": name, "replica": self.owner})
            return None
        return nxt

    def delay(self, every_seconds: int, failures: int) -> timedelta:
        """`every` (doubled per consecutive failure, capped) plus up to 10% jitter."""
        every = timedelta(seconds=every_seconds)
        base = min(every * 2 ** min(failures, 32), max(self.max_backoff, every))
        return base + every * self._rng.uniform(0, JITTER)

    def release(self, names: Collection[str]) -> int:
        """Give leases back unchecked (shutdown, a source not in our config): due as before."""
        return self._update_ours(names, lease_owner=None, lease_until=None)

    def _update_ours(self, names: Collection[str], **values: object) -> int:
        """Set `values` on those of `names` whose lease we hold; returns how many."""
        if not names:
            return 0
        with self._tx() as session:
            result = session.execute(
                sa.update(Source)
                .where(Source.lease_owner == self.owner, Source.name.in_(list(names)))
                .values(**values))
            return int(getattr(result, "rowcount", 0) or 0)

    def request_check(self, name: str, now: datetime) -> bool:
        """Make a source due now, for whichever replica claims it first."""
        with self._tx() as session:
            result = session.execute(sa.update(Source).where(Source.name == name, Source.enabled)
                                     .values(next_due_at=now))
            return bool(getattr(result, "rowcount", 0))

    def next_wake(self, now: datetime) -> datetime | None:
        """The earliest time a source could become claimable (a due time or a lease expiry)."""
        with self._tx() as session:
            due = session.scalar(sa.select(sa.func.min(Source.next_due_at))
                                 .where(Source.enabled, Source.lease_until.is_(None)))
            expiry = session.scalar(sa.select(sa.func.min(Source.lease_until))
                                    .where(Source.enabled, Source.lease_until.is_not(None)))
            never = session.scalar(sa.select(sa.func.count()).select_from(Source)
                                   .where(Source.enabled, Source.next_due_at.is_(None),
                                          Source.lease_until.is_(None)))
        if never:
            return now
        times = [t for t in (due, expiry) if t is not None]
        return min(times) if times else None
