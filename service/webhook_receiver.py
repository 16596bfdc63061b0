"""A small webhook receiver on 127.0.0.1 that verifies Standard Webhooks signatures.

Used by the tests and by `figwatch demo` to show what a real receiver gets:

    async with WebhookReceiver(secret) as r:
        ...configure a webhook channel with r.url and the same secret...
        hooks = await r.wait_for(2, timeout=10)
        for hook in hooks:
            print(hook.body["type"], hook.verified, hook.headers["webhook-id"])

It answers `status` (204 by default) to every POST; set `status` to a 4xx or
5xx, or `delay` to seconds, to play a failing or slow endpoint.  It speaks
just enough HTTP/1.1 for keep-alive: a connection serves requests one after
another until the client sends `connection: close` (or speaks HTTP/1.0
without `keep-alive`) or hangs up, so a benchmark measures the sender, not
connection set-up.  `connections` counts the connections accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import Any

from .channels.webhook import verify_signature

__all__ = ["Received", "WebhookReceiver"]

_MAX_HEADER = 64 * 1024
_MAX_BODY = 10 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Received:
    """One POST that arrived: lower-cased headers, the parsed JSON body (None if it was
    not JSON), and whether its signature verified; `raw` is the body as sent.

    Unpacks as `headers, body, verified = hook`.
    """

    headers: dict[str, str]
    body: Any
    verified: bool
    raw: bytes = b""
    path: str = "/"

    def __iter__(self) -> Iterator[Any]:
        return iter((self.headers, self.body, self.verified))


class WebhookReceiver:
    """Listens on `host`:`port` (0 = any free port) until the `async with` block ends."""

    def __init__(self, secret: str, *, host: str = "127.0.0.1", port: int = 0,
                 status: int = 204, delay: float = 0.0, tolerance: float = 300,
                 on_receive: Callable[[Received], None] | None = None) -> None:
        self.secret, self.host, self.port = secret, host, port
        self.status, self.delay, self.tolerance = status, delay, tolerance
        self.on_receive = on_receive
        self.received: list[Received] = []
        self.rejected: list[Received] = []  # POSTs answered with a non-2xx `status`
        self.requests = 0  # every request seen, including those answered with an error
        self.connections = 0  # connections accepted
        self._server: asyncio.Server | None = None
        self._changed: asyncio.Condition | None = None
        self._handlers: set[asyncio.Task[Any]] = set()
        self._stopping = False

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/hook"

    async def start(self) -> None:
        self._changed, self._stopping = asyncio.Condition(), False
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        self._stopping = True
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> WebhookReceiver:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    async def wait_for(self, n: int, timeout: float = 5.0) -> list[Received]:
        """Wait until at least `n` deliveries have been accepted; TimeoutError says how many."""
        assert self._changed is not None, "use `async with WebhookReceiver(...)`"
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: len(self.received) >= n)
        except TimeoutError:
            raise TimeoutError(f"webhook receiver got {len(self.received)} of {n} deliveries "
                               f"({self.requests} requests) within {timeout}s") from None
        return list(self.received)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.connections += 1
        try:
            while await self._serve(reader, writer):
                pass
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError,
                ValueError):
            pass  # a client that hangs up or sends garbage gets no answer
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            # `stop` ends idle kept-alive connections this way; ending quietly keeps
            # asyncio (3.11) from logging the cancellation as an unhandled error.
        finally:
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; whether the connection stays open for the next."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False  # the client hung up (between requests: the normal end)
        if len(head) > _MAX_HEADER:
            raise ValueError("headers too large")
        request_line, *lines = head.decode("latin-1").split("\r\n")
        method, path, version = request_line.split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines:
            if ":" in line:
                key, value = line.split(":", 1)
                headers[key.strip().lower()] = value.strip()
        raw = await _read_body(reader, headers)
        self.requests += 1
        if self.delay:
            await asyncio.sleep(self.delay)  # playing a slow endpoint, on purpose
        status = self.status if method == "POST" else 405
        if method == "POST":
            await self._record(headers, raw, path, accepted=200 <= status < 300)
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        keep = _keep_alive(version, headers.get("connection", ""))
        writer.write(f"HTTP/1.1 {status} {phrase}\r\ncontent-length: 0\r\n"
                     f"connection: {'keep-alive' if keep else 'close'}\r\n\r\n"
                     .encode("latin-1"))
        await writer.drain()
        return keep

    async def _record(self, headers: dict[str, str], raw: bytes, path: str, *,
                      accepted: bool) -> None:
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        verified = verify_signature(self.secret, headers, raw, tolerance=self.tolerance,
                                    now=time.time())
        hook = Received(headers, body, verified, raw, path)
        if not accepted:
            self.rejected.append(hook)
            return
        assert self._changed is not None
        async with self._changed:
            self.received.append(hook)
            self._changed.notify_all()
        if self.on_receive is not None:
            self.on_receive(hook)


def _keep_alive(version: str, connection: str) -> bool:
    tokens = {t.strip().lower() for t in connection.split(",")}
    if version.strip().upper() == "HTTP/1.0":
        return "keep-alive" in tokens
    return "close" not in tokens


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    """The request body, by `content-length` or chunked; ValueError on a malformed one."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip(), 16)
            if not 0 <= size <= _MAX_BODY - len(body):
                raise ValueError("chunked body too large")
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers, ignored
                return body
            body += await reader.readexactly(size)
            if await reader.readexactly(2) != b"\r\n":
                raise ValueError("bad chunk")
    length = int(headers.get("content-length", "0"))
    if not 0 <= length <= _MAX_BODY:
        raise ValueError("bad content-length")
    return await reader.readexactly(length)
