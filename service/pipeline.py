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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Literal

import parsers
from parsers import figures as figure_extractor
from parsers.figures import Figure

from .alerts import Change
from .errors import FetchError, StoreError
from .fetch import Fetcher, FetchResult, discover_links, parse_feed
from .health import SUSPECT_WINDOW, HealthMonitor, suspect_reason
from .settings import Settings, SourceConfig
from .store import Store

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
        results = await asyncio.gather(*(self.check_source(s) for s in sources))
        await asyncio.to_thread(self.health.check_stale, self.clock())
        return [page for pages in results for page in pages]

    async def check_source(self, source: SourceConfig) -> list[PageOutcome]:
        """Check a source; feeds and listings yield one outcome per article page."""
        try:
            if source.feed:
                pages = await self._check_feed(source)
            elif source.follow:
                pages = await self._check_listing(source)
            else:
                pages = [await self.check_page(source, source.url)]
        except FetchError as exc:
            pages = [self._failed(source, source.url, exc)]
        return pages

    async def check_page(self, source: SourceConfig, url: str) -> PageOutcome:
        at = self.clock()
        known = await asyncio.to_thread(self.store.page_validators, source.name, url)
        try:
            result = await self.fetcher.fetch(
                url,
                etag=known.etag if known else None,
                last_modified=known.last_modified if known else None,
            )
        except FetchError as exc:
            return self._failed(source, url, exc, at)
        try:
            return await asyncio.to_thread(self.process, source, url, result, at,
                                           known.content_hash if known else None)
        except StoreError as exc:
            # The page was fetched but could not be stored: this page fails, the
            # cycle goes on, and the next check fetches it again.
            log.error("source %s: %s", source.name, exc, extra={"source": source.name, "url": url})
            return PageOutcome(source.name, url, "failed", error=str(exc), status=result.status)

    def process(self, source: SourceConfig, url: str, result: FetchResult, at: datetime,
                known_hash: str | None = None, body_html: bytes | None = None) -> PageOutcome:
        """Parse, extract and ingest a fetched page (CPU and database; runs in a thread)."""
        body = result.body if body_html is None else body_html
        content_hash = hashlib.sha256(body).hexdigest()
        if result.not_modified or content_hash == known_hash:
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
        suspect = suspect_reason(doc, found, self.store.recent_figure_counts(
            source.name, url, SUSPECT_WINDOW))
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

    async def _check_feed(self, source: SourceConfig) -> list[PageOutcome]:
        feed = await self.fetcher.fetch(source.url)
        outcomes = []
        for entry in parse_feed(feed.body, source.url)[: source.follow_limit]:
            if entry.content_html:
                at = self.clock()
                known = await asyncio.to_thread(self.store.page_validators, source.name, entry.url)
                page = FetchResult(url=entry.url, final_url=entry.url, status=200,
                                   body=entry.content_html.encode(), content_type="text/html",
                                   charset="utf-8", etag=None, last_modified=None, attempts=())
                outcomes.append(await asyncio.to_thread(
                    self.process, source, entry.url, page, at,
                    known.content_hash if known else None))
            else:
                outcomes.append(await self.check_page(source, entry.url))
        return outcomes

    async def _check_listing(self, source: SourceConfig) -> list[PageOutcome]:
        listing = await self.fetcher.fetch(source.url)
        assert source.follow is not None
        links = discover_links(listing.body, listing.final_url or source.url, source.follow,
                               source.follow_limit)
        return list(await asyncio.gather(*(self.check_page(source, u) for u in links)))

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
