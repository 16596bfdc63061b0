"""The outbox dispatcher: sends stored alerts through their channels, with retries.

Delivery is at-least-once.  Alerts are written to the outbox with the figures
that caused them; the dispatcher claims the due ones, sends each through its
channel, and records the outcome:

    delivered                  -> mark_delivered, for the whole batch at once
    DeliveryError (retryable)  -> next attempt after exponential backoff with jitter,
                                  capped at `max_delay`, never past `give_up_after`
    PermanentDeliveryError, or
    older than `give_up_after` -> failed for good (next_attempt_at=None)
    no such channel / switched
    off                        -> left pending with the reason, looked at again
                                  after `park_delay` (fixing the config delivers it)

An alert's id is its idempotency key (the webhook-id, the Message-ID), so a
receiver can drop the duplicate a crash between send and mark may cause.

Deliveries are marked in batches: a store with `mark_delivered_many` records
every alert a `run_once` delivered in one transaction (one commit, a couple of
statements) instead of one each, which is what bounds throughput on
PostgreSQL.  An alert is still marked only after its channel accepted it; the
marks are written when the batch ends, or sooner once `flush_size` wait or the
oldest has waited `flush_after` seconds, and a crash in that window re-sends
them with the same id: at-least-once, as before.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

from .alerts import PendingAlert
from .channels.base import Channel
from .errors import DeliveryError, PermanentDeliveryError
from .events import wait_any

__all__ = ["AlertStore", "BatchAlertStore", "DispatchReport", "Dispatcher"]

log = logging.getLogger("figwatch.outbox")

Outcome = Literal["delivered", "retried", "failed", "parked"]


class AlertStore(Protocol):
    """The part of the store the dispatcher uses (`service.store.Store` implements it).

    `claim_due_alerts` returns pending alerts whose next attempt is due at
    `now`, at most `limit`, and must lease them (push their next attempt out)
    so another dispatcher or replica does not send them at the same time.
    `mark_attempt_failed` records the error and counts the attempt; a
    `next_attempt_at` of None marks the alert failed for good.
    """

    def claim_due_alerts(self, now: datetime, limit: int) -> list[PendingAlert]: ...

    def mark_delivered(self, alert_id: str, at: datetime) -> None: ...

    def mark_attempt_failed(self, alert_id: str, at: datetime, error: str,
                            next_attempt_at: datetime | None) -> None: ...


class BatchAlertStore(AlertStore, Protocol):
    """A store that can also mark many alerts delivered in one transaction (optional).

    `mark_delivered_many` has the effect of `mark_delivered` on each id, all
    or nothing, and returns how many of the ids existed; the dispatcher uses
    it when the store has it (`service.db.outbox_batch` implements it).
    """

    def mark_delivered_many(self, alert_ids: Sequence[str], at: datetime) -> int: ...


@dataclass(frozen=True, slots=True)
class DispatchReport:
    """What one `run_once` did; `parked` alerts wait for a channel that is not configured."""

    delivered: int = 0
    retried: int = 0
    failed: int = 0
    parked: int = 0

    @property
    def total(self) -> int:
        return self.delivered + self.retried + self.failed + self.parked

    def __add__(self, other: DispatchReport) -> DispatchReport:
        return DispatchReport(self.delivered + other.delivered, self.retried + other.retried,
                              self.failed + other.failed, self.parked + other.parked)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


class Dispatcher:
    """Claims due alerts from the store and delivers them, `concurrency` at a time."""

    def __init__(self, store: AlertStore, channels: Mapping[str, Channel], *,
                 clock: Callable[[], datetime] = _utcnow,
                 base_delay: timedelta = timedelta(seconds=30),
                 max_delay: timedelta = timedelta(hours=1),
                 give_up_after: timedelta = timedelta(days=1),
                 park_delay: timedelta = timedelta(minutes=5),
                 batch_size: int = 100, concurrency: int = 8, send_timeout: float = 120.0,
                 flush_size: int = 500, flush_after: float = 2.0,
                 disabled: Mapping[str, str] | None = None,
                 rng: random.Random | None = None) -> None:
        self._store, self._channels, self._clock = store, channels, clock
        self.base_delay, self.max_delay, self.give_up_after = base_delay, max_delay, give_up_after
        self.park_delay, self.batch_size, self.send_timeout = park_delay, batch_size, send_timeout
        self._concurrency = concurrency
        self._marks = _DeliveredMarks(store, clock, max(1, flush_size), flush_after)
        # A ChannelSet from build_channels knows why a channel is switched off.
        self._disabled = dict(disabled if disabled is not None
                              else getattr(channels, "disabled", {}))
        self._rng = rng or random.Random()
        self._wake: asyncio.Event | None = None

    def backoff(self, attempts: int) -> timedelta:
        """Delay before the next attempt after `attempts` earlier ones: doubling, jittered
        to between half and all of it so that many failed alerts do not retry in step."""
        seconds = min(self.max_delay.total_seconds(),
                      self.base_delay.total_seconds() * 2.0 ** min(attempts, 64))
        return timedelta(seconds=seconds * (0.5 + self._rng.random() / 2))

    async def run_once(self) -> DispatchReport:
        """Send every alert due now (up to `batch_size`) and record each outcome.

        The deliveries are marked before it returns (or raises, or is cancelled).
        """
        alerts = self._store.claim_due_alerts(self._clock(), self.batch_size)
        if not alerts:
            return DispatchReport()
        gate = asyncio.Semaphore(self._concurrency)

        async def one(alert: PendingAlert) -> Outcome:
            async with gate:
                return await self._dispatch(alert)

        try:
            results = await asyncio.gather(*(one(a) for a in alerts), return_exceptions=True)
        finally:
            self._marks.flush()  # a failure here raises: the lease brings the alerts back
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:  # the store failed to record an outcome; the lease will bring it back
            raise errors[0]
        counts = {k: sum(1 for r in results if r == k)
                  for k in ("delivered", "retried", "failed", "parked")}
        report = DispatchReport(**counts)
        log.info("outbox: %d delivered, %d to retry, %d failed, %d parked", report.delivered,
                 report.retried, report.failed, report.parked)
        return report

    async def _dispatch(self, alert: PendingAlert) -> Outcome:
        channel = self._channels.get(alert.channel)
        if channel is None:
            return self._park(alert)
        try:
            async with asyncio.timeout(self.send_timeout):
                await channel.send(alert)
        except PermanentDeliveryError as exc:
            return self._give_up(alert, str(exc))
        except DeliveryError as exc:
            return self._retry(alert, str(exc))
        except TimeoutError:
            return self._retry(alert, f"channel {alert.channel!r}: no answer within "
                                      f"{self.send_timeout:g}s")
        except Exception as exc:  # a channel bug must not stop the other alerts
            log.exception("alert %s: channel %r raised unexpectedly", alert.id, alert.channel)
            return self._retry(alert, f"channel {alert.channel!r}: {type(exc).__name__}: {exc}")
        self._marks.add(alert.id)
        log.debug("alert %s delivered via %r", alert.id, alert.channel)
        return "delivered"

    def _park(self, alert: PendingAlert) -> Outcome:
        now = self._clock()
        reason = self._disabled.get(alert.channel)
        error = (f"channel {alert.channel!r} is switched off: {reason}" if reason is not None
                 else f"no channel named {alert.channel!r} is configured")
        self._store.mark_attempt_failed(alert.id, now, error, now + self.park_delay)
        log.warning("alert %s left pending: %s", alert.id, error)
        return "parked"

    def _retry(self, alert: PendingAlert, error: str) -> Outcome:
        now = self._clock()
        deadline = _aware(alert.created_at) + self.give_up_after
        if now >= deadline:
            return self._give_up(alert, f"{error} (giving up: undelivered for "
                                        f"{self.give_up_after})")
        next_at = min(now + self.backoff(alert.attempts), deadline)
        self._store.mark_attempt_failed(alert.id, now, error, next_at)
        log.warning("alert %s not delivered, retrying at %s: %s", alert.id,
                    next_at.isoformat(timespec="seconds"), error)
        return "retried"

    def _give_up(self, alert: PendingAlert, error: str) -> Outcome:
        self._store.mark_attempt_failed(alert.id, self._clock(), error, None)
        log.error("alert %s failed for good: %s", alert.id, error)
        return "failed"

    def notify(self) -> None:
        """Wake `run_forever` now (new alerts were written) instead of at the next interval."""
        if self._wake is not None:
            self._wake.set()

    async def run_forever(self, stop_event: asyncio.Event,
                          interval: float | timedelta = 5.0) -> None:
        """Dispatch until `stop_event` is set; an in-flight `run_once` is finished first.

        A full batch is followed at once by the next; a failing store is logged
        and tried again after `interval`, never allowed to end the loop.
        """
        seconds = interval.total_seconds() if isinstance(interval, timedelta) else interval
        self._wake = asyncio.Event()
        while not stop_event.is_set():
            try:
                report = await self.run_once()
            except Exception:
                log.exception("outbox dispatch failed; trying again in %gs", seconds)
                report = DispatchReport()
            if report.total >= self.batch_size:
                continue
            await self._pause(stop_event, seconds)

    async def _pause(self, stop_event: asyncio.Event, seconds: float) -> None:
        assert self._wake is not None
        try:
            await wait_any(stop_event, self._wake, timeout=seconds)
        finally:
            self._wake.clear()


class _DeliveredMarks:
    """Delivered alert ids waiting to be marked, written together by `flush`.

    `add` flushes by itself once `size` ids wait or the oldest has waited
    `after` seconds, so that a long batch does not hold its early deliveries
    past their claim.  A store without `mark_delivered_many` gets one
    `mark_delivered` per id, as before.
    """

    def __init__(self, store: AlertStore, clock: Callable[[], datetime], size: int,
                 after: float) -> None:
        self._store, self._clock, self._size, self._after = store, clock, size, after
        self._ids: list[str] = []
        self._since = 0.0

    def add(self, alert_id: str) -> None:
        loop_time = asyncio.get_running_loop().time()
        if not self._ids:
            self._since = loop_time
        self._ids.append(alert_id)
        if len(self._ids) >= self._size or loop_time - self._since >= self._after:
            self.flush()

    def flush(self) -> None:
        ids, self._ids = self._ids, []
        if not ids:
            return
        at = self._clock()
        many = getattr(self._store, "mark_delivered_many", None)
        if many is None:
            for alert_id in ids:
                self._store.mark_delivered(alert_id, at)
            return
        marked = many(ids, at)
        if marked != len(ids):
            log.warning("outbox: %d of %d delivered alerts were no longer in the store",
                        len(ids) - marked, len(ids))
