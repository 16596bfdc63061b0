"""One check of a source: fetch, parse, extract figures, store, diff, queue alerts.

`figwatch check`, `figwatch run` and the demo all go through `Pipeline`, so a
source behaves the same from cron as in the long-lived service.  A failing
source ends in a recorded `failed` outcome; it never stops the other sources.
A parse that looks broken (empty article body, figure count collapsed) ends in
`parse_suspect` and changes no figures.  After each page `service.health`
applies the error and parser policies, and after each `check_all` looks for
stale sources; those queue ops alerts.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from itertools import zip_longest
from typing import Literal
from urllib.parse import urlsplit

import parsers
from parsers import figures as figure_extractor
from parsers.figures import Figure

from .alerts import Change
from .errors import FetchError, PageWorkerError, StoreError
from .fetch import Fetcher, FetchResult, discover_links, parse_feed
from .health import HealthMonitor, suspect_reason
from .settings import Settings, SourceConfig
from .store import KnownPage, Store

log = logging.getLogger(__name__)

IN_FLIGHT_PER_SLOT = 4  # sources between fetch and store, per global fetch slot

Outcome = Literal["ok", "unchanged", "failed", "parse_suspect"]
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class PageOutcome:
    """How one page of a source ended: ok (parsed and diffed), unchanged, failed, or
    parse_suspect (fetched, but the parse looks broken; nothing was diffed)."""

    source: str
    url: str
    outcome: Outcome
    error: str | None = None
    figures: list[Figure] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    alerts: int = 0
    baseline: bool = False
    status: int | None = None
    figure_count: int = 0  # figures found, also when `figures` is not kept


def figures_of(doc: parsers.Document, *, lang: str | None = None,
               fetched_at: datetime | None = None) -> list[Figure]:
    """The figures of a Document's main text, dated by the page (else the fetch)."""
    reference = _published_date(doc.published) or (fetched_at.date() if fetched_at else None)
    return figure_extractor.extract(doc.text, lang=lang or doc.lang, reference_date=reference)


def _published_date(published: str | None) -> date | None:
    if not published:
        return None
    try:
        return date.fromisoformat(published[:10])
    except ValueError:
        return None


def read_page(body: bytes, url: str, source: SourceConfig, charset: str | None,
              fetched_at: datetime) -> tuple[parsers.Document, list[Figure]]:
    """Parse a page and extract its figures: pure CPU work, safe in a worker process."""
    doc = parsers.extract(body, url=url, parser=source.parser, keep=source.keep,
                          drop=source.drop, charset=charset)
    return doc, figures_of(doc, lang=source.lang, fetched_at=fetched_at)


class PageProcessor:
    """Parse, extract, store and diff one fetched page: CPU and database work, no waiting
    on the network.

    The pipeline runs it in a thread of the service process or, with
    `parse_workers`, in worker processes that each hold their own `Store`
    (service.page_workers).  Either way a page is one transaction.  Without
    `keep_figures` an outcome carries only the figure count: a cycle over ten
    thousand pages would otherwise hold every figure of every page.
    """

    def __init__(self, settings: Settings, store: Store, *, keep_figures: bool = True) -> None:
        self.settings = settings
        self.store = store
        self.keep_figures = keep_figures
        self.health = HealthMonitor(settings, store)

    def process(self, source: SourceConfig, url: str, result: FetchResult, at: datetime,
                known: KnownPage | None = None) -> PageOutcome:
        body = result.body
        content_hash = hashlib.sha256(body).hexdigest()
        if result.not_modified or (known is not None and content_hash == known.content_hash):
            seen = self.store.record_unchanged(
                source=source.name, url=url, at=at, status=result.status,
                rules=self.settings.rules, ops=self.health.policy(url, "unchanged", at=at))
            return PageOutcome(source.name, url, "unchanged", changes=seen.changes,
                               alerts=len(seen.alerts), status=result.status)
        try:
            doc, found = read_page(body, result.final_url or url, source, result.charset, at)
        except parsers.ParseError as exc:
            return self.record_failure(source, url, str(exc), result.status, at)
        kept = found if self.keep_figures else []
        suspect = suspect_reason(doc, found, known.recent_counts if known else ())
        if suspect is not None:
            log.warning("source %s: parse looks broken: %s", source.name, suspect,
                        extra={"source": source.name, "url": url})
            self.store.record_failure(
                source=source.name, url=url, at=at, error=suspect, status=result.status,
                outcome="parse_suspect",
                ops=self.health.policy(url, "parse_suspect", at=at, error=suspect))
            return PageOutcome(source.name, url, "parse_suspect", error=suspect, figures=kept,
                               figure_count=len(found), status=result.status)
        ingested = self.store.ingest(
            source=source.name, url=url, at=at, figures=found, body=body,
            content_hash=content_hash, etag=result.etag, last_modified=result.last_modified,
            status=result.status, rules=self.settings.rules,
            keep_versions=self.settings.keep_versions,
            ops=self.health.policy(url, "ok", at=at),
        )
        return PageOutcome(source.name, url, "ok", figures=kept, figure_count=len(found),
                           changes=ingested.changes, alerts=len(ingested.alerts),
                           baseline=ingested.baseline, status=result.status)

    def record_failure(self, source: SourceConfig, url: str, error: str, status: int | None,
                       at: datetime) -> PageOutcome:
        """A page that could not be fetched or parsed: recorded; its figures stay as they were."""
        self.store.record_failure(source=source.name, url=url, at=at, error=error, status=status,
                                  ops=self.health.policy(url, "failed", at=at, error=error,
                                                         status=status))
        return PageOutcome(source.name, url, "failed", error=error, status=status)


ProcessPage = Callable[[SourceConfig, str, FetchResult, datetime, "KnownPage | None"],
                       Awaitable[PageOutcome]]


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
                 process: ProcessPage | None = None) -> None:
        self.settings = settings
        self.store = store
        self.fetcher = fetcher
        self.clock = clock
        self.processor = PageProcessor(settings, store, keep_figures=keep_figures)
        self.process: ProcessPage = process or self._in_thread

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
