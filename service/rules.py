"""Alert rules: which changes go to which channels, and in what shape.

A change matches a rule when every condition the rule sets holds:

- `kinds`: the change's kind is listed;
- `sources`: the change's source (or, for a conflict, the other source) is listed;
- `entities`, `metrics`: the change's entity / metric is listed;
- `min_change`: relative move |new-old| / |old| is at least this (changes with
  an old and a new value only; `new`/`removed` are not "small moves" and pass);
- `min_abs_change`: |new-old| is at least this (same scope as `min_change`);
- `above` / `below`: the new value crosses the threshold: it is strictly above
  (below) it and the old value was not (a change without an old value, e.g.
  `new`, crosses when its value is beyond the threshold).  With both set, a
  crossing of either matches ("alert when it goes over 100 or under 50").
  No new value (`removed`) never crosses;
- `new_high` / `new_low`: the new value is strictly above (below) every value
  its series (entity, metric, period), in the same unit, had in the stored
  history from any source before this value first appeared; a series without
  history has no high to beat.  With both set, either matches;
- `confirm_sources = N` (N > 1): the change's new value is the one that makes
  N sources state the same value (within 1 %) for its series; the change
  that completes the agreement alerts, later agreeing sources do not.  A
  change without a series key or without a new value cannot be corroborated;
- `confirm_fetches = N` is not a condition on one change but selects which
  changes the rule sees: those confirmed by N consecutive fetches (see
  `service.confirm`, evaluated by the store in the ingest transaction).

`new_high`, `new_low` and `confirm_sources` need the stored history: the
store passes a `SeriesFacts`; without one those rules match nothing rather
than pretend.

A rule with `digest = true` batches a cycle's matching changes into one
`figure.digest` alert per channel, data `{"changes": [payload, ...]}`; other
rules make one `figure.<kind>` alert per (change, channel), data
`Change.to_payload()`.  Two rules sending one change to one channel make one
alert, not two.

On a page's first fetch (its baseline) only rules with `baseline_alerts = true`
are considered.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from .alerts import Change, PendingAlert
from .settings import RuleConfig

IdFactory = Callable[[], str]


def new_alert_id() -> str:
    """A fresh idempotency key (UUID4 text)."""
    return str(uuid.uuid4())


class SeriesFacts(Protocol):
    """What some rule conditions need to know about a change's series beyond the change."""

    def extremes(self, change: Change) -> tuple[Decimal, Decimal] | None:
        """(lowest, highest) earlier value of the change's series in its unit, or None."""
        ...

    def agreeing_sources(self, change: Change) -> int:
        """How many sources now state the change's new value (within 1 %) for its series."""
        ...


def matches(rule: RuleConfig, change: Change, facts: SeriesFacts | None = None) -> bool:
    """Whether `change` passes every condition `rule` sets (see module docstring)."""
    if change.kind not in rule.kinds:
        return False
    if rule.sources is not None and not ({change.source, change.other_source}
                                         & set(rule.sources)):
        return False
    if rule.entities is not None and change.entity not in rule.entities:
        return False
    if rule.metrics is not None and change.metric not in rule.metrics:
        return False
    if not (_moves_enough(rule, change.old_value, change.new_value) and _crosses(rule, change)):
        return False
    if (rule.new_high or rule.new_low) and not _extreme(rule, change, facts):
        return False
    return rule.confirm_sources <= 1 or _corroborated(rule, change, facts)


def _moves_enough(rule: RuleConfig, old: Decimal | None, new: Decimal | None) -> bool:
    if old is None or new is None:
        return True
    delta = abs(new - old)
    if rule.min_abs_change is not None and delta < Decimal(str(rule.min_abs_change)):
        return False
    if rule.min_change is not None:
        if old == 0:
            return delta > 0 or rule.min_change == 0
        if delta / abs(old) < Decimal(str(rule.min_change)):
            return False
    return True


def _crosses(rule: RuleConfig, change: Change) -> bool:
    if rule.above is None and rule.below is None:
        return True
    new, old = change.new_value, change.old_value
    if new is None:
        return False
    if rule.above is not None:
        above = Decimal(str(rule.above))
        if new > above and (old is None or old <= above):
            return True
    if rule.below is not None:
        below = Decimal(str(rule.below))
        if new < below and (old is None or old >= below):
            return True
    return False


def _extreme(rule: RuleConfig, change: Change, facts: SeriesFacts | None) -> bool:
    if facts is None or change.new_value is None or not (change.entity and change.metric):
        return False
    bounds = facts.extremes(change)
    if bounds is None:
        return False
    low, high = bounds
    return bool((rule.new_high and change.new_value > high)
                or (rule.new_low and change.new_value < low))


def _corroborated(rule: RuleConfig, change: Change, facts: SeriesFacts | None) -> bool:
    if facts is None or change.new_value is None or not (change.entity and change.metric):
        return False
    return facts.agreeing_sources(change) == rule.confirm_sources


def build_alerts(rules: Sequence[RuleConfig], changes: Sequence[Change], *, now: datetime,
                 baseline: bool = False, new_id: IdFactory = new_alert_id,
                 confirmed: Mapping[int, Sequence[Change]] | None = None,
                 facts: SeriesFacts | None = None) -> list[PendingAlert]:
    """The outbox rows for one ingest cycle's changes (see module docstring).

    `confirmed` maps a `confirm_fetches` level above 1 to the changes confirmed
    at that level this cycle; a rule with `confirm_fetches = N > 1` sees only
    `confirmed[N]` when it is given, else (callers without confirmation state)
    the plain `changes`.
    """
    # channel -> changes, in order, deduplicated (dicts keep insertion order)
    single: dict[str, dict[Change, None]] = {}
    digest: dict[str, dict[Change, None]] = {}
    for rule in rules:
        if baseline and not rule.baseline_alerts:
            continue
        seen = changes
        if confirmed is not None and rule.confirm_fetches > 1:
            seen = confirmed.get(rule.confirm_fetches, ())
        hits = [c for c in seen if matches(rule, c, facts)]
        if not hits:
            continue
        target = digest if rule.digest else single
        for channel in rule.channels:
            target.setdefault(channel, {}).update(dict.fromkeys(hits))
    alerts = [
        PendingAlert(id=new_id(), channel=channel, type=f"figure.{c.kind}",
                     data=c.to_payload(), created_at=now)
        for channel, bucket in single.items() for c in bucket
    ]
    alerts += [
        PendingAlert(id=new_id(), channel=channel, type="figure.digest",
                     data={"changes": [c.to_payload() for c in bucket]}, created_at=now)
        for channel, bucket in digest.items()
    ]
    return alerts
