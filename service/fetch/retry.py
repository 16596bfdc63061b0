"""Which failures are retried, and how long to wait between tries."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from tenacity import RetryCallState
from tenacity.retry import retry_base
from tenacity.wait import wait_base

from ..errors import TransientFetchError

__all__ = ["RetryTransient", "WaitBackoff", "parse_retry_after"]


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), else None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class RetryTransient(retry_base):
    """Retry `TransientFetchError` unless the server asked for a longer pause than `max_wait`.

    A Retry-After of an hour is better honoured by the scheduler than by a
    coroutine holding a source's run open, so it ends the retries at once.
    """

    def __init__(self, max_wait: float) -> None:
        self.max_wait = max_wait

    def __call__(self, retry_state: RetryCallState) -> bool:
        outcome = retry_state.outcome
        if outcome is None or not outcome.failed:
            return False
        exc = outcome.exception()
        if not isinstance(exc, TransientFetchError):
            return False
        return exc.retry_after is None or exc.retry_after <= self.max_wait


class WaitBackoff(wait_base):
    """Retry-After when the server sent one, else exponential backoff with jitter.

    The n-th wait is uniform in [c/2, c] with c = min(cap, base * 2**(n-1)).
    """

    def __init__(self, base: float, cap: float, *, rng: random.Random | None = None) -> None:
        self.base, self.cap = base, cap
        self._rng = rng or random.Random()

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None and outcome.failed else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return float(retry_after)
        ceiling = min(self.cap, self.base * 2 ** (retry_state.attempt_number - 1))
        return self._rng.uniform(ceiling / 2, ceiling)
