"""Queued writes (`service.db.writes.Writes`) on every backend: an executemany of many
rows gives the same rows whether it runs row by row (SQLite) or as one statement over
`unnest(arrays)` (PostgreSQL), including NULLs, exact decimals, times, defaults, a key
given twice and values their column types refuse."""

from __future__ import annotations

from datetime import timedelta, timezone
from decimal import Decimal

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from service.db.ingest import _INSERT_OBSERVATIONS, _UPDATE_SERIES
from service.db.models import FigureTrack, Observation, Series
from service.db.tracks import _INSERT as INSERT_TRACKS
from service.db.writes import Writes, _bulk, sent_together
from service.store import Store
from tests import backends
from tests.backends import at

db_url = backends.db_url
store = backends.store

_series = Series.__table__
EAST = timezone(timedelta(hours=8))
SERIES = [{"key": f"A\x1frevenue\x1f{year}", "entity": "A", "metric": "revenue",
           "period": str(year), "unit": "USD", "latest_value": Decimal(year),
           "latest_conversion_value": None if year % 2 else Decimal("7.1"),
           "latest_conversion_unit": None if year % 2 else "CNY", "latest_source": "s",
           "updated_at": at(0)} for year in (2023, 2024, 2025)]


def write(store: Store, statement: sa.Executable, rows: list[dict]) -> None:
    with store._tx("test writes") as session:
        writes = Writes(session)
        writes.execute(statement, rows)
        writes.flush()


def series_rows(store: Store) -> list[tuple]:
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            sa.select(_series.c.key, _series.c.latest_value, _series.c.latest_conversion_value,
                      _series.c.latest_conversion_unit, _series.c.latest_source)
            .order_by(_series.c.key))]


def test_many_rows_inserted_and_updated_by_key(store: Store) -> None:
    precise = Decimal("12345678901234567890.123456789012")
    write(store, sa.insert(_series), [*SERIES, {**SERIES[0], "key": "P", "latest_value": precise,
                                                "updated_at": at(0).astimezone(EAST)}])
    with store.engine.connect() as conn:
        stored = conn.execute(sa.select(_series.c.latest_value, _series.c.updated_at)
                              .where(_series.c.key == "P")).one()
        assert tuple(stored) == (precise, at(0))
        conn.execute(sa.delete(_series).where(_series.c.key == "P"))
        conn.commit()
    assert [r[1:4] for r in series_rows(store)] == [
        (Decimal(2023), None, None), (Decimal(2024), Decimal("7.1"), "CNY"),
        (Decimal(2025), None, None)]
    updates = [{"b_key": r["key"], "unit": "USD", "latest_value": r["latest_value"] * 2,
                "latest_conversion_value": None, "latest_conversion_unit": None,
                "latest_source": "t", "updated_at": at(1)} for r in SERIES[:2]]
    write(store, _UPDATE_SERIES, updates)
    assert series_rows(store) == [
        (SERIES[0]["key"], Decimal(4046), None, None, "t"),
        (SERIES[1]["key"], Decimal(4048), None, None, "t"),
        (SERIES[2]["key"], Decimal(2025), None, None, "s")]


@pytest.mark.parametrize("bad, error", [
    ({"latest_value": Decimal("NaN")}, "non-finite"),
    ({"updated_at": at(0).replace(tzinfo=None)}, "naive"),
])
def test_values_the_column_types_refuse_fail_the_write_and_store_nothing(
        store: Store, bad: dict, error: str) -> None:
    with pytest.raises(Exception, match=error):
        write(store, sa.insert(_series), [SERIES[0], {**SERIES[1], **bad}])
    assert series_rows(store) == []


def test_a_key_given_twice_keeps_the_last_row_as_an_executemany_does(store: Store) -> None:
    write(store, sa.insert(_series), SERIES[:1])
    twice = [{"b_key": SERIES[0]["key"], "latest_source": source} for source in ("x", "y")]
    write(store, _UPDATE_SERIES, twice)
    assert series_rows(store)[0][4] == "y"


def test_json_and_plain_value_defaults_of_the_columns_left_out(store: Store) -> None:
    with store._tx("test writes") as session:  # a page to hang the tracks on
        session.execute(sa.text(
            "INSERT INTO sources (name, url, every_seconds, enabled, consecutive_failures, "
            "consecutive_suspects, suspect_alerted) VALUES ('a', 'u', 60, true, 0, 0, false)"))
        session.execute(sa.text(
            "INSERT INTO pages (source_id, url, first_fetched_at, last_fetched_at) "
            "SELECT id, 'u', :t, :t FROM sources"), {"t": at(0)})
        page_id = session.execute(sa.text("SELECT id FROM pages")).scalar_one()
    confirmed = {"value": "1.5", "unit": "USD", "sentence": "It said \"1.5\", {sic}."}
    rows = [{"page_id": page_id, "page_key": f"k{i}", "level": 2, "confirmed": confirmed,
             "before": None, "pending": None if i else {"value": "2"},
             "pending_since": None, "updated_at": at(0)} for i in range(3)]
    write(store, INSERT_TRACKS, rows)  # pending_absent and streak left to their defaults
    t = FigureTrack.__table__
    with store.engine.connect() as conn:
        got = conn.execute(sa.select(t.c.page_key, t.c.confirmed, t.c.pending,
                                     t.c.pending_absent, t.c.streak).order_by(t.c.page_key))
        assert [tuple(r) for r in got] == [("k0", confirmed, {"value": "2"}, False, 0),
                                           ("k1", confirmed, None, False, 0),
                                           ("k2", confirmed, None, False, 0)]


@pytest.mark.parametrize("statement, names, bulk", [
    (_INSERT_OBSERVATIONS, ("page_id", "page_key", "value"), "INSERT"),
    (_UPDATE_SERIES, ("b_key", "latest_value"), "UPDATE"),
    (sa.insert(Observation.__table__).returning(Observation.__table__.c.id), ("page_id",), None),
    (sa.update(_series).where(_series.c.unit == "USD"), ("latest_value",), None),
    (_UPDATE_SERIES, ("latest_value",), None),  # no key in the rows
    (INSERT_TRACKS, ("page_id", "confirmed"), None),  # JSON: None is not NULL there
])
def test_which_statements_go_as_one(statement: sa.Executable, names: tuple[str, ...],
                                    bulk: str | None) -> None:
    rows = [dict.fromkeys(names, i) for i in range(3)]
    plan = _bulk(statement, rows, postgresql.psycopg.dialect())
    assert (plan.sql.split()[0] if plan else None) == bulk
    if plan is not None:
        assert "unnest(" in plan.sql
    assert _bulk(statement, rows[:1], postgresql.psycopg.dialect()) is None  # one row: as is


def test_statements_sent_together_are_answered_in_one_transaction() -> None:
    """In `sent_together` statements reach libpq at once and the socket at the sync; the
    transaction's BEGIN goes first, once (a second one would draw a warning), and every
    statement is answered."""
    if reason := backends.postgres_unreachable():
        pytest.skip(reason)
    with psycopg.connect(backends.POSTGRES_DSN) as conn:  # not autocommit: BEGIN comes first
        notices: list[str] = []
        conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        cursors = [conn.cursor() for _ in range(3)]
        with conn.pipeline() as pipeline, sent_together(pipeline):
            for i, cur in enumerate(cursors):
                cur.execute("SELECT %s::int * 10", (i,))
                assert not pipeline.command_queue  # handed to libpq, not left queued
        assert [cur.fetchone() for cur in cursors] == [(0,), (10,), (20,)]
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        assert notices == []


def test_an_error_among_statements_sent_together_surfaces_at_the_sync() -> None:
    """A failing statement fails the pipeline at its sync, the later ones are not run, and
    after a rollback the connection works as before."""
    if reason := backends.postgres_unreachable():
        pytest.skip(reason)
    with psycopg.connect(backends.POSTGRES_DSN) as conn:
        cursors = [conn.cursor() for _ in range(3)]
        with pytest.raises(psycopg.errors.DivisionByZero), conn.pipeline() as pipeline, \
                sent_together(pipeline):
            for cur, divisor in zip(cursors, (1, 0, 1), strict=True):
                cur.execute("SELECT 10 / %s::int", (divisor,))
        assert cursors[0].fetchone() == (10,)
        with pytest.raises(psycopg.ProgrammingError, match="no result"):
            cursors[2].fetchone()  # never ran
        conn.rollback()
        assert conn.execute("SELECT 1").fetchone() == (1,)
