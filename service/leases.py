"""Source leases: which replica checks which due source, with next-due times in the database.

Several `figwatch run` replicas share one PostgreSQL.  The `sources` row of a
source holds when it is next due (`next_due_at`) and who is checking it now
(`lease_owner`, `lease_until`), so replicas split the work without talking to
each other, and a restart resumes where the last process left off:

    claim   SELECT ... WHERE enabled AND next_due_at <= now AND lease expired
            ... FOR UPDATE SKIP LOCKED LIMIT n; set lease_owner/lease_until; commit
    check   the pipeline runs; a heartbeat pushes lease_until out while it does
    finish  next_due_at = now + every (+ up to 10% jitter; doubled per consecutive
            failure, at most a day); lease cleared -- only if we still own it

A replica that dies keeps its leases only until `lease_until`; then any other
replica claims those sources.  SKIP LOCKED lets concurrent claimers take
disjoint rows without waiting; on SQLite (`BEGIN IMMEDIATE`) claims are
serial and the same code serves the single replica.  Times come from the
replicas' clocks (keep them in NTP sync); the lease TTL absorbs small skew.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from .db.models import Source
from .events import wait_any
from .pipeline import Clock, PageOutcome, utcnow
from .scheduler import JITTER, MAX_BACKOFF, default_is_failure
from .settings import SourceConfig

__all__ = ["DEFAULT_LEASE_TTL", "CheckResult", "Claim", "LeaseScheduler", "NotRunning",
           "SourceBusy", "SourceLeases", "replica_id", "startup_lock"]

log = logging.getLogger(__name__)

DEFAULT_LEASE_TTL = timedelta(seconds=60)
BATCH_WINDOW = 0.1  # seconds a partly free loop waits for more slots before claiming
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
        if not names:
            return 0
        with self._tx() as session:
            result = session.execute(
                sa.update(Source)
                .where(Source.lease_owner == self.owner, Source.name.in_(list(names)))
                .values(lease_until=now + self.ttl))
            return int(getattr(result, "rowcount", 0) or 0)

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
        if not names:
            return 0
        with self._tx() as session:
            result = session.execute(
                sa.update(Source)
                .where(Source.lease_owner == self.owner, Source.name.in_(list(names)))
                .values(lease_owner=None, lease_until=None))
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



# -- the due loop -------------------------------------------------------------------------------

RunSource = Callable[[SourceConfig], Awaitable[list[PageOutcome]]]
OnChecked = Callable[[str, "list[PageOutcome] | None", float], None]


class SourceBusy(Exception):
    """A source's lease is held (by this or another replica): a check is in progress."""

    def __init__(self, name: str, owner: str | None, until: datetime | None) -> None:
        who = f" by {owner}" if owner else ""
        when = f" until {until.isoformat(timespec='seconds')}" if until else ""
        super().__init__(f"source {name!r} is being checked{who} (lease held{when})")
        self.name, self.owner, self.until = name, owner, until


class NotRunning(Exception):
    """The scheduler is not claiming work (starting up or shutting down)."""


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check run by the loop: its page outcomes (None if it raised) and next due time."""

    source: str
    pages: list[PageOutcome] | None
    failed: bool
    elapsed: float
    next_due_at: datetime | None


class LeaseScheduler:
    """Claims due sources through `leases` and checks each with `run_source`.

    At most `capacity` checks are in flight; a finished check frees its slot and
    wakes the loop.  With nothing due the loop sleeps until the earliest due
    time in the database, at most `poll` seconds (other replicas move due
    times too).  `sources()` maps names to the current config (it changes on
    reload); a claimed source missing from it is handed back and skipped.
    `on_checked(name, pages, seconds)` sees every finished check (metrics).
    """

    def __init__(self, leases: SourceLeases, run_source: RunSource,
                 sources: Callable[[], Mapping[str, SourceConfig]], *, capacity: int = 16,
                 poll: float = 1.0, clock: Clock = utcnow, on_checked: OnChecked | None = None,
                 is_failure: Callable[[object], bool] = default_is_failure) -> None:
        self.leases, self._run_source, self._sources = leases, run_source, sources
        self.capacity, self.poll, self._clock = capacity, poll, clock
        self._on_checked, self._is_failure = on_checked, is_failure
        self._inflight: dict[str, asyncio.Task[CheckResult]] = {}
        self._foreign: set[str] = set()
        self._wake = asyncio.Event()
        self._claiming = False
        self._last_claim = 0.0

    @property
    def running(self) -> bool:
        """True while the loop claims work (for /readyz)."""
        return self._claiming

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    def wake(self) -> None:
        self._wake.set()

    def sources_changed(self) -> None:
        """The config was reloaded: sources skipped as unknown may be ours now."""
        self._foreign.clear()
        self._wake.set()

    async def run(self, stop: asyncio.Event, grace: float = 30.0) -> None:
        """Claim and check until `stop` is set, then drain: in-flight checks get `grace`
        seconds to finish; the rest are cancelled and their leases handed back."""
        heartbeat = asyncio.create_task(self._heartbeat())
        self._claiming = True
        try:
            while not stop.is_set():
                pause = await self._tick()
                await self._pause(stop, pause)
        finally:
            self._claiming = False
            try:
                await self._drain(grace)
            finally:
                heartbeat.cancel()
                await asyncio.gather(heartbeat, return_exceptions=True)

    async def check_now(self, name: str) -> CheckResult:
        """Check one source now, here, holding its lease (the API's "check now").

        Raises KeyError (no such enabled source), SourceBusy, or NotRunning.
        """
        if not self._claiming:
            raise NotRunning("the scheduler is not running")
        source = self._sources().get(name)
        if source is None:
            raise KeyError(name)
        if name in self._inflight:
            raise SourceBusy(name, self.leases.owner, None)
        claim = await asyncio.to_thread(self.leases.claim, name, self._clock())
        if claim is None:
            owner, until = await asyncio.to_thread(self.leases.holder, name)
            raise SourceBusy(name, owner, until)
        return await asyncio.shield(self._start(source, claim))

    async def _tick(self) -> float:
        """Claim what is due and fits; return how long to wait before the next claim."""
        free = self.capacity - len(self._inflight)
        if free <= 0:
            return self.poll  # a finished check wakes us
        # Claim in batches (one query per finished check would hammer the database), but
        # never wait long: slow checks must not hold the free slots idle.
        if self._inflight and free < max(1, self.capacity // 2):
            wait = self._last_claim + BATCH_WINDOW - time.monotonic()
            if wait > 0:
                return wait
        self._last_claim = time.monotonic()
        now = self._clock()
        try:
            claims = await asyncio.to_thread(self.leases.claim_due, now, free, self._foreign)
            for claim in claims:
                self._dispatch(claim)
            if len(claims) == free:
                return self.poll  # more may be due; a finished check wakes us
            nxt = await asyncio.to_thread(self.leases.next_wake, now)
        except SQLAlchemyError as exc:
            log.warning("cannot claim due sources: %s", exc, extra={"replica": self.leases.owner})
            return self.poll
        if nxt is None:
            return self.poll
        return min(self.poll, max(0.0, (nxt - self._clock()).total_seconds()))

    def _dispatch(self, claim: Claim) -> None:
        name = claim.name
        source = self._sources().get(name)
        if source is None:  # enabled in the database, not in our config (a replica not reloaded)
            self._foreign.add(name)
            log.warning("source %s is not in this replica's config; leaving it to others", name,
                        extra={"source": name})
            self.leases.release([name])
            return
        self._start(source, claim)

    def _start(self, source: SourceConfig, claim: Claim) -> asyncio.Task[CheckResult]:
        task = asyncio.create_task(self._check(source, claim), name=f"check {source.name}")
        self._inflight[source.name] = task
        return task

    async def _check(self, source: SourceConfig, claim: Claim) -> CheckResult:
        started = time.monotonic()
        pages: list[PageOutcome] | None = None
        try:
            try:
                pages = await self._run_source(source)
                failed = self._is_failure(pages)
            except Exception:  # a failed source must never stop the scheduler
                log.exception("check of source %s raised", source.name,
                              extra={"source": source.name, "url": source.url})
                failed = True
            elapsed = time.monotonic() - started
            if self._on_checked is not None:
                self._on_checked(source.name, pages, elapsed)
            try:
                nxt = await asyncio.to_thread(self.leases.finish, source.name, self._clock(),
                                              failed=failed, every_seconds=claim.every_seconds)
            except SQLAlchemyError as exc:
                log.warning("cannot record next due time of %s (its lease will expire): %s",
                            source.name, exc, extra={"source": source.name})
                nxt = None
            return CheckResult(source.name, pages, failed, elapsed, nxt)
        finally:
            self._inflight.pop(source.name, None)
            self._wake.set()

    async def _pause(self, stop: asyncio.Event, seconds: float) -> None:
        if seconds <= 0:
            return
        try:
            await wait_any(stop, self._wake, timeout=seconds)
        finally:
            self._wake.clear()

    async def _heartbeat(self) -> None:
        """Renew the leases of in-flight checks every third of the TTL (a slow page must not
        lose its lease to another replica halfway through)."""
        interval = max(0.1, self.leases.ttl.total_seconds() / 3)
        while True:
            await asyncio.sleep(interval)  # a timer, not a wait for another task
            names = list(self._inflight)
            if not names:
                continue
            try:
                await asyncio.to_thread(self.leases.renew, self._clock(), names)
            except SQLAlchemyError as exc:
                log.warning("cannot renew leases: %s", exc, extra={"replica": self.leases.owner})

    def force(self) -> None:
        """Cancel every check in flight now (a second SIGTERM/SIGINT while draining)."""
        for task in list(self._inflight.values()):
            task.cancel()

    async def _drain(self, grace: float) -> None:
        tasks = dict(self._inflight)
        if not tasks:
            return
        log.info("waiting up to %gs for %d in-flight check(s)", grace, len(tasks))
        _, pending = await asyncio.wait(tasks.values(), timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        names = sorted(n for n, t in tasks.items() if t.cancelled())
        if not names:
            return
        log.warning("cancelled %d unfinished check(s): %s", len(names), ", ".join(names))
        try:
            await asyncio.to_thread(self.leases.release, names)
        except SQLAlchemyError as exc:
            log.warning("cannot hand back leases (they expire in %s): %s", self.leases.ttl, exc)
