"""Revisions 0002 to 0004 on every backend: upgrading a database with data loses nothing.

On SQLite a batch table rebuild of `sources` would cascade-delete every page,
fetch and observation (foreign keys are on); 0002 must only add columns.
"""

from __future__ import annotations

import sqlalchemy as sa

from service.db import migrate
from service.settings import RuleConfig
from service.store import Store
from tests import backends
from tests.backends import at, fig

db_url = backends.db_url

COUNTED = ("sources", "pages", "fetches", "observations", "page_versions")


def counts(store: Store) -> dict[str, int]:
    with store.engine.connect() as conn:
        return {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
                for t in COUNTED}


def test_upgrade_and_downgrade_keep_the_data(db_url: str) -> None:
    store = Store(db_url)
    try:
        migrate.upgrade(store.engine, "0001")
        with store.engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO sources (name, url, every_seconds, enabled, consecutive_failures) "
                "VALUES ('a', 'https://a.example/', 3600, :yes, 0)"), {"yes": True})
            conn.execute(sa.text(
                "INSERT INTO pages (source_id, url, first_fetched_at, last_fetched_at) "
                "SELECT id, 'https://a.example/old', :t, :t FROM sources"), {"t": at(-1)})
            conn.execute(sa.text(
                "INSERT INTO fetches (source_id, url, started_at, outcome) "
                "SELECT id, 'https://a.example/old', :t, 'ok' FROM sources"), {"t": at(-1)})
        migrate.upgrade(store.engine, "head")
        assert counts(store)["pages"] == counts(store)["fetches"] == 1
        figures = [fig(86 * 10**9, "OpenAI was valued at $86 billion.", entity="OpenAI",
                       metric="valuation")]
        store.ingest(source="a", url="https://a.example/", at=at(0), figures=figures,
                     body=b"v1", content_hash="v1", etag=None, last_modified=None, status=200,
                     rules=(RuleConfig(channels=("x",), confirm_fetches=2),), keep_versions=2)
        before = counts(store)
        assert before == {"sources": 1, "pages": 2, "fetches": 2, "observations": 1,
                          "page_versions": 1}
        migrate.downgrade(store.engine, "0001")
        assert counts(store) == before
        migrate.upgrade(store.engine, "head")
        assert counts(store) == before
        (state,) = store.ops_states()
        assert (state.consecutive_suspects, state.suspect_alerted, state.alerted_errors) == (
            0, False, ())
    finally:
        store.close()


def test_0003_backfills_each_pages_recent_figure_counts(db_url: str) -> None:
    store = Store(db_url)
    try:
        migrate.upgrade(store.engine, "0002")
        with store.engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO sources (name, url, every_seconds, enabled, consecutive_failures) "
                "VALUES ('a', 'https://a.example/', 3600, :yes, 0)"), {"yes": True})
            for url in ("https://a.example/1", "https://a.example/2"):
                conn.execute(sa.text(
                    "INSERT INTO pages (source_id, url, first_fetched_at, last_fetched_at) "
                    "SELECT id, :u, :t, :t FROM sources"), {"u": url, "t": at(-1)})
            fetches = [(1, "ok", 7), (2, "ok", 9), (3, "unchanged", None), (4, "failed", None),
                       (5, "parse_suspect", 0), (6, "ok", 8)] + [
                (10 + h, "ok", h) for h in range(6)]  # page 2: six ok fetches
            for hour, outcome, figures in fetches:
                url = "https://a.example/1" if hour < 10 else "https://a.example/2"
                conn.execute(sa.text(
                    "INSERT INTO fetches (source_id, url, started_at, outcome, figures) "
                    "SELECT id, :u, :t, :o, :f FROM sources"),
                    {"u": url, "t": at(hour), "o": outcome, "f": figures})
        migrate.upgrade(store.engine, "head")
        one, two = (store.known_page("a", f"https://a.example/{i}") for i in (1, 2))
        assert one is not None and one.recent_counts == (8, 9, 7)
        assert two is not None and two.recent_counts == (5, 4, 3, 2, 1)
    finally:
        store.close()


def test_0004_drops_only_the_fetch_key_of_observations_and_keeps_them(db_url: str) -> None:
    store = Store(db_url)
    try:
        migrate.upgrade(store.engine, "0003")
        figures = [fig(157 * 10**9, "OpenAI was valued at $157 billion.", entity="OpenAI",
                       metric="valuation"), fig(3, "It has 3 offices.")]
        store.ingest(source="a", url="https://a.example/", at=at(0), figures=figures,
                     body=b"v1", content_hash="v1", etag=None, last_modified=None, status=200,
                     rules=(), keep_versions=2)
        before = counts(store)
        migrate.upgrade(store.engine, "head")
        assert counts(store) == before and before["observations"] == 2
        keys = sa.inspect(store.engine).get_foreign_keys("observations")
        assert [(k["constrained_columns"], k["referred_table"]) for k in keys] == [
            (["page_id"], "pages")]
        with store.engine.begin() as conn:  # the page's key still cascades
            conn.execute(sa.text("DELETE FROM sources"))
        assert counts(store)["observations"] == 0
    finally:
        store.close()
