"""The per-page write path on every backend: the source row (read and written in Core,
only its changed columns), `record_unchanged` and `record_failure`, and the ops policy
that runs on the source's new state in the same transaction."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from service.alerts import PendingAlert
from service.db.models import Fetch, Source
from service.settings import RuleConfig, SourceConfig
from service.store import OpsState, Store, UnchangedFetch
from tests import backends
from tests.backends import at, fig

db_url = backends.db_url
store = backends.store

URL = "https://a.example/page"
HOOK = RuleConfig(channels=("hook",))
PAGE = [fig("100", "Revenue was 100 yuan.", unit="CNY", entity="A", metric="revenue", start=0),
        fig("7", "It had 7 shops.", unit="count", entity="A", metric="shops", start=40)]


def ingest(store: Store, figures: list, hours: float, rules: tuple = (HOOK,)) -> None:
    body = repr([f.sentence for f in figures]).encode()
    store.ingest(source="a", url=URL, at=at(hours), figures=figures, body=body,
                 content_hash=f"h-{hash(body)}", etag=None, last_modified=None, status=200,
                 rules=rules, keep_versions=3)


def fetches(store: Store) -> list[tuple[str, int | None, str | None]]:
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(  # type: ignore[misc]
            "SELECT outcome, status, error FROM fetches ORDER BY id"))]


def track_rows(store: Store) -> list[tuple[str, int, int]]:
    """(page_key, level, streak) of every stored track."""
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(  # type: ignore[misc]
            "SELECT page_key, level, streak FROM figure_tracks ORDER BY level, page_key"))]


def test_unknown_source_is_created_and_dated_by_its_first_fetch(store: Store) -> None:
    assert store.record_failure(source="new", url=URL, at=at(1), error="boom") == 1
    st = store.ops_state("new")
    assert st is not None
    assert (st.url, st.first_seen_at, st.consecutive_failures, st.last_error,
            st.last_success_at, st.enabled) == (URL, at(1), 1, "boom", None, True)
    store.record_unchanged(source="other", url=URL, at=at(2), status=304)
    (h,) = [h for h in store.source_health() if h.name == "other"]
    assert (h.last_success_at, h.next_due_at) == (at(2), at(2) + timedelta(hours=1))
    assert fetches(store) == [("failed", None, "boom"), ("unchanged", 304, None)]


def test_unchanged_moves_last_seen_of_active_figures_only(store: Store) -> None:
    store.sync_sources([SourceConfig(name="a", url=URL, every="10m")], at=at(0))
    ingest(store, PAGE, 0)
    ingest(store, [PAGE[0]], 1)  # the shops figure goes: inactive, last seen at 0
    store.record_unchanged(source="a", url=URL, at=at(2), status=304, rules=(HOOK,))
    seen = {(f.metric, f.active): f.last_seen_at for f in store.figures("a", active=None)}
    assert seen == {("revenue", True): at(2), ("shops", False): at(0)}
    (h,) = store.source_health()
    assert (h.last_success_at, h.next_due_at) == (at(2), at(2) + timedelta(minutes=10))
    assert [(r.outcome, r.at, sorted(f.metric for f in r.figures))
            for r in store.replay_fetches()] == [
        ("ok", at(0), ["revenue", "shops"]), ("ok", at(1), ["revenue"]),
        ("unchanged", at(2), ["revenue"])]
    history = store.history("A", "revenue")  # the active row: last seen by the 304
    assert [(p.first_seen_at, p.last_seen_at, p.active) for p in history] == [
        (at(0), at(2), True)]


def test_counters_and_episodes(store: Store) -> None:
    store.sync_sources([SourceConfig(name="a", url=URL)], at=at(0))
    assert store.record_failure(source="a", url=URL, at=at(1), error="x") == 1
    assert store.record_failure(source="a", url=URL, at=at(2), error="y", status=502) == 2
    assert store.record_failure(source="a", url=URL, at=at(3), error="empty",
                                outcome="parse_suspect") == 1
    st = store.ops_state("a")
    assert st is not None and (st.consecutive_failures, st.consecutive_suspects) == (0, 1)
    store.update_ops("a", lambda s: (replace(s, suspect_alerted=True,
                                             stale_alerted_at=at(3)), []))
    assert store.record_failure(source="a", url=URL, at=at(4), error="z") == 1
    st = store.ops_state("a")  # a failure leaves the suspect and stale markers alone
    assert st is not None and (st.suspect_alerted, st.stale_alerted_at) == (True, at(3))
    ingest(store, PAGE, 5)
    st = store.ops_state("a")  # a success ends every episode
    assert st is not None
    assert (st.consecutive_failures, st.consecutive_suspects, st.last_error, st.suspect_alerted,
            st.stale_alerted_at, st.last_success_at) == (0, 0, None, False, None, at(5))


@pytest.mark.parametrize("call", ["unchanged", "failure", "ingest"])
def test_ops_policy_sees_the_new_state_and_its_alerts_commit_with_the_fetch(
        store: Store, call: str) -> None:
    store.sync_sources([SourceConfig(name="a", url=URL)], at=at(0))
    ingest(store, PAGE, 0)
    store.update_ops("a", lambda s: (replace(s, alerted_errors=("HTTP 500",)), []))
    seen: list[OpsState] = []

    def policy(st: OpsState) -> tuple[OpsState, list[PendingAlert]]:
        seen.append(st)
        alert = PendingAlert(id=f"ops-{call}", channel="ops", type="ops.test",
                             data={"n": st.consecutive_failures}, created_at=at(1))
        return replace(st, alerted_errors=(*st.alerted_errors, call)), [alert]

    if call == "unchanged":
        store.record_unchanged(source="a", url=URL, at=at(1), status=304, ops=policy)
    elif call == "failure":
        store.record_failure(source="a", url=URL, at=at(1), error="e", ops=policy)
    else:
        body = b"other body"
        store.ingest(source="a", url=URL, at=at(1), figures=PAGE, body=body,
                     content_hash="h2", etag=None, last_modified=None, status=200,
                     rules=(HOOK,), keep_versions=3, ops=policy)
    (st,) = seen
    failed = call == "failure"
    assert st.consecutive_failures == (1 if failed else 0)
    assert st.last_success_at == (at(0) if failed else at(1))
    assert st.alerted_errors == ("HTTP 500",) and st.first_seen_at == at(0)
    after = store.ops_state("a")
    assert after is not None and after.alerted_errors == ("HTTP 500", call)
    assert [(a.id, a.data) for a in store.alerts() if a.type == "ops.test"] == [
        (f"ops-{call}", {"n": 1 if failed else 0})]


def test_a_failing_policy_writes_nothing(store: Store) -> None:
    store.sync_sources([SourceConfig(name="a", url=URL)], at=at(0))
    ingest(store, PAGE, 0)

    def broken(st: OpsState) -> tuple[OpsState, list[PendingAlert]]:
        raise RuntimeError("policy bug")

    with pytest.raises(RuntimeError):
        store.record_unchanged(source="a", url=URL, at=at(1), status=304, rules=(HOOK,),
                               ops=broken)
    with pytest.raises(RuntimeError):
        store.record_failure(source="a", url=URL, at=at(1), error="e", ops=broken)
    assert [o for o, *_ in fetches(store)] == ["ok"]
    assert {f.last_seen_at for f in store.figures("a")} == {at(0)}
    (h,) = store.source_health()
    assert (h.last_success_at, h.consecutive_failures) == (at(0), 0)


def test_unchanged_pages_keep_their_tracks_and_confirm_pending_changes(store: Store) -> None:
    two = RuleConfig(channels=("two",), confirm_fetches=2)
    rules = (HOOK, two)
    ingest(store, PAGE, 0, rules)
    for hour in (1, 2):  # settled tracks: nothing to confirm, no row written
        r = store.record_unchanged(source="a", url=URL, at=at(hour), status=304, rules=rules)
        assert (r.changes, r.alerts) == ([], [])
        assert track_rows(store) == []
    moved = [replace(PAGE[0], value=PAGE[0].value * 2), PAGE[1]]
    ingest(store, moved, 3, rules)
    # What moved has tracks: level 1 confirmed (with the value it replaced), level 2 pending.
    key = track_rows(store)[0][0]
    assert track_rows(store) == [(key, 1, 0), (key, 2, 1)]
    r = store.record_unchanged(source="a", url=URL, at=at(4), status=304, rules=rules)
    assert [(a.channel, a.data["kind"]) for a in r.alerts] == [("two", "changed")]
    r = store.record_unchanged(source="a", url=URL, at=at(5), status=304, rules=rules)
    assert r.alerts == []
    assert track_rows(store) == [(key, 1, 0), (key, 2, 0)]


def test_utc_bind_processor_remembers_one_time_and_still_checks() -> None:
    from datetime import datetime

    from sqlalchemy.dialects import postgresql, sqlite

    from service.db.types import UTCDateTime

    for dialect in (sqlite.dialect(), postgresql.dialect()):
        process = UTCDateTime().bind_processor(dialect)
        assert process is not None
        t = at(1)
        first = process(t)
        assert process(None) is None and process(t) == first
        assert process(at(2)) != first and process(t) == first
        with pytest.raises(ValueError, match="naive"):
            process(datetime(2026, 1, 1))


def test_a_re_keyed_figure_keeps_its_track(store: Store) -> None:
    """A lightly edited sentence re-keys the figure's observation and its stored tracks;
    the next change of its value is one `changed` per rule, before and after a re-key."""
    two = RuleConfig(channels=("two",), confirm_fetches=2)
    rules = (HOOK, two)
    page = [fig("100", "The company said revenue was 100 yuan in the last fiscal year.",
                unit="CNY", entity="A", metric="revenue", start=0), PAGE[1]]
    ingest(store, page, 0, rules)

    def active_keys() -> set[str]:
        with store.engine.connect() as conn:
            return {r[0] for r in conn.execute(sa.text(
                "SELECT page_key FROM observations WHERE active"))}

    def track_keys() -> set[tuple[str, int]]:
        return {(key, level) for key, level, _ in track_rows(store)}

    def edit(figures: list, sentence: str) -> list:
        return [replace(figures[0], sentence=sentence), *figures[1:]]

    def change(figures: list, factor: int, hours: tuple[int, int]) -> list:
        changed = [replace(figures[0], value=figures[0].value * factor), *figures[1:]]
        for hour in hours:
            body = repr([f.sentence for f in changed]).encode() + b"%d" % hour
            r = store.ingest(source="a", url=URL, at=at(hour), figures=changed, body=body,
                             content_hash=f"c{hour}", etag=None, last_modified=None,
                             status=200, rules=rules, keep_versions=3)
            kinds = sorted((a.channel, a.data["kind"]) for a in r.alerts)
            assert kinds == ([("hook", "changed")] if hour == hours[0] else
                             [("two", "changed")])
        return changed

    before = active_keys()
    edited = edit(page, "The company said revenue was 100 yuan in the last fiscal year, up.")
    ingest(store, edited, 1, rules)
    (moved,) = active_keys() - before
    assert track_keys() == set()  # settled tracks: their rows are the observations
    changed = change(edited, 2, (2, 3))
    assert track_keys() == {(moved, 1), (moved, 2)}
    re_edited = edit(changed, "The company said revenue was 200 yuan in the last fiscal "
                              "year, up sharply.")
    ingest(store, re_edited, 4, rules)
    (moved_again,) = active_keys() - {moved, *before}
    assert track_keys() == {(moved_again, 1), (moved_again, 2)}
    change(re_edited, 3, (5, 6))


def test_a_figure_re_keyed_by_a_repeated_sentence_keeps_its_settled_track(store: Store) -> None:
    """The same sentence inserted before a figure's moves it to occurrence 1: it stays
    settled under the new key, and nothing is alerted for it."""
    rules = (HOOK, RuleConfig(channels=("two",), confirm_fetches=2))
    ingest(store, [PAGE[0]], 0, rules)
    repeated = [replace(PAGE[0], value=PAGE[0].value / 2), replace(PAGE[0], start=80)]
    r_alerts = []
    for hour in (1, 2):
        body = b"repeated %d" % hour
        r = store.ingest(source="a", url=URL, at=at(hour), figures=repeated, body=body,
                         content_hash=f"r{hour}", etag=None, last_modified=None, status=200,
                         rules=rules, keep_versions=3)
        r_alerts += [(a.channel, a.data["kind"], a.data["new_value"]) for a in r.alerts]
    assert r_alerts == [("hook", "new", "50"), ("two", "new", "50")]
    with store.engine.connect() as conn:
        obs = {r[0]: r[1] for r in conn.execute(sa.text(
            "SELECT page_key, value FROM observations WHERE active"))}
        tracks = conn.execute(sa.text(
            "SELECT page_key, level, confirmed FROM figure_tracks ORDER BY page_key, level")
        ).all()
    # The moved figure's track is settled (no row); the new one's level-2 track waited.
    assert {(k, level) for k, level, _ in tracks} == {
        (k, 2) for k, v in obs.items() if Decimal(str(v)) == PAGE[0].value / 2}
    for key, _, confirmed in tracks:  # JSON: text on SQLite, decoded by the driver on PG
        confirmed = confirmed if isinstance(confirmed, dict) else json.loads(confirmed)
        assert Decimal(str(obs[key])) == Decimal(confirmed["value"])


def test_unchanged_pages_of_several_sources_recorded_in_one_batch(store: Store) -> None:
    """One transaction for many 304s: each page's fetch and last sighting, each source's
    success once (a source with two pages in the batch too), a source not synced yet,
    a waiting level-2 track confirmed, and each fetch's ops policy on its source."""
    two = RuleConfig(channels=("two",), confirm_fetches=2)
    rules = (HOOK, two)
    store.sync_sources([SourceConfig(name=n, url=f"https://{n}.example/") for n in "ab"],
                       at=at(0))
    pages = {("a", "https://a.example/1"), ("a", "https://a.example/2"),
             ("b", "https://b.example/")}
    for source, url in sorted(pages):
        store.ingest(source=source, url=url, at=at(0), figures=PAGE, body=url.encode(),
                     content_hash=url, etag=None, last_modified=None, status=200,
                     rules=rules, keep_versions=3)
    moved = [replace(PAGE[0], value=PAGE[0].value * 2), PAGE[1]]
    store.ingest(source="b", url="https://b.example/", at=at(1), figures=moved, body=b"b2",
                 content_hash="b2", etag=None, last_modified=None, status=200, rules=rules,
                 keep_versions=3)  # level 2 now waits for one more sighting
    policies: list[tuple[str, int]] = []

    def policy(url: str) -> Callable[[OpsState], tuple[OpsState, list[PendingAlert]]]:
        def update(st: OpsState) -> tuple[OpsState, list[PendingAlert]]:
            policies.append((url, st.consecutive_failures))
            return st, [PendingAlert(id=f"ops-{url}", channel="ops", type="ops.test",
                                     data={}, created_at=at(2))]
        return update

    fetches = [UnchangedFetch(s, u, at(2), 304, ops=policy(u)) for s, u in sorted(pages)]
    fetches.append(UnchangedFetch("new", "https://new.example/", at(2), 304))
    results = store.record_unchanged_many(fetches, rules)
    assert [[(a.channel, a.data["kind"]) for a in r.alerts] for r in results] == [
        [], [], [("two", "changed")], []]
    assert sorted(policies) == sorted((u, 0) for _, u in pages)
    assert sorted(a.id for a in store.alerts() if a.type == "ops.test") == sorted(
        f"ops-{u}" for _, u in pages)
    f, s = Fetch.__table__, Source.__table__
    with store.engine.connect() as conn:
        got = conn.execute(sa.select(s.c.name, f.c.url, f.c.outcome)
                           .join(s, s.c.id == f.c.source_id)
                           .where(f.c.started_at == at(2)).order_by(f.c.url)).all()
    assert [tuple(r) for r in got] == [
        (s, u, "unchanged") for s, u in sorted([*pages, ("new", "https://new.example/")],
                                               key=lambda p: p[1])]
    seen = {(f.source, f.url) for f in store.figures() if f.last_seen_at == at(2)}
    assert seen == pages
    health = {h.name: (h.last_success_at, h.consecutive_failures)
              for h in store.source_health()}
    assert health == {"a": (at(2), 0), "b": (at(2), 0), "new": (at(2), 0)}


def test_a_page_wrongly_expected_new_is_still_diffed_against_its_figures(store: Store) -> None:
    """`expect_new` only skips reading up front: a stored page (another replica stored it
    meanwhile) still has its figures and tracks read, and its change found."""
    two = RuleConfig(channels=("two",), confirm_fetches=2)
    ingest(store, PAGE, 0, (HOOK, two))
    moved = [replace(PAGE[0], value=PAGE[0].value * 2), PAGE[1]]
    kinds = []
    for hour in (1, 2):
        r = store.ingest(source="a", url=URL, at=at(hour), figures=moved, body=b"%d" % hour,
                         content_hash=f"m{hour}", etag=None, last_modified=None, status=200,
                         rules=(HOOK, two), keep_versions=3, expect_new=True)
        kinds.append(sorted((a.channel, a.data["kind"]) for a in r.alerts))
    assert kinds == [[("hook", "changed")], [("two", "changed")]]
