"""Confirmation tracks in the database, advanced inside the caller's transaction.

`Store.ingest` and `Store.record_unchanged` call `advance` with what the page
states now (`Sighting`s); the tracks of every configured `confirm_fetches`
level move one step (see `service.confirm`) and the confirmed changes come
back per level, in the same transaction as the outbox rows they cause.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..alerts import Change
from ..confirm import Seen, Track, step
from ..diff import Keyed, PageDiff, Prior, Quantity, confirmed_cross_source
from ..keys import series_key
from ..rules import build_alerts
from ..settings import RuleConfig
from .facts import StoredSeriesFacts
from .ingest import add_alerts, add_changes, other_statements_of, page_id_of_url
from .models import FigureTrack, Observation
from .records import IngestResult
from .writes import Target, Writes

KIND_ORDER = {"changed": 0, "reverted": 0, "new": 1, "removed": 2}


@dataclass(frozen=True, slots=True)
class Sighting:
    """One figure of this fetch: its key now, and what it was before (re-keying, init)."""

    key: str
    seen: Seen | None  # None: no longer on the page
    prior_key: str | None = None
    prior: Seen | None = None


@dataclass(frozen=True, slots=True)
class Confirmed:
    """A change confirmed at a level, and when its value was first seen."""

    change: Change
    since: datetime


def seen_of_keyed(k: Keyed) -> Seen:
    f = k.figure
    return Seen(k.quantity, f.sentence, f.entity, f.metric, f.period)


def seen_of_prior(p: Prior) -> Seen:
    return Seen(p.quantity, p.sentence, p.entity, p.metric, p.period)


def sightings_of_diff(diff: PageDiff, keyed: Sequence[Keyed]) -> list[Sighting]:
    """Pairs and new figures in document order, then the removed ones."""
    by_current = {id(p.current): p for p in diff.pairs}
    new = {id(k) for k in diff.new}
    out = []
    for k in keyed:
        pair = by_current.get(id(k))
        if pair is not None:
            out.append(Sighting(k.page_key, seen_of_keyed(k), pair.prior.page_key,
                                seen_of_prior(pair.prior)))
        elif id(k) in new:
            out.append(Sighting(k.page_key, seen_of_keyed(k)))
    out += [Sighting(p.page_key, None, p.page_key, seen_of_prior(p)) for p in diff.removed]
    return out


_obs = cast(sa.Table, Observation.__table__)
_SEEN_COLUMNS = (_obs.c.page_key, _obs.c.value, _obs.c.unit, _obs.c.low, _obs.c.high,
                 _obs.c.conversion_value, _obs.c.conversion_unit, _obs.c.sentence,
                 _obs.c.entity, _obs.c.metric, _obs.c.period)
_ACTIVE_SEEN = (sa.select(*_SEEN_COLUMNS)
                .where(_obs.c.page_id == sa.bindparam("page_id"), _obs.c.active)
                .order_by(_obs.c.id))


def load_sightings_unchanged(session: Session, page_id: int) -> list[Sighting]:
    """An identical page (304 or same body): every active figure seen again, read for
    just that (no `Prior`, whose masked sentence only the diff needs, is built)."""
    out = []
    for key, value, unit, low, high, cv, cu, sentence, entity, metric, period in (
            session.connection().execute(_ACTIVE_SEEN, {"page_id": page_id})):
        seen = Seen(Quantity(value, unit, low, high, cv, cu), sentence, entity, metric, period)
        out.append(Sighting(key, seen, key, seen))
    return out


_tracks = cast(sa.Table, FigureTrack.__table__)
_STATE = ("page_key", "confirmed", "before", "pending", "pending_absent", "streak",
          "pending_since")


@dataclass(slots=True)
class _Row:
    """A stored track: its id, level, state as stored (`stored`) and as stepped (`state`)."""

    id: int | None
    level: int
    stored: dict[str, Any]
    state: dict[str, Any]

    @property
    def page_key(self) -> str:
        return str(self.state["page_key"])


@dataclass(slots=True)
class _TrackWrites:
    """What one `advance` writes, issued as a handful of set-based statements."""

    deleted: list[int] = field(default_factory=list)
    inserted: list[dict[str, Any]] = field(default_factory=list)
    updated: list[dict[str, Any]] = field(default_factory=list)

    def delete(self, row: _Row | None) -> None:
        if row is not None and row.id is not None:
            self.deleted.append(row.id)


def advance(session: Session, page_id: int, sightings: Sequence[Sighting], *,
            levels: Iterable[int], at: datetime, source: str, url: str,
            writes: Target | None = None,
            loaded: Iterable[Any] | None = None) -> dict[int, list[Confirmed]]:
    """Move every track of the page one fetch on; return the confirmed changes per level.

    A missing track starts confirmed at the figure's previous value (or absent),
    so tracks appear lazily for pages stored before this table existed and for
    a level a new rule introduces.  That is also why a track settled at the value
    just seen, with nothing pending and no earlier value to revert to, is not
    stored: the next fetch rebuilds it from the observation this one leaves
    active.  Most figures never change, so most pages keep no track rows at all,
    and a page costs rows for what moves, not for what it states.  (A baseline
    needs no call: every track starts settled at what it sees.)  The tracks are
    written to `writes` (default: the session).  `loaded`: the page's tracks
    already read (rows of `TRACKS_OF_URL`).
    """
    wanted = sorted(set(levels) | {1})
    rows = _rows(loaded) if loaded is not None else _load(session, page_id)
    pending = _TrackWrites()
    for r in rows:
        if r.level not in wanted:
            pending.delete(r)
    out: dict[int, list[Confirmed]] = {}
    for level in wanted:
        level_rows = [r for r in rows if r.level == level]
        out[level] = _advance_level(pending, page_id, level_rows, sightings, level=level, at=at,
                                    source=source, url=url)
    _write(writes or session, pending)
    return out


_LOAD = (sa.select(_tracks.c.id, _tracks.c.level, *(_tracks.c[name] for name in _STATE))
         .where(_tracks.c.page_id == sa.bindparam("page_id")).order_by(_tracks.c.id))
TRACKS_OF_URL = (sa.select(_tracks.c.id, _tracks.c.level, *(_tracks.c[name] for name in _STATE))
                 .where(_tracks.c.page_id == page_id_of_url()).order_by(_tracks.c.id))
_UPDATE = sa.update(_tracks).where(_tracks.c.id == sa.bindparam("b_id"))
_DELETE = sa.delete(_tracks).where(_tracks.c.id.in_(sa.bindparam("b_ids", expanding=True)))
_INSERT = sa.insert(_tracks).inline()


def _load(session: Session, page_id: int) -> list[_Row]:
    return _rows(session.connection().execute(_LOAD, {"page_id": page_id}))


def _rows(loaded: Iterable[Any]) -> list[_Row]:
    out = []
    for r in loaded:
        stored = dict(zip(_STATE, r[2:], strict=True))
        out.append(_Row(r[0], r[1], stored, dict(stored)))
    return out


def _write(session: Target, writes: _TrackWrites) -> None:
    if writes.updated:
        session.execute(_UPDATE, writes.updated)
    if writes.deleted:
        session.execute(_DELETE, [{"b_ids": writes.deleted}])
    if writes.inserted:
        session.execute(_INSERT, writes.inserted)


def _advance_level(writes: _TrackWrites, page_id: int, rows: Sequence[_Row],
                   sightings: Sequence[Sighting], *, level: int, at: datetime, source: str,
                   url: str) -> list[Confirmed]:
    by_key: dict[str, _Row] = {}
    for r in rows:
        if r.page_key in by_key:  # a duplicate left by a crash between replicas: keep one
            writes.delete(r)
        else:
            by_key[r.page_key] = r
    # Re-key first (a lightly edited sentence gets a new key), all at once: keys may swap.
    moved = {s.key: by_key.pop(s.prior_key) for s in sightings
             if s.prior_key and s.prior_key != s.key and s.prior_key in by_key}
    for key, mover in moved.items():
        writes.delete(by_key.pop(key, None))
        mover.state["page_key"] = key
        by_key[key] = mover
    found: list[Confirmed] = []
    touched: set[str] = set()
    for s in sightings:
        if s.key in touched:
            continue
        touched.add(s.key)
        row = by_key.get(s.key)
        if row is not None and s.seen is not None and _settled(row.state, s.seen):
            # Seen as confirmed, nothing pending: `step` would leave the track as it is.
            if row.state != row.stored:  # re-keyed above
                writes.updated.append({"b_id": row.id, "updated_at": at, **row.state})
            continue
        if row is None:
            start = s.prior
            if start is not None and start == s.seen:
                continue  # settled where it starts: nothing to step, no row (see `advance`)
            track = Track(s.key, level, start)
        else:
            track = track_of_state(row.state, level)
        _step(writes, page_id, row, track, s.seen, found, at=at, source=source, url=url)
    for key, left in by_key.items():
        if key not in touched:
            _step(writes, page_id, left, track_of_state(left.state, level), None, found,
                  at=at, source=source, url=url)
    found.sort(key=lambda c: KIND_ORDER.get(c.change.kind, 3))
    return found


def _settled(state: dict[str, Any], seen: Seen) -> bool:
    """Whether a track in `state` is confirmed at exactly `seen`, with nothing pending."""
    return (state["streak"] == 0 and state["pending"] is None and not state["pending_absent"]
            and state["pending_since"] is None and state["confirmed"] == _seen_json(seen))


def _step(writes: _TrackWrites, page_id: int, row: _Row | None, track: Track,
          seen: Seen | None, found: list[Confirmed], *, at: datetime, source: str,
          url: str) -> None:
    change, since = step(track, seen, at=at, source=source, url=url)
    if change is not None and since is not None:
        found.append(Confirmed(change, since))
    if track.dead:
        writes.delete(row)
        return
    state = {"page_key": track.page_key, "confirmed": _seen_json(track.confirmed),
             "before": track.before, "pending": _seen_json(track.pending),
             "pending_absent": track.pending_absent, "streak": track.streak,
             "pending_since": track.pending_since}
    if row is None and seen is not None and state["before"] is None and _settled(state, seen):
        return  # what a missing track stands for: no row (see `advance`)
    if row is None:
        writes.inserted.append({"page_id": page_id, "level": track.level, "updated_at": at,
                                **state})
    elif state != row.stored:  # a track that did not move is not rewritten
        writes.updated.append({"b_id": row.id, "updated_at": at, **state})


def track_of_state(state: dict[str, Any], level: int) -> Track:
    return Track(state["page_key"], level, _seen(state["confirmed"]), state["before"],
                 _seen(state["pending"]), state["pending_absent"], state["streak"],
                 state["pending_since"])


def _text(v: Decimal | None) -> str | None:
    return None if v is None else format(v, "f")


def _dec(v: Any) -> Decimal | None:
    return None if v is None else Decimal(str(v))


def _seen_json(s: Seen | None) -> dict[str, Any] | None:
    if s is None:
        return None
    q = s.quantity
    return {"value": _text(q.value), "unit": q.unit, "low": _text(q.low), "high": _text(q.high),
            "conv_value": _text(q.conv_value), "conv_unit": q.conv_unit,
            "sentence": s.sentence, "entity": s.entity, "metric": s.metric, "period": s.period}


def _seen(d: dict[str, Any] | None) -> Seen | None:
    if d is None:
        return None
    value = _dec(d["value"])
    assert value is not None
    q = Quantity(value, d["unit"], _dec(d.get("low")), _dec(d.get("high")),
                 _dec(d.get("conv_value")), d.get("conv_unit"))
    return Seen(q, d.get("sentence") or "", d.get("entity"), d.get("metric"), d.get("period"))


def levels_of(rules: Sequence[RuleConfig]) -> set[int]:
    """The confirmation levels to track: 1 (the diff itself) and every rule's."""
    return {1} | {r.confirm_fetches for r in rules}


def alert_changes(session: Session, rules: Sequence[RuleConfig],
                  confirmed: dict[int, list[Confirmed]], changes: list[Change], *,
                  at: datetime, source: str, fetch_id: int, baseline: bool = False,
                  writes: Writes | None = None) -> IngestResult:
    """Record the level-1 `changes` (the changes table), then queue the alerts of every
    level: rules with `confirm_fetches = N > 1` see level N's confirmed changes plus
    the `series_update`/`conflict` those imply now (`diff.confirmed_cross_source`)."""
    changes = changes + [c.change for c in confirmed.pop(1, [])]
    add_changes(writes or session, changes, fetch_id)
    first_seen: dict[Change, datetime] = {}
    by_level: dict[int, list[Change]] = {}
    others = other_statements_of(session, {
        key for found in confirmed.values() for c in found
        if (key := series_key(c.change.entity, c.change.metric, c.change.period)) is not None
    }, source)
    for level, found in confirmed.items():
        bucket = by_level.setdefault(level, [])
        for c in found:
            extra = []
            key = series_key(c.change.entity, c.change.metric, c.change.period)
            if key is not None:
                extra = confirmed_cross_source(c.change, others.get(key, []))
            for change in (c.change, *extra):
                bucket.append(change)
                first_seen[change] = c.since
    # Facts read the observations (this page's new ones too): queued writes go first.
    facts = StoredSeriesFacts(session, first_seen,
                              before_read=writes.flush if writes is not None else None)
    alerts = build_alerts(rules, changes, now=at, baseline=baseline,
                          confirmed=None if baseline else by_level, facts=facts)
    add_alerts(writes or session, alerts)
    return IngestResult(changes=changes, alerts=alerts, baseline=baseline)
