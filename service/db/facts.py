"""`SeriesFacts` over the stored observations, inside the caller's transaction.

What `new_high`, `new_low` and `confirm_sources` rules ask about a change's
series: its earlier extremes and how many sources now agree with it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..alerts import Change
from ..diff import DEFAULT_CONFLICT_TOLERANCE, Quantity, in_common_unit, relative_difference
from .ingest import quantity_of
from .models import Observation, Page, Source


class StoredSeriesFacts:
    """Answers from the observations table; `first_seen` dates confirmed changes' values."""

    def __init__(self, session: Session, first_seen: Mapping[Change, datetime] | None = None,
                 tolerance: Decimal = DEFAULT_CONFLICT_TOLERANCE,
                 before_read: Callable[[], None] | None = None) -> None:
        self._session = session
        self._before_read = before_read
        self._first_seen = dict(first_seen or {})
        self._tolerance = tolerance

    def _series(self, change: Change) -> sa.Select[Observation, str]:
        if self._before_read is not None:
            self._before_read()
        period = change.period
        return (sa.select(Observation, Source.name)
                .join(Page, Page.id == Observation.page_id)
                .join(Source, Source.id == Page.source_id)
                .where(Observation.entity == change.entity, Observation.metric == change.metric,
                       Observation.period.is_(None) if period is None
                       else Observation.period == period))

    def extremes(self, change: Change) -> tuple[Decimal, Decimal] | None:
        """Lowest and highest value stated before the change's value first appeared."""
        since = self._first_seen.get(change, change.detected_at)
        q = self._series(change).where(Observation.first_seen_at < since)
        values = []
        target = Quantity(Decimal(0), change.unit)
        for o, _ in self._session.execute(q):
            pair = in_common_unit(target, quantity_of(o))
            if pair is not None:
                values.append(pair[1])
        return (min(values), max(values)) if values else None

    def agreeing_sources(self, change: Change) -> int:
        if change.new_value is None:
            return 0
        mine = Quantity(change.new_value, change.unit)
        agree = set()
        for o, source in self._session.execute(self._series(change).where(Observation.active)):
            pair = in_common_unit(mine, quantity_of(o))
            if pair is not None and relative_difference(*pair) <= self._tolerance:
                agree.add(source)
        return len(agree)
