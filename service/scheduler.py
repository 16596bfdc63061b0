"""Runs each source every `every` (plus up to 10% jitter) and backs failing sources off.

An APScheduler 3.x `AsyncIOScheduler` with one job per source:
`coalesce=True` (a late source runs once, not once per missed interval),
`max_instances=1` (a slow source is never run twice at once) and no misfire
limit (a late run still runs).  A source whose run fails — the callable
raises, or returns what `is_failure` calls a failure — waits
`every * 2**failures` (at most `max_backoff`, one day by default) before its
next run; the first success puts it back on its interval.  A failure is
logged and counted, never allowed to stop the scheduler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from .settings import Settings, SourceConfig

__all__ = ["JITTER", "MAX_BACKOFF", "RunSource", "SourceScheduler", "default_is_failure"]

log = logging.getLogger(__name__)

JITTER = 0.1
MAX_BACKOFF = timedelta(days=1)
RunSource = Callable[[SourceConfig], Awaitable[object]]
OnRun = Callable[[str, bool, int], None]


def _utcnow() -> datetime:
    return datetime.now(UTC)


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


@dataclass
class _State:
    source: SourceConfig
    failures: int = 0


class SourceScheduler:
    """Schedules `run_source(source)` for every source in `settings`.

    `clock` (aware UTC datetimes) dates the backoff; `on_run(name, failed,
    consecutive_failures)` is called after every run (metrics, tests).
    Call `start()` from inside the running event loop.
    """

    def __init__(self, settings: Settings, run_source: RunSource, *,
                 clock: Callable[[], datetime] = _utcnow,
                 is_failure: Callable[[object], bool] = default_is_failure,
                 on_run: OnRun | None = None, max_backoff: timedelta = MAX_BACKOFF,
                 rng: random.Random | None = None) -> None:
        self._run_source = run_source
        self._clock = clock
        self._is_failure = is_failure
        self._on_run = on_run
        self._max_backoff = max_backoff
        self._rng = rng or random.Random()
        self._states: dict[str, _State] = {}
        self._running: set[asyncio.Task[object]] = set()
        self._scheduler = AsyncIOScheduler(timezone=UTC, job_defaults={
            "coalesce": True, "max_instances": 1, "misfire_grace_time": None})
        self._settings = settings

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running)

    def start(self) -> None:
        """Schedule every source (first runs spread over 10% of its interval) and start."""
        for source in self._settings.sources:
            self._add(source)
        self._scheduler.start()

    def shutdown(self, wait: bool = True) -> None:
        """Stop scheduling.  With `wait=False` in-flight runs are cancelled too; with
        `wait=True` they go on, and `await wait_idle()` waits for them."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        if not wait:
            for task in list(self._running):
                task.cancel()

    async def wait_idle(self) -> None:
        """Wait until no source run is in flight (after `shutdown(wait=True)`: SIGTERM)."""
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    def reload(self, settings: Settings) -> None:
        """Apply a new source list: new sources are added, removed ones dropped, changed
        ones rescheduled (their failure count reset); unchanged ones keep their timing."""
        wanted = {s.name: s for s in settings.sources}
        for name in list(self._states):
            if name not in wanted or wanted[name] != self._states[name].source:
                self._remove(name)
        for name, source in wanted.items():
            if name not in self._states:
                self._add(source)
        self._settings = settings

    def failures(self, name: str) -> int:
        """Consecutive failed runs of a source."""
        return self._states[name].failures

    def run_now(self, name: str) -> None:
        """Run a source as soon as possible ("check now"); its interval goes on from there."""
        if name not in self._states:
            raise KeyError(f"no scheduled source named {name!r}")
        self._scheduler.modify_job(name, next_run_time=self._clock())

    def next_run(self, name: str) -> datetime | None:
        job = self._scheduler.get_job(name)
        return job.next_run_time if job is not None else None

    def _add(self, source: SourceConfig) -> None:
        seconds = source.every.total_seconds()
        self._states[source.name] = _State(source)
        first = self._clock() + timedelta(seconds=self._rng.uniform(0, seconds * JITTER))
        self._scheduler.add_job(
            self._run, IntervalTrigger(seconds=seconds, jitter=seconds * JITTER, timezone=UTC),
            args=[source.name], id=source.name, name=source.name, next_run_time=first,
            replace_existing=True)

    def _remove(self, name: str) -> None:
        self._states.pop(name, None)
        with contextlib.suppress(JobLookupError):
            self._scheduler.remove_job(name)

    async def _run(self, name: str) -> None:
        state = self._states.get(name)
        if state is None:
            return
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            failed = await self._run_once(state)
        finally:
            if task is not None:
                self._running.discard(task)
        if self._states.get(name) is not state:
            return  # removed or replaced by a reload while it ran
        state.failures = state.failures + 1 if failed else 0
        if failed:
            self._back_off(state)
        if self._on_run is not None:
            self._on_run(name, failed, state.failures)

    async def _run_once(self, state: _State) -> bool:
        try:
            result = await self._run_source(state.source)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a failed source must never stop the scheduler
            log.warning("source %s failed: %s", state.source.name, exc,
                        extra={"source": state.source.name})
            return True
        return self._is_failure(result)

    def _back_off(self, state: _State) -> None:
        every = state.source.every
        delay = min(every * 2 ** state.failures, self._max_backoff)
        when = self._clock() + delay
        log.info("source %s failed %d time(s) in a row; next run at %s",
                 state.source.name, state.failures, when.isoformat())
        with contextlib.suppress(JobLookupError):
            self._scheduler.modify_job(state.source.name, next_run_time=when)
