"""The plain, read-only shapes the store hands out (no ORM objects escape the store).

Not slotted, so `dataclasses.asdict` and `vars()` both work for the JSON API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..alerts import Change, PendingAlert


@dataclass(frozen=True)
class KnownPage:
    """What a check needs of a stored page before it fetches: the validators for a
    conditional request, the hash that spots an identical body, and the figure counts
    of the last `ok` fetches (newest first) that spot a parse gone wrong."""

    etag: str | None
    last_modified: str | None
    content_hash: str | None
    recent_counts: tuple[int, ...] = ()


@dataclass(frozen=True)
class IngestResult:
    """What one ingest wrote: the changes it found and the alerts it queued.

    `baseline` is true on a page's first fetch; its figures were stored but,
    unless a rule asks for `baseline_alerts`, produce no changes.
    """

    changes: list[Change] = field(default_factory=list)
    alerts: list[PendingAlert] = field(default_factory=list)
    baseline: bool = False


@dataclass(frozen=True)
class HistoryPoint:
    """One value of a series as one page stated it, from first to last seen."""

    first_seen_at: datetime
    last_seen_at: datetime
    value: Decimal
    unit: str
    source: str
    url: str
    period: str | None
    sentence: str
    active: bool
    low: Decimal | None = None
    high: Decimal | None = None


@dataclass(frozen=True)
class StoredFigure:
    """A figure as stored: an observation with its page and source."""

    id: int
    source: str
    url: str
    page_key: str
    value: Decimal
    unit: str
    low: Decimal | None
    high: Decimal | None
    qualifier: str
    entity: str | None
    metric: str | None
    period: str | None
    conversion_value: Decimal | None
    conversion_unit: str | None
    sentence: str
    first_seen_at: datetime
    last_seen_at: datetime
    active: bool

    def to_json(self) -> dict[str, Any]:
        def s(v: Decimal | None) -> str | None:
            return None if v is None else format(v, "f")

        return {
            "id": self.id, "source": self.source, "url": self.url, "page_key": self.page_key,
            "value": s(self.value), "unit": self.unit, "low": s(self.low), "high": s(self.high),
            "qualifier": self.qualifier, "entity": self.entity, "metric": self.metric,
            "period": self.period, "conversion_value": s(self.conversion_value),
            "conversion_unit": self.conversion_unit, "sentence": self.sentence,
            "first_seen_at": self.first_seen_at.isoformat(),
            "last_seen_at": self.last_seen_at.isoformat(), "active": self.active,
        }


@dataclass(frozen=True)
class SourceHealth:
    name: str
    url: str
    every_seconds: int
    enabled: bool
    last_success_at: datetime | None
    consecutive_failures: int
    last_error: str | None
    next_due_at: datetime | None


@dataclass(frozen=True)
class AlertRecord:
    """An outbox row with its delivery state (for `figwatch alerts`, the API, retries)."""

    id: str
    channel: str
    type: str
    data: dict[str, Any]
    state: str  # pending | delivered | failed
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True)
class StoredVersion:
    """A kept page version; `body` is decompressed."""

    fetched_at: datetime
    content_hash: str
    size: int
    stored_size: int
    body: bytes


@dataclass(frozen=True)
class OpsState:
    """A source's health as the operations alerts see it (see service/health.py).

    `alerted_errors` are the error classes already alerted in the current failure
    episode; `suspect_alerted` / `stale_alerted_at` mark a parser-suspect / stale
    episode already alerted.  A successful check ends the suspect and stale episodes.
    """

    name: str
    url: str
    every_seconds: int
    enabled: bool
    last_success_at: datetime | None
    first_seen_at: datetime | None
    consecutive_failures: int
    consecutive_suspects: int
    last_error: str | None
    alerted_errors: tuple[str, ...] = ()
    suspect_alerted: bool = False
    stale_alerted_at: datetime | None = None


@dataclass(frozen=True)
class ReplayFetch:
    """One stored `ok`/`unchanged` fetch of a page, with the figures it stated (rebuilt)."""

    source: str
    url: str
    at: datetime
    outcome: str
    figures: list[Any] = field(default_factory=list)  # parsers.figures.Figure
