"""SourceScheduler on a real AsyncIOScheduler: intervals, backoff, reload (events, no sleeps)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from service.scheduler import SourceScheduler, default_is_failure
from service.settings import Settings, SourceConfig


class _NoJitter(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return a


def _settings(*sources: tuple[str, float | str]) -> Settings:
    return Settings(sources=[{"name": n, "url": f"https://{n}.example/", "every": e}
                             for n, e in sources])


class _Runs:
    """Records runs; `until(predicate)` waits (on an event, 5 s at most) for a matching record."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bool, int]] = []
        self._changed = asyncio.Event()

    def on_run(self, name: str, failed: bool, failures: int) -> None:
        self.calls.append((name, failed, failures))
        self._changed.set()

    async def until(self, predicate: Callable[[list[tuple[str, bool, int]]], bool]) -> None:
        async with asyncio.timeout(5):
            while not predicate(self.calls):
                self._changed.clear()
                await self._changed.wait()


@pytest.fixture
async def cleanup() -> AsyncIterator[list[SourceScheduler]]:
    made: list[SourceScheduler] = []
    yield made
    for scheduler in made:
        scheduler.shutdown(wait=False)


async def test_runs_each_source_on_its_interval(cleanup: list[SourceScheduler]) -> None:
    runs = _Runs()
    seen: list[str] = []

    async def run(source: SourceConfig) -> object:
        seen.append(source.name)
        return []

    scheduler = SourceScheduler(_settings(("fast", 0.05), ("slow", "1h")), run,
                                on_run=runs.on_run, rng=_NoJitter())
    cleanup.append(scheduler)
    scheduler.start()
    await runs.until(lambda calls: sum(c[0] == "fast" for c in calls) >= 3)
    assert seen.count("slow") == 1  # first run at start, the next an hour later
    assert all(not failed for _, failed, _ in runs.calls)


async def test_failures_back_off_doubling_up_to_the_cap(cleanup: list[SourceScheduler]) -> None:
    start = datetime.now(UTC)
    runs = _Runs()
    results: list[Any] = [RuntimeError("boom"), False, False, ["ok"]]

    async def run(source: SourceConfig) -> object:
        result = results.pop(0)
        if isinstance(result, Exception):
            raise result
        return result

    scheduler = SourceScheduler(_settings(("flaky", "1h")), run, clock=lambda: start,
                                on_run=runs.on_run, max_backoff=timedelta(hours=3),
                                rng=_NoJitter())
    cleanup.append(scheduler)
    scheduler.start()
    await runs.until(lambda calls: len(calls) == 1)
    assert runs.calls[-1] == ("flaky", True, 1)
    assert scheduler.next_run("flaky") == start + timedelta(hours=2)
    scheduler.run_now("flaky")
    await runs.until(lambda calls: len(calls) == 2)
    assert scheduler.next_run("flaky") == start + timedelta(hours=3)  # 4h, capped
    scheduler.run_now("flaky")
    await runs.until(lambda calls: len(calls) == 3)
    assert scheduler.failures("flaky") == 3
    scheduler.run_now("flaky")
    await runs.until(lambda calls: len(calls) == 4)
    assert runs.calls[-1] == ("flaky", False, 0)
    next_run = scheduler.next_run("flaky")
    assert next_run is not None and next_run <= start + timedelta(hours=1, minutes=6)


async def test_reload_adds_removes_and_reschedules(cleanup: list[SourceScheduler]) -> None:
    runs = _Runs()

    async def run(source: SourceConfig) -> object:
        return None

    scheduler = SourceScheduler(_settings(("a", "1h"), ("b", "1h")), run, on_run=runs.on_run,
                                rng=_NoJitter())
    cleanup.append(scheduler)
    scheduler.start()
    await runs.until(lambda calls: {c[0] for c in calls} == {"a", "b"})
    a_next = scheduler.next_run("a")
    scheduler.reload(_settings(("a", "1h"), ("c", "2h")))
    assert scheduler.next_run("b") is None
    assert scheduler.next_run("a") == a_next  # unchanged source keeps its timing
    await runs.until(lambda calls: any(c[0] == "c" for c in calls))


def test_default_failure_rule() -> None:
    class Outcome:
        def __init__(self, outcome: str) -> None:
            self.outcome = outcome

    assert default_is_failure(False) and default_is_failure(Outcome("failed"))
    assert default_is_failure([Outcome("failed"), Outcome("failed")])
    assert not default_is_failure([Outcome("failed"), Outcome("ok")])
    assert not default_is_failure([]) and not default_is_failure(None)
