"""Keep-alive HTTP: several small connection pools instead of one big one.

httpcore 1.0's pool does work quadratic in its number of connections for
every request it queues or releases (each pass rescans every connection and
polls each idle socket: encode/httpcore#1035, encode/httpx#3215).  With the
32 concurrent sends a busy outbox makes, one pool of 32 connections cost ~7 ms
of CPU per POST to a local receiver, against ~1.6 ms with one connection per
pool.  `Lanes` keeps each pool to `per_lane` connections (one by default) and
opens another lane (another transport, same settings) up to `max_connections`
in all; a request takes a free lane that last talked to its origin, else a
new lane, else the least busy one.  Every lane keeps its connections
alive, so a steady outbox (or a cycle over one host's pages) reuses them all.
The fetcher gains the same way (`bench/fetch.py`: a 304 fetch cost 0.91 ms of
CPU with one pool of 16 connections, 0.52 ms in lanes on asyncio sockets).

`Lanes` is an httpx transport: the fetcher hands it the requests it builds.
A channel calls `stream(...)` instead.  Neither puts a client around it: a
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


class Lanes(httpx.AsyncBaseTransport):
    """An httpx transport over small keep-alive pools (see the module docstring).

    `make_transport(limits)` makes one lane's transport; `timeout` applies to
    requests sent with `stream` (a client sets its own on what it sends).
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
        self._origin: list[tuple[bytes, bytes, int | None]] = []  # last origin per lane
        self._closed = False

    def _pick(self, origin: tuple[bytes, bytes, int | None]) -> int:
        if self._closed:
            raise RuntimeError("cannot send a request: the connections were closed (aclose)")
        busy = self._busy
        for lane, n in enumerate(busy):  # a free connection that already talks to `origin`
            if n < self._per_lane and self._origin[lane] == origin:
                return lane
        if len(busy) < self._max_lanes:  # a new lane, rather than closing another origin's
            self._transports.append(self._make(self._limits))
            busy.append(0)
            self._origin.append(origin)
            return len(busy) - 1
        return busy.index(min(busy))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        origin = (url.raw_scheme, url.raw_host, url.port)
        lane = self._pick(origin)
        self._origin[lane] = origin
        busy = self._busy  # `aclose` during the request replaces the list
        busy[lane] += 1
        try:
            response = await self._transports[lane].handle_async_request(request)
        except BaseException:
            busy[lane] -= 1
            raise
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        return httpx.Response(response.status_code, headers=response.headers,
                              stream=_Releasing(stream, busy, lane),
                              extensions=response.extensions)

    @asynccontextmanager
    async def stream(self, method: str, url: httpx.URL | str, *, content: bytes,
                     headers: dict[str, str]) -> AsyncIterator[httpx.Response]:
        """The answer, its body not read yet; closed (its connection released) on exit.

        `url` is best passed parsed (`httpx.URL`), once for all requests.  The
        Host and Content-Length headers are added; nothing else is.
        """
        request = httpx.Request(method, url, headers=headers, content=content,
                                extensions=self._extensions)
        response = await self.handle_async_request(request)
        response.request = request
        try:
            yield response
        finally:
            await response.aclose()

    @property
    def lanes(self) -> int:
        return len(self._transports)

    async def aclose(self) -> None:
        """Close every lane's connections.  Safe to call twice."""
        self._closed = True
        transports, self._transports, self._busy = self._transports, [], []
        self._origin = []
        for transport in transports:
            await transport.aclose()


class _Releasing(httpx.AsyncByteStream):
    """A lane's answer body: closing it frees the lane for the next request."""

    def __init__(self, stream: httpx.AsyncByteStream, busy: list[int], lane: int) -> None:
        self._stream, self._busy, self._lane = stream, busy, lane
        self._released = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            if not self._released:
                self._released = True
                self._busy[self._lane] -= 1
