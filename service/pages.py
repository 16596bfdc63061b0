"""What happens to a fetched page: parse, extract figures, store, diff, queue alerts.

`PageProcessor` is the CPU and database half of a check, with no network
wait: the pipeline (service.pipeline) runs it in a thread, or page workers
(service.page_workers) run it in other processes, so this module keeps off
the HTTP stack (a worker never loads it).  A parse that looks broken (empty
article body, figure count collapsed) ends in `parse_suspect` and changes no
figures; after each page `service.health` applies the error and parser
policies, in the same transaction as the page.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

import parsers
from parsers import figures as figure_extractor
from parsers.figures import Figure

from .alerts import Change
from .fetch.base import FetchResult
from .health import HealthMonitor, suspect_reason
from .settings import Settings, SourceConfig
from .store import KnownPage, Store, UnchangedFetch

log = logging.getLogger(__name__)

Outcome = Literal["ok", "unchanged", "failed", "parse_suspect"]


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


@dataclass(frozen=True, slots=True)
class Fetched:
    """A page as fetched, with when its fetch started."""

    source: SourceConfig
    url: str
    result: FetchResult
    at: datetime


def unchanged(result: FetchResult, known: KnownPage | None,
              content_hash: str | None = None) -> bool:
    """A 304, or a body identical to the page's stored one: nothing to parse or diff.
    `content_hash`: the body's, if already computed."""
    if result.not_modified:
        return True
    if known is None or known.content_hash is None:
        return False
    return (content_hash or hashlib.sha256(result.body).hexdigest()) == known.content_hash


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
        if unchanged(result, known, content_hash):
            return self.record_unchanged([Fetched(source, url, result, at)])[0]
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
            ops=self.health.policy(url, "ok", at=at), expect_new=known is None,
        )
        return PageOutcome(source.name, url, "ok", figures=kept, figure_count=len(found),
                           changes=ingested.changes, alerts=len(ingested.alerts),
                           baseline=ingested.baseline, status=result.status)

    def record_unchanged(self, pages: Sequence[Fetched]) -> list[PageOutcome]:
        """Pages found unchanged (`unchanged`), recorded together in one transaction."""
        results = self.store.record_unchanged_many([
            UnchangedFetch(p.source.name, p.url, p.at, p.result.status,
                           ops=self.health.policy(p.url, "unchanged", at=p.at))
            for p in pages], self.settings.rules)
        return [PageOutcome(p.source.name, p.url, "unchanged", changes=r.changes,
                            alerts=len(r.alerts), status=p.result.status)
                for p, r in zip(pages, results, strict=True)]

    def record_failure(self, source: SourceConfig, url: str, error: str, status: int | None,
                       at: datetime) -> PageOutcome:
        """A page that could not be fetched or parsed: recorded; its figures stay as they were."""
        self.store.record_failure(source=source.name, url=url, at=at, error=error, status=status,
                                  ops=self.health.policy(url, "failed", at=at, error=error,
                                                         status=status))
        return PageOutcome(source.name, url, "failed", error=error, status=status)
