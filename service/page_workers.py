"""Page workers: processes that parse, extract and store fetched pages.

A cycle's CPU goes to parsing, figure extraction and the store's diff and
writes.  In one process all of it shares one core, under the GIL, with the
event loop that fetches.  With `parse_workers = N`, N processes each hold a
`PageProcessor` with their own `Store` (engine and connections), and the
service process only fetches and hands each body over: a page is still one
transaction, committed by the worker that processed it.

Workers get the settings once, when they start (without the watchlist, which
they never read); `restart` replaces them when the rules change.  A worker
that dies (out of memory, a crash in a C extension) breaks the pool: that
page fails with `PageWorkerError` and the next page gets a fresh pool.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime

from .errors import PageWorkerError
from .fetch import FetchResult
from .pages import PageOutcome, PageProcessor
from .settings import Settings, SourceConfig
from .store import KnownPage, Store

log = logging.getLogger(__name__)

_processor: PageProcessor | None = None  # this worker process's, set by _start


def _start(settings: Settings, keep_figures: bool) -> None:
    global _processor
    _processor = PageProcessor(settings, Store(settings.database_url), keep_figures=keep_figures)


def _process(source: SourceConfig, url: str, result: FetchResult, at: datetime,
             known: KnownPage | None) -> PageOutcome:
    assert _processor is not None, "page worker not started"
    return _processor.process(source, url, result, at, known)


class PageWorkers:
    """A pool of page worker processes (see the module docstring)."""

    def __init__(self, settings: Settings, count: int, *, keep_figures: bool) -> None:
        self.count = count
        self.keep_figures = keep_figures
        self._pool = self._new_pool(settings)
        self._settings = settings

    def _new_pool(self, settings: Settings) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.count, mp_context=multiprocessing.get_context("forkserver"),
            initializer=_start,
            initargs=(settings.model_copy(update={"sources": ()}), self.keep_figures))

    async def process(self, source: SourceConfig, url: str, result: FetchResult, at: datetime,
                      known: KnownPage | None) -> PageOutcome:
        pool = self._pool
        try:
            return await asyncio.get_running_loop().run_in_executor(
                pool, _process, source, url, result, at, known)
        except BrokenProcessPool as exc:
            if pool is self._pool:  # the first page to notice replaces the pool
                log.error("a page worker died; starting new workers")
                self._pool = self._new_pool(self._settings)
                pool.shutdown(wait=False, cancel_futures=True)
            raise PageWorkerError(f"page worker died while processing {url}: {exc}") from exc

    def restart(self, settings: Settings) -> None:
        """New workers with `settings`; pages already handed over finish in the old ones."""
        old, self._settings = self._pool, settings
        self._pool = self._new_pool(settings)
        old.shutdown(wait=False)

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)
