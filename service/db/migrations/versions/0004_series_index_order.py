"""The cross-source read stops early on PostgreSQL too.

`ix_observations_series_seen` (entity, metric, period, first_seen_at) left the
read's tie-break (`id DESC`) to a sort, so PostgreSQL read every statement of
a series to return its newest few: a cost per page that grew with the series,
and plans that scanned `pages` whole once the estimates went stale.  SQLite
never sorted, since its indexes end with the rowid.  The replacement ends with
`id`, so both backends walk it backwards and stop after the limit; it holds
only rows with an entity, the only ones any series read asks for (an
`entity = ...` condition implies the index's predicate on both backends).

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


def upgrade() -> None:
    op.drop_index("ix_observations_series_seen", table_name="observations")
    op.create_index("ix_observations_series_newest", "observations",
                    ["entity", "metric", "period", "first_seen_at", "id"], unique=False,
                    postgresql_where=_WITH_ENTITY, sqlite_where=_WITH_ENTITY)


def downgrade() -> None:
    op.drop_index("ix_observations_series_newest", table_name="observations")
    op.create_index("ix_observations_series_seen", "observations",
                    ["entity", "metric", "period", "first_seen_at"], unique=False)
