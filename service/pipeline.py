"""One check of a source: fetch its page(s), then have each processed (service.pages).

`figwatch check`, `figwatch run` and the demo all go through `Pipeline`, so a
source behaves the same from cron as in the long-lived service.  A failing
source ends in a recorded `failed` outcome; it never stops the other sources.
After each `check_all`, `service.health` looks for stale sources and queues
their ops alerts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from itertools import zip_longest
from urllib.parse import urlsplit

from .errors import FetchError, PageWorkerError, StoreError
from .fetch.base import FetchResult
from .fetch.client import Fetcher
from .fetch.feeds import discover_links, parse_feed
from .group_commit import GroupCommit
from .health import HealthMonitor
from .pages import Fetched, PageOutcome, PageProcessor, unchanged
from .settings import Settings, SourceConfig
from .store import KnownPage, Store

log = logging.getLogger(__name__)

IN_FLIGHT_PER_SLOT = 4  # sources between fetch and store, per global fetch slot

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


ProcessPage = Callable[[SourceConfig, str, FetchResult, datetime, "KnownPage | None"],
                       Awaitable[PageOutcome]]
RecordUnchanged = Callable[[list[Fetched]], Awaitable[Sequence[PageOutcome]]]


def interleave_hosts(sources: Sequence[SourceConfig]) -> list[tuple[int, SourceConfig]]:
    """(index, source) taking one source of each host in turn: a, b, c, a, b, a, ..."""
    by_host: dict[str, list[tuple[int, SourceConfig]]] = {}
    for i, source in enumerate(sources):
        by_host.setdefault(urlsplit(source.url).netloc.lower(), []).append((i, source))
    return [item for round_ in zip_longest(*by_host.values()) for item in round_
            if item is not None]


class Pipeline:
    """Runs checks of sources: fetches here; `process` (a thread, or a page worker process)
    does the rest."""

    def __init__(self, settings: Settings, store: Store, fetcher: Fetcher,
                 clock: Clock = utcnow, *, keep_figures: bool = True,
                 process: ProcessPage | None = None,
                 record_unchanged: RecordUnchanged | None = None) -> None:
        self.settings = settings
        self.store = store
        self.fetcher = fetcher
        self.clock = clock
        self.processor = PageProcessor(settings, store, keep_figures=keep_figures)
        self.process: ProcessPage = process or self._in_thread
        # Unchanged pages are recorded a batch per transaction (service.group_commit): by a
        # page worker if there are any, else in a thread here.
        self._unchanged = GroupCommit[Fetched, PageOutcome](
            record_unchanged or (lambda pages: asyncio.to_thread(self.processor.record_unchanged,
                                                                 pages)))

    @property
    def health(self) -> HealthMonitor:
        return self.processor.health

    async def _in_thread(self, source: SourceConfig, url: str, result: FetchResult,
                         at: datetime, known: KnownPage | None) -> PageOutcome:
        return await asyncio.to_thread(self.processor.process, source, url, result, at, known)

    async def check_all(self, sources: Sequence[SourceConfig]) -> list[PageOutcome]:
        """Check every source once; outcomes in the order of `sources`.

        At most `in_flight` sources are between "fetch started" and "stored":
        a fetcher faster than the parsers would otherwise hold every fetched
        body in memory while it waits.  Sources are taken host by host in turn,
        so a slow host's queue does not hold the slots the others could use.
        """
        known = await asyncio.to_thread(self.store.known_pages, [s.name for s in sources])
        results: list[list[PageOutcome]] = [[] for _ in sources]
        queue = iter(interleave_hosts(sources))

        async def runner() -> None:
            for i, source in queue:
                results[i] = await self.check_source(source, known)

        async with asyncio.TaskGroup() as group:
            for _ in range(min(self.in_flight, len(sources))):
                group.create_task(runner())
        await asyncio.to_thread(self.health.check_stale, self.clock())
        return [page for pages in results for page in pages]

    @property
    def in_flight(self) -> int:
        return IN_FLIGHT_PER_SLOT * self.settings.max_concurrency

    async def check_source(self, source: SourceConfig,
                           known: Mapping[tuple[str, str], KnownPage] | None = None
                           ) -> list[PageOutcome]:
        """Check a source; feeds and listings yield one outcome per article page.

        `known` holds what is stored of the source's pages (`Store.known_pages`);
        without it, it is read here.
        """
        if known is None:
            known = await asyncio.to_thread(self.store.known_pages, [source.name])
        try:
            if source.feed:
                pages = await self._check_feed(source, known)
            elif source.follow:
                pages = await self._check_listing(source, known)
            else:
                pages = [await self.check_page(source, source.url,
                                               known.get((source.name, source.url)))]
        except FetchError as exc:
            pages = [await self._failed(source, source.url, exc)]
        return pages

    async def check_page(self, source: SourceConfig, url: str,
                         known: KnownPage | None) -> PageOutcome:
        at = self.clock()
        try:
            result = await self.fetcher.fetch(
                url,
                etag=known.etag if known else None,
                last_modified=known.last_modified if known else None,
            )
        except FetchError as exc:
            return await self._failed(source, url, exc, at)
        return await self._process_fetched(source, url, result, at, known)

    async def _process_fetched(self, source: SourceConfig, url: str, result: FetchResult,
                               at: datetime, known: KnownPage | None) -> PageOutcome:
        try:
            if unchanged(result, known):
                return await self._unchanged.submit(Fetched(source, url, result, at))
            return await self.process(source, url, result, at, known)
        except (StoreError, PageWorkerError) as exc:
            # The page was fetched but could not be stored: this page fails, the
            # cycle goes on, and the next check fetches it again.
            log.error("source %s: %s", source.name, exc, extra={"source": source.name, "url": url})
            return PageOutcome(source.name, url, "failed", error=str(exc), status=result.status)

    async def _check_feed(self, source: SourceConfig,
                          known: Mapping[tuple[str, str], KnownPage]) -> list[PageOutcome]:
        feed = await self.fetcher.fetch(source.url)
        outcomes = []
        for entry in parse_feed(feed.body, source.url)[: source.follow_limit]:
            page_known = known.get((source.name, entry.url))
            if entry.content_html:
                page = FetchResult(url=entry.url, final_url=entry.url, status=200,
                                   body=entry.content_html.encode(), content_type="text/html",
                                   charset="utf-8", etag=None, last_modified=None, attempts=())
                outcomes.append(await self._process_fetched(source, entry.url, page,
                                                            self.clock(), page_known))
            else:
                outcomes.append(await self.check_page(source, entry.url, page_known))
        return outcomes

    async def _check_listing(self, source: SourceConfig,
                             known: Mapping[tuple[str, str], KnownPage]) -> list[PageOutcome]:
        listing = await self.fetcher.fetch(source.url)
        assert source.follow is not None
        links = discover_links(listing.body, listing.final_url or source.url, source.follow,
                               source.follow_limit)
        return list(await asyncio.gather(*(self.check_page(source, u, known.get((source.name, u)))
                                           for u in links)))

    async def _failed(self, source: SourceConfig, url: str, exc: Exception,
                      at: datetime | None = None) -> PageOutcome:
        log.warning("source %s failed: %s", source.name, exc,
                    extra={"source": source.name, "url": url})
        return await asyncio.to_thread(self.processor.record_failure, source, url, str(exc),
                                       getattr(exc, "status", None), at or self.clock())
