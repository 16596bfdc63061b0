"""Webhook channel against a real receiver on 127.0.0.1 that verifies signatures."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import logging
import socket
import tracemalloc
from datetime import UTC, datetime

import httpx
import pytest

from service.alerts import PendingAlert
from service.channels import WebhookChannel, build_channels
from service.channels.webhook import body_of, sign, verify_signature
from service.errors import DeliveryError, PermanentDeliveryError
from service.settings import parse_settings
from service.webhook_receiver import WebhookReceiver

SECRET = "whsec_" + base64.b64encode(b"figwatch-test-secret-0123456789").decode()
CREATED = datetime(2024, 2, 1, 8, 0, tzinfo=UTC)


def alert(alert_id: str = "alrt_01", **data: object) -> PendingAlert:
    payload = {"kind": "changed", "source": "tmtpost", "url": "https://www.tmtpost.com/1.html",
               "entity": "NVIDIA", "metric": "market_cap", "period": None, "unit": "USD",
               "old_value": "1790000000000", "new_value": "1850000000000",
               "sentence": "英伟达市值达到1.85万亿美元。", "other_source": None,
               "detected_at": CREATED.isoformat()} | data
    return PendingAlert(id=alert_id, channel="hook", type="figure.changed", data=payload,
                        created_at=CREATED)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Standard Webhooks' published example (standard-webhooks/standard-webhooks, spec tests).
def test_signature_matches_the_standard_webhooks_example() -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    sig = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert sig == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    headers = {"Webhook-Id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "Webhook-Timestamp": "1614265330",
               "Webhook-Signature": f"v1,bm90LXRoaXMtb25l {sig}"}
    assert verify_signature(secret, headers, body, now=1614265330 + 10)


@pytest.mark.parametrize("secret", [SECRET, "plain-shared-secret"])
def test_verify_rejects_tampering_replay_and_wrong_secret(secret: str) -> None:
    body = b'{"type":"figure.new"}'
    headers = {"webhook-id": "a1", "webhook-timestamp": "1000",
               "webhook-signature": sign(secret, "a1", 1000, body)}
    assert verify_signature(secret, headers, body, now=1000)
    assert verify_signature(secret, headers, body.decode(), now=1299)
    assert not verify_signature(secret, headers, body + b" ", now=1000)
    assert not verify_signature(secret, headers, body, now=1301)  # outside tolerance: replay
    assert not verify_signature(secret + "x", headers, body, now=1000)
    assert not verify_signature(secret, headers | {"webhook-id": "a2"}, body, now=1000)
    assert not verify_signature(secret, {"webhook-id": "a1"}, body, now=1000)


def test_body_is_compact_stable_and_keeps_chinese() -> None:
    first, again = body_of(alert()), body_of(alert())
    assert first == again
    assert b", " not in first and b'": ' not in first
    doc = json.loads(first)
    assert list(doc) == ["type", "timestamp", "data"]
    assert doc["timestamp"] == "2024-02-01T08:00:00+00:00"
    assert "英伟达" in first.decode("utf-8")


async def test_delivered_and_verified_by_the_receiver() -> None:
    async with WebhookReceiver(SECRET) as receiver:
        channel = WebhookChannel("hook", receiver.url, SECRET, allow_private=True)
        try:
            await channel.send(alert())
        finally:
            await channel.aclose()
        [hook] = await receiver.wait_for(1, timeout=5)
    assert hook.verified
    assert hook.headers["content-type"] == "application/json"
    assert hook.headers["webhook-id"] == "alrt_01"
    assert hook.headers["webhook-signature"].startswith("v1,")
    assert hook.body["type"] == "figure.changed"
    assert hook.body["data"]["new_value"] == "1850000000000"
    assert hook.body["data"]["sentence"] == "英伟达市值达到1.85万亿美元。"


async def test_receiver_with_another_secret_does_not_verify() -> None:
    async with WebhookReceiver("whsec_" + base64.b64encode(b"other").decode()) as receiver:
        channel = WebhookChannel("hook", receiver.url, SECRET, allow_private=True)
        try:
            await channel.send(alert())
        finally:
            await channel.aclose()
        [hook] = await receiver.wait_for(1, timeout=5)
    assert not hook.verified


@pytest.mark.parametrize(("status", "error"), [
    (400, PermanentDeliveryError), (401, PermanentDeliveryError), (410, PermanentDeliveryError),
    (408, DeliveryError), (429, DeliveryError), (500, DeliveryError), (503, DeliveryError),
])
async def test_status_classification(status: int, error: type[DeliveryError]) -> None:
    async with WebhookReceiver(SECRET, status=status) as receiver:
        channel = WebhookChannel("hook", receiver.url, SECRET, allow_private=True)
        try:
            with pytest.raises(error) as caught:
                await channel.send(alert())
        finally:
            await channel.aclose()
    assert type(caught.value) is error
    assert str(status) in str(caught.value) and receiver.url in str(caught.value)


async def test_slow_receiver_times_out_as_retryable() -> None:
    async with WebhookReceiver(SECRET, delay=3.0) as receiver:
        channel = WebhookChannel("hook", receiver.url, SECRET, timeout=0.2, allow_private=True)
        try:
            with pytest.raises(DeliveryError, match="timed out") as caught:
                await channel.send(alert())
        finally:
            await channel.aclose()
    assert not isinstance(caught.value, PermanentDeliveryError)


async def test_nothing_listening_is_retryable_and_names_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"
    channel = WebhookChannel("hook", url, SECRET, allow_private=True)
    try:
        with pytest.raises(DeliveryError, match="ConnectError") as caught:
            await channel.send(alert())
    finally:
        await channel.aclose()
    assert not isinstance(caught.value, PermanentDeliveryError)
    assert url in str(caught.value)


async def test_private_target_refused_unless_allowed() -> None:
    async with WebhookReceiver(SECRET) as receiver:
        channel = WebhookChannel("hook", receiver.url, SECRET, allow_private=False)
        try:
            with pytest.raises(PermanentDeliveryError, match="refused target"):
                await channel.send(alert())
        finally:
            await channel.aclose()
        assert receiver.requests == 0


CONFIG = """
allow_private_targets = true

[[channels]]
name = "hook"
kind = "webhook"
url = "{url}"
secret_env = "HOOK_SECRET"
"""


async def test_secret_from_env_and_switched_off_without_it(
        caplog: pytest.LogCaptureFixture) -> None:
    async with WebhookReceiver(SECRET) as receiver:
        settings = parse_settings(CONFIG.format(url=receiver.url))
        channels = build_channels(settings, env={"HOOK_SECRET": SECRET})
        try:
            await channels["hook"].send(alert())
        finally:
            await channels.aclose()
        [hook] = await receiver.wait_for(1, timeout=5)
        assert hook.verified

        with caplog.at_level(logging.WARNING, logger="figwatch.channels"):
            off = build_channels(settings, env={})
    assert "hook" not in off
    assert off.disabled == {"hook": "secret_env HOOK_SECRET is not set"}
    [record] = [r for r in caplog.records if r.name == "figwatch.channels"]
    assert "'hook' (webhook) switched off: secret_env HOOK_SECRET is not set" in record.message


async def test_error_answer_is_quoted_briefly() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(422, content=b"bad   payload\n" + b"x" * 10_000_000)

    channel = WebhookChannel("hook", "https://hooks.example.test/in", SECRET,
                             allow_private=True, transport=httpx.MockTransport(answer))
    try:
        with pytest.raises(PermanentDeliveryError) as caught:
            await channel.send(alert())
    finally:
        await channel.aclose()
    message = str(caught.value)
    assert "answered 422 Unprocessable Entity: bad payload xxx" in message
    assert len(message) < 400


@pytest.mark.parametrize(("encoding", "quoted"), [("gzip", ": no such hook"), ("br", "")])
async def test_a_compressed_error_answer_is_decoded_only_as_far_as_it_is_quoted(
        encoding: str, quoted: str) -> None:
    """A gzipped answer (here a bomb: 64 MB of zeros after the text) is quoted as text,
    inflated no further than the quote needs; an encoding figwatch cannot read is quoted
    as nothing; either way the status is reported."""
    body = gzip.compress(b"no such hook" + b"\0" * (64 * 1024 * 1024))
    head = (f"HTTP/1.1 404 Not Found\r\nContent-Encoding: {encoding}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()

    async def receiver(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        length = int(request.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        writer.write(head + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(receiver, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    channel = WebhookChannel("hook", f"http://127.0.0.1:{port}/in", SECRET, allow_private=True)
    tracemalloc.start()
    try:
        with pytest.raises(PermanentDeliveryError) as caught:
            await channel.send(alert())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await channel.aclose()
        server.close()
    assert peak < 8 * 1024 * 1024  # not the 64 MB the answer inflates to
    message = str(caught.value).rstrip("\0")
    assert message.endswith(f"answered 404 Not Found{quoted}")


def test_malformed_whsec_secret_switches_the_channel_off() -> None:
    settings = parse_settings(CONFIG.format(url="https://hooks.example.test/in"))
    channels = build_channels(settings, env={"HOOK_SECRET": "whsec_not base64!"})
    assert channels.disabled == {"hook": "a whsec_ secret must be base64 after the prefix"}


async def test_received_unpacks_as_headers_body_verified() -> None:
    async with WebhookReceiver(SECRET) as receiver:
        channel = WebhookChannel("hook", receiver.url, SECRET, allow_private=True)
        try:
            await channel.send(alert())
        finally:
            await channel.aclose()
        await receiver.wait_for(1, timeout=5)
    headers, body, verified = receiver.received[0]
    assert verified and body["data"]["entity"] == "NVIDIA" and headers["webhook-id"] == "alrt_01"
