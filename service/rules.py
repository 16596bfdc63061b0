"""Alert rules: which changes go to which channels, and in what shape.

A change matches a rule when every condition the rule sets holds:

- `kinds`: the change's kind is listed;
- `sources`: the change's source (or, for a conflict, the other source) is listed;
- `entities`, `metrics`: the change's entity / metric is listed;
- `min_change`: relative move |new-old| / |old| is at least this (changes with
  an old and a new value only; `new`/`removed` are not "small moves" and pass);
- `min_abs_change`: |new-old| is at least this (same scope as `min_change`);
- `above` / `below`: the new value is strictly above / below (no new value → no match).

A rule with `digest = true` batches a cycle's matching changes into one
`figure.digest` alert per channel, data `{"changes": [payload, ...]}`; other
rules make one `figure.<kind>` alert per (change, channel), data
`Change.to_payload()`.  Two rules sending one change to one channel make one
alert, not two.

On a page's first fetch (its baseline) only rules with `baseline_alerts = true`
are considered.

Not evaluated yet (a later issue): `confirm_fetches`, `confirm_sources`,
`new_high`, `new_low`, and the `reverted` kind.  `deferred_conditions` names
them so the caller can warn once instead of silently pretending.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal

from .alerts import Change, PendingAlert
from .settings import RuleConfig

IdFactory = Callable[[], str]


def new_alert_id() -> str:
    """A fresh idempotency key (UUID4 text)."""
    return str(uuid.uuid4())


def deferred_conditions(rule: RuleConfig) -> list[str]:
    """The conditions `rule` sets that this version does not evaluate yet."""
    # TODO(issue: confirmations & extremes): confirm_fetches / confirm_sources need
    # per-series pending-confirmation state in the store; new_high / new_low need the
    # series' historic max/min; `reverted` needs confirmed-change tracking.  Hook them
    # into `matches` (and the store's ingest) when that state exists.
    out = []
    if rule.confirm_fetches > 1:
        out.append("confirm_fetches")
    if rule.confirm_sources > 1:
        out.append("confirm_sources")
    if rule.new_high:
        out.append("new_high")
    if rule.new_low:
        out.append("new_low")
    return out


def matches(rule: RuleConfig, change: Change) -> bool:
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
    return _moves_enough(rule, change.old_value, change.new_value) and _in_band(rule, change)


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


def _in_band(rule: RuleConfig, change: Change) -> bool:
    if rule.above is None and rule.below is None:
        return True
    if change.new_value is None:
        return False
    if rule.above is not None and not change.new_value > Decimal(str(rule.above)):
        return False
    return rule.below is None or change.new_value < Decimal(str(rule.below))


def build_alerts(rules: Sequence[RuleConfig], changes: Sequence[Change], *, now: datetime,
                 baseline: bool = False, new_id: IdFactory = new_alert_id
                 ) -> list[PendingAlert]:
    """The outbox rows for one ingest cycle's changes (see module docstring)."""
    # channel -> changes, in order, deduplicated (dicts keep insertion order)
    single: dict[str, dict[Change, None]] = {}
    digest: dict[str, dict[Change, None]] = {}
    for rule in rules:
        if baseline and not rule.baseline_alerts:
            continue
        hits = [c for c in changes if matches(rule, c)]
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
