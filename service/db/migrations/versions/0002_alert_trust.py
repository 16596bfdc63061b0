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
    with op.batch_alter_table("sources") as batch:
        batch.add_column(sa.Column("first_seen_at", _TS, nullable=True))
        batch.add_column(sa.Column("consecutive_suspects", sa.Integer(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("alerted_errors", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("suspect_alerted", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column("stale_alerted_at", _TS, nullable=True))
    with op.batch_alter_table("fetches") as batch:
        batch.add_column(sa.Column("figures", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("fetches") as batch:
        batch.drop_column("figures")
    with op.batch_alter_table("sources") as batch:
        batch.drop_column("stale_alerted_at")
        batch.drop_column("suspect_alerted")
        batch.drop_column("alerted_errors")
        batch.drop_column("consecutive_suspects")
        batch.drop_column("first_seen_at")
    op.drop_index("ix_figure_tracks_page", table_name="figure_tracks")
    op.drop_table("figure_tracks")
