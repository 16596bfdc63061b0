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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Literal

import parsers
from parsers import figures as figure_extractor
from parsers.figures import Figure

from .alerts import Change
from .errors import FetchError, StoreError
from .fetch import Fetcher, FetchResult, discover_links, parse_feed
from .health import HealthMonitor, suspect_reason
from .settings import Settings, SourceConfig
from .store import KnownPage, Store

log = logging.getLogger(__name__)

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


PageReader = Callable[[bytes, str, SourceConfig, "str | None", datetime],
                      tuple[parsers.Document, list[Figure]]]


class Pipeline:
    """Runs checks of sources against one store and one fetcher."""

    def __init__(self, settings: Settings, store: Store, fetcher: Fetcher,
                 clock: Clock = utcnow, reader: PageReader = read_page) -> None:
        self.settings = settings
        self.store = store
        self.fetcher = fetcher
        self.clock = clock
        self.reader = reader  # read_page, in this process or in a worker pool (Runtime)
        self.health = HealthMonitor(settings, store)

    async def check_all(self, sources: Sequence[SourceConfig]) -> list[PageOutcome]:
        known = await asyncio.to_thread(self.store.known_pages, [s.name for s in sources])
        results = await asyncio.gather(*(self.check_source(s, known) for s in sources))
        await asyncio.to_thread(self.health.check_stale, self.clock())
        return [page for pages in results for page in pages]

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
            pages = [self._failed(source, source.url, exc)]
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
            return self._failed(source, url, exc, at)
        return await self._process_fetched(source, url, result, at, known)

    async def _process_fetched(self, source: SourceConfig, url: str, result: FetchResult,
                               at: datetime, known: KnownPage | None) -> PageOutcome:
        try:
            return await asyncio.to_thread(self.process, source, url, result, at, known)
        except StoreError as exc:
            # The page was fetched but could not be stored: this page fails, the
            # cycle goes on, and the next check fetches it again.
            log.error("source %s: %s", source.name, exc, extra={"source": source.name, "url": url})
            return PageOutcome(source.name, url, "failed", error=str(exc), status=result.status)

    def process(self, source: SourceConfig, url: str, result: FetchResult, at: datetime,
                known: KnownPage | None = None) -> PageOutcome:
        """Parse, extract and ingest a fetched page (CPU and database; runs in a thread)."""
        body = result.body
        content_hash = hashlib.sha256(body).hexdigest()
        if result.not_modified or (known is not None and content_hash == known.content_hash):
            seen = self.store.record_unchanged(
                source=source.name, url=url, at=at, status=result.status,
                rules=self.settings.rules, ops=self.health.policy(url, "unchanged", at=at))
            return PageOutcome(source.name, url, "unchanged", changes=seen.changes,
                               alerts=len(seen.alerts), status=result.status)
        try:
            doc, found = self.reader(body, result.final_url or url, source, result.charset, at)
        except parsers.ParseError as exc:
            self.store.record_failure(
                source=source.name, url=url, at=at, error=str(exc), status=result.status,
                ops=self.health.policy(url, "failed", at=at, error=str(exc),
                                       status=result.status))
            return PageOutcome(source.name, url, "failed", error=str(exc), status=result.status)
        suspect = suspect_reason(doc, found, known.recent_counts if known else ())
        if suspect is not None:
            log.warning("source %s: parse looks broken: %s", source.name, suspect,
                        extra={"source": source.name, "url": url})
            self.store.record_failure(
                source=source.name, url=url, at=at, error=suspect, status=result.status,
                outcome="parse_suspect",
                ops=self.health.policy(url, "parse_suspect", at=at, error=suspect))
            return PageOutcome(source.name, url, "parse_suspect", error=suspect,
                               figures=found, status=result.status)
        ingested = self.store.ingest(
            source=source.name, url=url, at=at, figures=found, body=body,
            content_hash=content_hash, etag=result.etag, last_modified=result.last_modified,
            status=result.status, rules=self.settings.rules,
            keep_versions=self.settings.keep_versions,
            ops=self.health.policy(url, "ok", at=at),
        )
        return PageOutcome(source.name, url, "ok", figures=found, changes=ingested.changes,
                           alerts=len(ingested.alerts), baseline=ingested.baseline,
                           status=result.status)

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

    def _failed(self, source: SourceConfig, url: str, exc: Exception,
                at: datetime | None = None) -> PageOutcome:
        error = str(exc)
        log.warning("source %s failed: %s", source.name, error,
                    extra={"source": source.name, "url": url})
        status = getattr(exc, "status", None)
        at = at or self.clock()
        self.store.record_failure(source=source.name, url=url, at=at, error=error, status=status,
                                  ops=self.health.policy(url, "failed", at=at, error=error,
                                                         status=status))
        return PageOutcome(source.name, url, "failed", error=error, status=status)
