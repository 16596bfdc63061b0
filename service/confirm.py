"""Confirmation: a figure's new value alerts only once it has been seen N fetches in a row.

Pure: no database, no clock.  `service.db.tracks` keeps one `Track` per
(page, page key, level) where the level is a rule's `confirm_fetches` (1 is
"alert at once"); each fetch of the page calls `step` once per track with what
the page states now (a `Seen`, or None when the figure is not on the page):

    seen == confirmed            nothing; a pending candidate is dropped (A → B → A)
    seen == pending candidate    streak + 1
    otherwise                    a new candidate, streak 1
    streak reaches the level     the candidate becomes the confirmed value and
                                 one Change is emitted:
        absent  → value          new
        value   → absent         removed
        value   → value          changed, or `reverted` when it returns to the
                                 value the last confirmed change replaced

A revert closes the episode (`before` is cleared), so A → B → A → B alerts
changed, reverted, changed.  Failed, unchanged-by-304 and parser-suspect
fetches are not page states: only the store decides which fetches call `step`
(ok and unchanged fetches do; failed and parse_suspect ones do not, so they
never make a figure "removed").
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from .alerts import Change
from .diff import Quantity, in_common_unit, same_amount


@dataclass(frozen=True, slots=True)
class Seen:
    """A figure as one fetch states it: what a track needs to compare and to report."""

    quantity: Quantity
    sentence: str
    entity: str | None = None
    metric: str | None = None
    period: str | None = None


@dataclass(slots=True)
class Track:
    """The confirmation state of one figure of one page at one level."""

    page_key: str
    level: int
    confirmed: Seen | None
    before: Decimal | None = None
    pending: Seen | None = None
    pending_absent: bool = False
    streak: int = 0
    pending_since: datetime | None = None

    @property
    def dead(self) -> bool:
        """Confirmed absent with nothing pending: the row can go."""
        return self.confirmed is None and self.streak == 0


def _same(a: Seen | None, b: Seen | None) -> bool:
    if a is None or b is None:
        return a is b
    return same_amount(a.quantity, b.quantity)


def _pending_is(track: Track, seen: Seen | None) -> bool:
    if track.streak == 0:
        return False
    if seen is None:
        return track.pending_absent
    return not track.pending_absent and _same(track.pending, seen)


def step(track: Track, seen: Seen | None, *, at: datetime, source: str, url: str
         ) -> tuple[Change | None, datetime | None]:
    """Advance `track` by one fetch; return the confirmed Change (or None) and when the
    confirmed value was first seen (for `new_high`/`new_low`, which compare with the
    history before it)."""
    if _same(seen, track.confirmed):
        if seen is not None and track.confirmed is not None \
                and seen.quantity.unit == track.confirmed.quantity.unit:
            track.confirmed = seen  # the newest sentence (a restatement keeps the unit)
        track.pending, track.pending_absent, track.streak, track.pending_since = (
            None, False, 0, None)
        return None, None
    if _pending_is(track, seen):
        track.streak += 1
        if seen is not None:
            track.pending = seen
    else:
        track.pending, track.pending_absent, track.streak, track.pending_since = (
            seen, seen is None, 1, at)
    if track.streak < track.level:
        return None, None
    since = track.pending_since or at
    change = _confirmed_change(track, seen, at=at, source=source, url=url)
    track.confirmed = seen
    track.pending, track.pending_absent, track.streak, track.pending_since = None, False, 0, None
    return change, since


def _confirmed_change(track: Track, seen: Seen | None, *, at: datetime, source: str,
                      url: str) -> Change:
    old = track.confirmed
    if old is None:
        assert seen is not None
        track.before = None
        return _change("new", seen, None, at, source, url, track.page_key)
    if seen is None:
        track.before = None
        return replace(_change("removed", old, old.quantity.value, at, source, url,
                               track.page_key), new_value=None)
    reverted = track.before is not None and _returns_to(seen.quantity, track.before,
                                                         old.quantity.unit)
    pair = in_common_unit(seen.quantity, old.quantity)
    old_value = old.quantity.value if pair is None else pair[1]  # in the new value's unit
    track.before = None if reverted else old_value  # `seen` is confirmed next, in that unit
    return _change("reverted" if reverted else "changed", seen, old_value, at, source, url,
                   track.page_key)


def _returns_to(q: Quantity, before: Decimal, unit: str) -> bool:
    return same_amount(q, Quantity(before, unit))


def _change(kind: str, s: Seen, old: Decimal | None, at: datetime, source: str, url: str,
            page_key: str) -> Change:
    return Change(kind=kind, source=source, url=url, unit=s.quantity.unit,
                  new_value=s.quantity.value, old_value=old, sentence=s.sentence,
                  detected_at=at, entity=s.entity, metric=s.metric, period=s.period,
                  page_key=page_key)
