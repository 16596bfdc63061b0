"""Keep-alive HTTP for a channel: several small connection pools instead of one big one.

httpcore 1.0's pool does work quadratic in its number of connections for
every request it queues or releases (each pass rescans every connection and
polls each idle socket: encode/httpcore#1035, encode/httpx#3215).  With the
32 concurrent sends a busy outbox makes, one pool of 32 connections cost ~7 ms
of CPU per POST to a local receiver, against ~1.6 ms with one connection per
pool.  `Lanes` keeps each pool to `per_lane` connections (one by default) and
opens another lane (another `httpx.AsyncClient`, same settings) when all are
busy, up to `max_connections` in all; a request takes the least busy lane.
Every lane keeps its connections alive, so a steady outbox reuses them all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx

__all__ = ["Lanes"]


class Lanes:
    """`stream(...)` like `httpx.AsyncClient.stream`, spread over small keep-alive pools."""

    def __init__(self, make_client: Callable[[httpx.Limits], httpx.AsyncClient], *,
                 per_lane: int = 1, max_connections: int = 100,
                 keepalive_expiry: float = 5.0) -> None:
        if per_lane < 1 or max_connections < per_lane:
            raise ValueError("need 1 <= per_lane <= max_connections")
        self._make = make_client
        self._limits = httpx.Limits(max_connections=per_lane,
                                    max_keepalive_connections=per_lane,
                                    keepalive_expiry=keepalive_expiry)
        self._per_lane, self._max_lanes = per_lane, max_connections // per_lane
        self._clients: list[httpx.AsyncClient] = []
        self._busy: list[int] = []  # requests in flight per lane
        self._closed = False

    def _pick(self) -> int:
        if self._closed:
            raise RuntimeError("cannot send a request: the connections were closed (aclose)")
        if self._clients:
            lane = min(range(len(self._busy)), key=self._busy.__getitem__)
            if self._busy[lane] < self._per_lane or len(self._clients) >= self._max_lanes:
                return lane
        self._clients.append(self._make(self._limits))
        self._busy.append(0)
        return len(self._clients) - 1

    @asynccontextmanager
    async def stream(self, method: str, url: str, *, content: bytes,
                     headers: dict[str, str]) -> AsyncIterator[httpx.Response]:
        lane = self._pick()
        busy = self._busy  # `aclose` during the request replaces the list
        busy[lane] += 1
        try:
            async with self._clients[lane].stream(method, url, content=content,
                                                  headers=headers) as resp:
                yield resp
        finally:
            busy[lane] -= 1

    @property
    def lanes(self) -> int:
        return len(self._clients)

    async def aclose(self) -> None:
        """Close every lane's connections.  Safe to call twice."""
        self._closed = True
        clients, self._clients, self._busy = self._clients, [], []
        for client in clients:
            await client.aclose()
