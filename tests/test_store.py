"""The store on every backend (SQLite file, PostgreSQL): ingest, history, diff, rules, health."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from parsers.figures.model import Figure
from service.errors import StoreError
from service.settings import RuleConfig, SourceConfig
from service.store import IngestResult, Store
from tests import backends
from tests.backends import at, fig

db_url = backends.db_url
store = backends.store

URL_A = "https://a.example/nvidia"
URL_B = "https://b.example/nvidia"
HOOK = RuleConfig(channels=("hook",))


def ingest(store: Store, figures: Sequence[Figure], *, hours: float, source: str = "a",
           url: str = URL_A, rules: Sequence[RuleConfig] = (HOOK,), body: bytes | None = None,
           keep_versions: int = 3) -> IngestResult:
    body = body if body is not None else repr([f.sentence for f in figures]).encode()
    return store.ingest(source=source, url=url, at=at(hours), figures=figures, body=body,
                        content_hash=f"sha-{hash(body)}", etag='"v1"', last_modified=None,
                        status=200, rules=rules, keep_versions=keep_versions)


PAGE = [
    fig("3390000000000", "NVIDIA's market value reached $3.39 trillion in 2024.",
        entity="NVIDIA", metric="market_cap", period="2024", start=0),
    fig("157000000000", "OpenAI was valued at $157 billion.", entity="OpenAI",
        metric="valuation", start=60),
    fig("232", "China recorded 232 AI deals in 2023.", unit="count", entity="China",
        metric="deal_count", period="2023", start=100),
]


def test_baseline_stores_figures_without_changes_or_alerts(store: Store) -> None:
    result = ingest(store, PAGE, hours=0)
    assert result.baseline
    assert result.changes == [] and result.alerts == []
    assert len(store.figures("a")) == 3
    assert store.changes_since(at(-1)) == []
    assert store.alerts() == []
    assert store.known_page("a", URL_A) is not None


def test_baseline_alerts_only_for_rules_that_ask(store: Store) -> None:
    loud = RuleConfig(channels=("loud",), kinds=("new",), baseline_alerts=True)
    result = ingest(store, PAGE, hours=0, rules=(HOOK, loud))
    assert result.baseline
    assert [c.kind for c in result.changes] == ["new", "new", "new"]
    assert {a.channel for a in result.alerts} == {"loud"}
    assert len(result.alerts) == 3


def test_same_figures_again_only_move_last_seen(store: Store) -> None:
    ingest(store, PAGE, hours=0)
    before = {f.id: f for f in store.figures(active=None)}
    result = ingest(store, PAGE, hours=1)
    assert not result.baseline and result.changes == [] and result.alerts == []
    after = {f.id: f for f in store.figures(active=None)}
    assert after.keys() == before.keys()  # no new rows: history grows with changes only
    for fid, f in after.items():
        assert f.first_seen_at == at(0) and f.last_seen_at == at(1)
        assert f.value == before[fid].value


def test_one_changed_value_makes_one_change_and_one_alert_per_channel(store: Store) -> None:
    rules = (RuleConfig(channels=("hook", "mail")), RuleConfig(channels=("hook",)),
             RuleConfig(channels=("other",), metrics=("revenue",)))
    ingest(store, PAGE, hours=0, rules=rules)
    changed = [*PAGE]
    changed[1] = fig("86000000000", "OpenAI was valued at $86 billion.", entity="OpenAI",
                     metric="valuation", start=60)
    result = ingest(store, changed, hours=2, rules=rules)
    kinds = [c.kind for c in result.changes]
    assert kinds.count("changed") == 1
    (change,) = [c for c in result.changes if c.kind == "changed"]
    assert (change.old_value, change.new_value) == (Decimal("157000000000"),
                                                    Decimal("86000000000"))
    assert change.entity == "OpenAI" and change.metric == "valuation"
    alerts = [a for a in result.alerts if a.type == "figure.changed"]
    assert sorted(a.channel for a in alerts) == ["hook", "mail"]
    assert alerts[0].data["old_value"] == "157000000000"
    assert alerts[0].data["new_value"] == "86000000000"
    assert alerts[0].data["detected_at"] == at(2).isoformat()
    assert len({a.id for a in result.alerts}) == len(result.alerts)
    stored = {(a.id, a.channel, a.type) for a in store.alerts(state="pending")}
    assert stored == {(a.id, a.channel, a.type) for a in result.alerts}
    assert [c.kind for c in store.changes_since(at(1))] == kinds
    history = store.history("OpenAI", "valuation")
    assert [(h.value, h.active) for h in history] == [(Decimal("157000000000"), False),
                                                      (Decimal("86000000000"), True)]


def test_reordered_and_rewrapped_page_makes_no_change(store: Store) -> None:
    ingest(store, PAGE, hours=0)
    rewrapped = [
        fig("232", "China recorded 232\n   AI deals in 2023.", unit="count", entity="China",
            metric="deal_count", period="2023", start=0),
        fig("157000000000", "OpenAI  was valued\nat $157 billion.", entity="OpenAI",
            metric="valuation", start=50),
        fig("3390000000000", "NVIDIA's market value reached\n$3.39 trillion in 2024.",
            entity="NVIDIA", metric="market_cap", period="2024", start=90),
    ]
    result = ingest(store, rewrapped, hours=1)
    assert result.changes == [] and result.alerts == []
    assert len(store.figures(active=None)) == 3


def test_new_and_removed(store: Store) -> None:
    ingest(store, PAGE, hours=0)
    edited = [PAGE[0], PAGE[2],
              fig("3400000000", "Anthropic raised $3.4 billion in its latest round.",
                  entity="Anthropic", metric="funding", start=150)]
    result = ingest(store, edited, hours=1, rules=(RuleConfig(channels=("hook",),
                                                              kinds=("new", "removed")),))
    by_kind = {c.kind: c for c in result.changes}
    assert sorted(by_kind) == ["new", "removed"]
    assert by_kind["new"].new_value == Decimal("3400000000") and by_kind["new"].old_value is None
    assert by_kind["removed"].old_value == Decimal("157000000000")
    assert sorted(a.type for a in result.alerts) == ["figure.new", "figure.removed"]
    assert {f.entity for f in store.figures("a")} == {"NVIDIA", "China", "Anthropic"}


def test_two_sources_disagreeing_make_one_conflict(store: Store) -> None:
    rules = (RuleConfig(channels=("hook",), kinds=("conflict",)),)
    ingest(store, PAGE, hours=0, rules=rules)
    ingest(store, [PAGE[0]], hours=1, source="b", url=URL_B, rules=rules)  # agrees
    lower = fig("1790000000000", "NVIDIA's market value reached $1.79 trillion in 2024.",
                entity="NVIDIA", metric="market_cap", period="2024")
    result = ingest(store, [lower], hours=2, source="b", url=URL_B, rules=rules)
    conflicts = [c for c in result.changes if c.kind == "conflict"]
    assert len(conflicts) == 1
    (c,) = conflicts
    assert (c.source, c.other_source) == ("b", "a")
    assert (c.old_value, c.new_value) == (Decimal("3390000000000"), Decimal("1790000000000"))
    assert [(a.type, a.data["other_source"]) for a in result.alerts] == [("figure.conflict", "a")]
    # Within 1 %: sources agree, no conflict.
    close = fig("3400000000000", "NVIDIA's market value reached $3.4 trillion in 2024.",
                entity="NVIDIA", metric="market_cap", period="2024")
    result = ingest(store, [close], hours=3, source="b", url=URL_B, rules=rules)
    assert [c.kind for c in result.changes] == ["changed", "series_update"]


def test_a_known_disagreement_is_not_reported_again(store: Store) -> None:
    rules = (RuleConfig(channels=("hook",), kinds=("conflict", "changed")),)
    ingest(store, PAGE, hours=0, rules=rules)
    deals = "China recorded {} AI deals in 2023."
    ingest(store, [fig(68, deals.format(68), unit="count", entity="China", metric="deal_count",
                       period="2023")], hours=1, source="b", url=URL_B, rules=rules)
    result = ingest(store, [fig(70, deals.format(70), unit="count", entity="China",
                                metric="deal_count", period="2023")],
                    hours=2, source="b", url=URL_B, rules=rules)
    assert [c.kind for c in result.changes] == ["changed", "series_update"]
    assert [a.type for a in result.alerts] == ["figure.changed"]


def test_new_source_baseline_conflict_with_baseline_alerts(store: Store) -> None:
    ingest(store, PAGE, hours=0)
    rules = (RuleConfig(channels=("hook",), kinds=("conflict",), baseline_alerts=True),)
    lower = fig("68", "China recorded 68 AI deals in 2023.", unit="count", entity="China",
                metric="deal_count", period="2023")
    result = ingest(store, [lower], hours=1, source="b", url=URL_B, rules=rules)
    assert result.baseline
    assert [(a.type, a.data["new_value"], a.data["old_value"]) for a in result.alerts] == [
        ("figure.conflict", "68", "232")]


def test_series_update_across_sources(store: Store) -> None:
    rules = (RuleConfig(channels=("hook",), kinds=("series_update",)),)
    ingest(store, [PAGE[1]], hours=0, rules=rules)
    ingest(store, [], hours=1, source="b", url=URL_B, rules=rules)
    newer = fig("300000000000", "OpenAI is now valued at $300 billion.", entity="OpenAI",
                metric="valuation")
    result = ingest(store, [newer], hours=2, source="b", url=URL_B, rules=rules)
    # No period: $157B then $300B is a move, not a dispute between a and b.
    assert [c.kind for c in result.changes] == ["new", "series_update"]
    updates = [c for c in store.changes_since(at(2)) if c.kind == "series_update"]
    assert len(updates) == 1
    assert (updates[0].old_value, updates[0].other_source) == (Decimal("157000000000"), "a")
    assert [a.type for a in result.alerts] == ["figure.series_update"]


def test_history_across_sources(store: Store) -> None:
    first = fig("29000000000", "OpenAI was valued at $29 billion.", entity="OpenAI",
                metric="valuation")
    ingest(store, [first], hours=0)
    ingest(store, [fig("86000000000", "OpenAI was valued at $86 billion.", entity="OpenAI",
                       metric="valuation")], hours=5)
    ingest(store, [fig("157000000000", "OpenAI's valuation is $157 billion.",
                       entity="OpenAI", metric="valuation")], hours=6, source="b", url=URL_B)
    ingest(store, [PAGE[0]], hours=7, source="c", url="https://c.example/")
    points = store.history("OpenAI", "valuation")
    assert [(p.value, p.source, p.first_seen_at) for p in points] == [
        (Decimal("29000000000"), "a", at(0)),
        (Decimal("86000000000"), "a", at(5)),
        (Decimal("157000000000"), "b", at(6)),
    ]
    assert points[0].last_seen_at == at(0) and not points[0].active
    assert store.history("NVIDIA", "market_cap", "2024")[0].source == "c"
    assert store.history("NVIDIA", "market_cap", "2023") == []


def test_exact_decimals_round_trip(store: Store) -> None:
    exact = fig("1234567890123456789.123456789", "The fund holds 1234567890123456789.123456789 "
                "dollars.", low="1234567890123456789.1", high="1234567890123456789.2")
    ingest(store, [exact], hours=0)
    (f,) = store.figures("a")
    assert f.value == Decimal("1234567890123456789.123456789")
    assert str(f.value) == "1234567890123456789.123456789"
    assert (f.low, f.high) == (Decimal("1234567890123456789.1"), Decimal("1234567890123456789.2"))


def test_conversion_restated_is_not_a_change(store: Store) -> None:
    usd = fig("2000000000", "It raised $2 billion (about 14.25 billion yuan).",
              conversion=("14250000000", "CNY"))
    ingest(store, [usd], hours=0)
    cny = fig("14250000000", "It raised 14.25 billion yuan (about $2 billion).", unit="CNY",
              conversion=("2000000000", "USD"))
    result = ingest(store, [cny], hours=1)
    assert result.changes == []


def test_large_body_is_compressed_and_pruned(store: Store) -> None:
    row = b"<tr><td>NVIDIA</td><td>market cap</td><td>$3.39 trillion</td></tr>\n"
    bodies = [b"<html><table>\n" + row * (1_500_000 // len(row)) + b"<!-- %d --></table>" % i
              for i in range(4)]
    assert len(bodies[0]) > 1_490_000
    for i, body in enumerate(bodies):
        ingest(store, PAGE, hours=i, body=body, keep_versions=2)
    versions = store.page_versions("a", URL_A)
    assert [v.fetched_at for v in versions] == [at(3), at(2)]
    assert [v.body for v in versions] == [bodies[3], bodies[2]]
    for v in versions:
        assert v.size == len(v.body) and v.stored_size < v.size // 20


def test_failure_unchanged_and_health(store: Store) -> None:
    store.sync_sources([SourceConfig(name="a", url=URL_A, every="15m")])
    assert store.record_failure(source="a", url=URL_A, at=at(0), error="timeout") == 1
    assert store.record_failure(source="a", url=URL_A, at=at(1), error="502", status=502) == 2
    (h,) = store.source_health()
    assert (h.consecutive_failures, h.last_error, h.last_success_at) == (2, "502", None)
    assert h.next_due_at == at(1) + timedelta(minutes=15)
    ingest(store, PAGE, hours=2)
    store.record_unchanged(source="a", url=URL_A, at=at(3), status=304)
    (h,) = store.source_health()
    assert (h.consecutive_failures, h.last_error, h.last_success_at) == (0, None, at(3))
    assert {f.last_seen_at for f in store.figures("a")} == {at(3)}
    v = store.known_page("a", URL_A)
    assert v is not None and v.etag == '"v1"'
    assert store.known_page("a", "https://a.example/other") is None
    assert set(store.known_pages(["a", "b", "nobody"])) == {("a", URL_A)}


def test_sync_sources_creates_updates_and_disables(store: Store) -> None:
    store.sync_sources([SourceConfig(name="a", url=URL_A), SourceConfig(name="b", url=URL_B)])
    store.sync_sources([SourceConfig(name="a", url=URL_A + "?v=2", every="30m")])
    health = {h.name: h for h in store.source_health()}
    assert health["a"].url.endswith("?v=2") and health["a"].every_seconds == 1800
    assert health["a"].enabled and not health["b"].enabled
    store.sync_sources([SourceConfig(name="b", url=URL_B)], at=at(1))  # back, dated now
    (b,) = [s for s in store.ops_states() if s.name == "b"]
    assert b.enabled and b.first_seen_at == at(1)
    statements: list[str] = []
    sa.event.listen(store.engine, "before_cursor_execute",
                    lambda *args: statements.append(args[2]))
    store.sync_sources([SourceConfig(name="b", url=URL_B)], at=at(2))  # nothing changed
    assert not [s for s in statements if s.lstrip().upper().startswith(("UPDATE", "INSERT"))]
    (b,) = [s for s in store.ops_states() if s.name == "b"]
    assert b.first_seen_at == at(1)


def test_failed_ingest_loses_nothing_and_writes_nothing(store: Store) -> None:
    ingest(store, PAGE, hours=0)
    bad = [PAGE[0], fig("NaN", "A broken figure.")]
    with pytest.raises(StoreError, match=r"ingest a https://a\.example/nvidia"):
        ingest(store, bad, hours=1)
    assert len(store.figures(active=None)) == 3
    assert store.changes_since(at(0)) == [] and store.alerts() == []
    assert [v.fetched_at for v in store.page_versions("a", URL_A)] == [at(0)]


def test_bad_url_and_unknown_alert_raise_store_error(store: Store) -> None:
    with pytest.raises(StoreError, match="database_url"):
        Store("nonsense://")
    with pytest.raises(StoreError, match="no alert with id 'nope'"):
        store.mark_delivered("nope", at(0))


def test_replicas_ingesting_one_new_series_at_once(store: Store) -> None:
    replicas = [Store(store.database_url) for _ in range(4)]
    start = threading.Barrier(len(replicas))
    errors: list[BaseException] = []

    def run(i: int) -> None:
        start.wait()
        try:
            ingest(replicas[i], [PAGE[0]], hours=i, source=f"s{i}", url=f"https://s{i}.example/")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(replicas))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    for r in replicas:
        r.close()
    assert errors == []
    assert len(store.history("NVIDIA", "market_cap", "2024")) == 4


def test_cross_source_reads_take_each_series_newest_statements_up_to_a_bound(
        store: Store) -> None:
    """However many sources repeat a figure, a page's conflict check reads a bounded number."""
    from service.db.ingest import other_statements_of

    for i in range(5):
        store.ingest(source=f"s{i}", url=f"https://s{i}.example/", at=at(i),
                     figures=[fig(100 + i, f"China made {100 + i} AI deals in 2023.",
                                  unit="count", entity="China", metric="deal_count",
                                  period="2023")],
                     body=b"%d" % i, content_hash=f"h{i}", etag=None, last_modified=None,
                     status=200, rules=(), keep_versions=1)
    key = ("China", "deal_count", "2023")
    with store._sessions.begin() as session:
        everyone = other_statements_of(session, [key], "s0")[key]
        newest = other_statements_of(session, [key], "s0", limit=2)[key]
    assert [s.source for s in everyone] == ["s4", "s3", "s2", "s1"]
    assert [s.source for s in newest] == ["s4", "s3"]
    assert [s.quantity.value for s in newest] == [Decimal(104), Decimal(103)]
