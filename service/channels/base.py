"""The channel contract: what every alert channel (built-in or plugin) must do.

A channel turns one `PendingAlert` into one delivery (an HTTP POST, a mail, a
line on stdout).  Channels register themselves by subclassing `Channel` with a
`kind`, exactly as a plugin package would; `build_channels` in
`service.channels` picks the class for each `[[channels]]` entry by its `kind`.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from ..alerts import PendingAlert

log = logging.getLogger("figwatch.channels")

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


class ChannelNotConfigured(Exception):
    """Raised by `Channel.from_config` when the channel cannot work as configured.

    Not an error of the process: `build_channels` switches that channel off
    with one log line and keeps it in `ChannelSet.disabled` with this reason,
    so alerts bound for it stay in the outbox until the configuration is fixed.
    """


@dataclass(frozen=True, slots=True)
class ChannelContext:
    """What a channel may need besides its own config entry (injectable in tests)."""

    env: Mapping[str, str]
    allow_private: bool = False
    clock: Clock = utcnow
    options: Mapping[str, Any] = field(default_factory=dict)


_REGISTRY: dict[str, type[Channel]] = {}


class Channel(ABC):
    """Base of all channels; the subclass docstring is its user documentation.

    Subclasses set `kind` (the `kind = "..."` of a `[[channels]]` entry) and
    are registered when the class is defined.  An abstract intermediate class
    without `kind` is not registered.
    """

    kind: ClassVar[str]

    def __init__(self, name: str) -> None:
        self.name = name

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        kind = cls.__dict__.get("kind")
        if kind is None:
            return
        existing = _REGISTRY.get(kind)
        if existing is not None and existing is not cls:
            raise TypeError(f"channel kind {kind!r} is already registered by "
                            f"{existing.__module__}.{existing.__qualname__}")
        _REGISTRY[kind] = cls

    @classmethod
    @abstractmethod
    def from_config(cls, config: Any, context: ChannelContext) -> Channel:
        """Build the channel from its `[[channels]]` entry.

        Raises `ChannelNotConfigured` (with a reason naming the missing key or
        variable) when the entry is valid but the channel cannot work, e.g. an
        email channel whose `password_env` variable is not set.
        """

    @abstractmethod
    async def send(self, alert: PendingAlert) -> None:
        """Deliver one alert; return only once the receiving side has accepted it.

        Raises `DeliveryError` when a later attempt may succeed (timeouts,
        connection errors, 5xx, 4xx SMTP replies) and `PermanentDeliveryError`
        when it will not (a webhook's 4xx, a 5xx SMTP reply, a refused
        target).  Every other exception is a bug; the dispatcher retries it.
        """

    async def aclose(self) -> None:  # noqa: B027 - optional hook, default is nothing to close
        """Release connections and clients.  Safe to call twice."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def channel_classes() -> dict[str, type[Channel]]:
    """kind → channel class, for every registered channel (built-ins and plugins)."""
    return dict(_REGISTRY)
