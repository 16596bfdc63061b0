"""The write half of one successful fetch, inside the caller's transaction.

`Store.ingest` opens the transaction; these functions do the work so that the
page version, the observations, the series, the changes and the outbox rows
all commit together or not at all.

They are written for round trips, which bound ingest on PostgreSQL: what a
page's diff needs is read in a few set-based queries, and every write is one
Core statement over all its rows (an executemany, or one `UPDATE ... WHERE id
IN`), issued only when it has rows to write.  No ORM object is built per figure.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

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
from .types import UTCDateTime
from .writes import Query, Target, Writes, read

ZLIB_LEVEL = 1  # about half the CPU of level 6 for bodies a few percent larger
RECENT_COUNTS_KEPT = 5  # figure counts of a page's last `ok` fetches (parser health)
OTHER_STATEMENTS_READ = 1000  # per series: the newest statements of other sources compared

_obs = cast(sa.Table, Observation.__table__)
_versions = cast(sa.Table, PageVersion.__table__)
_series = cast(sa.Table, Series.__table__)
_changes = cast(sa.Table, ChangeRow.__table__)
_alerts = cast(sa.Table, Alert.__table__)
_pages = cast(sa.Table, Page.__table__)
_sources = cast(sa.Table, Source.__table__)


@dataclass(frozen=True, slots=True)
class PageState:
    """A stored page as ingest needs it: its id and what its kept versions are."""

    id: int
    newest_hash: str | None
    versions: int
    recent_counts: tuple[int, ...] = ()
    last_fetched_at: datetime | None = None  # when its active figures were last seen


def parse_counts(text: str | None) -> tuple[int, ...]:
    """`pages.recent_figure_counts` ("50,49,51", newest first) as numbers."""
    return tuple(int(n) for n in text.split(",")) if text else ()


def push_count(counts: Sequence[int], figures: int) -> str:
    """The stored counts once an `ok` fetch found `figures` figures."""
    return ",".join(str(n) for n in (figures, *counts[: RECENT_COUNTS_KEPT - 1]))


def page_columns() -> tuple[Any, ...]:
    """What `PageState` is made of, for a query that (outer) joins `pages`."""
    newest = (sa.select(_versions.c.content_hash).where(_versions.c.page_id == _pages.c.id)
              .order_by(_versions.c.fetched_at.desc(), _versions.c.id.desc()).limit(1)
              .scalar_subquery())
    count = (sa.select(sa.func.count()).select_from(_versions)
             .where(_versions.c.page_id == _pages.c.id).scalar_subquery())
    return _pages.c.id, newest, count, _pages.c.recent_figure_counts, _pages.c.last_fetched_at


PAGE_COLUMNS = len(page_columns())


def page_state_of(row: Sequence[Any]) -> PageState | None:
    """The `PageState` of the `page_columns` of a result row."""
    page_id, newest, count, counts, fetched = row
    return None if page_id is None else PageState(page_id, newest, count or 0,
                                                  parse_counts(counts), fetched)


def compress_body(body: bytes) -> bytes:
    return zlib.compress(body, ZLIB_LEVEL)


def store_version(session: Target, page: PageState, *, at: datetime, size: int,
                  compressed: bytes, content_hash: str, keep_versions: int) -> None:
    """Keep the body (`compress_body`; unless identical to the newest), prune to
    `keep_versions`."""
    versions = page.versions
    if page.newest_hash != content_hash:
        session.execute(_INSERT_VERSION, [{
            "page_id": page.id, "fetched_at": at, "content_hash": content_hash,
            "size": size, "body": compressed}])
        versions += 1
    keep = max(1, keep_versions)
    if versions > keep:
        session.execute(_PRUNE_VERSIONS, [{"b_page_id": page.id, "b_keep": keep}])


# Statements that do not depend on their arguments are built once, here: SQLAlchemy's
# compiled cache then hits without generating a cache key from a new statement per call.
_INSERT_VERSION = sa.insert(_versions).inline()
_PRUNE_VERSIONS = sa.delete(_versions).where(
    _versions.c.page_id == sa.bindparam("b_page_id"),
    _versions.c.id.not_in(sa.select(_versions.c.id)
                          .where(_versions.c.page_id == sa.bindparam("b_page_id"))
                          .order_by(_versions.c.fetched_at.desc(), _versions.c.id.desc())
                          .limit(sa.bindparam("b_keep", type_=sa.Integer()))))


@dataclass(frozen=True, slots=True)
class Placement:
    """Where an active observation's figure sits on the page (rewritten when it moves)."""

    page_key: str
    occurrence: int
    sentence: str
    span_start: int
    span_end: int


_PRIOR_COLUMNS = (_obs.c.id, _obs.c.page_key, _obs.c.occurrence, _obs.c.sentence,
                  _obs.c.span_start, _obs.c.span_end, _obs.c.value, _obs.c.unit, _obs.c.low,
                  _obs.c.high, _obs.c.conversion_value, _obs.c.conversion_unit, _obs.c.entity,
                  _obs.c.metric, _obs.c.period)


_PRIORS = (sa.select(*_PRIOR_COLUMNS)
           .where(_obs.c.page_id == sa.bindparam("page_id"), _obs.c.active)
           .order_by(_obs.c.id))


# The page of source `:name` at `:url`, by conditions on the page's own unique key: a
# plan made while the tables were tiny (a prepared statement's generic plan, kept for
# the connection's life) then still probes `uq_pages_source_url`, where a join on
# `sources.id` came to scan `pages` whole for every page as the table grew.
PAGE_OF_URL = sa.and_(
    _pages.c.source_id == sa.select(_sources.c.id)
    .where(_sources.c.name == sa.bindparam("name")).correlate(None).scalar_subquery(),
    _pages.c.url == sa.bindparam("url"))


def page_id_of_url() -> Any:
    """The id of the page of source `:name` at `:url`, as a scalar subquery: reads keyed on
    the page can then be sent before its id is known (`service.db.writes.read`)."""
    return sa.select(_pages.c.id).where(PAGE_OF_URL).scalar_subquery()


PRIORS_OF_URL = (sa.select(*_PRIOR_COLUMNS)
                 .where(_obs.c.page_id == page_id_of_url(), _obs.c.active)
                 .order_by(_obs.c.id))


def load_priors(session: Session, page_id: int) -> tuple[list[Prior], dict[int, Placement]]:
    """The page's active observations, in id order, and where each one sits now."""
    return priors_of_rows(session.connection().execute(_PRIORS, {"page_id": page_id}).all())


def priors_of_rows(rows: Sequence[Any]) -> tuple[list[Prior], dict[int, Placement]]:
    """`load_priors` of rows of `_PRIOR_COLUMNS` (by position)."""
    priors = []
    placed = {}
    for (id_, page_key, occurrence, sentence, span_start, span_end, value, unit, low, high,
         conv_value, conv_unit, entity, metric, period) in rows:
        priors.append(Prior(id=id_, page_key=page_key, sentence=sentence,
                            quantity=Quantity(value, unit, low, high, conv_value, conv_unit),
                            entity=entity, metric=metric, period=period))
        placed[id_] = Placement(page_key, occurrence, sentence, span_start, span_end)
    return priors, placed


def quantity_of(o: Any) -> Quantity:
    """The amount of an observation (an ORM row or a Core row with its column names)."""
    return Quantity(o.value, o.unit, o.low, o.high, o.conversion_value, o.conversion_unit)


def apply_page_diff(session: Target, page_id: int, diff: PageDiff, *, at: datetime,
                    fetch_id: int, placed: Mapping[int, Placement],
                    last_seen: datetime | None) -> None:
    """History grows with changes, not checks: a value seen again costs no write.

    An active observation was last seen when its page was last fetched
    (`pages.last_fetched_at`, see `LAST_SEEN`); its own `last_seen_at` is written
    when it goes inactive (`last_seen`: the page's fetch before this one).  At most
    three statements: one UPDATE of the figures gone (changed or removed), an
    executemany for the figures that moved, and one INSERT of the new values.
    """
    moved = []
    for pair in diff.pairs:
        if not pair.same:
            continue
        k, f = pair.current, pair.current.figure
        now = Placement(k.page_key, k.occurrence, f.sentence, f.start, f.end)
        if placed.get(pair.prior.id) != now:  # a lightly edited or moved sentence keeps its
            # row but takes the new key and text, so the next fetch pairs it exactly
            moved.append({"b_id": pair.prior.id, "page_key": now.page_key,
                          "occurrence": now.occurrence, "sentence": now.sentence,
                          "span_start": now.span_start, "span_end": now.span_end})
    gone = [p.prior.id for p in diff.pairs if not p.same] + [p.id for p in diff.removed]
    if gone:
        session.execute(_GONE, [{"b_ids": gone, "b_at": last_seen or at}])
    if moved:
        session.execute(_MOVED, moved)
    rows = [observation_values(page_id, p.current, at=at, fetch_id=fetch_id)
            for p in diff.pairs if not p.same]
    rows += [observation_values(page_id, k, at=at, fetch_id=fetch_id) for k in diff.new]
    if rows:
        session.execute(_INSERT_OBSERVATIONS, rows)


_IDS = _obs.c.id.in_(sa.bindparam("b_ids", expanding=True))
_GONE = sa.update(_obs).where(_IDS).values(
    active=False, last_seen_at=sa.bindparam("b_at", type_=UTCDateTime()))
_MOVED = sa.update(_obs).where(_obs.c.id == sa.bindparam("b_id"))
_INSERT_OBSERVATIONS = sa.insert(_obs).inline()
LAST_SEEN = sa.case((_obs.c.active, _pages.c.last_fetched_at),
                    else_=_obs.c.last_seen_at).label("last_seen_at")
"""When an observation was last seen: for an active one, when its page was last fetched
(each `ok` or `unchanged` fetch moves that one column, not a row per figure); for an
inactive one, its own `last_seen_at`.  For a query that joins `pages`."""


def observation_values(page_id: int, k: Keyed, *, at: datetime, fetch_id: int
                       ) -> dict[str, Any]:
    f = k.figure
    conv = f.conversion
    return {
        "page_id": page_id, "page_key": k.page_key, "occurrence": k.occurrence,
        "entity": f.entity, "metric": f.metric, "period": f.period, "value": f.value,
        "unit": f.unit, "low": f.low, "high": f.high, "qualifier": f.qualifier,
        "conversion_value": conv.value if conv else None,
        "conversion_unit": conv.unit if conv else None, "sentence": f.sentence,
        "span_start": f.start, "span_end": f.end, "first_seen_at": at, "last_seen_at": at,
        "fetch_id": fetch_id, "active": True,
    }


def series_text_key(key: SeriesKey) -> str:
    entity, metric, period = key
    return "\x1f".join((entity, metric, period or ""))


def cross_source_changes(session: Session, candidates: Sequence[Keyed], *, source: str,
                         url: str, at: datetime, replaced: Mapping[int, Quantity],
                         writes: Target | None = None, with_conflicts: bool = True
                         ) -> list[Change]:
    """Update the series the new/changed figures belong to; return series_update + conflict.

    `replaced` maps `id(keyed)` of a changed figure to the value it replaced; the
    series are written to `writes` (default: the session).  Without
    `with_conflicts` (a baseline whose changes nobody asked for) the other
    sources' statements are not even read.
    """
    firsts = first_per_series(candidates)
    if not firsts:
        return []
    keys = {series_text_key(k): k for k in firsts}
    conflict_keys = [key for key in firsts if key[2]] if with_conflicts else []
    others: dict[SeriesKey, list[Statement]] = {}
    if session.get_bind().dialect.name == "postgresql":
        # Lock, series and the other sources' statements in one round trip, in that order
        # (each statement of the pipeline takes its snapshot after the locks are held).
        # The writes queued so far go first in it: they need no lock, so other pages
        # stating these series wait for less (the locks are held until the commit).
        queries: list[Query] = [(_LOCK_SERIES, {"cls": _SERIES_LOCK_CLASS, "keys": sorted(keys)}),
                   (_SERIES_LATEST_PG, {"b_keys": list(keys)})]
        others_query = _others_of(conflict_keys, source, OTHER_STATEMENTS_READ)
        if others_query is not None:
            queries.append(others_query)
        results = read(session, queries,
                       after=writes if isinstance(writes, Writes) else None)
        series_rows = results[1]
        if others_query is not None:
            others = _others_rows(results[2])
    else:
        _lock_series(session, sorted(keys))
        series_rows = list(session.connection().execute(_SERIES_LATEST,
                                                        {"b_keys": list(keys)}).all())
        others = other_statements_of(session, conflict_keys, source) if conflict_keys else {}
    rows = {row[0]: row for row in series_rows}
    latest = {
        key: SeriesLatest(Quantity(r[2], r[1], conv_value=r[3], conv_unit=r[4]), r[5])
        for text, key in keys.items() if (r := rows.get(text)) is not None
    }
    updates, new_latest = series_updates(firsts, latest, source=source, url=url, at=at)
    _write_series(writes or session, new_latest, existing=rows.keys(), source=source, at=at)
    if not with_conflicts:
        return updates
    previous = {key: replaced[id(k)] for key, k in firsts.items() if id(k) in replaced}
    return updates + conflicts(firsts, others, source=source, url=url, at=at, previous=previous)


_SERIES_LATEST = (
    sa.select(_series.c.key, _series.c.unit, _series.c.latest_value,
              _series.c.latest_conversion_value, _series.c.latest_conversion_unit,
              _series.c.latest_source)
    .where(_series.c.key.in_(sa.bindparam("b_keys", expanding=True)))
    .with_for_update()  # PostgreSQL: no lost update between replicas; SQLite: no-op
)
_SERIES_LATEST_PG = (  # the same, with the keys as one array parameter (pipelined reads)
    sa.select(*_SERIES_LATEST.selected_columns)
    .where(_series.c.key == sa.any_(sa.bindparam("b_keys", type_=ARRAY(sa.String()))))
    .with_for_update()
)
_INSERT_SERIES = sa.insert(_series).inline()
_UPDATE_SERIES = sa.update(_series).where(_series.c.key == sa.bindparam("b_key"))


def _write_series(session: Target, new_latest: Mapping[SeriesKey, Keyed], *,
                  existing: Iterable[str], source: str, at: datetime) -> None:
    """Insert the series seen for the first time and update the others: two executemanys."""
    known = set(existing)
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for key, k in new_latest.items():
        f = k.figure
        text = series_text_key(key)
        values = {"unit": f.unit, "latest_value": f.value, "latest_source": source,
                  "updated_at": at,
                  "latest_conversion_value": f.conversion.value if f.conversion else None,
                  "latest_conversion_unit": f.conversion.unit if f.conversion else None}
        if text in known:
            updates.append({"b_key": text, **values})
        else:
            inserts.append({"key": text, "entity": key[0], "metric": key[1],
                            "period": key[2], **values})
    if inserts:
        session.execute(_INSERT_SERIES, inserts)
    if updates:
        session.execute(_UPDATE_SERIES, updates)


_SERIES_LOCK_CLASS = 0x66770001
_LOCK_SERIES = sa.text(
    "SELECT count(pg_advisory_xact_lock(:cls, hashtext(t.key))) FROM "
    "(SELECT k.key FROM unnest(CAST(:keys AS text[])) WITH ORDINALITY "
    "AS k(key, n) ORDER BY k.n) AS t")


def _lock_series(session: Session, keys: Sequence[str]) -> None:
    """PostgreSQL: serialise replicas updating one series, including its first insert.

    `FOR UPDATE` cannot lock a row that does not exist yet, so two replicas seeing a
    series for the first time would both insert it; a transaction-scoped advisory
    lock per key (taken in sorted order, so no deadlock) makes the second wait for
    the first to commit.  All keys are locked by one statement: `unnest ... WITH
    ORDINALITY` keeps the sorted order.  The series are read by the next statement,
    whose snapshot sees what the lock holders committed.  SQLite needs nothing:
    its transactions are `BEGIN IMMEDIATE`.
    """
    if not keys or session.get_bind().dialect.name != "postgresql":
        return
    session.connection().execute(_LOCK_SERIES, {"cls": _SERIES_LOCK_CLASS, "keys": list(keys)})


def other_statements_of(session: Session, keys: Iterable[SeriesKey], source: str,
                        limit: int = OTHER_STATEMENTS_READ) -> dict[SeriesKey, list[Statement]]:
    """`other_statements` of several series, in one query: each series' `limit` newest.

    The bound keeps a page's cost flat however many sources state a series (a
    figure every outlet repeats would otherwise make each ingest read them all):
    each series is one newest-first `ORDER BY ... LIMIT` branch of a UNION
    ALL, which both backends answer by walking `ix_observations_series_newest`
    backwards and stopping after `limit` active rows of other sources.
    """
    query = _others_of(keys, source, limit)
    if query is None:
        return {}
    return _others_rows(session.connection().execute(*query).all())


def _others_of(keys: Iterable[SeriesKey], source: str, limit: int) -> Query | None:
    """`other_statements_of`'s query and parameters (None: no series)."""
    wanted = set(keys)
    if not wanted:
        return None
    # Branches without a period first: the query's shape is then two counts, and one
    # statement per shape serves every page (SQLAlchemy's compiled cache hits).
    ordered = sorted(wanted, key=lambda k: (k[2] is not None, str(k)))
    nulls = sum(1 for k in ordered if k[2] is None)
    params: dict[str, Any] = {"b_source": source, "b_limit": limit}
    for i, (entity, metric, period) in enumerate(ordered):
        params[f"e{i}"], params[f"m{i}"] = entity, metric
        if period is not None:
            params[f"p{i}"] = period
    return _others_query(nulls, len(ordered) - nulls), params


def _others_rows(rows: Iterable[Any]) -> dict[SeriesKey, list[Statement]]:
    out: dict[SeriesKey, list[Statement]] = {}
    rows = sorted(rows, key=lambda r: (r[10], r[11]), reverse=True)  # newest first
    for entity, metric, period, value, unit, low, high, conv_value, conv_unit, name, *_ in rows:
        out.setdefault((entity, metric, period), []).append(
            Statement(name, Quantity(value, unit, low, high, conv_value, conv_unit)))
    return out


@functools.lru_cache(maxsize=512)
def _others_query(nulls: int, periods: int) -> sa.Executable:
    """`other_statements_of` for `nulls` series without a period and `periods` with one:
    one `ORDER BY ... LIMIT` branch each, all bound parameters."""
    branches = []
    for i in range(nulls + periods):
        period = (_obs.c.period.is_(None) if i < nulls
                  else _obs.c.period == sa.bindparam(f"p{i}"))
        branch = (  # Core columns only: no ORM loading machinery for what can be many rows
            sa.select(_obs.c.entity, _obs.c.metric, _obs.c.period, _obs.c.value, _obs.c.unit,
                      _obs.c.low, _obs.c.high, _obs.c.conversion_value,
                      _obs.c.conversion_unit, _sources.c.name, _obs.c.first_seen_at,
                      _obs.c.id)
            .join(_pages, _pages.c.id == _obs.c.page_id)
            .join(_sources, _sources.c.id == _pages.c.source_id)
            .where(_obs.c.entity == sa.bindparam(f"e{i}"),
                   _obs.c.metric == sa.bindparam(f"m{i}"), period,
                   _obs.c.active, _sources.c.name != sa.bindparam("b_source"))
            # `period` first changes no order (one period per branch), but tells
            # PostgreSQL the index's order holds after `period IS NULL` too.
            .order_by(_obs.c.period.desc(), _obs.c.first_seen_at.desc(), _obs.c.id.desc())
            .limit(sa.bindparam("b_limit", type_=sa.Integer()))
            .subquery()
        )
        branches.append(sa.select(branch))
    return sa.union_all(*branches) if len(branches) > 1 else branches[0]


def add_changes(session: Target, changes: Sequence[Change], fetch_id: int | None) -> None:
    if not changes:
        return
    session.execute(_INSERT_CHANGES, [
        {"kind": c.kind, "source": c.source, "url": c.url, "entity": c.entity,
         "metric": c.metric, "period": c.period, "unit": c.unit, "old_value": c.old_value,
         "new_value": c.new_value, "sentence": c.sentence, "other_source": c.other_source,
         "page_key": c.page_key, "detected_at": c.detected_at, "fetch_id": fetch_id}
        for c in changes
    ])


def add_alerts(session: Target, alerts: Sequence[PendingAlert]) -> None:
    if not alerts:
        return
    session.execute(_INSERT_ALERTS, [
        {"id": a.id, "channel": a.channel, "type": a.type, "data": a.data, "state": "pending",
         "attempts": a.attempts, "next_attempt_at": a.created_at, "claimed_until": None,
         "last_error": None, "created_at": a.created_at, "delivered_at": None}
        for a in alerts
    ])


_INSERT_CHANGES = sa.insert(_changes).inline()
_INSERT_ALERTS = sa.insert(_alerts).inline()
