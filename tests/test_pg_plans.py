"""PostgreSQL: the per-page reads keep index plans when they are prepared on tiny tables.

psycopg prepares a statement on its fifth execution, and the server may then keep
one generic plan for the connection's life, made from the table sizes of that
moment.  While `pages` held a handful of rows, the page read's plan scanned it
whole, and kept doing so for every later page: a 10,000-page cycle read 53
million rows of `pages` (`bench/cycle.py`, pg_stat_user_tables).  These tests
prepare the per-page reads on a freshly migrated database holding a few pages,
force the generic plan, and read it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from service.db.ingest import PRIORS_OF_URL, _others_query
from service.db.tracks import TRACKS_OF_URL
from service.store import _SOURCE_AND_PAGE, _SOURCE_AND_PAGE_PG, Store
from tests import backends
from tests.backends import at, fig

BIG_TABLES = ("pages", "observations")


@pytest.fixture
def tiny_store() -> Iterator[Store]:
    with backends.pg_schema_url() as url:
        store = Store(url)
        store.migrate()
        try:
            for i in range(3):
                store.ingest(
                    source=f"s{i}", url=f"https://s{i}.example/a", at=at(i),
                    figures=[fig(100 + i, f"China made {100 + i} AI deals in 2023.",
                                 unit="count", entity="China", metric="deal_count",
                                 period="2023")],
                    body=b"%d" % i, content_hash=f"h{i}", etag=None, last_modified=None,
                    status=200, rules=(), keep_versions=1)
            yield store
        finally:
            store.close()


def generic_plan(store: Store, statement: Any) -> str:
    """EXPLAIN of the statement's generic plan (the one a prepared statement may keep)."""
    with store.engine.connect() as conn:
        compiled = statement.compile(dialect=conn.dialect)
        numbers: dict[str, int] = {}

        def number(match: re.Match[str]) -> str:
            return f"${numbers.setdefault(match[1], len(numbers) + 1)}"

        sql = re.sub(r"%\((\w+)\)s", number, compiled.string)
        conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        conn.exec_driver_sql(f"PREPARE probe AS {sql}")
        try:
            args = ", ".join(["NULL"] * len(numbers))
            explain = f"EXPLAIN EXECUTE probe({args})" if numbers else "EXPLAIN EXECUTE probe"
            return "\n".join(row[0] for row in conn.exec_driver_sql(explain))
        finally:
            conn.exec_driver_sql("DEALLOCATE probe")
            conn.rollback()


PER_PAGE_READS: dict[str, Any] = {
    "source and page, drawing ids": _SOURCE_AND_PAGE_PG,
    "source and page": _SOURCE_AND_PAGE,
    "a known page's figures": PRIORS_OF_URL,
    "a known page's confirmation tracks": TRACKS_OF_URL,
    "other sources' statements of two series": _others_query(1, 1),
}


@pytest.mark.parametrize("name", PER_PAGE_READS)
def test_per_page_reads_probe_indexes_in_a_plan_made_on_tiny_tables(
        tiny_store: Store, name: str) -> None:
    plan = generic_plan(tiny_store, PER_PAGE_READS[name])
    scans = [t for t in BIG_TABLES if re.search(rf"Seq Scan on {t}\b", plan)]
    assert not scans, f"{name}: the generic plan scans {scans} whole:\n{plan}"
    assert "Index" in plan, plan


def test_other_sources_statements_are_read_in_index_order_and_stop_at_the_limit(
        tiny_store: Store) -> None:
    """No sort: a series' newest statements come off `ix_observations_series_newest`
    backwards, so the read stops after the limit however many sources state it; for a
    series without a period as for one with."""
    plan = generic_plan(tiny_store, _others_query(1, 1))
    assert "Sort" not in plan, plan
    assert plan.count("Index Scan Backward using ix_observations_series_newest") == 2, plan
