"""Migrations on every backend: upgrade to head, idempotent, matches the models, downgrade clean."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from service.db import migrate
from service.db.models import Base
from service.store import Store
from tests import backends

db_url = backends.db_url

TABLES = {"sources", "fetches", "pages", "page_versions", "observations", "series", "changes",
          "alerts", "delivery_attempts", "figure_tracks"}


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


def test_upgrade_downgrade_upgrade(db_url: str) -> None:
    store = Store(db_url)
    try:
        assert _tables(store.engine) == set()
        store.migrate()
        store.migrate()  # idempotent
        assert _tables(store.engine) == TABLES
        assert migrate.current_revision(store.engine) == migrate.head_revision()
        migrate.downgrade(store.engine, "base")
        assert _tables(store.engine) == set()
        assert migrate.current_revision(store.engine) is None
        store.migrate()
        assert _tables(store.engine) == TABLES
    finally:
        store.close()


def test_migrated_schema_matches_models(db_url: str) -> None:
    store = Store(db_url)
    try:
        store.migrate()
        with store.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, Base.metadata)
        assert diff == []
    finally:
        store.close()
