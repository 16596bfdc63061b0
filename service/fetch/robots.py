"""robots.txt, fetched once per origin and kept for a day.

`Crawl-delay` (not in RFC 9309, but widely honoured) is reported so the
fetcher can space requests to that host further apart.

Rules follow RFC 9309 where it is lenient and the brief where it is not: a
robots.txt that is missing (any 4xx) allows everything; a server error (5xx)
or an unreachable/oversized file also allows everything, but is remembered
only for `error_ttl` so a recovered site's rules apply soon.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

from ..errors import FetchError

__all__ = ["ROBOTS_ERROR_TTL", "ROBOTS_TTL", "RobotsCache", "RobotsGet"]

log = logging.getLogger(__name__)

ROBOTS_TTL = 86400.0
ROBOTS_ERROR_TTL = 600.0
# Fetch `url` once (no retries); return (status, body).  Raises FetchError.
RobotsGet = Callable[[str], Awaitable[tuple[int, bytes]]]


@dataclass(frozen=True)
class _Entry:
    parser: RobotFileParser
    expires: float


class RobotsCache:
    """`await cache.allowed(url)`: may `user_agent` fetch `url`?"""

    def __init__(self, get: RobotsGet, user_agent: str, *, ttl: float = ROBOTS_TTL,
                 error_ttl: float = ROBOTS_ERROR_TTL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._get = get
        self._agent = user_agent
        self._ttl, self._error_ttl = ttl, error_ttl
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        origin = f"{parts.scheme.lower()}://{parts.netloc.lower()}"
        entry = self._entries.get(origin)
        if entry is None or entry.expires <= self._clock():
            # One fetch per origin even when many pages of a site start together.
            async with self._locks.setdefault(origin, asyncio.Lock()):
                entry = self._entries.get(origin)
                if entry is None or entry.expires <= self._clock():
                    entry = self._entries[origin] = await self._load(origin)
        return entry.parser.can_fetch(self._agent, url)

    def crawl_delay(self, url: str) -> float | None:
        """The Crawl-delay robots.txt asks of us for `url`'s origin, if loaded and given."""
        parts = urlsplit(url)
        entry = self._entries.get(f"{parts.scheme.lower()}://{parts.netloc.lower()}")
        if entry is None:
            return None
        delay = entry.parser.crawl_delay(self._agent)
        return float(delay) if delay is not None else None

    async def _load(self, origin: str) -> _Entry:
        url = f"{origin}/robots.txt"
        parser = RobotFileParser(url)
        try:
            status, body = await self._get(url)
        except FetchError as exc:
            log.info("robots.txt unavailable, allowing all: %s", exc)
            parser.parse([])  # no rules: everything allowed
            return _Entry(parser, self._clock() + self._error_ttl)
        if 200 <= status < 300:
            parser.parse(body.decode("utf-8", errors="replace").splitlines())
            return _Entry(parser, self._clock() + self._ttl)
        parser.parse([])
        ttl = self._ttl if 400 <= status < 500 else self._error_ttl
        return _Entry(parser, self._clock() + ttl)
