"""Politeness: a global concurrency cap, a per-host cap, a gap between request starts per host."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

__all__ = ["HostLimiter"]


@dataclass
class _Host:
    semaphore: asyncio.Semaphore
    next_start: float = field(default=0.0)


class HostLimiter:
    """`async with limiter.slot(host):` around each request.

    The host slot is taken first and the global one last, so a request
    waiting out its host's delay does not hold one of the global slots.
    """

    def __init__(self, total: int, per_host: int, delay: float, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._total = asyncio.Semaphore(total)
        self._per_host = per_host
        self._delay = delay
        self._clock = clock
        self._hosts: dict[str, _Host] = {}

    @asynccontextmanager
    async def slot(self, host: str, *, min_delay: float = 0.0) -> AsyncIterator[None]:
        """Hold a request slot for `host`; `min_delay` raises the gap (robots Crawl-delay)."""
        state = self._hosts.get(host)
        if state is None:
            state = self._hosts[host] = _Host(asyncio.Semaphore(self._per_host))
        async with state.semaphore:
            await self._space(state, max(self._delay, min_delay))
            async with self._total:
                yield

    async def _space(self, state: _Host, delay: float) -> None:
        # Reserve a start time before awaiting: coroutines sharing the host
        # each get their own slot `delay` apart.
        now = self._clock()
        start = max(now, state.next_start)
        state.next_start = start + delay
        if start > now:
            await asyncio.sleep(start - now)  # rate limiting, not waiting for an event
