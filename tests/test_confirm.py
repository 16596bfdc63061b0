"""Confirmation on every backend: confirm_fetches, reverts, removals, confirm_sources, extremes.

`store` here is one migrated database per backend and module, emptied before
each test (migrating a fresh PostgreSQL schema per test costs more than the
tests themselves); tests/test_health.py and tests/test_rules_replay.py use it too.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from parsers.figures.model import Figure
from service.db.models import Base
from service.settings import RuleConfig
from service.store import IngestResult, Store
from tests import backends
from tests.backends import at, fig


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def migrated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[Store]:
    """One migrated store per backend for the whole module."""
    if request.param == "sqlite":
        s = Store(backends.sqlite_url(Path(tmp_path_factory.mktemp("db"))))
        s.migrate()
        yield s
        s.close()
        return
    with backends.pg_schema_url() as url:
        s = Store(url)
        s.migrate()
        try:
            yield s
        finally:
            s.close()


@pytest.fixture
def store(migrated: Store) -> Store:
    """The module's store, emptied: every table, children first."""
    with migrated.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    return migrated


URL = "https://a.example/openai"
NOW = RuleConfig(name="now", channels=("now",), kinds=("changed", "new", "removed", "reverted"))
TWO = RuleConfig(name="two", channels=("two",), kinds=("changed", "new", "removed", "reverted",
                                                         "conflict"),
                 confirm_fetches=2)
RULES = (NOW, TWO)
OPENAI = "OpenAI was valued at ${} billion."
OTHER = fig("232", "China recorded 232 AI deals in 2023.", unit="count", entity="China",
            metric="deal_count", period="2023", start=100)


def page(billions: int | None) -> list[Figure]:
    figures = [OTHER]
    if billions is not None:
        figures.insert(0, fig(billions * 10**9, OPENAI.format(billions), entity="OpenAI",
                              metric="valuation", period="2024"))
    return figures


def ingest(store: Store, figures: Sequence[Figure], hours: float, *, source: str = "a",
           url: str = URL, rules: Sequence[RuleConfig] = RULES) -> IngestResult:
    body = repr([f.sentence for f in figures]).encode()
    return store.ingest(source=source, url=url, at=at(hours), figures=figures, body=body,
                        content_hash=f"sha-{hash(body)}", etag=None, last_modified=None,
                        status=200, rules=rules, keep_versions=3)


def sent(result: IngestResult, channel: str) -> list[tuple[str, str | None, str | None]]:
    return [(a.type, a.data.get("old_value"), a.data.get("new_value"))
            for a in result.alerts if a.channel == channel]


def b(n: int) -> str:
    return str(n * 10**9)


def test_a_b_a_before_confirmation_sends_nothing(store: Store) -> None:
    ingest(store, page(86), 0)
    r1 = ingest(store, page(157), 1)
    r2 = ingest(store, page(86), 2)
    assert sent(r1, "two") == [] and sent(r2, "two") == []
    # The rule without confirmation saw the flap: a change and its revert.
    assert sent(r1, "now") == [("figure.changed", b(86), b(157))]
    assert sent(r2, "now") == [("figure.reverted", b(157), b(86))]
    page_kinds = [c.kind for c in store.changes_since(at(0)) if c.kind != "series_update"]
    assert page_kinds == ["changed", "reverted"]


def test_a_b_b_sends_one_changed_when_confirmed(store: Store) -> None:
    ingest(store, page(86), 0)
    assert sent(ingest(store, page(157), 1), "two") == []
    r = ingest(store, page(157), 2)
    assert sent(r, "two") == [("figure.changed", b(86), b(157))]
    (alert,) = [a for a in r.alerts if a.channel == "two"]
    assert alert.data["detected_at"] == at(2).isoformat()
    assert sent(ingest(store, page(157), 3), "two") == []  # confirmed once, alerted once


def test_a_304_counts_as_a_sighting(store: Store) -> None:
    ingest(store, page(86), 0)
    ingest(store, page(157), 1)
    r = store.record_unchanged(source="a", url=URL, at=at(2), status=304, rules=RULES)
    assert sent(r, "two") == [("figure.changed", b(86), b(157))]
    assert [a.channel for a in store.alerts()].count("two") == 1


def test_confirmed_change_that_reverts_sends_one_reverted(store: Store) -> None:
    ingest(store, page(86), 0)
    ingest(store, page(157), 1)
    assert sent(ingest(store, page(157), 2), "two") == [("figure.changed", b(86), b(157))]
    assert sent(ingest(store, page(86), 3), "two") == []
    assert sent(ingest(store, page(86), 4), "two") == [("figure.reverted", b(157), b(86))]
    # The revert closed the episode: moving on again is a plain change.
    ingest(store, page(300), 5)
    assert sent(ingest(store, page(300), 6), "two") == [("figure.changed", b(86), b(300))]
    two = [a.type for a in store.alerts() if a.channel == "two"]
    assert sorted(two) == ["figure.changed", "figure.changed", "figure.reverted"]


def test_removed_only_after_missing_for_the_confirmation_count(store: Store) -> None:
    ingest(store, page(86), 0)
    r1 = ingest(store, page(None), 1)
    assert sent(r1, "now") == [("figure.removed", b(86), None)]
    assert sent(r1, "two") == []
    r2 = ingest(store, page(86), 2)  # back before confirmation: nothing for "two"
    assert sent(r2, "two") == [] and sent(r2, "now") == [("figure.new", None, b(86))]
    ingest(store, page(None), 3)
    assert sent(ingest(store, page(None), 4), "two") == [("figure.removed", b(86), None)]
    assert sent(ingest(store, page(None), 5), "two") == []


def test_failed_and_suspect_fetches_never_remove_figures(store: Store) -> None:
    ingest(store, page(86), 0)
    store.record_failure(source="a", url=URL, at=at(1), error="timeout")
    store.record_failure(source="a", url=URL, at=at(2), error="empty body",
                         outcome="parse_suspect")
    store.record_failure(source="a", url=URL, at=at(3), error="timeout")
    r = ingest(store, page(86), 4)
    assert r.changes == [] and r.alerts == []
    assert {f.entity for f in store.figures("a")} == {"OpenAI", "China"}


def test_conflicts_wait_for_confirmation_too(store: Store) -> None:
    ingest(store, page(86), 0, source="b", url="https://b.example/")
    ingest(store, page(86), 0)
    r1 = ingest(store, page(157), 1)
    assert "conflict" in [c.kind for c in r1.changes]  # found at once...
    assert sent(r1, "two") == []  # ...but not alerted by a rule that waits
    assert sent(ingest(store, page(86), 2), "two") == []  # flapped back: no conflict either
    ingest(store, page(157), 3)
    r4 = ingest(store, page(157), 4)
    assert sorted(sent(r4, "two")) == [("figure.changed", b(86), b(157)),
                                       ("figure.conflict", b(86), b(157))]


def test_tracks_appear_lazily_for_pages_stored_before_them(store: Store) -> None:
    ingest(store, page(86), 0)
    with store.engine.begin() as conn:  # as after upgrading a database from revision 0001
        conn.execute(sa.text("DELETE FROM figure_tracks"))
    ingest(store, page(157), 1)
    assert sent(ingest(store, page(157), 2), "two") == [("figure.changed", b(86), b(157))]


def test_confirm_sources_alerts_when_the_nth_source_agrees(store: Store) -> None:
    rule = RuleConfig(channels=("agree",), kinds=("changed", "new"), confirm_sources=2)
    for src in ("a", "b", "c"):
        ingest(store, page(86), 0, source=src, url=f"https://{src}.example/", rules=(rule,))
    r = ingest(store, page(157), 1, source="a", url="https://a.example/", rules=(rule,))
    assert r.alerts == []  # one source says 157B: not corroborated
    r = ingest(store, page(157), 2, source="b", url="https://b.example/", rules=(rule,))
    assert sent(r, "agree") == [("figure.changed", b(86), b(157))]
    assert r.alerts[0].data["source"] == "b"
    r = ingest(store, page(157), 3, source="c", url="https://c.example/", rules=(rule,))
    assert r.alerts == []  # the third agreeing source is not news


def test_new_high_and_new_low_over_the_series_history(store: Store) -> None:
    high = RuleConfig(channels=("high",), kinds=("changed",), new_high=True)
    low = RuleConfig(channels=("low",), kinds=("changed",), new_low=True)
    rules = (high, low)
    ingest(store, page(29), 0, rules=rules)
    ingest(store, page(86), 1, source="b", url="https://b.example/", rules=rules)
    r = ingest(store, page(80), 2, rules=rules)  # above 29, below b's 86: neither
    assert r.alerts == [] and "changed" in [c.kind for c in r.changes]
    r = ingest(store, page(157), 3, rules=rules)
    assert sent(r, "high") == [("figure.changed", b(80), b(157))] and sent(r, "low") == []
    r = ingest(store, page(20), 4, rules=rules)
    assert sent(r, "low") == [("figure.changed", b(157), b(20))] and sent(r, "high") == []
    r = ingest(store, page(157), 5, rules=rules)  # equal to the high, not above it
    assert r.alerts == []


def test_above_crossing_on_the_store(store: Store) -> None:
    rule = RuleConfig(channels=("cross",), kinds=("changed",), above=100e9)
    ingest(store, page(86), 0, rules=(rule,))
    assert sent(ingest(store, page(157), 1, rules=(rule,)), "cross") == [
        ("figure.changed", b(86), b(157))]
    assert ingest(store, page(300), 2, rules=(rule,)).alerts == []  # still above: no crossing
    assert Decimal(b(300)) > Decimal("100e9")


def test_step_pure() -> None:
    from service.confirm import Seen, Track, step
    from service.diff import Quantity

    usd = Seen(Quantity(Decimal(2), "USD", conv_value=Decimal("14.25"), conv_unit="CNY"), "s")
    cny = Seen(Quantity(Decimal("14.25"), "CNY", conv_value=Decimal(2), conv_unit="USD"), "s")
    track = Track("k:0", 2, usd)
    assert step(track, cny, at=at(1), source="a", url=URL) == (None, None)  # restated
    three = Seen(Quantity(Decimal(3), "USD"), "s")
    assert step(track, three, at=at(2), source="a", url=URL) == (None, None)
    assert (track.streak, track.pending_since) == (1, at(2))
    change, since = step(track, three, at=at(3), source="a", url=URL)
    assert change is not None and change.kind == "changed" and since == at(2)
    assert (change.old_value, change.new_value, change.detected_at) == (
        Decimal(2), Decimal(3), at(3))
    assert track.before == Decimal(2) and track.streak == 0
    step(track, None, at=at(4), source="a", url=URL)
    gone, _ = step(track, None, at=at(5), source="a", url=URL)
    assert gone is not None and gone.kind == "removed" and gone.new_value is None
    assert track.dead
