"""What changed on a page, and across sources: pure functions, no database, no clock.

Pairing a page's new figures with its active observations (`diff_page`):

1. Figures are grouped by masked sentence (see `service.keys`).  Within a group
   - if the group holds the same amounts as before (in any order), nothing changed:
     a reordered page, or a sentence that moved, makes no change;
   - else if the group has as many figures as before, they pair by position
     ("grew from $5B to $6B" → "grew from $6B to $7B" is two changes, not one);
   - else equal amounts pair first, then the rest by position (a deleted
     sentence removes its own figure instead of shifting every value by one).
   Only figures with compatible units pair (same unit, or one is the other's
   conversion).
2. Leftovers pair by similarity of masked sentence (>= `threshold`), best
   first, so a lightly edited sentence still pairs; figures that name
   different entities or metrics never pair.
3. Leftovers that state the same amount in each other's conversion unit pair
   whatever their sentences ("$2 billion (about 14.25 billion yuan)" rewritten
   as "14.25 billion yuan (about $2 billion)").
4. What is still unpaired is `new` or `removed`.

Amounts are compared exactly (Decimal), and a figure restated in its
conversion unit ("$2 billion (about 14.25 billion yuan)" ↔ "14.25 billion
yuan (about $2 billion)") is the same amount, not a change.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

from parsers.figures.model import Figure

from .alerts import Change
from .keys import SeriesKey, mask_sentence, page_key, series_key, similarity

DEFAULT_THRESHOLD = 0.8
DEFAULT_CONFLICT_TOLERANCE = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Quantity:
    """An amount with its unit, range and optional restatement in another unit."""

    value: Decimal
    unit: str
    low: Decimal | None = None
    high: Decimal | None = None
    conv_value: Decimal | None = None
    conv_unit: str | None = None

    @classmethod
    def of(cls, fig: Figure) -> Quantity:
        conv = fig.conversion
        return cls(fig.value, fig.unit, fig.low, fig.high,
                   conv.value if conv else None, conv.unit if conv else None)


def in_common_unit(a: Quantity, b: Quantity) -> tuple[Decimal, Decimal] | None:
    """`a` and `b` as two numbers in one unit, or None when they cannot be compared."""
    if a.unit == b.unit:
        return a.value, b.value
    if b.conv_unit == a.unit and b.conv_value is not None:
        return a.value, b.conv_value
    if a.conv_unit == b.unit and a.conv_value is not None:
        return a.conv_value, b.value
    return None


def same_amount(a: Quantity, b: Quantity) -> bool:
    """Exactly the same amount (range bounds included); a changed conversion alone is no change."""
    if a.unit == b.unit:
        return (a.value, a.low, a.high) == (b.value, b.low, b.high)
    pair = in_common_unit(a, b)
    return pair is not None and pair[0] == pair[1]


def units_compatible(a: Quantity, b: Quantity) -> bool:
    return in_common_unit(a, b) is not None


def relative_difference(a: Decimal, b: Decimal) -> Decimal:
    """|a-b| / max(|a|, |b|): symmetric, 0 for equal values, 1 when one side is 0."""
    scale = max(abs(a), abs(b))
    return Decimal(0) if scale == 0 else abs(a - b) / scale


@dataclass(frozen=True, slots=True)
class Prior:
    """An active observation of the page, as the diff needs it."""

    id: int
    page_key: str
    sentence: str
    quantity: Quantity
    entity: str | None = None
    metric: str | None = None
    period: str | None = None
    masked: str = ""

    def __post_init__(self) -> None:
        if not self.masked:
            object.__setattr__(self, "masked", mask_sentence(self.sentence))


@dataclass(frozen=True, slots=True)
class Keyed:
    """A new figure with its masked sentence and page key."""

    figure: Figure
    masked: str
    occurrence: int
    page_key: str

    @property
    def quantity(self) -> Quantity:
        return Quantity.of(self.figure)

    @property
    def series(self) -> SeriesKey | None:
        f = self.figure
        return series_key(f.entity, f.metric, f.period)


def key_figures(figures: Sequence[Figure]) -> list[Keyed]:
    """Give each figure its page key; occurrence counts in the order given (document order)."""
    seen: dict[str, int] = defaultdict(int)
    out = []
    for fig in figures:
        masked = mask_sentence(fig.sentence)
        occ = seen[masked]
        seen[masked] += 1
        out.append(Keyed(fig, masked, occ, page_key(masked, occ)))
    return out


@dataclass(frozen=True, slots=True)
class Pair:
    prior: Prior
    current: Keyed
    same: bool


@dataclass(slots=True)
class PageDiff:
    pairs: list[Pair] = field(default_factory=list)
    new: list[Keyed] = field(default_factory=list)
    removed: list[Prior] = field(default_factory=list)

    @property
    def changed(self) -> list[Pair]:
        return [p for p in self.pairs if not p.same]

    @property
    def unchanged(self) -> list[Pair]:
        return [p for p in self.pairs if p.same]


def diff_page(priors: Sequence[Prior], current: Sequence[Keyed],
              threshold: float = DEFAULT_THRESHOLD) -> PageDiff:
    """Pair the page's new figures (from `key_figures`) with its active observations."""
    position = {id(k): i for i, k in enumerate(current)}
    result = PageDiff()
    old_groups: dict[str, list[Prior]] = defaultdict(list)
    for p in sorted(priors, key=_occurrence_order):
        old_groups[p.masked].append(p)
    new_groups: dict[str, list[Keyed]] = defaultdict(list)
    for k in current:
        new_groups[k.masked].append(k)
    left_old: list[Prior] = []
    left_new: list[Keyed] = []
    for masked in sorted(old_groups.keys() | new_groups.keys()):
        lo, ln = _pair_group(old_groups.get(masked, []), new_groups.get(masked, []), result)
        left_old += lo
        left_new += ln
    left_old.sort(key=_occurrence_order)
    left_new.sort(key=lambda k: position[id(k)])
    left_old, left_new = _pair_fuzzy(left_old, left_new, threshold, result)
    result.removed, result.new = _pair_restated(left_old, left_new, result)
    result.pairs.sort(key=lambda p: position[id(p.current)])
    return result


def _occurrence_order(p: Prior) -> tuple[str, int]:
    digest, _, occ = p.page_key.rpartition(":")
    return (digest, int(occ) if occ.isdigit() else 0)


def _pair_group(old: list[Prior], new: list[Keyed], out: PageDiff
                ) -> tuple[list[Prior], list[Keyed]]:
    if not old or not new:
        return old, new
    if len(old) == len(new):
        matched = _match_equal(old, new)
        if len(matched) == len(old):  # same amounts, maybe reordered: no change
            out.pairs += [Pair(o, n, True) for o, n in matched]
            return [], []
        return _pair_positional(old, new, out)
    matched = _match_equal(old, new)
    out.pairs += [Pair(o, n, True) for o, n in matched]
    rest_old = [o for o in old if all(o is not m[0] for m in matched)]
    rest_new = [n for n in new if all(n is not m[1] for m in matched)]
    return _pair_positional(rest_old, rest_new, out)


def _match_equal(old: list[Prior], new: list[Keyed]) -> list[tuple[Prior, Keyed]]:
    """Greedy pairs of equal amounts, preferring the same position."""
    pairs: list[tuple[Prior, Keyed]] = []
    free = list(new)
    for i, o in enumerate(old):
        order = sorted(range(len(free)), key=lambda j: abs(free[j].occurrence - i))
        for j in order:
            if same_amount(o.quantity, free[j].quantity):
                pairs.append((o, free.pop(j)))
                break
    return pairs


def _pair_positional(old: list[Prior], new: list[Keyed], out: PageDiff
                     ) -> tuple[list[Prior], list[Keyed]]:
    left_old, left_new = [], []
    for i in range(max(len(old), len(new))):
        o = old[i] if i < len(old) else None
        n = new[i] if i < len(new) else None
        if o is not None and n is not None and _may_pair(o, n):
            out.pairs.append(Pair(o, n, same_amount(o.quantity, n.quantity)))
            continue
        if o is not None:
            left_old.append(o)
        if n is not None:
            left_new.append(n)
    return left_old, left_new


def _may_pair(o: Prior, n: Keyed) -> bool:
    if not units_compatible(o.quantity, n.quantity):
        return False
    f = n.figure
    return not ((o.entity and f.entity and o.entity != f.entity)
                or (o.metric and f.metric and o.metric != f.metric))


def _pair_fuzzy(old: list[Prior], new: list[Keyed], threshold: float, out: PageDiff
                ) -> tuple[list[Prior], list[Keyed]]:
    candidates = []
    for i, o in enumerate(old):
        for j, n in enumerate(new):
            if not _may_pair(o, n):
                continue
            score = similarity(o.masked, n.masked)
            if score >= threshold:
                same = same_amount(o.quantity, n.quantity)
                candidates.append((-score, not same, i, j))
    candidates.sort()
    used_old: set[int] = set()
    used_new: set[int] = set()
    for _, not_same, i, j in candidates:
        if i in used_old or j in used_new:
            continue
        used_old.add(i)
        used_new.add(j)
        out.pairs.append(Pair(old[i], new[j], not not_same))
    return ([o for i, o in enumerate(old) if i not in used_old],
            [n for j, n in enumerate(new) if j not in used_new])


def _pair_restated(old: list[Prior], new: list[Keyed], out: PageDiff
                   ) -> tuple[list[Prior], list[Keyed]]:
    """Pair an amount restated in its conversion unit, however the sentence was rewritten."""
    free = list(new)
    left_old = []
    for o in old:
        match = next((n for n in free if n.figure.unit != o.quantity.unit and _may_pair(o, n)
                      and same_amount(o.quantity, n.quantity)), None)
        if match is None:
            left_old.append(o)
        else:
            free.remove(match)
            out.pairs.append(Pair(o, match, True))
    return left_old, free


def page_changes(diff: PageDiff, *, source: str, url: str, at: datetime) -> list[Change]:
    """`changed`, `new` and `removed` changes, in document order (removed last)."""
    out = []
    for pair in diff.changed:
        out.append(_change("changed", pair.current, source, url, at,
                           old=pair.prior.quantity.value))
    for k in diff.new:
        out.append(_change("new", k, source, url, at))
    for p in diff.removed:
        out.append(Change(kind="removed", source=source, url=url, unit=p.quantity.unit,
                          new_value=None, old_value=p.quantity.value, sentence=p.sentence,
                          detected_at=at, entity=p.entity, metric=p.metric, period=p.period,
                          page_key=p.page_key))
    return out


def _change(kind: str, k: Keyed, source: str, url: str, at: datetime, *,
            old: Decimal | None = None, other_source: str | None = None) -> Change:
    f = k.figure
    return Change(kind=kind, source=source, url=url, unit=f.unit, new_value=f.value,
                  old_value=old, sentence=f.sentence, detected_at=at, entity=f.entity,
                  metric=f.metric, period=f.period, other_source=other_source,
                  page_key=k.page_key)


@dataclass(frozen=True, slots=True)
class SeriesLatest:
    """A series' latest value and who stated it."""

    quantity: Quantity
    source: str


def first_per_series(candidates: Sequence[Keyed]) -> dict[SeriesKey, Keyed]:
    """The first (headline) figure of each series among `candidates`, in document order.

    A page stating two values for one series ("from $29B to $86B" with no
    period) would otherwise flip the series back and forth within one fetch.
    """
    out: dict[SeriesKey, Keyed] = {}
    for k in candidates:
        key = k.series
        if key is not None and key not in out:
            out[key] = k
    return out


def series_updates(candidates: Mapping[SeriesKey, Keyed], latest: Mapping[SeriesKey, SeriesLatest],
                   *, source: str, url: str, at: datetime
                   ) -> tuple[list[Change], dict[SeriesKey, Keyed]]:
    """`series_update` changes, and the figures that become their series' latest value.

    A series seen for the first time takes the figure as its latest, without a
    change.  A value that cannot be compared with the latest (another unit, no
    conversion) leaves the series alone.
    """
    changes, new_latest = [], {}
    for key, k in candidates.items():
        prev = latest.get(key)
        if prev is None:
            new_latest[key] = k
            continue
        pair = in_common_unit(k.quantity, prev.quantity)
        if pair is None or same_amount(k.quantity, prev.quantity):
            continue
        changes.append(_change("series_update", k, source, url, at, old=pair[1],
                               other_source=prev.source if prev.source != source else None))
        new_latest[key] = k
    return changes, new_latest


@dataclass(frozen=True, slots=True)
class Statement:
    """What another source currently states for a series (newest first in the input)."""

    source: str
    quantity: Quantity


def conflicts(candidates: Mapping[SeriesKey, Keyed],
              others: Mapping[SeriesKey, Sequence[Statement]], *, source: str, url: str,
              at: datetime, previous: Mapping[SeriesKey, Quantity] | None = None,
              tolerance: Decimal = DEFAULT_CONFLICT_TOLERANCE) -> list[Change]:
    """One `conflict` per (series, other source) that newly disagrees by more than `tolerance`.

    - Only series with a period: "NVIDIA's market value is $1.79 trillion" in
      February and "$3.39 trillion" in October are a move, not a dispute;
      "232 AI deals in 2023" against "68 AI deals in 2023" is.
    - If the other source states several values and one agrees, no conflict.
    - `previous` holds, for a changed figure, the value it replaced: a source
      that already disagreed with that value is not reported again.
    The change names the other source's newest comparable value as `old_value`.
    """
    out = []
    for key, k in candidates.items():
        if key[2] is None:
            continue
        by_source = _disagreeing(k.quantity, others.get(key, ()), source, tolerance)
        before = (previous or {}).get(key)
        known = (set() if before is None else
                 set(_disagreeing(before, others.get(key, ()), source, tolerance)))
        out += [_change("conflict", k, source, url, at, old=value, other_source=other)
                for other, value in by_source.items() if other not in known]
    return out


def _disagreeing(q: Quantity, statements: Sequence[Statement], source: str,
                 tolerance: Decimal) -> dict[str, Decimal]:
    """Other sources none of whose comparable statements agree with `q`, with their newest."""
    newest: dict[str, Decimal] = {}
    agree: set[str] = set()
    for st in statements:
        pair = None if st.source == source else in_common_unit(q, st.quantity)
        if pair is None:
            continue
        if relative_difference(*pair) <= tolerance:
            agree.add(st.source)
        newest.setdefault(st.source, pair[1])
    return {s: v for s, v in newest.items() if s not in agree}


def confirmed_cross_source(change: Change, others: Sequence[Statement], *,
                           tolerance: Decimal = DEFAULT_CONFLICT_TOLERANCE) -> list[Change]:
    """`series_update` and `conflict` for a change confirmed after several fetches.

    The live `series_updates`/`conflicts` run on a value's first sighting; a rule
    that waits for `confirm_fetches` gets these instead, when the value is
    confirmed: a `series_update` against the page's own confirmed old value (or,
    for a `new` figure, the newest comparable statement of another source), and
    one `conflict` per other source that disagrees now and did not already
    disagree with the old value.  `others` are the other sources' current
    statements for the series, newest first.
    """
    if change.new_value is None or change.kind not in ("new", "changed", "reverted"):
        return []
    if series_key(change.entity, change.metric, change.period) is None:
        return []
    mine = Quantity(change.new_value, change.unit)
    out: list[Change] = []
    if change.old_value is not None:
        out.append(replace(change, kind="series_update"))
    else:
        newest = next(((st.source, pair[1]) for st in others if st.source != change.source
                       and (pair := in_common_unit(mine, st.quantity)) is not None), None)
        if newest is not None and newest[1] != mine.value:
            out.append(replace(change, kind="series_update", old_value=newest[1],
                               other_source=newest[0]))
    if change.period is not None:
        now = _disagreeing(mine, others, change.source, tolerance)
        before = (set() if change.old_value is None else set(_disagreeing(
            Quantity(change.old_value, change.unit), others, change.source, tolerance)))
        out += [replace(change, kind="conflict", old_value=value, other_source=other)
                for other, value in now.items() if other not in before]
    return out
