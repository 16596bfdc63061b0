"""One check of a source: fetch, parse, extract figures, store, diff, queue alerts.

`figwatch check`, `figwatch run` and the demo all go through `Pipeline`, so a
source behaves the same from cron as in the long-lived service.  A failing
source ends in a recorded `failed` outcome; it never stops the other sources.
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
from .errors import FetchError
from .fetch import Fetcher, FetchResult, discover_links, parse_feed
from .settings import Settings, SourceConfig
from .store import Store

log = logging.getLogger(__name__)

Outcome = Literal["ok", "unchanged", "failed"]
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class PageOutcome:
    """How one page of a source ended: ok (parsed and diffed), unchanged, or failed."""

    source: str
    url: str
    outcome: Outcome
    error: str | None = None
    figures: list[Figure] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    alerts: int = 0
    baseline: bool = False


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


class Pipeline:
    """Runs checks of sources against one store and one fetcher."""

    def __init__(self, settings: Settings, store: Store, fetcher: Fetcher,
                 clock: Clock = utcnow) -> None:
        self.settings = settings
        self.store = store
        self.fetcher = fetcher
        self.clock = clock

    async def check_all(self, sources: Sequence[SourceConfig]) -> list[PageOutcome]:
        results = await asyncio.gather(*(self.check_source(s) for s in sources))
        return [page for pages in results for page in pages]

    async def check_source(self, source: SourceConfig) -> list[PageOutcome]:
        """Check a source; feeds and listings yield one outcome per article page."""
        try:
            if source.feed:
                return await self._check_feed(source)
            if source.follow:
                return await self._check_listing(source)
            return [await self.check_page(source, source.url)]
        except FetchError as exc:
            return [self._failed(source, source.url, exc)]

    async def check_page(self, source: SourceConfig, url: str) -> PageOutcome:
        at = self.clock()
        known = self.store.page_validators(source.name, url)
        try:
            result = await self.fetcher.fetch(
                url,
                etag=known.etag if known else None,
                last_modified=known.last_modified if known else None,
            )
        except FetchError as exc:
            return self._failed(source, url, exc, at)
        return await asyncio.to_thread(self.process, source, url, result, at,
                                       known.content_hash if known else None)

    def process(self, source: SourceConfig, url: str, result: FetchResult, at: datetime,
                known_hash: str | None = None, body_html: bytes | None = None) -> PageOutcome:
        """Parse, extract and ingest a fetched page (CPU and database; runs in a thread)."""
        body = result.body if body_html is None else body_html
        content_hash = hashlib.sha256(body).hexdigest()
        if result.not_modified or content_hash == known_hash:
            self.store.record_unchanged(source=source.name, url=url, at=at, status=result.status)
            return PageOutcome(source.name, url, "unchanged")
        try:
            doc = parsers.extract(body, url=result.final_url or url, parser=source.parser,
                                  keep=source.keep, drop=source.drop, charset=result.charset)
        except parsers.ParseError as exc:
            self.store.record_failure(source=source.name, url=url, at=at, error=str(exc),
                                      status=result.status)
            return PageOutcome(source.name, url, "failed", error=str(exc))
        found = figures_of(doc, lang=source.lang, fetched_at=at)
        ingested = self.store.ingest(
            source=source.name, url=url, at=at, figures=found, body=body,
            content_hash=content_hash, etag=result.etag, last_modified=result.last_modified,
            status=result.status, rules=self.settings.rules,
            keep_versions=self.settings.keep_versions,
        )
        return PageOutcome(source.name, url, "ok", figures=found, changes=ingested.changes,
                           alerts=len(ingested.alerts), baseline=ingested.baseline)

    async def _check_feed(self, source: SourceConfig) -> list[PageOutcome]:
        feed = await self.fetcher.fetch(source.url)
        outcomes = []
        for entry in parse_feed(feed.body, source.url)[: source.follow_limit]:
            if entry.content_html:
                at = self.clock()
                known = self.store.page_validators(source.name, entry.url)
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
        self.store.record_failure(source=source.name, url=url, at=at or self.clock(),
                                  error=error, status=status)
        return PageOutcome(source.name, url, "failed", error=error)
