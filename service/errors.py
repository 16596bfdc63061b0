"""The exceptions the service raises, translated at the boundary from third parties.

    FigwatchError
    ├── ConfigError            bad config file: names file, line and key
    ├── FetchError             a source could not be fetched (names the URL)
    │   ├── TransientFetchError    worth retrying: connection, timeout, 429, 502-504
    │   └── PermanentFetchError    not worth retrying: other 4xx, too large, refused target
    ├── StoreError             the database could not be reached or migrated
    └── DeliveryError          an alert could not be delivered (names the channel)
        └── PermanentDeliveryError  retrying will not help (4xx from a webhook, bad address)

`parsers.ParseError` stays in the pure layer; the pipeline records it as a
failed fetch outcome.
"""

from __future__ import annotations

from typing import Any


class FigwatchError(Exception):
    """Root of every error figwatch raises on purpose."""


class ConfigError(FigwatchError):
    """The configuration is invalid; the message names file, line and key."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 key: str | None = None) -> None:
        where = ":".join(str(p) for p in (path, line) if p is not None)
        prefix = f"{where}: " if where else ""
        keypart = f"{key}: " if key else ""
        super().__init__(f"{prefix}{keypart}{message}")
        self.path, self.line, self.key = path, line, key


class FetchError(FigwatchError):
    """A source could not be fetched; `attempts` records each try (set by the fetcher)."""

    attempts: tuple[Any, ...] = ()

    def __init__(self, url: str, reason: str, *, status: int | None = None) -> None:
        super().__init__(f"{url}: {reason}")
        self.url, self.reason, self.status = url, reason, status


class TransientFetchError(FetchError):
    """Worth retrying later (connection error, timeout, 429, 502/503/504)."""

    def __init__(self, url: str, reason: str, *, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(url, reason, status=status)
        self.retry_after = retry_after


class PermanentFetchError(FetchError):
    """Retrying will not help (404, 410, oversized body, refused target...)."""


class StoreError(FigwatchError):
    """The database could not be reached, migrated or written."""


class PageWorkerError(FigwatchError):
    """A page worker process died while processing a page (service.page_workers)."""


class DeliveryError(FigwatchError):
    """An alert could not be delivered through a channel."""

    def __init__(self, channel: str, reason: str) -> None:
        super().__init__(f"channel {channel!r}: {reason}")
        self.channel, self.reason = channel, reason


class PermanentDeliveryError(DeliveryError):
    """Delivery failed in a way retries will not fix."""
