"""The asyncio network backend under the webhook channel's transport: errors are
httpx's, timeouts are honoured, and a kept-alive connection the server closed
while idle is replaced, not failed."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from service.transport import AsyncioTransport

LIMITS = httpx.Limits(max_connections=1, max_keepalive_connections=1)


def transport() -> AsyncioTransport:
    return AsyncioTransport(ssl_context=httpx.create_ssl_context(), limits=LIMITS)


async def serve(answer: bytes, *, close_after: bool = False, delay: float = 0.0
                ) -> tuple[asyncio.Server, str, list[int]]:
    conns: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conns.append(1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                await reader.readexactly(length)
                await asyncio.sleep(delay)
                writer.write(answer)
                await writer.drain()
                if close_after:  # ends a kept-alive connection while the client idles
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/hook", conns


OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


async def test_requests_share_a_kept_alive_connection() -> None:
    server, url, conns = await serve(OK)
    async with server, httpx.AsyncClient(transport=transport()) as client:
        for _ in range(3):
            resp = await client.post(url, content=b"{}")
            assert (resp.status_code, resp.text) == (200, "ok")
    assert len(conns) == 1


async def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    server, url, conns = await serve(OK, close_after=True)
    async with server, httpx.AsyncClient(transport=transport()) as client:
        for _ in range(3):
            assert (await client.post(url, content=b"{}")).status_code == 200
            await asyncio.sleep(0.05)  # the close arrives while the connection idles
    assert len(conns) == 3


async def test_read_timeout_is_httpx_read_timeout() -> None:
    server, url, _ = await serve(OK, delay=1.0)
    async with server, httpx.AsyncClient(transport=transport(),
                                         timeout=httpx.Timeout(0.1)) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post(url, content=b"{}")


async def test_refused_connection_is_httpx_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with httpx.AsyncClient(transport=transport()) as client:
        with pytest.raises(httpx.ConnectError):
            await client.post(f"http://127.0.0.1:{port}/hook", content=b"{}")


async def test_a_server_hanging_up_mid_answer_is_a_protocol_error() -> None:
    server, url, _ = await serve(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nok",
                                 close_after=True)
    async with server, httpx.AsyncClient(transport=transport()) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(url, content=b"{}")
