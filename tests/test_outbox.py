"""The outbox dispatcher with a real webhook receiver: retries, backoff, giving up, parking."""

from __future__ import annotations

import asyncio
import base64
import io
import random
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from service.alerts import PendingAlert
from service.channels import ChannelSet, StdoutChannel, WebhookChannel
from service.channels.base import Channel, ChannelContext
from service.errors import DeliveryError
from service.outbox import Dispatcher, DispatchReport
from service.webhook_receiver import WebhookReceiver

from .memory_store import Clock, MemoryStore

SECRET = "whsec_" + base64.b64encode(b"outbox-test-secret-0123456789").decode()
T0 = datetime(2024, 10, 1, 12, 0, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def alert(alert_id: str, channel: str = "hook", created_at: datetime = T0,
          type_: str = "figure.changed") -> PendingAlert:
    data = {"kind": "changed", "source": "forbes-china", "url": "https://www.forbeschina.com/x",
            "entity": "NVIDIA", "metric": "market_cap", "period": None, "unit": "USD",
            "old_value": "1790000000000", "new_value": "3390000000000", "sentence": "…",
            "other_source": None, "detected_at": created_at.isoformat()}
    return PendingAlert(id=alert_id, channel=channel, type=type_, data=data,
                        created_at=created_at)


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver(SECRET) as r:
        yield r


def webhook(url: str) -> WebhookChannel:
    return WebhookChannel("hook", url, SECRET, allow_private=True)


def dispatcher(store: MemoryStore, channels: dict[str, Any], clock: Clock,
               **kw: Any) -> Dispatcher:
    kw.setdefault("give_up_after", timedelta(hours=6))
    return Dispatcher(store, channels, clock=clock, rng=random.Random(7), **kw)


async def test_delivered_once_with_a_verified_signature(receiver: WebhookReceiver) -> None:
    store, clock = MemoryStore(alert("a1"), alert("a2")), Clock()
    channel = webhook(receiver.url)
    try:
        report = await dispatcher(store, {"hook": channel}, clock).run_once()
        assert report == DispatchReport(delivered=2)
        assert await dispatcher(store, {"hook": channel}, clock).run_once() == DispatchReport()
    finally:
        await channel.aclose()
    hooks = await receiver.wait_for(2, timeout=5)
    assert sorted(h.headers["webhook-id"] for h in hooks) == ["a1", "a2"]
    assert all(h.verified for h in hooks)
    assert {r.state for r in store.rows.values()} == {"delivered"}


async def test_receiver_down_then_up_delivers_exactly_once() -> None:
    port = free_port()
    store, clock = MemoryStore(alert("a1")), Clock()
    channel = WebhookChannel("hook", f"http://127.0.0.1:{port}/hook", SECRET, allow_private=True)
    d = dispatcher(store, {"hook": channel}, clock, base_delay=timedelta(seconds=30))
    row = store.rows["a1"]
    try:
        assert await d.run_once() == DispatchReport(retried=1)
        assert row.state == "pending" and f"127.0.0.1:{port}" in row.errors[0]
        assert row.next_attempt_at is not None
        assert T0 + timedelta(seconds=15) <= row.next_attempt_at <= T0 + timedelta(seconds=30)

        async with WebhookReceiver(SECRET, port=port) as up:
            assert await d.run_once() == DispatchReport()  # backing off: not due yet
            clock.now = row.next_attempt_at
            assert await d.run_once() == DispatchReport(delivered=1)
            clock.now += timedelta(hours=1)
            assert await d.run_once() == DispatchReport()
            [hook] = await up.wait_for(1, timeout=5)
    finally:
        await channel.aclose()
    assert hook.verified and hook.headers["webhook-id"] == "a1"
    assert row.state == "delivered" and row.delivered_at == clock.now - timedelta(hours=1)


async def test_retry_carries_the_same_webhook_id(receiver: WebhookReceiver) -> None:
    store, clock = MemoryStore(alert("a1")), Clock()
    channel = webhook(receiver.url)
    d = dispatcher(store, {"hook": channel}, clock)
    try:
        receiver.status = 503
        assert await d.run_once() == DispatchReport(retried=1)
        receiver.status = 200
        clock.now += timedelta(minutes=2)
        assert await d.run_once() == DispatchReport(delivered=1)
    finally:
        await channel.aclose()
    [rejected] = receiver.rejected
    [hook] = await receiver.wait_for(1, timeout=5)
    assert rejected.headers["webhook-id"] == hook.headers["webhook-id"] == "a1"
    assert rejected.raw == hook.raw  # the same body on every attempt
    assert "503" in store.rows["a1"].errors[0]


async def test_4xx_fails_permanently(receiver: WebhookReceiver) -> None:
    receiver.status = 404
    store, clock = MemoryStore(alert("a1")), Clock()
    channel = webhook(receiver.url)
    try:
        assert await dispatcher(store, {"hook": channel}, clock).run_once() == \
            DispatchReport(failed=1)
        clock.now += timedelta(days=2)
        assert await dispatcher(store, {"hook": channel}, clock).run_once() == DispatchReport()
    finally:
        await channel.aclose()
    row = store.rows["a1"]
    assert row.state == "failed" and row.next_attempt_at is None
    assert "404" in row.errors[0] and receiver.url in row.errors[0]
    assert len(receiver.rejected) == 1


async def test_gives_up_when_older_than_give_up_after(receiver: WebhookReceiver) -> None:
    receiver.status = 500
    store = MemoryStore(alert("old", created_at=T0 - timedelta(hours=7)), alert("young"))
    channel = webhook(receiver.url)
    try:
        report = await dispatcher(store, {"hook": channel}, Clock()).run_once()
    finally:
        await channel.aclose()
    assert report == DispatchReport(retried=1, failed=1)
    assert store.rows["old"].state == "failed"
    assert "giving up: undelivered for 6:00:00" in store.rows["old"].errors[0]
    assert store.rows["young"].state == "pending"


class Flaky(Channel):
    """Test channel: fails with DeliveryError `fail` times, then succeeds."""

    def __init__(self, name: str, fail: int = 10**6) -> None:
        super().__init__(name)
        self.fail, self.calls = fail, 0

    @classmethod
    def from_config(cls, config: Any, context: ChannelContext) -> Flaky:
        raise NotImplementedError

    async def send(self, alert: PendingAlert) -> None:
        self.calls += 1
        if self.calls <= self.fail:
            raise DeliveryError(self.name, "503 Service Unavailable")


async def test_backoff_doubles_is_jittered_capped_and_ends_at_the_deadline() -> None:
    store, clock = MemoryStore(alert("a1", channel="flaky")), Clock()
    d = dispatcher(store, {"flaky": Flaky("flaky")}, clock, base_delay=timedelta(seconds=10),
                   max_delay=timedelta(minutes=10), give_up_after=timedelta(hours=1))
    row, delays = store.rows["a1"], []
    while row.state == "pending":
        assert row.next_attempt_at is not None
        clock.now = row.next_attempt_at
        await d.run_once()
        if row.next_attempt_at is not None:
            delays.append((row.next_attempt_at - clock.now).total_seconds())
    for n, delay in enumerate(delays[:5]):
        assert 10 * 2**n / 2 <= delay <= 10 * 2**n
    assert max(delays) <= 600
    assert clock.now == T0 + timedelta(hours=1)  # the last attempt is at the deadline
    assert row.state == "failed" and len(row.errors) == len(delays) + 1


async def test_unknown_and_switched_off_channels_leave_alerts_pending() -> None:
    store, clock = MemoryStore(alert("a1", channel="gone"), alert("a2", channel="mail")), Clock()
    channels = ChannelSet(disabled={"mail": "password_env SMTP_PW is not set"})
    report = await dispatcher(store, channels, clock).run_once()
    assert report == DispatchReport(parked=2)
    assert store.rows["a1"].errors == ["no channel named 'gone' is configured"]
    assert store.rows["a2"].errors == [
        "channel 'mail' is switched off: password_env SMTP_PW is not set"]
    assert all(r.state == "pending" and r.next_attempt_at == T0 + timedelta(minutes=5)
               for r in store.rows.values())


class Broken(Flaky):
    async def send(self, alert: PendingAlert) -> None:
        raise KeyError("a bug")


async def test_a_channel_bug_is_retried_and_does_not_stop_the_batch() -> None:
    out = io.StringIO()
    store = MemoryStore(alert("a1", channel="broken"), alert("a2", channel="console"))
    d = dispatcher(store, {"broken": Broken("broken"), "console": StdoutChannel("console", out)},
                   Clock())
    assert await d.run_once() == DispatchReport(delivered=1, retried=1)
    assert store.rows["a1"].errors == ["channel 'broken': KeyError: 'a bug'"]
    assert out.getvalue().count("\n") == 1


class Gate(Flaky):
    """Test channel that records how many sends are in flight at once."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.inflight = self.peak = 0

    async def send(self, alert: PendingAlert) -> None:
        self.inflight += 1
        self.peak = max(self.peak, self.inflight)
        for _ in range(5):
            await asyncio.sleep(0)  # yield so the other sends can start if allowed
        self.inflight -= 1


async def test_sends_concurrently_within_the_bound() -> None:
    gate = Gate("gate")
    store = MemoryStore(*(alert(f"a{i}", channel="gate") for i in range(7)))
    d = dispatcher(store, {"gate": gate}, Clock(), concurrency=3, batch_size=5)
    assert await d.run_once() == DispatchReport(delivered=5)
    assert gate.peak == 3
    assert await d.run_once() == DispatchReport(delivered=2)


async def until(predicate: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_run_forever_delivers_wakes_on_notify_and_stops() -> None:
    out = io.StringIO()
    store = MemoryStore(alert("a1", channel="console"))
    d = Dispatcher(store, {"console": StdoutChannel("console", out)},
                   clock=lambda: datetime.now(UTC), give_up_after=timedelta(hours=1))
    stop = asyncio.Event()
    task = asyncio.create_task(d.run_forever(stop, interval=timedelta(minutes=10)))
    try:
        await until(lambda: store.rows["a1"].state == "delivered")
        store.add(alert("a2", channel="console", created_at=datetime.now(UTC)))
        d.notify()  # without it the next look would be in 10 minutes
        await until(lambda: store.rows["a2"].state == "delivered")
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=5)
    assert out.getvalue().count("\n") == 2


class FailingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.claims = 0

    def claim_due_alerts(self, now: datetime, limit: int) -> list[PendingAlert]:
        self.claims += 1
        raise OSError("database is locked")


async def test_run_forever_survives_a_failing_store(caplog: pytest.LogCaptureFixture) -> None:
    store = FailingStore()
    d = Dispatcher(store, {}, give_up_after=timedelta(hours=1))
    stop = asyncio.Event()
    task = asyncio.create_task(d.run_forever(stop, interval=0.01))
    try:
        await until(lambda: store.claims >= 3)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=5)
    assert "outbox dispatch failed" in caplog.text


def test_backoff_is_bounded_for_any_attempt_count() -> None:
    d = Dispatcher(MemoryStore(), {}, base_delay=timedelta(days=1), max_delay=timedelta(days=2),
                   rng=random.Random(1))
    assert timedelta(days=1) <= d.backoff(10**6) <= timedelta(days=2)
    assert timedelta(hours=12) <= d.backoff(0) <= timedelta(days=1)
