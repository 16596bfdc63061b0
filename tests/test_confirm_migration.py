"""Revision 0002 on every backend: upgrading a 0001 database with data loses nothing.

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
