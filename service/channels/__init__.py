"""Alert channels: a registry from `kind` to channel class, and `build_channels(settings)`.

    >>> channels = build_channels(settings)
    >>> channels["ops-mail"]            # a working Channel
    >>> channels.disabled               # {"pager": "password_env PAGER_PW is not set"}

Built-in kinds register by subclassing `Channel` (see `base.py`), exactly as a
plugin would: importing this package imports them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from ..settings import Settings
from . import email, stdout, webhook  # noqa: F401  (registration by import)
from .base import Channel, ChannelContext, ChannelNotConfigured, Clock, channel_classes, utcnow
from .email import EmailChannel
from .stdout import StdoutChannel
from .webhook import WebhookChannel, verify_signature

__all__ = ["Channel", "ChannelContext", "ChannelNotConfigured", "ChannelSet", "EmailChannel",
           "StdoutChannel", "WebhookChannel", "build_channels", "channel_classes",
           "verify_signature"]

log = logging.getLogger("figwatch.channels")


class ChannelSet(dict[str, Channel]):
    """name → working channel; `disabled` maps each switched-off channel's name to why."""

    def __init__(self, channels: Mapping[str, Channel] | None = None,
                 disabled: Mapping[str, str] | None = None) -> None:
        super().__init__(channels or {})
        self.disabled: dict[str, str] = dict(disabled or {})

    async def aclose(self) -> None:
        for channel in self.values():
            await channel.aclose()


def build_channels(settings: Settings, *, env: Mapping[str, str] | None = None,
                   clock: Clock = utcnow, options: Mapping[str, Any] | None = None) -> ChannelSet:
    """One channel per `[[channels]]` entry.

    A channel that cannot work as configured (a missing secret or password
    variable) is switched off with one warning and listed in `.disabled`;
    the process goes on and alerts for it wait in the outbox.  A `kind` no
    registered class handles is a `ConfigError` listing the known kinds.
    `env` defaults to `os.environ`; `options` passes test hooks through
    (`ssl_context`, `stream`, `webhook_transport`).
    """
    context = ChannelContext(env=os.environ if env is None else env,
                             allow_private=settings.allow_private_targets, clock=clock,
                             options=dict(options or {}))
    classes = channel_classes()
    result = ChannelSet()
    for i, config in enumerate(settings.channels):
        cls = classes.get(config.kind)
        if cls is None:
            known = ", ".join(sorted(classes))
            raise ConfigError(f"unknown channel kind {config.kind!r} (known: {known})",
                              key=f"channels[{i}].kind")
        try:
            result[config.name] = cls.from_config(config, context)
        except ChannelNotConfigured as exc:
            log.warning("channel %r (%s) switched off: %s", config.name, config.kind, exc)
            result.disabled[config.name] = str(exc)
    return result
