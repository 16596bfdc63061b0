"""Prometheus metrics of one figwatch process (a registry per process, not the global one).

Two kinds:

- counters and histograms this replica feeds as it works (`figwatch_fetches_total`,
  `figwatch_fetch_seconds`, `figwatch_changes_total`, ...); sum them over replicas;
- gauges read from the database at scrape time (`figwatch_alerts`,
  `figwatch_sources`, `figwatch_sources_stale`, ...): the shared state, the same
  from every replica, so take one replica's value (`max` over replicas).

A database that does not answer a scrape makes `figwatch_database_up` 0 rather
than failing the whole `/metrics` response.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime

import sqlalchemy as sa
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from .db.models import Alert, Source
from .errors import StoreError
from .fetch import FetchResult
from .health import stale_summary
from .pages import PageOutcome
from .settings import Settings
from .store import Store

__all__ = ["DatabaseCollector", "Metrics", "TimedFetcher"]

log = logging.getLogger(__name__)

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

class Metrics:
    """The counters `/metrics` exposes; the scheduler loop and the fetcher feed them."""

    def __init__(self) -> None:
        disable_created_metrics()  # the *_created series only double the scrape
        r = self.registry = CollectorRegistry()
        self.fetches = Counter("figwatch_fetches", "Page checks by outcome (ok, unchanged, "
                               "failed)", ["outcome"], registry=r)
        self.fetch_seconds = Histogram("figwatch_fetch_seconds", "HTTP fetch time of one page, "
                                       "retries included", buckets=_LATENCY_BUCKETS, registry=r)
        self.check_seconds = Histogram("figwatch_check_seconds", "Time to check one source "
                                       "(fetch, parse, store, diff)", buckets=_LATENCY_BUCKETS,
                                       registry=r)
        self.pages_parsed = Counter("figwatch_pages_parsed", "Pages parsed (new content)",
                                    registry=r)
        self.figures = Counter("figwatch_figures", "Figures extracted from parsed pages",
                               registry=r)
        self.changes = Counter("figwatch_changes", "Changes detected, by kind", ["kind"],
                               registry=r)
        self.alerts_queued = Counter("figwatch_alerts_queued", "Alerts written to the outbox",
                                     registry=r)
        self.checks = Counter("figwatch_checks", "Source checks by result", ["result"],
                              registry=r)
        self.in_flight = Gauge("figwatch_checks_in_flight", "Source checks running here",
                               registry=r)
        self.up = Gauge("figwatch_scheduler_running", "1 while the scheduler claims work",
                        registry=r)
        self.replica = Info("figwatch_replica", "This process's replica id", registry=r)
        for outcome in ("ok", "unchanged", "failed"):
            self.fetches.labels(outcome)
        for result in ("ok", "failed"):
            self.checks.labels(result)

    def observe_check(self, pages: Sequence[PageOutcome] | None, seconds: float,
                      failed: bool) -> None:
        self.check_seconds.observe(seconds)
        self.checks.labels("failed" if failed else "ok").inc()
        for page in pages or ():
            self.fetches.labels(page.outcome).inc()
            if page.outcome == "ok":
                self.pages_parsed.inc()
                self.figures.inc(page.figure_count)
            for change in page.changes:
                self.changes.labels(change.kind).inc()
            self.alerts_queued.inc(page.alerts)

    def watch_scheduler(self, replica: str, running: Callable[[], bool],
                        in_flight: Callable[[], int]) -> None:
        self.replica.info({"id": replica})
        self.up.set_function(lambda: 1.0 if running() else 0.0)
        self.in_flight.set_function(lambda: float(in_flight()))

    def watch_database(self, store: Store, settings: Callable[[], Settings],
                       clock: Callable[[], datetime]) -> None:
        self.registry.register(DatabaseCollector(store, settings, clock))


class DatabaseCollector(Collector):
    """Gauges over the shared database, computed at scrape time.  Staleness is
    `service.health`'s definition, the one the `source_stale` ops alert uses."""

    def __init__(self, store: Store, settings: Callable[[], Settings],
                 clock: Callable[[], datetime]) -> None:
        self.store, self.settings, self.clock = store, settings, clock

    def describe(self) -> Iterable[Metric]:
        return []  # collected lazily; no database query at registration

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("figwatch_database_up", "1 if the database answered this scrape")
        try:
            families = self._families()
        except (SQLAlchemyError, StoreError) as exc:
            log.warning("metrics: database query failed: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self) -> list[Metric]:
        started = time.monotonic()
        now = self.clock()
        with self.store.engine.connect() as conn:
            alert_counts = dict(conn.execute(
                sa.select(Alert.state, sa.func.count()).group_by(Alert.state)).all())
            sources = conn.execute(
                sa.select(Source.last_success_at, Source.consecutive_failures, Source.lease_until)
                .where(Source.enabled)).all()
        stale, stale_age = stale_summary(self.store, self.settings(), now)
        alerts = GaugeMetricFamily("figwatch_alerts", "Alerts in the outbox by state",
                                   labels=["state"])
        for state in ("pending", "delivered", "failed"):
            alerts.add_metric([state], alert_counts.get(state, 0))
        ages = [(now - s[0]).total_seconds() for s in sources if s[0] is not None]
        families: list[Metric] = [alerts]
        for name, doc, value in (
            ("figwatch_sources", "Enabled sources", len(sources)),
            ("figwatch_sources_failing", "Sources whose last check failed",
             sum(1 for s in sources if s[1] > 0)),
            ("figwatch_sources_stale", "Sources not checked successfully for twice their "
             "interval", stale),
            ("figwatch_sources_stale_oldest_age_seconds", "Time since the oldest stale source "
             "last succeeded (0 when none is stale)", stale_age),
            ("figwatch_sources_never_succeeded", "Sources never checked successfully",
             sum(1 for s in sources if s[0] is None)),
            ("figwatch_sources_leased", "Sources being checked by some replica",
             sum(1 for s in sources if s[2] is not None and s[2] >= now)),
            ("figwatch_source_oldest_success_age_seconds", "Age of the oldest last success "
             "among enabled sources", max(ages, default=0.0)),
            ("figwatch_metrics_query_seconds", "Time the database gauges took",
             time.monotonic() - started),
        ):
            family = GaugeMetricFamily(name, doc)
            family.add_metric([], value)
            families.append(family)
        return families


class TimedFetcher:
    """Wraps the fetcher so every page fetch lands in `figwatch_fetch_seconds`."""

    def __init__(self, inner: object, histogram: Histogram) -> None:
        self._inner, self._histogram = inner, histogram

    async def fetch(self, url: str, **kwargs: object) -> FetchResult:
        started = time.monotonic()
        try:
            return await self._inner.fetch(url, **kwargs)  # type: ignore[attr-defined,no-any-return]
        finally:
            self._histogram.observe(time.monotonic() - started)

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)
