"""Wiring: the store, fetcher, pipeline, channels and dispatcher built from Settings.

`figwatch check`, `figwatch run` and `figwatch demo` build one `Runtime` and
differ only in how often they call `cycle()`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType

from .channels import build_channels
from .fetch.client import Fetcher
from .outbox import Dispatcher, DispatchReport
from .page_workers import PageWorkers
from .pages import PageOutcome
from .pipeline import Clock, Pipeline, utcnow
from .settings import Settings, SourceConfig
from .store import Store

log = logging.getLogger(__name__)


@dataclass(slots=True)
class CycleReport:
    pages: list[PageOutcome]
    dispatch: DispatchReport

    @property
    def failed(self) -> list[PageOutcome]:
        return [p for p in self.pages if p.outcome == "failed"]


def _shareable(store: Store) -> bool:
    """Whether other processes can open the store's database (not in-memory SQLite)."""
    url = store.engine.url
    return url.get_backend_name() != "sqlite" or url.database not in (None, "", ":memory:")


class Runtime:
    """Everything one figwatch process needs, opened and closed together."""

    def __init__(self, settings: Settings, *, clock: Clock = utcnow, fetcher: Fetcher | None = None,
                 channel_overrides: dict[str, object] | None = None,
                 keep_figures: bool = True) -> None:
        """`keep_figures=False`: page outcomes carry figure counts, not the figures (what
        `figwatch check` and `figwatch run` print and count needs no more)."""
        self.settings = settings
        self.clock = clock
        self.store = Store(settings.database_url)
        self.store.migrate()
        self.store.sync_sources(settings.sources, at=clock())
        self.fetcher = fetcher or Fetcher(settings)
        self.workers: PageWorkers | None = None
        if settings.parse_workers > 0 and _shareable(self.store):
            self.workers = PageWorkers(settings, settings.parse_workers, keep_figures=keep_figures)
        elif settings.parse_workers > 0:
            log.warning("parse_workers = %d ignored: an in-memory database cannot be shared "
                        "with worker processes", settings.parse_workers)
        self.pipeline = Pipeline(settings, self.store, self.fetcher, clock=clock,
                                 keep_figures=keep_figures,
                                 process=self.workers.process if self.workers else None,
                                 record_unchanged=(self.workers.record_unchanged
                                                   if self.workers else None))
        self.channels = build_channels(settings)
        if channel_overrides:
            self.channels.update(channel_overrides)  # type: ignore[arg-type]
        self.dispatcher = Dispatcher(self.store, self.channels, clock=clock,
                                     give_up_after=timedelta(days=1))

    def apply_settings(self, new: Settings) -> None:
        """Use `new` (a reloaded config: sources, rules, api_token) from the next page on."""
        rules_changed = new.rules != self.settings.rules
        self.settings = self.pipeline.settings = new
        self.pipeline.processor.settings = self.pipeline.health.settings = new
        if self.workers is not None and rules_changed:
            self.workers.restart(new)

    async def cycle(self, sources: Sequence[SourceConfig] | None = None) -> CycleReport:
        """Check the sources (all by default), then deliver what the outbox holds."""
        pages = await self.pipeline.check_all(self.settings.sources if sources is None else sources)
        report = await self.dispatcher.run_once()
        return CycleReport(pages, report)

    async def aclose(self) -> None:
        await self.fetcher.aclose()
        if self.workers is not None:
            self.workers.close()
        for channel in self.channels.values():
            await channel.aclose()
        self.store.close()

    async def __aenter__(self) -> Runtime:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()
