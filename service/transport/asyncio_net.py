"""httpx's HTTP transport with its sockets on plain asyncio streams instead of anyio.

httpcore's default network backend on asyncio goes through anyio: every
read and write enters a `fail_after` cancel scope and a shielded checkpoint,
each asking sniffio which event loop runs.  For a webhook POST to a local
receiver that was ~20% of the CPU of a request.  `AsyncioTransport` is
`httpx.AsyncHTTPTransport` (the same request/response mapping, the same
exceptions) over an `httpcore.AsyncConnectionPool` whose `AsyncioBackend`
connects with `asyncio.open_connection` and times out with `asyncio.timeout`.

What it does not do: proxies, Unix sockets, `local_address`, socket options
(the webhook channel uses none of them).  TLS is `StreamWriter.start_tls`.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import ssl
import typing
from collections.abc import Iterable, Iterator, Mapping

import httpcore
import httpx

__all__ = ["AsyncioBackend", "AsyncioTransport"]

_Errors = Mapping[type[BaseException], type[Exception]]

# Order matters: TimeoutError is an OSError.
_CONNECT: _Errors = {TimeoutError: httpcore.ConnectTimeout, OSError: httpcore.ConnectError}
_READ: _Errors = {TimeoutError: httpcore.ReadTimeout, OSError: httpcore.ReadError}
_WRITE: _Errors = {TimeoutError: httpcore.WriteTimeout, OSError: httpcore.WriteError}


@contextlib.contextmanager
def _mapped(errors: _Errors) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for caught, raised in errors.items():
            if isinstance(exc, caught):
                raise raised(exc) from exc
        raise


class _Stream(httpcore.AsyncNetworkStream):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        with _mapped(_READ):
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        with _mapped(_WRITE):
            self._writer.write(buffer)
            async with asyncio.timeout(timeout):
                await self._writer.drain()

    async def aclose(self) -> None:
        self._writer.close()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        try:
            with _mapped(_CONNECT):
                async with asyncio.timeout(timeout):
                    await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except BaseException:
            self._writer.close()  # httpcore drops a stream whose handshake failed, unclosed
            raise
        return self

    def get_extra_info(self, info: str) -> typing.Any:
        if info == "ssl_object":
            return self._writer.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._writer.get_extra_info("sockname")
        if info == "server_addr":
            return self._writer.get_extra_info("peername")
        if info == "socket":
            return self._writer.get_extra_info("socket")
        if info == "is_readable":  # asked of an idle kept-alive connection: did it end?
            return self._reader.at_eof() or self._writer.is_closing() or _readable(
                self._writer.get_extra_info("socket"))
        return None


def _readable(sock: typing.Any) -> bool:
    """Whether the socket has data or EOF waiting (an idle connection should have neither)."""
    if sock is None or sock.fileno() < 0:
        return True
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """TCP connections as asyncio streams (see the module docstring)."""

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[typing.Any] | None = None,
                          ) -> httpcore.AsyncNetworkStream:
        if local_address is not None or socket_options:
            raise NotImplementedError("AsyncioBackend: no local_address or socket_options")
        with _mapped(_CONNECT):
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(host, port)
        return _Stream(reader, writer)

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[typing.Any] | None = None,
                                  ) -> httpcore.AsyncNetworkStream:
        raise NotImplementedError("AsyncioBackend: no Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class AsyncioTransport(httpx.AsyncHTTPTransport):
    """`httpx.AsyncHTTPTransport(verify=ssl_context, limits=limits)` on `AsyncioBackend`."""

    def __init__(self, *, ssl_context: ssl.SSLContext, limits: httpx.Limits) -> None:
        super().__init__(verify=ssl_context, limits=limits, trust_env=False)
        # The request/response mapping of the parent works on any httpcore pool.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context, max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry, network_backend=AsyncioBackend())
