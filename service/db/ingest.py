"""The write half of one successful fetch, inside the caller's transaction.

`Store.ingest` opens the transaction; these functions do the work so that the
page version, the observations, the series, the changes and the outbox rows
all commit together or not at all.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from parsers.figures.model import Figure

from ..alerts import Change, PendingAlert
from ..diff import (
    Keyed,
    PageDiff,
    Prior,
    Quantity,
    SeriesLatest,
    Statement,
    conflicts,
    first_per_series,
    series_updates,
)
from ..keys import SeriesKey
from .models import Alert, ChangeRow, Observation, Page, PageVersion, Series, Source

ZLIB_LEVEL = 6


def store_version(session: Session, page: Page, *, at: datetime, body: bytes, content_hash: str,
                  keep_versions: int) -> None:
    """Keep the body compressed (unless identical to the newest), prune to `keep_versions`."""
    newest = session.scalars(
        sa.select(PageVersion).where(PageVersion.page_id == page.id)
        .order_by(PageVersion.fetched_at.desc(), PageVersion.id.desc()).limit(1)
    ).first()
    if newest is None or newest.content_hash != content_hash:
        session.add(PageVersion(page_id=page.id, fetched_at=at, content_hash=content_hash,
                                size=len(body), body=zlib.compress(body, ZLIB_LEVEL)))
        session.flush()
    stale = session.scalars(
        sa.select(PageVersion.id).where(PageVersion.page_id == page.id)
        .order_by(PageVersion.fetched_at.desc(), PageVersion.id.desc())
        .offset(max(1, keep_versions))
    ).all()
    if stale:
        session.execute(sa.delete(PageVersion).where(PageVersion.id.in_(stale)))


def active_priors(session: Session, page: Page) -> dict[int, Prior]:
    rows = session.scalars(
        sa.select(Observation).where(Observation.page_id == page.id, Observation.active)
        .order_by(Observation.id)
    ).all()
    return {o.id: prior_of(o) for o in rows}


def prior_of(o: Observation) -> Prior:
    return Prior(id=o.id, page_key=o.page_key, sentence=o.sentence, quantity=quantity_of(o),
                 entity=o.entity, metric=o.metric, period=o.period)


def quantity_of(o: Observation) -> Quantity:
    return Quantity(o.value, o.unit, o.low, o.high, o.conversion_value, o.conversion_unit)


def apply_page_diff(session: Session, page: Page, diff: PageDiff, *, at: datetime,
                    fetch_id: int) -> None:
    """History grows with changes, not checks: a value seen again only moves last_seen_at."""
    for pair in diff.unchanged:
        k, f = pair.current, pair.current.figure
        session.execute(
            sa.update(Observation).where(Observation.id == pair.prior.id)
            # A lightly edited or moved sentence keeps its row but takes the new key and text,
            # so the next fetch pairs it exactly.
            .values(last_seen_at=at, page_key=k.page_key, occurrence=k.occurrence,
                    sentence=f.sentence, span_start=f.start, span_end=f.end)
        )
    gone = [p.prior.id for p in diff.changed] + [p.id for p in diff.removed]
    if gone:
        session.execute(sa.update(Observation).where(Observation.id.in_(gone))
                        .values(active=False))
    for k in [p.current for p in diff.changed] + diff.new:
        session.add(observation_row(page, k, at=at, fetch_id=fetch_id))


def observation_row(page: Page, k: Keyed, *, at: datetime, fetch_id: int) -> Observation:
    f: Figure = k.figure
    conv = f.conversion
    return Observation(
        page_id=page.id, page_key=k.page_key, occurrence=k.occurrence, entity=f.entity,
        metric=f.metric, period=f.period, value=f.value, unit=f.unit, low=f.low, high=f.high,
        qualifier=f.qualifier, conversion_value=conv.value if conv else None,
        conversion_unit=conv.unit if conv else None, sentence=f.sentence, span_start=f.start,
        span_end=f.end, first_seen_at=at, last_seen_at=at, fetch_id=fetch_id, active=True,
    )


def series_text_key(key: SeriesKey) -> str:
    entity, metric, period = key
    return "\x1f".join((entity, metric, period or ""))


def cross_source_changes(session: Session, candidates: Sequence[Keyed], *, source: str,
                         url: str, at: datetime, replaced: Mapping[int, Quantity]
                         ) -> list[Change]:
    """Update the series the new/changed figures belong to; return series_update + conflict.

    `replaced` maps `id(keyed)` of a changed figure to the value it replaced.
    """
    firsts = first_per_series(candidates)
    if not firsts:
        return []
    _lock_series(session, sorted(series_text_key(k) for k in firsts))
    rows = {
        row.key: row for row in session.scalars(
            sa.select(Series).where(Series.key.in_([series_text_key(k) for k in firsts]))
            .with_for_update()  # PostgreSQL: no lost update between replicas; SQLite: no-op
        )
    }
    latest = {
        key: SeriesLatest(Quantity(r.latest_value, r.unit, conv_value=r.latest_conversion_value,
                                   conv_unit=r.latest_conversion_unit), r.latest_source)
        for key in firsts if (r := rows.get(series_text_key(key))) is not None
    }
    updates, new_latest = series_updates(firsts, latest, source=source, url=url, at=at)
    for key, k in new_latest.items():
        f = k.figure
        row = rows.get(series_text_key(key))
        if row is None:
            row = Series(key=series_text_key(key), entity=key[0], metric=key[1], period=key[2])
            session.add(row)
        row.unit, row.latest_value, row.latest_source, row.updated_at = f.unit, f.value, source, at
        row.latest_conversion_value = f.conversion.value if f.conversion else None
        row.latest_conversion_unit = f.conversion.unit if f.conversion else None
    others = {key: other_statements(session, key, source) for key in firsts if key[2]}
    previous = {key: replaced[id(k)] for key, k in firsts.items() if id(k) in replaced}
    return updates + conflicts(firsts, others, source=source, url=url, at=at, previous=previous)


_SERIES_LOCK_CLASS = 0x66770001


def _lock_series(session: Session, keys: Sequence[str]) -> None:
    """PostgreSQL: serialise replicas updating one series, including its first insert.

    `FOR UPDATE` cannot lock a row that does not exist yet, so two replicas seeing a
    series for the first time would both insert it; a transaction-scoped advisory
    lock per key (taken in sorted order, so no deadlock) makes the second wait for
    the first to commit.  SQLite needs nothing: its transactions are `BEGIN IMMEDIATE`.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    for key in keys:
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:cls, hashtext(:key))"),
                        {"cls": _SERIES_LOCK_CLASS, "key": key})


def other_statements(session: Session, key: SeriesKey, source: str) -> list[Statement]:
    """What other sources currently state for the series, newest first."""
    entity, metric, period = key
    q = (
        sa.select(Observation, Source.name)
        .join(Page, Page.id == Observation.page_id).join(Source, Source.id == Page.source_id)
        .where(Observation.active, Observation.entity == entity, Observation.metric == metric,
               Observation.period.is_(None) if period is None else Observation.period == period,
               Source.name != source)
        .order_by(Observation.first_seen_at.desc(), Observation.id.desc())
    )
    return [Statement(name, quantity_of(o)) for o, name in session.execute(q)]


def add_changes(session: Session, changes: Sequence[Change], fetch_id: int | None) -> None:
    session.add_all(
        ChangeRow(kind=c.kind, source=c.source, url=c.url, entity=c.entity, metric=c.metric,
                  period=c.period, unit=c.unit, old_value=c.old_value, new_value=c.new_value,
                  sentence=c.sentence, other_source=c.other_source, page_key=c.page_key,
                  detected_at=c.detected_at, fetch_id=fetch_id)
        for c in changes
    )


def add_alerts(session: Session, alerts: Sequence[PendingAlert]) -> None:
    session.add_all(
        Alert(id=a.id, channel=a.channel, type=a.type, data=a.data, state="pending",
              attempts=a.attempts, next_attempt_at=a.created_at, created_at=a.created_at)
        for a in alerts
    )
