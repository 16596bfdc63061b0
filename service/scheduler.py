"""The scheduler of `figwatch run`: APScheduler 3.x jobs over the leases in the database.

Next-due times and leases live in the `sources` table (service.leases): replicas
share the work through it, and a restart resumes where the last process
stopped.  An APScheduler `AsyncIOScheduler` runs the process's periodic work as
jobs, each `coalesce=True` (a late job runs once, not once per missed
interval), `max_instances=1` (never two runs of a job at once) and with no
misfire limit (a late run still runs):

    claim      leases the due sources that fit the free slots and starts their
               checks, then moves its own next run to when the next source can
               fall due (the earliest due time or lease expiry in the database),
               `poll` seconds at most (other replicas move due times too).  A
               finished check, "check now" and a reload run it at once.
    heartbeat  every third of the lease TTL: renews the leases of the checks in
               flight, so a slow page keeps its source.
    every()    other periodic work of the process (the stale-source watch).

A check is an asyncio task holding its source's lease, so a source is never
checked twice at once, here or on another replica; at most `capacity` run at
once.  It ends by setting the source's next due time: `every` plus up to 10%
jitter, so sources added together drift apart; doubled per consecutive failure,
at most a day (SourceLeases.finish).  The failure count is the source's health
record, which the pipeline keeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_SUBMITTED,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import SQLAlchemyError

from .leases import JITTER, Claim, SourceLeases
from .pages import PageOutcome
from .pipeline import Clock, utcnow
from .settings import SourceConfig

__all__ = ["CheckResult", "LeaseScheduler", "NotRunning", "RunSource", "SourceBusy",
           "default_is_failure"]

log = logging.getLogger(__name__)

BATCH_WINDOW = 0.1  # seconds a partly free replica waits for more slots before claiming
_JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
_CLAIM, _HEARTBEAT = "claim", "heartbeat"

RunSource = Callable[[SourceConfig], Awaitable[list[PageOutcome]]]
OnChecked = Callable[[str, "list[PageOutcome] | None", float], None]
Periodic = Callable[[], Awaitable[None]]


def default_is_failure(result: object) -> bool:
    """A run failed if it returned False, an outcome whose `outcome` is "failed", or a
    non-empty list of such outcomes that all failed (one dead article of a listing
    is not a failing source)."""
    if result is False:
        return True
    if getattr(result, "outcome", None) == "failed":
        return True
    if isinstance(result, list | tuple) and result:
        return all(getattr(r, "outcome", None) == "failed" for r in result)
    return False


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
    """One check: its page outcomes (None if it raised) and the source's next due time."""

    source: str
    pages: list[PageOutcome] | None
    failed: bool
    elapsed: float
    next_due_at: datetime | None


class LeaseScheduler:
    """Claims due sources through `leases` and checks each with `run_source`.

    `sources()` maps names to the current config (it changes on reload); a
    claimed source missing from it is handed back and skipped.
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
        self._periodic: list[tuple[str, float, Periodic]] = []
        self._jobs: AsyncIOScheduler | None = None
        self._claiming = False
        self._claim_busy = False  # the claim job is submitted and has not finished
        self._woken = False  # woken while it was busy: run it again at once
        self._next_pause = 0.0  # what the last claim asked for
        self._last_claim = 0.0
        self._busy: set[asyncio.Task[None]] = set()  # running claim and every() jobs

    @property
    def running(self) -> bool:
        """True while the scheduler claims work (for /readyz)."""
        return self._claiming

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    def every(self, seconds: float, func: Periodic, name: str) -> None:
        """Run `func()` every `seconds` (first at start) while the scheduler claims work.
        Call before `run`."""
        self._periodic.append((name, seconds, func))

    def wake(self) -> None:
        """Claim now (a slot came free, or a source may have become due)."""
        if not self._claiming:
            return
        if self._claim_busy:
            self._woken = True
        else:
            self._move_claim(0.0)

    def sources_changed(self) -> None:
        """The config was reloaded: sources skipped as unknown may be ours now."""
        self._foreign.clear()
        self.wake()

    async def run(self, stop: asyncio.Event, grace: float = 30.0) -> None:
        """Claim and check until `stop` is set, then drain: in-flight checks get `grace`
        seconds to finish; the rest are cancelled and their leases handed back."""
        jobs = self._jobs = AsyncIOScheduler(timezone=UTC, job_defaults=_JOB_DEFAULTS)
        jobs.add_listener(self._claim_event,
                          EVENT_JOB_SUBMITTED | EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        now = datetime.now(UTC)
        jobs.add_job(self._tracked(self._heartbeat), IntervalTrigger(
            seconds=max(0.1, self.leases.ttl.total_seconds() / 3)), id=_HEARTBEAT)
        jobs.add_job(self._tracked(self._claim), IntervalTrigger(
            seconds=self.poll, jitter=self.poll * JITTER), id=_CLAIM, next_run_time=now)
        for name, seconds, func in self._periodic:
            jobs.add_job(self._tracked(func), IntervalTrigger(seconds=seconds), id=name,
                         next_run_time=now)
        self._claiming = True
        jobs.start()
        try:
            await stop.wait()
        finally:
            self._claiming = False
            # A claim in progress dispatches what it leased; the heartbeat goes on renewing
            # while the checks drain.
            await self._end_jobs(jobs, _CLAIM, *(name for name, _, _ in self._periodic))
            try:
                await self._drain(grace)
            finally:
                await self._end_jobs(jobs, _HEARTBEAT)
                jobs.shutdown(wait=False)
                self._jobs = None

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

    async def _end_jobs(self, jobs: AsyncIOScheduler, *names: str) -> None:
        """Remove jobs, and wait for the runs of any that are in progress."""
        for name in names:
            with contextlib.suppress(JobLookupError):
                jobs.remove_job(name)
        await asyncio.gather(*self._busy, return_exceptions=True)

    # -- the claim job ---------------------------------------------------------------------------

    def _tracked(self, func: Periodic) -> Callable[[], Awaitable[None]]:
        """`func` as a job whose runs a stopping scheduler waits for, not cancels."""

        @functools.wraps(func)
        async def job() -> None:
            task = asyncio.current_task()
            if task is not None:
                self._busy.add(task)  # type: ignore[arg-type]
            try:
                await func()
            finally:
                self._busy.discard(task)  # type: ignore[arg-type]

        return job

    async def _claim(self) -> None:
        self._next_pause = self.poll  # if the claim raises
        self._next_pause = await self._tick()

    def _claim_event(self, event: JobSubmissionEvent | JobExecutionEvent) -> None:
        """Track the claim job: a wake while it runs reruns it at once; a finished run
        moves its next run to when the next source can fall due."""
        if event.job_id != _CLAIM:
            return
        if event.code == EVENT_JOB_SUBMITTED:
            self._claim_busy, self._woken = True, False
            return
        self._claim_busy = False
        if self._claiming:
            self._move_claim(0.0 if self._woken else self._next_pause)

    def _move_claim(self, seconds: float) -> None:
        if self._jobs is None:
            return
        when = datetime.now(UTC) + timedelta(seconds=max(0.0, min(seconds, self.poll)))
        with contextlib.suppress(JobLookupError):
            self._jobs.modify_job(_CLAIM, next_run_time=when)

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

    # -- checks ----------------------------------------------------------------------------------

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
            self.wake()

    async def _heartbeat(self) -> None:
        """Renew the leases of in-flight checks (a slow page must not lose its lease to
        another replica halfway through)."""
        names = list(self._inflight)
        if not names:
            return
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
