"""The scheduler of `figwatch run` on every backend, over real APScheduler jobs and leases:
claiming and draining, waking on a free slot, jitter, coalesced missed runs, backoff with
stored health, one run of a source at a time, and a restart that resumes the schedule from
the database."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from service.db.models import Source
from service.leases import SourceLeases
from service.pages import PageOutcome
from service.scheduler import (
    LeaseScheduler,
    NotRunning,
    RunSource,
    SourceBusy,
    default_is_failure,
)
from service.settings import SourceConfig
from service.store import Store
from tests import backends

db_url = backends.db_url
store = backends.store

HOUR = timedelta(hours=1)


def configs(n: int, every: str = "1h") -> dict[str, SourceConfig]:
    return {f"s{i}": SourceConfig(name=f"s{i}", url=f"http://example.com/{i}", every=every)
            for i in range(n)}


@asynccontextmanager
async def running(store: Store, owner: str, run_source: RunSource,
                  cfg: Mapping[str, SourceConfig], *, capacity: int = 16, poll: float = 0.05,
                  grace: float = 0.5, rng: random.Random | None = None,
                  max_backoff: timedelta = timedelta(days=1)) -> AsyncIterator[LeaseScheduler]:
    """A replica's scheduler, running until the block ends (then draining for `grace`)."""
    leases = SourceLeases(store.engine, owner, timedelta(seconds=30), rng=rng,
                          max_backoff=max_backoff)
    scheduler = LeaseScheduler(leases, run_source, lambda: cfg, capacity=capacity, poll=poll)
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run(stop, grace=grace))
    try:
        yield scheduler
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)  # polling with a deadline


def due(store: Store) -> dict[str, datetime]:
    return {h.name: h.next_due_at for h in store.source_health() if h.next_due_at is not None}


def ok(source: SourceConfig) -> list[PageOutcome]:
    return [PageOutcome(source.name, source.url, "unchanged")]


def recorder() -> tuple[list[str], RunSource]:
    """A check that finds every page unchanged, and the names of the sources it checked."""
    checked: list[str] = []

    async def run(source: SourceConfig) -> list[PageOutcome]:
        checked.append(source.name)
        return ok(source)

    return checked, run


async def test_checks_due_sources_and_drains_on_stop(store: Store) -> None:
    cfg = configs(3)
    store.sync_sources(list(cfg.values()))
    release = asyncio.Event()
    checked: list[str] = []

    async def run(source: SourceConfig) -> list[PageOutcome]:
        checked.append(source.name)
        if source.name == "s2":
            await release.wait()  # a slow page: still running at SIGTERM
        return ok(source)

    async with running(store, "me", run, cfg, grace=0.2) as scheduler:
        await until(lambda: sorted(checked) == ["s0", "s1", "s2"] and scheduler.in_flight == 1)
        with pytest.raises(SourceBusy):
            await scheduler.check_now("s2")
        result = await scheduler.check_now("s0")  # not due for an hour, checked anyway
        assert result.pages and result.pages[0].outcome == "unchanged"
        with pytest.raises(KeyError):
            await scheduler.check_now("nope")
    with pytest.raises(NotRunning):
        await scheduler.check_now("s0")
    now = datetime.now(UTC)
    assert all(due(store)[n] > now + timedelta(minutes=59) for n in ("s0", "s1"))
    held = SourceLeases(store.engine, "other").claim_due(now, 10)
    assert [c.name for c in held] == ["s2"]  # cancelled after the grace: handed back, due


async def test_slow_checks_do_not_hold_free_slots_idle(store: Store) -> None:
    cfg = configs(8)
    store.sync_sources(list(cfg.values()))
    hang = asyncio.Event()
    checked: list[str] = []

    async def run(source: SourceConfig) -> list[PageOutcome]:
        if source.name in ("s0", "s1", "s2"):
            await hang.wait()  # three slow sites take three of the four slots
        checked.append(source.name)
        return ok(source)

    # A finished check wakes the claim job: no waiting for the 5 s poll.
    async with running(store, "me", run, cfg, capacity=4, poll=5.0, grace=0.1):
        await until(lambda: len(checked) >= 5)
    assert sorted(checked) == ["s3", "s4", "s5", "s6", "s7"]


async def test_next_due_times_get_up_to_ten_percent_jitter(store: Store) -> None:
    cfg = configs(20)
    store.sync_sources(list(cfg.values()))
    checked, run = recorder()

    before = datetime.now(UTC)
    async with running(store, "me", run, cfg, capacity=32):
        await until(lambda: len(due(store)) == 20)
    after = datetime.now(UTC)
    times = list(due(store).values())
    assert sorted(checked) == sorted(cfg)  # once each: the next run is an hour away
    assert all(before + HOUR <= t <= after + HOUR * 1.1 for t in times)
    assert len({t.replace(microsecond=0) for t in times}) > 10  # spread, not in step


async def test_missed_runs_coalesce_into_one(store: Store) -> None:
    cfg = configs(1, every="10s")
    store.sync_sources(list(cfg.values()))
    with store.engine.begin() as conn:  # down for a day: 8,640 missed runs
        conn.execute(sa.update(Source).values(next_due_at=datetime.now(UTC) - timedelta(days=1)))
    checked: list[datetime] = []

    async def run(source: SourceConfig) -> list[PageOutcome]:
        checked.append(datetime.now(UTC))
        return ok(source)

    async with running(store, "me", run, cfg):
        await until(lambda: len(checked) == 1)
        await asyncio.sleep(0.3)  # a few polls: no catch-up runs
    assert len(checked) == 1
    nxt = due(store)["s0"]
    assert checked[0] + timedelta(seconds=10) <= nxt <= checked[0] + timedelta(seconds=12)


async def test_a_failing_source_backs_off_doubling_up_to_the_cap(store: Store) -> None:
    cfg = configs(1)
    store.sync_sources(list(cfg.values()))
    results = ["failed", "failed", "failed", "unchanged"]

    async def run(source: SourceConfig) -> list[PageOutcome]:
        outcome = results.pop(0)
        if outcome == "failed":  # what the pipeline stores for a failed fetch
            store.record_failure(source=source.name, url=source.url, at=datetime.now(UTC),
                                 error="boom")
        return [PageOutcome(source.name, source.url, outcome)]

    class NoJitter(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return a

    async with running(store, "me", run, cfg, rng=NoJitter(),
                       max_backoff=timedelta(hours=3)) as scheduler:
        await until(lambda: len(results) == 3)
        delays = []
        for _ in range(3):
            await until(lambda: scheduler.in_flight == 0 and "s0" in due(store))
            health = store.source_health()[0]
            delays.append((health.consecutive_failures, due(store)["s0"]))
            result = await scheduler.check_now("s0")
            assert result.next_due_at == due(store)["s0"]
    (f1, d1), (f2, d2), (f3, d3) = delays
    now = datetime.now(UTC)
    assert (f1, f2, f3) == (1, 2, 3)
    assert now + 2 * HOUR - timedelta(minutes=1) < d1 < now + 2 * HOUR
    assert now + 3 * HOUR - timedelta(minutes=1) < d2 < now + 3 * HOUR  # 4h, capped
    assert now + 3 * HOUR - timedelta(minutes=1) < d3 < now + 3 * HOUR
    assert now + HOUR - timedelta(minutes=1) < due(store)["s0"] <= now + HOUR  # back on time


async def test_a_source_is_never_checked_twice_at_once(store: Store) -> None:
    cfg = configs(1)
    store.sync_sources(list(cfg.values()))
    release = asyncio.Event()
    running_now, most, runs = 0, 0, 0

    async def run(source: SourceConfig) -> list[PageOutcome]:
        nonlocal running_now, most, runs
        running_now, runs = running_now + 1, runs + 1
        most = max(most, running_now)
        try:
            await release.wait()  # a slow page
            return ok(source)
        finally:
            running_now -= 1

    async with running(store, "a", run, cfg) as a, running(store, "b", run, cfg) as b:
        await until(lambda: runs == 1)
        holder, other = (a, b) if a.in_flight else (b, a)
        holder.leases.request_check("s0", datetime.now(UTC))  # due again while it runs
        await asyncio.sleep(0.3)  # several claims by each replica
        for replica in (holder, other):
            with pytest.raises(SourceBusy):
                await replica.check_now("s0")
        release.set()
        await until(lambda: a.in_flight == b.in_flight == 0)
    assert (runs, most) == (1, 1)


async def test_a_restart_resumes_the_schedule_from_the_database(store: Store) -> None:
    cfg = configs(3)
    store.sync_sources(list(cfg.values()))
    checked, run = recorder()

    async with running(store, "first", run, cfg):
        await until(lambda: len(due(store)) == 3)
    schedule = due(store)
    async with running(store, "second", run, cfg) as second:
        await asyncio.sleep(0.3)  # several claims: nothing is due for an hour
        assert sorted(checked) == ["s0", "s1", "s2"]
        second.leases.request_check("s1", datetime.now(UTC))
        second.wake()
        await until(lambda: len(checked) == 4)
    assert checked[-1] == "s1"
    assert {n: t for n, t in due(store).items() if n != "s1"} == {
        n: t for n, t in schedule.items() if n != "s1"}


def test_default_failure_rule() -> None:
    class Outcome:
        def __init__(self, outcome: str) -> None:
            self.outcome = outcome

    assert default_is_failure(False) and default_is_failure(Outcome("failed"))
    assert default_is_failure([Outcome("failed"), Outcome("failed")])
    assert not default_is_failure([Outcome("failed"), Outcome("ok")])
    assert not default_is_failure([]) and not default_is_failure(None)
