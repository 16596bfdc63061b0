"""Source health on every backend: suspicion rules, error classes, stale sources, ops alerts."""

from __future__ import annotations

from datetime import timedelta

import pytest

import parsers
from parsers.document import Block
from service.health import (
    SUSPECT_WINDOW,
    HealthMonitor,
    error_class,
    stale_sources,
    stale_summary,
    suspect_reason,
)
from service.settings import Settings
from service.store import Store
from tests import test_confirm
from tests.backends import T0, at, fig

migrated = test_confirm.migrated  # one migrated database per backend and module
store = test_confirm.store

URL_A = "https://a.example/"
URL_B = "https://b.example/"


def settings(**kw: object) -> Settings:
    base: dict[str, object] = {
        "sources": ({"name": "a", "url": URL_A, "every": "15m"},
                    {"name": "b", "url": URL_B, "every": "15m"}),
        "channels": ({"name": "ops", "kind": "stdout"}, {"name": "desk", "kind": "stdout"}),
        "ops_channels": ("ops",),
        "rules": ({"channels": ["desk"]},),
    }
    base.update(kw)
    return Settings(**base)  # type: ignore[arg-type]


def doc(text: str) -> parsers.Document:
    blocks = [Block(kind="paragraph", text=text)] if text else []
    return parsers.Document(url=URL_A, blocks=blocks, parser="forbeschina")


FIGS = [fig(i, f"Figure {i}.") for i in range(1, 3)]


@pytest.mark.parametrize(("text", "found", "recent", "suspect"), [
    ("", [], [], "article body is empty (parser forbeschina)"),
    ("Some text.", FIGS, [10, 10, 12, 9, 10], "2 figures, far below the page's recent "
                                               "median of 10 (parser forbeschina)"),
    ("Some text.", FIGS * 2, [10, 10, 12, 9, 10], None),   # 4 >= 30 % of 10
    ("Some text.", FIGS, [10, 10, 12, 9], None),           # fewer than 5 ok fetches
    ("Some text.", [], [4, 4, 4, 4, 4], None),             # a median under 5 proves little
    ("Some text.", [], [0, 0, 0, 0, 0], None),
])
def test_suspect_reason(text: str, found: list, recent: list[int], suspect: str | None) -> None:
    assert suspect_reason(doc(text), found, recent) == suspect


def test_error_classes() -> None:
    assert error_class("x: answered 503", 503) == "HTTP 503"
    a = error_class("https://a.example/: connection refused (attempt 1 of 3)", None, URL_A)
    b = error_class("https://a.example/: connection refused (attempt 3 of 3)", None, URL_A)
    assert a == b == "connection refused (attempt # of #)"
    assert error_class(None, None) == "unknown error"


def test_recent_figure_counts_kept_on_the_page(store: Store) -> None:
    for hour, n in enumerate([3, 5, 8, 1, 2, 9]):
        store.ingest(source="a", url=URL_A, at=at(hour), figures=[fig(i, f"F {i}.")
                                                                   for i in range(n)],
                     body=b"%d" % n, content_hash=f"h{n}", etag=None, last_modified=None,
                     status=200, rules=(), keep_versions=1)
    store.record_failure(source="a", url=URL_A, at=at(7), error="empty", outcome="parse_suspect")
    store.record_unchanged(source="a", url=URL_A, at=at(8), status=304)
    known = store.known_page("a", URL_A)
    # only `ok` fetches count, newest first, as many as the suspect window needs
    assert known is not None and known.recent_counts == (9, 2, 1, 8, 5)
    assert len(known.recent_counts) == SUSPECT_WINDOW
    assert store.known_page("a", "https://elsewhere/") is None


def ops(store: Store) -> list[tuple[str, str, object]]:
    return sorted((a.type, a.channel, a.data["consecutive_failures"]) for a in store.alerts()
                  if a.type.startswith("ops."))


def test_error_policy_alerts_once_per_error_class_and_on_recovery(store: Store) -> None:
    cfg = settings(max_failures=2)
    health = HealthMonitor(cfg, store)
    store.sync_sources(cfg.sources, at=T0)

    def fail(hour: float, error: str, status: int | None = None) -> None:
        store.record_failure(source="a", url=URL_A, at=at(hour), error=error, status=status,
                             ops=health.policy(URL_A, "failed", at=at(hour), error=error,
                                               status=status))

    fail(1, "https://a.example/: connection refused")
    assert ops(store) == []
    fail(2, "https://a.example/: connection refused")
    fail(3, "https://a.example/: connection refused")
    assert ops(store) == [("ops.source_error", "ops", 2)]
    fail(4, "https://a.example/: answered 503", 503)  # another class in the same episode
    fail(5, "https://a.example/: answered 503", 503)
    assert ops(store) == [("ops.source_error", "ops", 2), ("ops.source_error", "ops", 4)]
    store.record_unchanged(source="a", url=URL_A, at=at(6), status=304,
                           ops=health.policy(URL_A, "unchanged", at=at(6)))
    store.record_unchanged(source="a", url=URL_A, at=at(7), status=304,
                           ops=health.policy(URL_A, "unchanged", at=at(7)))
    alerts = [a for a in store.alerts() if a.type.startswith("ops.")]
    assert sorted(a.type for a in alerts) == ["ops.source_error", "ops.source_error",
                                             "ops.source_recovered"]
    first = min((a for a in alerts if a.type == "ops.source_error"), key=lambda a: a.created_at)
    assert first.data == {"kind": "source_error", "source": "a", "url": URL_A,
                          "error": "https://a.example/: connection refused",
                          "consecutive_failures": 2, "detected_at": at(2).isoformat()}
    assert {a.channel for a in alerts} == {"ops"}  # never the figure rules' channels


def test_parser_suspect_alerts_once_after_n_in_a_row(store: Store) -> None:
    cfg = settings(parser_suspect_after=2)
    health = HealthMonitor(cfg, store)

    def suspect(hour: float) -> None:
        store.record_failure(source="a", url=URL_A, at=at(hour), error="article body is empty",
                             outcome="parse_suspect",
                             ops=health.policy(URL_A, "parse_suspect", at=at(hour),
                                               error="article body is empty"))

    suspect(1)
    assert ops(store) == []
    suspect(2)
    suspect(3)
    assert ops(store) == [("ops.parser_suspect", "ops", 2)]
    (st,) = [s for s in store.ops_states() if s.name == "a"]
    assert st.consecutive_suspects == 3 and st.suspect_alerted


def test_no_ops_channels_no_ops_alerts(store: Store) -> None:
    cfg = settings(ops_channels=(), max_failures=1)
    health = HealthMonitor(cfg, store)
    store.record_failure(source="a", url=URL_A, at=at(1), error="boom",
                         ops=health.policy(URL_A, "failed", at=at(1), error="boom"))
    assert store.alerts() == []


def test_stale_sources_after_twice_the_interval(store: Store) -> None:
    cfg = settings()
    health = HealthMonitor(cfg, store)
    store.sync_sources(cfg.sources, at=T0)
    store.ingest(source="a", url=URL_A, at=T0 + timedelta(minutes=5), figures=[], body=b"",
                 content_hash="h", etag=None, last_modified=None, status=200, rules=(),
                 keep_versions=1)
    now = T0 + timedelta(minutes=30)
    assert stale_summary(store, cfg, now) == (0, 0.0)  # b: exactly 2x, not past it
    assert health.check_stale(now) == []
    now = T0 + timedelta(minutes=36)  # a: 31 min since its success; b: 36 min, never checked
    assert [s.name for s in stale_sources(store, cfg, now)] == ["b", "a"]
    assert stale_summary(store, cfg, now) == (2, 36 * 60.0)
    alerts = health.check_stale(now)
    assert sorted((a.type, a.channel, a.data["source"]) for a in alerts) == [
        ("ops.source_stale", "ops", "a"), ("ops.source_stale", "ops", "b")]
    assert "last success: never" in next(a for a in alerts if a.data["source"] == "b"
                                         ).data["error"]
    assert health.check_stale(now + timedelta(minutes=10)) == []  # once per episode
    # a recovers, then goes stale again: a new episode, a new alert.
    store.record_unchanged(source="a", url=URL_A, at=now, status=304)
    assert [s.name for s in stale_sources(store, cfg, now + timedelta(minutes=1))] == ["b"]
    again = health.check_stale(now + timedelta(minutes=31))
    assert [a.data["source"] for a in again] == ["a"]
    assert len([a for a in store.alerts() if a.type == "ops.source_stale"]) == 3


def test_disabled_or_unconfigured_sources_are_never_stale(store: Store) -> None:
    cfg = settings()
    store.sync_sources(cfg.sources, at=T0)
    store.sync_sources(cfg.sources[:1], at=T0)  # b dropped from the config: disabled
    later = T0 + timedelta(hours=5)
    assert [s.name for s in stale_sources(store, cfg, later)] == ["a"]
    only_a = settings(sources=cfg.sources[:1])
    assert stale_summary(store, only_a, later) == (1, 5 * 3600.0)
