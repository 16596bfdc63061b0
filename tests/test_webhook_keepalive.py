"""Kept-alive connections: the receiver serves many requests per connection, the
webhook channel reuses its connections and re-checks its target only every `guard_ttl`."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime

import httpx
import pytest

from service.alerts import PendingAlert
from service.channels import WebhookChannel, webhook
from service.errors import PermanentDeliveryError
from service.transport import AsyncioTransport, Lanes
from service.webhook_receiver import WebhookReceiver

SECRET = "whsec_" + base64.b64encode(b"keepalive-test-secret-0123456").decode()


def alert(i: int) -> PendingAlert:
    return PendingAlert(id=f"alrt_{i}", channel="hook", type="figure.changed",
                        data={"kind": "changed", "new_value": str(i)},
                        created_at=datetime(2024, 2, 1, tzinfo=UTC))


def post(body: bytes, *, version: str = "HTTP/1.1", extra: str = "") -> bytes:
    return (f"POST /hook {version}\r\nhost: x\r\ncontent-length: {len(body)}\r\n{extra}\r\n"
            .encode() + body)


async def answers(reader: asyncio.StreamReader, n: int) -> list[bytes]:
    return [await reader.readuntil(b"\r\n\r\n") for _ in range(n)]


async def test_receiver_serves_requests_one_after_another_on_one_connection() -> None:
    async with WebhookReceiver(SECRET) as receiver:
        reader, writer = await asyncio.open_connection(receiver.host, receiver.port)
        writer.write(post(b"{}") + post(b"[1]"))
        chunked = b"5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n"
        writer.write(b"POST /hook HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n" + chunked)
        writer.write(post(b"{}", extra="connection: close\r\n"))
        heads = await answers(reader, 4)
        assert await reader.read() == b""  # closed after `connection: close`
        writer.close()
        await writer.wait_closed()
    assert [h.split(b"\r\n")[0] for h in heads] == [b"HTTP/1.1 204 No Content"] * 4
    assert [b"connection: keep-alive" in h for h in heads] == [True, True, True, False]
    assert [r.body for r in receiver.received] == [{}, [1], {"a": 1}, {}]
    assert receiver.connections == 1 and receiver.requests == 4


async def test_receiver_closes_http_1_0_unless_asked_to_keep_alive() -> None:
    async with WebhookReceiver(SECRET) as receiver:
        for extra, kept in (("", False), ("connection: keep-alive\r\n", True)):
            reader, writer = await asyncio.open_connection(receiver.host, receiver.port)
            writer.write(post(b"{}", version="HTTP/1.0", extra=extra))
            (head,) = await answers(reader, 1)
            assert (b"connection: keep-alive" in head) is kept
            writer.close()
            await writer.wait_closed()


async def test_receiver_stops_with_idle_connections_open(
        caplog: pytest.LogCaptureFixture) -> None:
    async with WebhookReceiver(SECRET) as receiver:
        reader, writer = await asyncio.open_connection(receiver.host, receiver.port)
        writer.write(post(b"{}"))
        await answers(reader, 1)
    assert await reader.read() == b""
    writer.close()
    assert "Unhandled exception" not in caplog.text


async def test_channel_reuses_its_connections() -> None:
    async with WebhookReceiver(SECRET) as receiver:
        channel = WebhookChannel("hook", receiver.url, SECRET, allow_private=True)
        try:
            for i in range(5):
                await channel.send(alert(i))
            await asyncio.gather(*(channel.send(alert(i)) for i in range(5, 13)))
        finally:
            await channel.aclose()
    assert len(receiver.received) == 13 and all(r.verified for r in receiver.received)
    assert receiver.connections <= 8  # one for the first five, at most 8 for 8 at once


async def test_target_is_checked_again_only_after_guard_ttl(
        monkeypatch: pytest.MonkeyPatch) -> None:
    checks: list[str] = []
    refuse = False

    async def check(url: str, *, allow_private: bool) -> tuple[str, ...]:
        checks.append(url)
        if refuse:
            raise webhook.PermanentFetchError(url, "refused private target 10.0.0.1")
        return ()

    monkeypatch.setattr(webhook, "acheck_target", check)
    now = [1000.0]
    monkeypatch.setattr(webhook.time, "monotonic", lambda: now[0])
    async with WebhookReceiver(SECRET) as receiver:
        channel = WebhookChannel("hook", receiver.url, SECRET, guard_ttl=30)
        try:
            await asyncio.gather(*(channel.send(alert(i)) for i in range(4)))
            now[0] += 29
            await channel.send(alert(4))
            assert len(checks) == 1
            now[0] += 2
            refuse = True  # DNS now points inside: refused at the next check
            with pytest.raises(PermanentDeliveryError, match="refused target"):
                await channel.send(alert(5))
            with pytest.raises(PermanentDeliveryError):
                await channel.send(alert(6))  # a refusal is not remembered as a pass
        finally:
            await channel.aclose()
    assert len(checks) == 3 and len(receiver.received) == 5


async def test_lanes_stay_small_and_close() -> None:
    made: list[httpx.Limits] = []

    def make(limits: httpx.Limits) -> httpx.AsyncBaseTransport:
        made.append(limits)
        return httpx.AsyncHTTPTransport(limits=limits)

    async with WebhookReceiver(SECRET) as receiver:
        lanes = Lanes(make, per_lane=2, max_connections=4)

        async def one() -> None:
            async with lanes.stream("POST", receiver.url, content=b"{}", headers={}) as resp:
                assert resp.status_code == 204

        await asyncio.gather(*(one() for _ in range(7)))
        assert 1 <= lanes.lanes <= 2
        assert all(limits.max_connections == 2 for limits in made)
        await lanes.aclose()
        await lanes.aclose()
        with pytest.raises(RuntimeError, match="closed"):
            async with lanes.stream("POST", receiver.url, content=b"", headers={}):
                pass


async def test_lanes_as_a_client_transport_keep_each_origin_on_its_connection() -> None:
    """The fetcher's use: many origins through one client; a free lane that already talks
    to an origin takes its next request, so alternating origins reuse their connections."""
    tls = httpx.create_ssl_context()
    lanes = Lanes(lambda limits: AsyncioTransport(ssl_context=tls, limits=limits),
                  max_connections=4)
    async with WebhookReceiver(SECRET) as a, WebhookReceiver(SECRET) as b, \
            httpx.AsyncClient(transport=lanes) as client:
        for _ in range(6):
            for receiver in (a, b):
                response = await client.post(receiver.url, content=b"{}")
                assert response.status_code == 204
        assert lanes.lanes == 2
        assert (a.connections, b.connections) == (1, 1)
        assert (a.requests, b.requests) == (6, 6)
