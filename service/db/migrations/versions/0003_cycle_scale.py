"""A cycle over thousands of sources: page figure counts on the page, bounded series reads.

- `pages.recent_figure_counts`: the figure counts of the page's last `ok`
  fetches ("50,49,51", newest first), kept by ingest, so the parser-health
  check reads them with the page's validators instead of querying `fetches`
  (which grows by one row per check) once per page.  Backfilled from `fetches`.
- `ix_observations_series_seen` (entity, metric, period, first_seen_at) replaces
  `ix_observations_series`: the cross-source read takes a series' newest
  statements in index order and stops after a bounded number.
- `ix_sources_due` (enabled, next_due_at) for the lease claim over many sources.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEEP_COUNTS = 5  # service.health.SUSPECT_WINDOW when this revision was written


def upgrade() -> None:
    # Plain ADD COLUMN, never a batch rebuild (see 0002).
    op.add_column("pages", sa.Column("recent_figure_counts", sa.String(64), nullable=True))
    _backfill_counts()
    op.drop_index("ix_observations_series", table_name="observations")
    op.create_index("ix_observations_series_seen", "observations",
                    ["entity", "metric", "period", "first_seen_at"], unique=False)
    op.create_index("ix_sources_due", "sources", ["enabled", "next_due_at"], unique=False)


def _backfill_counts() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.text(
        "SELECT p.id, f.figures FROM pages p JOIN fetches f "
        "ON f.source_id = p.source_id AND f.url = p.url "
        "WHERE f.outcome = 'ok' AND f.figures IS NOT NULL "
        "ORDER BY p.id, f.started_at DESC, f.id DESC"))
    counts: dict[int, list[str]] = {}
    for page_id, figures in rows:
        kept = counts.setdefault(page_id, [])
        if len(kept) < KEEP_COUNTS:
            kept.append(str(figures))
    if counts:
        conn.execute(sa.text("UPDATE pages SET recent_figure_counts = :c WHERE id = :i"),
                     [{"i": i, "c": ",".join(c)} for i, c in counts.items()])


def downgrade() -> None:
    op.drop_index("ix_sources_due", table_name="sources")
    op.drop_index("ix_observations_series_seen", table_name="observations")
    op.create_index("ix_observations_series", "observations", ["entity", "metric", "period"],
                    unique=False)
    op.drop_column("pages", "recent_figure_counts")
