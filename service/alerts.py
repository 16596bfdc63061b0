"""The shapes that travel from the diff to the channels: Change and PendingAlert.

A Change is what the diff found; an alert is one Change (or a digest of several)
bound for one channel, stored in the outbox until delivered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any


def _s(v: Decimal | None) -> str | None:
    return None if v is None else format(v, "f")


@dataclass(frozen=True, slots=True)
class Change:
    """One thing the diff found: a figure changed, appeared, vanished, or sources disagree."""

    kind: str  # changed | new | removed | series_update | conflict | reverted
    source: str
    url: str
    unit: str
    new_value: Decimal | None
    old_value: Decimal | None
    sentence: str
    detected_at: datetime
    entity: str | None = None
    metric: str | None = None
    period: str | None = None
    other_source: str | None = None
    page_key: str | None = None

    def to_payload(self) -> dict[str, Any]:
        """The webhook contract's `data` object (values as strings, not floats)."""
        return {
            "kind": self.kind,
            "source": self.source,
            "url": self.url,
            "entity": self.entity,
            "metric": self.metric,
            "period": self.period,
            "unit": self.unit,
            "old_value": _s(self.old_value),
            "new_value": _s(self.new_value),
            "sentence": self.sentence,
            "other_source": self.other_source,
            "detected_at": self.detected_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class PendingAlert:
    """An outbox row ready to send.  `id` is the idempotency key receivers see."""

    id: str
    channel: str
    type: str  # "figure.changed", "figure.digest", "ops.source_error", ...
    data: dict[str, Any]
    created_at: datetime
    attempts: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
