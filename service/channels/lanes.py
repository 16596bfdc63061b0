"""Keep-alive HTTP for a channel: several small connection pools instead of one big one.

httpcore 1.0's pool does work quadratic in its number of connections for
every request it queues or releases (each pass rescans every connection and
polls each idle socket: encode/httpcore#1035, encode/httpx#3215).  With the
32 concurrent sends a busy outbox makes, one pool of 32 connections cost ~7 ms
of CPU per POST to a local receiver, against ~1.6 ms with one connection per
pool.  `Lanes` keeps each pool to `per_lane` connections (one by default) and
opens another lane (another transport, same settings) when all are busy, up
to `max_connections` in all; a request takes the least busy lane.  Every lane
keeps its connections alive, so a steady outbox reuses them all.

A request goes to its lane's transport (`httpx.AsyncHTTPTransport`, or the
one injected in tests) directly, without an `httpx.AsyncClient` around it: a
channel posts to one fixed URL with its own headers, and the client's
per-request work (merging URL, headers and cookies, the auth and redirect
machinery, storing the receiver's cookies) was ~30% of the CPU of a POST.
Without a client there are no cookies and no proxies from the environment
(as for fetches: a proxy would connect to addresses the SSRF guard never saw).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx

__all__ = ["Lanes"]


class Lanes:
    """`stream(...)` like `httpx.AsyncClient.stream`, spread over small keep-alive pools.

    `make_transport(limits)` makes one lane's transport; `timeout` applies to
    every request (as an `httpx.AsyncClient`'s would).
    """

    def __init__(self, make_transport: Callable[[httpx.Limits], httpx.AsyncBaseTransport], *,
                 per_lane: int = 1, max_connections: int = 100,
                 keepalive_expiry: float = 5.0, timeout: float | httpx.Timeout = 10.0) -> None:
        if per_lane < 1 or max_connections < per_lane:
            raise ValueError("need 1 <= per_lane <= max_connections")
        self._make = make_transport
        self._limits = httpx.Limits(max_connections=per_lane,
                                    max_keepalive_connections=per_lane,
                                    keepalive_expiry=keepalive_expiry)
        self._extensions: dict[str, Any] = {"timeout": httpx.Timeout(timeout).as_dict()}
        self._per_lane, self._max_lanes = per_lane, max_connections // per_lane
        self._transports: list[httpx.AsyncBaseTransport] = []
        self._busy: list[int] = []  # requests in flight per lane
        self._closed = False

    def _pick(self) -> int:
        if self._closed:
            raise RuntimeError("cannot send a request: the connections were closed (aclose)")
        busy = self._busy
        if busy:
            lane = busy.index(min(busy))
            if busy[lane] < self._per_lane or len(busy) >= self._max_lanes:
                return lane
        self._transports.append(self._make(self._limits))
        busy.append(0)
        return len(busy) - 1

    @asynccontextmanager
    async def stream(self, method: str, url: httpx.URL | str, *, content: bytes,
                     headers: dict[str, str]) -> AsyncIterator[httpx.Response]:
        """The answer, its body not read yet; closed (its connection released) on exit.

        `url` is best passed parsed (`httpx.URL`), once for all requests.  The
        Host and Content-Length headers are added; nothing else is.
        """
        lane = self._pick()
        busy = self._busy  # `aclose` during the request replaces the list
        busy[lane] += 1
        try:
            request = httpx.Request(method, url, headers=headers, content=content,
                                    extensions=self._extensions)
            response = await self._transports[lane].handle_async_request(request)
            response.request = request
            try:
                yield response
            finally:
                await response.aclose()
        finally:
            busy[lane] -= 1

    @property
    def lanes(self) -> int:
        return len(self._transports)

    async def aclose(self) -> None:
        """Close every lane's connections.  Safe to call twice."""
        self._closed = True
        transports, self._transports, self._busy = self._transports, [], []
        for transport in transports:
            await transport.aclose()
