"""Alert rules: matching conditions, per-channel alerts, digests, baselines."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from service.alerts import Change
from service.rules import build_alerts, matches
from service.settings import RuleConfig
from tests.backends import at


def change(kind: str = "changed", old: str | None = "100", new: str | None = "110",
           **kw: Any) -> Change:
    fields: dict[str, Any] = {"source": "forbes", "url": "https://f.example/", "unit": "USD",
                              "sentence": "NVIDIA is worth $110.", "entity": "NVIDIA",
                              "metric": "market_cap", "period": "2024"}
    fields.update(kw)
    return Change(kind=kind, old_value=Decimal(old) if old else None,
                  new_value=Decimal(new) if new else None, detected_at=at(0), **fields)


def rule(**kw: Any) -> RuleConfig:
    return RuleConfig(channels=kw.pop("channels", ("hook",)), **kw)


@pytest.mark.parametrize(("r", "c", "expected"), [
    (rule(), change(), True),
    (rule(), change("series_update"), False),  # not in the default kinds
    (rule(kinds=("series_update",)), change("series_update"), True),
    (rule(sources=("forbes",)), change(), True),
    (rule(sources=("tmtpost",)), change(), False),
    (rule(sources=("tmtpost",)), change("conflict", other_source="tmtpost"), True),
    (rule(entities=("NVIDIA",)), change(), True),
    (rule(entities=("OpenAI",)), change(), False),
    (rule(metrics=("market_cap",)), change(), True),
    (rule(metrics=("revenue",)), change(), False),
    (rule(min_change=0.1), change(old="100", new="110"), True),
    (rule(min_change=0.1), change(old="100", new="109"), False),
    (rule(min_change=0.1), change(old="100", new="90"), True),
    (rule(min_change=0.1), change(old="0", new="1"), True),
    (rule(min_change=0.1), change("new", old=None), True),  # new/removed are not "moves"
    (rule(min_abs_change=10), change(old="100", new="109.99"), False),
    (rule(min_abs_change=10), change(old="100", new="110"), True),
    (rule(above=105), change(), True),
    (rule(above=110), change(), False),
    # above/below: the new value crosses the threshold (the old one was not beyond it)
    (rule(below=120), change(), False),  # 100 -> 110 was below 120 already
    (rule(below=105), change(old="110", new="100"), True),
    (rule(above=100), change(old="101", new="120"), False),  # already above
    (rule(above=100), change("new", old=None, new="120"), True),
    (rule(above=100, below=105), change(), True),  # either crossing matches
    (rule(above=200, below=50), change(), False),
    (rule(above=100), change("removed", new=None), False),
])
def test_matches(r: RuleConfig, c: Change, expected: bool) -> None:
    assert matches(r, c) is expected


def test_one_alert_per_change_and_channel_deduplicated_across_rules() -> None:
    ids = iter(f"id-{i}" for i in range(100))
    changes = [change(), change("new", old=None, new="5", entity="OpenAI")]
    alerts = build_alerts([rule(channels=("hook", "mail")), rule(channels=("hook",))], changes,
                          now=at(1), new_id=lambda: next(ids))
    assert sorted((a.channel, a.type) for a in alerts) == [
        ("hook", "figure.changed"), ("hook", "figure.new"),
        ("mail", "figure.changed"), ("mail", "figure.new")]
    assert len({a.id for a in alerts}) == 4
    first = next(a for a in alerts if a.channel == "hook" and a.type == "figure.changed")
    assert first.data == changes[0].to_payload() and first.created_at == at(1)


def test_digest_is_one_alert_per_channel_per_cycle() -> None:
    changes = [change(), change(new="120", entity="AMD"), change("conflict", other_source="x")]
    alerts = build_alerts([rule(channels=("mail",), digest=True, kinds=("changed",)),
                           rule(channels=("hook",))], changes, now=at(1))
    digests = [a for a in alerts if a.type == "figure.digest"]
    assert [(a.channel, len(a.data["changes"])) for a in digests] == [("mail", 2)]
    assert digests[0].data["changes"][1]["entity"] == "AMD"
    assert sorted(a.type for a in alerts if a.channel == "hook") == [
        "figure.changed", "figure.changed", "figure.conflict"]


def test_no_alerts_without_matches_and_baseline_needs_opt_in() -> None:
    assert build_alerts([rule(entities=("OpenAI",))], [change()], now=at(0)) == []
    new = [change("new", old=None)]
    assert build_alerts([rule()], new, now=at(0), baseline=True) == []
    (a,) = build_alerts([rule(), rule(channels=("b",), baseline_alerts=True)], new, now=at(0),
                        baseline=True)
    assert a.channel == "b"


def test_history_conditions_without_facts_match_nothing() -> None:
    for r in (rule(new_high=True), rule(new_low=True), rule(confirm_sources=2)):
        assert not matches(r, change())
