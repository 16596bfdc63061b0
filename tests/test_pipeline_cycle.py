"""A cycle over many sources: bounded work in flight, hosts taken in turn, outcomes in order."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from service.fetch import FetchResult
from service.fetch.client import Fetcher
from service.pages import PageOutcome
from service.pipeline import Pipeline, interleave_hosts
from service.settings import Settings, SourceConfig
from service.snapshot_server import SnapshotServer
from service.store import KnownPage, Store

from .conftest import SNAPSHOTS


def test_hosts_are_taken_in_turn() -> None:
    urls = ["http://a/1", "http://a/2", "http://a/3", "http://b/1", "http://C/1", "http://b/2"]
    sources = [SourceConfig(name=f"s{i}", url=u) for i, u in enumerate(urls)]
    order = [i for i, _ in interleave_hosts(sources)]
    assert order == [0, 3, 4, 1, 5, 2]


async def test_work_in_flight_is_bounded_and_outcomes_keep_source_order(tmp_path: Path) -> None:
    pages = sorted(SNAPSHOTS.rglob("*.html"))
    with SnapshotServer.from_directory(SNAPSHOTS) as site:
        sources = tuple(
            SourceConfig(name=f"s{i}-{j}", url=f"{site.base_url}/{p.relative_to(SNAPSHOTS)}")
            for i in range(5) for j, p in enumerate(pages))
        settings = Settings(database_url=f"sqlite:///{tmp_path}/fw.db", allow_private_targets=True,
                            respect_robots=False, per_host_delay=0, max_concurrency=2,
                            per_host_concurrency=2, sources=sources)
        store = Store(settings.database_url)
        store.migrate()
        active = peak = 0

        async def process(source: SourceConfig, url: str, result: FetchResult, at: datetime,
                          known: KnownPage | None) -> PageOutcome:
            nonlocal active
            active -= 1  # fetched and handed over: no longer in flight once this returns
            return await pipeline._in_thread(source, url, result, at, known)

        class CountingFetcher(Fetcher):
            async def fetch(self, url: str, **kw: str | None) -> FetchResult:
                nonlocal active, peak
                active += 1
                peak = max(peak, active)
                return await super().fetch(url, **kw)  # type: ignore[arg-type]

        async with CountingFetcher(settings) as fetcher:
            pipeline = Pipeline(settings, store, fetcher, process=process)
            outcomes = await pipeline.check_all(sources)
    assert [o.source for o in outcomes] == [s.name for s in sources]
    assert all(o.outcome == "ok" for o in outcomes)
    assert 1 < peak <= pipeline.in_flight == 8 < len(sources)
