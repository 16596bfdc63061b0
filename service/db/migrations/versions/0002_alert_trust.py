"""Alerts people can trust: figure confirmation tracks, parser health and ops-alert state.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the storage types (see 0001).
_TS = sa.DateTime(timezone=True)
_DEC = sa.Numeric(asdecimal=True).with_variant(sa.String(96), "sqlite")


def upgrade() -> None:
    op.create_table(
        "figure_tracks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("page_id", sa.Integer(), nullable=False),
        sa.Column("page_key", sa.String(length=64), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("confirmed", sa.JSON(), nullable=True),
        sa.Column("before", _DEC, nullable=True),
        sa.Column("pending", sa.JSON(), nullable=True),
        sa.Column("pending_absent", sa.Boolean(), nullable=False),
        sa.Column("streak", sa.Integer(), nullable=False),
        sa.Column("pending_since", _TS, nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["page_id"], ["pages.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_figure_tracks_page", "figure_tracks", ["page_id", "level"], unique=False)
    # Plain ADD/DROP COLUMN, never a batch table rebuild: on SQLite a rebuild drops
    # `sources`, and with foreign keys on (they are, see db/session.py) that would
    # cascade-delete every page, fetch and observation.  SQLite >= 3.35 has both.
    op.add_column("sources", sa.Column("first_seen_at", _TS, nullable=True))
    op.add_column("sources", sa.Column("consecutive_suspects", sa.Integer(), nullable=False,
                                       server_default="0"))
    op.add_column("sources", sa.Column("alerted_errors", sa.JSON(), nullable=True))
    op.add_column("sources", sa.Column("suspect_alerted", sa.Boolean(), nullable=False,
                                       server_default=sa.false()))
    op.add_column("sources", sa.Column("stale_alerted_at", _TS, nullable=True))
    op.add_column("fetches", sa.Column("figures", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("fetches", "figures")
    for column in ("stale_alerted_at", "suspect_alerted", "alerted_errors",
                   "consecutive_suspects", "first_seen_at"):
        op.drop_column("sources", column)
    op.drop_index("ix_figure_tracks_page", table_name="figure_tracks")
    op.drop_table("figure_tracks")
