"""Wiring: the store, fetcher, pipeline, channels and dispatcher built from Settings.

`figwatch check`, `figwatch run` and `figwatch demo` build one `Runtime` and
differ only in how often they call `cycle()`.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from types import TracebackType
from typing import Any

from .channels import build_channels
from .fetch import Fetcher
from .outbox import Dispatcher, DispatchReport
from .pipeline import Clock, PageOutcome, PageReader, Pipeline, read_page, utcnow
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


def _in_pool(pool: ProcessPoolExecutor, *args: Any) -> tuple[Any, Any]:
    """`read_page` in a worker process; called from a pipeline thread, so it may block."""
    return pool.submit(read_page, *args).result()


class Runtime:
    """Everything one figwatch process needs, opened and closed together."""

    def __init__(self, settings: Settings, *, clock: Clock = utcnow, fetcher: Fetcher | None = None,
                 channel_overrides: dict[str, object] | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self.store = Store(settings.database_url)
        self.store.migrate()
        self.store.sync_sources(settings.sources, at=clock())
        self.fetcher = fetcher or Fetcher(settings)
        self._workers: ProcessPoolExecutor | None = None
        reader: PageReader = read_page
        if settings.parse_workers > 0:
            # Parsing and figure extraction are pure CPU: worker processes let them
            # use every core while this process fetches and writes.
            self._workers = ProcessPoolExecutor(
                settings.parse_workers, mp_context=multiprocessing.get_context("forkserver"))
            reader = partial(_in_pool, self._workers)
        self.pipeline = Pipeline(settings, self.store, self.fetcher, clock=clock, reader=reader)
        self.channels = build_channels(settings)
        if channel_overrides:
            self.channels.update(channel_overrides)  # type: ignore[arg-type]
        self.dispatcher = Dispatcher(self.store, self.channels, clock=clock,
                                     give_up_after=timedelta(days=1))

    async def cycle(self, sources: Sequence[SourceConfig] | None = None) -> CycleReport:
        """Check the sources (all by default), then deliver what the outbox holds."""
        pages = await self.pipeline.check_all(self.settings.sources if sources is None else sources)
        report = await self.dispatcher.run_once()
        return CycleReport(pages, report)

    async def aclose(self) -> None:
        await self.fetcher.aclose()
        if self._workers is not None:
            self._workers.shutdown(cancel_futures=True)
        for channel in self.channels.values():
            await channel.aclose()
        self.store.close()

    async def __aenter__(self) -> Runtime:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()
