"""One parametrized database fixture over every backend: a SQLite file and PostgreSQL.

Use it from a test module with `db_url = backends.db_url` and `store = backends.store`.
Each PostgreSQL test gets its own schema (dropped afterwards), so tests can run
in parallel with each other and with anything else using the `test` database.
PostgreSQL tests are skipped, with the reason, only when the server is unreachable.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from parsers.figures.model import Conversion, Figure
from service.store import Store

POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/test"
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@cache
def postgres_unreachable() -> str | None:
    try:
        with psycopg.connect(POSTGRES_DSN, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL at 127.0.0.1:5432/test is unreachable: {exc}".strip()
    return None


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'figwatch.db'}"


@contextmanager
def pg_schema_url() -> Iterator[str]:
    """A URL whose connections use a fresh, private schema (dropped on exit)."""
    reason = postgres_unreachable()
    if reason:
        pytest.skip(reason)
    schema = f"fwtest_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    with pg_schema_url() as url:
        yield url


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    s.migrate()
    try:
        yield s
    finally:
        s.close()


def fig(value: str | int, sentence: str, *, unit: str = "USD", start: int = 0,
        entity: str | None = None, metric: str | None = None, period: str | None = None,
        conversion: tuple[str, str] | None = None, low: str | None = None,
        high: str | None = None) -> Figure:
    """A Figure as the extractor would give it (only the fields the store cares about)."""
    return Figure(
        value=Decimal(str(value)), unit=unit, start=start, end=start + 5, surface=str(value),
        sentence=sentence, lang="en", entity=entity, metric=metric, period=period,
        low=Decimal(low) if low else None, high=Decimal(high) if high else None,
        conversion=Conversion(Decimal(conversion[0]), conversion[1]) if conversion else None,
    )


def at(hours: float) -> datetime:
    """T0 plus some hours: the injected clock of these tests."""
    return T0 + timedelta(hours=hours)
