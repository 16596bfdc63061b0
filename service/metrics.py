"""Prometheus metrics of one figwatch process (a registry per process, not the global one)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    """The counters `/metrics` exposes; the pipeline and dispatcher feed them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.fetches = Counter("figwatch_fetches", "Page fetches by outcome", ["outcome"],
                               registry=self.registry)
        self.fetch_seconds = Histogram("figwatch_fetch_seconds", "Time to check one page",
                                       registry=self.registry)
        self.figures = Counter("figwatch_figures", "Figures extracted", registry=self.registry)
        self.changes = Counter("figwatch_changes", "Changes detected by kind", ["kind"],
                               registry=self.registry)
        self.alerts = Counter("figwatch_alerts", "Alerts by delivery result", ["result"],
                              registry=self.registry)
        self.cycles = Counter("figwatch_cycles", "Scheduler cycles run", registry=self.registry)
        self.up = Gauge("figwatch_scheduler_running", "1 while the scheduler runs",
                        registry=self.registry)
