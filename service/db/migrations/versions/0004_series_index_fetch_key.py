"""A cycle over thousands of pages on PostgreSQL: the series read stops early; no fetch check.

`ix_observations_series_seen` (entity, metric, period, first_seen_at) left the
read's tie-break (`id DESC`) to a sort, so PostgreSQL read every statement of
a series to return its newest few: a cost per page that grew with the series.
SQLite never sorted, since its indexes end with the rowid.  The replacement ends with
`id`, so both backends walk it backwards and stop after the limit; it holds
only rows with an entity, the only ones any series read asks for (an
`entity = ...` condition implies the index's predicate on both backends).

`observations.fetch_id` loses its foreign key.  It records which fetch first
found a figure and nothing reads it back; fetch rows are deleted only with
their source, whose pages and observations go with them.  The key cost every
inserted observation a lookup and a lock of its fetch row: the checks of the
table's two keys took about a fifth of the server's work per page in a `perf`
profile of `bench/cycle.py`, and `page_id`'s (kept: it cascades) is the other
half.  SQLite rebuilds the table for it, which is safe: no table refers to
`observations`.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WITH_ENTITY = sa.text("entity IS NOT NULL")
# Names SQLite's unnamed foreign keys as PostgreSQL names them, so one name serves both.
_NAMES = {"fk": "%(table_name)s_%(column_0_name)s_fkey"}
_FETCH_KEY = "observations_fetch_id_fkey"


def upgrade() -> None:
    op.drop_index("ix_observations_series_seen", table_name="observations")
    op.create_index("ix_observations_series_newest", "observations",
                    ["entity", "metric", "period", "first_seen_at", "id"], unique=False,
                    postgresql_where=_WITH_ENTITY, sqlite_where=_WITH_ENTITY)
    with op.batch_alter_table("observations", naming_convention=_NAMES) as batch:
        batch.drop_constraint(_FETCH_KEY, type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("observations", naming_convention=_NAMES) as batch:
        batch.create_foreign_key(_FETCH_KEY, "fetches", ["fetch_id"], ["id"],
                                 ondelete="SET NULL")
    op.drop_index("ix_observations_series_newest", table_name="observations")
    op.create_index("ix_observations_series_seen", "observations",
                    ["entity", "metric", "period", "first_seen_at"], unique=False)
