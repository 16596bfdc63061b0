"""Stdout channel: one readable line per alert (a digest is one line too)."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from ..alerts import PendingAlert
from ..settings import StdoutChannelConfig
from .base import Channel, ChannelContext
from .summary import change_line, changes_of, headline

__all__ = ["StdoutChannel", "line_of"]


def line_of(alert: PendingAlert) -> str:
    """`[figwatch] <headline>  (<source> <url>)`; a digest lists its changes after a colon."""
    text = headline(alert)
    if alert.type == "figure.digest":
        text += ": " + "; ".join(change_line(c) for c in changes_of(alert))
    else:
        where = " ".join(str(alert.data[k]) for k in ("source", "url") if alert.data.get(k))
        if where and not alert.type.startswith("ops."):
            text += f"  ({where})"
    return f"[figwatch] {text}"


class StdoutChannel(Channel):
    """Print one line per alert on standard output (the demo, cron mail, a quick look).

    No keys.  A digest is one line too, its changes separated by semicolons.
    """

    kind = "stdout"

    def __init__(self, name: str, stream: TextIO | None = None) -> None:
        super().__init__(name)
        self._stream = stream

    @classmethod
    def from_config(cls, config: Any, context: ChannelContext) -> StdoutChannel:
        assert isinstance(config, StdoutChannelConfig)
        return cls(config.name, context.options.get("stream"))

    async def send(self, alert: PendingAlert) -> None:
        # sys.stdout is looked up per call so a redirected stdout (tests, the CLI) is honoured.
        stream = self._stream or sys.stdout
        stream.write(line_of(alert) + "\n")
        stream.flush()
