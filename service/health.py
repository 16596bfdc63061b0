"""Source health: parser suspicion, stale sources and the error policy, as ops alerts.

Operations alerts (`ops.<kind>`) go only to the channels in `ops_channels`,
never through figure rules; their data is
`{"kind", "source", "url", "error", "consecutive_failures", "detected_at"}`.

- **parser_suspect**: a fetch whose article body came back empty, or whose
  figure count fell below 30 % of the median of the page's last 5 `ok`
  fetches (when that median is at least 5), is recorded as `parse_suspect`
  and derives no figure changes.  After `parser_suspect_after` such fetches
  in a row, one alert; a good fetch ends the episode.
- **source_error**: after `max_failures` consecutive failed fetches, one alert
  per distinct error class in the failure episode (HTTP status, else the
  message with its URL and numbers masked), not one per cycle;
  **source_recovered**: one when a fetch succeeds again after that.
- **source_stale**: a source not checked successfully for twice its interval;
  one alert per staleness episode (a success ends it).

Every "once" is a check-and-set on the source row in the same transaction as
the alert (`Store.update_ops`), so replicas sharing a database alert once.
"""

from __future__ import annotations

import logging
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import parsers
from parsers.figures import Figure

from .alerts import PendingAlert
from .db.ingest import RECENT_COUNTS_KEPT
from .db.records import OpsState
from .rules import new_alert_id
from .settings import Settings
from .store import OpsUpdate, Store

__all__ = ["HealthMonitor", "StaleSource", "error_class", "ops_alerts", "stale_sources",
           "stale_summary", "suspect_reason"]

log = logging.getLogger(__name__)

# ok fetches whose figure counts make the page's recent median: as many as a page keeps
SUSPECT_WINDOW = RECENT_COUNTS_KEPT
SUSPECT_MIN_MEDIAN = 5
SUSPECT_RATIO = 0.3
STALE_FACTOR = 2


def suspect_reason(doc: parsers.Document, found: Sequence[Figure],
                   recent_counts: Sequence[int]) -> str | None:
    """Why this parse looks broken (the site changed its layout), or None when it looks fine.

    `recent_counts` are the figure counts of the page's last `ok` fetches.
    """
    if doc.is_empty():
        return f"article body is empty (parser {doc.parser})"
    window = list(recent_counts)[:SUSPECT_WINDOW]
    if len(window) < SUSPECT_WINDOW:
        return None
    median = statistics.median(window)
    if median >= SUSPECT_MIN_MEDIAN and len(found) < SUSPECT_RATIO * median:
        return (f"{len(found)} figures, far below the page's recent median of {median:g} "
                f"(parser {doc.parser})")
    return None


_NUMBER = re.compile(r"\d+")


def error_class(error: str | None, status: int | None, url: str | None = None) -> str:
    """What makes two failures "the same error": the HTTP status, else the masked message."""
    if status is not None:
        return f"HTTP {status}"
    text = error or "unknown error"
    if url:
        text = text.replace(url, "")
    return _NUMBER.sub("#", text).strip(" :")[:160] or "unknown error"


def ops_alerts(settings: Settings, kind: str, state: OpsState, *, url: str | None,
               error: str | None, count: int, at: datetime) -> list[PendingAlert]:
    """One `ops.<kind>` alert per channel in `ops_channels` (none when there are none)."""
    data: dict[str, Any] = {"kind": kind, "source": state.name, "url": url or state.url,
                            "error": error, "consecutive_failures": count,
                            "detected_at": at.isoformat()}
    return [PendingAlert(id=new_alert_id(), channel=channel, type=f"ops.{kind}",
                         data=dict(data), created_at=at)
            for channel in settings.ops_channels]


@dataclass(frozen=True)
class StaleSource:
    """A configured source not checked successfully for more than twice its interval."""

    name: str
    url: str
    every_seconds: int
    last_success_at: datetime | None
    age_seconds: float


def stale_sources(store: Store, settings: Settings, now: datetime) -> list[StaleSource]:
    """The configured, enabled sources that are stale at `now`, oldest first.

    Age counts from the last successful check, or for a source that never had
    one, from when the store first saw it (its sync or first fetch).
    """
    configured = {s.name for s in settings.sources}
    out = []
    for st in store.ops_states():
        if st.name not in configured or not st.enabled:
            continue
        since = st.last_success_at or st.first_seen_at
        if since is None:
            continue
        age = (now - since).total_seconds()
        if age > STALE_FACTOR * st.every_seconds:
            out.append(StaleSource(st.name, st.url, st.every_seconds, st.last_success_at, age))
    return sorted(out, key=lambda s: -s.age_seconds)


def stale_summary(store: Store, settings: Settings, now: datetime) -> tuple[int, float]:
    """(number of stale sources, age in seconds of the oldest; 0.0 when none) for /metrics."""
    stale = stale_sources(store, settings, now)
    return len(stale), (stale[0].age_seconds if stale else 0.0)


class HealthMonitor:
    """Turns page outcomes and the clock into ops alerts (see module docstring)."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        if not settings.ops_channels:
            log.info("no ops_channels configured: operations alerts are switched off")

    def after_page(self, source: str, url: str, outcome: str, *, at: datetime,
                   error: str | None = None, status: int | None = None) -> list[PendingAlert]:
        """Apply the error and parser policies after one page's outcome was recorded.

        The pipeline instead passes `policy(...)` to the store call that records the
        outcome, so the decision and its alert commit with the fetch.
        """
        return self.store.update_ops(source, self.policy(url, outcome, at=at, error=error,
                                                          status=status))

    def policy(self, url: str, outcome: str, *, at: datetime, error: str | None = None,
               status: int | None = None) -> OpsUpdate:
        """The ops update for one page outcome (`ok`, `unchanged`, `failed`,
        `parse_suspect`), applied to the source's state after the outcome's counters."""
        settings = self.settings

        def update(st: OpsState) -> tuple[OpsState, list[PendingAlert]]:
            alerts: list[PendingAlert] = []
            if outcome == "failed":
                cls = error_class(error, status, url)
                if st.consecutive_failures >= settings.max_failures \
                        and cls not in st.alerted_errors:
                    alerts += ops_alerts(settings, "source_error", st, url=url, error=error,
                                         count=st.consecutive_failures, at=at)
                    st = replace(st, alerted_errors=(*st.alerted_errors, cls))
                return st, alerts
            if st.alerted_errors:  # the server answers again (ok, unchanged or suspect)
                alerts += ops_alerts(settings, "source_recovered", st, url=url,
                                     error=st.alerted_errors[-1], count=0, at=at)
                st = replace(st, alerted_errors=())
            if (outcome == "parse_suspect" and not st.suspect_alerted
                    and st.consecutive_suspects >= settings.parser_suspect_after):
                alerts += ops_alerts(settings, "parser_suspect", st, url=url, error=error,
                                     count=st.consecutive_suspects, at=at)
                st = replace(st, suspect_alerted=True)
            return st, alerts

        return update

    def check_stale(self, now: datetime) -> list[PendingAlert]:
        """One `source_stale` alert per source that became stale (per staleness episode)."""
        settings = self.settings
        sent: list[PendingAlert] = []
        for stale in stale_sources(self.store, settings, now):
            age = timedelta(seconds=round(stale.age_seconds))
            every = timedelta(seconds=stale.every_seconds)

            def update(st: OpsState, age: timedelta = age, every: timedelta = every
                       ) -> tuple[OpsState, list[PendingAlert]]:
                since = st.last_success_at or st.first_seen_at
                if st.stale_alerted_at is not None or since is None \
                        or now - since <= every * STALE_FACTOR:
                    return st, []  # already alerted, or checked since `stale_sources` ran
                last = st.last_success_at.isoformat() if st.last_success_at else "never"
                error = (f"not checked successfully for {age} (every {every}; "
                         f"last success: {last})")
                alerts = ops_alerts(settings, "source_stale", st, url=None, error=error,
                                    count=st.consecutive_failures, at=now)
                return replace(st, stale_alerted_at=now), alerts

            sent += self.store.update_ops(stale.name, update)
        return sent
