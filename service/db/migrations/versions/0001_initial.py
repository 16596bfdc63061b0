"""Initial schema: sources, fetches, pages, page versions, observations, series, changes, outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of service.db.types' storage types, so this revision never changes
# when the models do: aware timestamps, and exact decimals (NUMERIC on PostgreSQL,
# canonical text on SQLite, whose NUMERIC would round through a float).
_TS = sa.DateTime(timezone=True)
_DEC = sa.Numeric(asdecimal=True).with_variant(sa.String(96), "sqlite")


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("channel", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=60), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _TS, nullable=False),
        sa.Column("claimed_until", _TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("delivered_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_alerts_due", "alerts", ["state", "next_attempt_at"], unique=False)
    op.create_table(
        "series",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("entity", sa.String(length=200), nullable=False),
        sa.Column("metric", sa.String(length=100), nullable=False),
        sa.Column("period", sa.String(length=50), nullable=True),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("latest_value", _DEC, nullable=False),
        sa.Column("latest_conversion_value", _DEC, nullable=True),
        sa.Column("latest_conversion_unit", sa.String(length=16), nullable=True),
        sa.Column("latest_source", sa.String(length=200), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_table(
        "sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("every_seconds", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("last_success_at", _TS, nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_due_at", _TS, nullable=True),
        sa.Column("lease_owner", sa.String(length=200), nullable=True),
        sa.Column("lease_until", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "delivery_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.String(length=36), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_delivery_attempts_alert", "delivery_attempts", ["alert_id"], unique=False)
    op.create_table(
        "fetches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=True),
        sa.Column("elapsed", sa.Double(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["source_id"], ["sources.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_fetches_source_started", "fetches", ["source_id", "started_at"], unique=False
    )
    op.create_table(
        "pages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("etag", sa.Text(), nullable=True),
        sa.Column("last_modified", sa.Text(), nullable=True),
        sa.Column("content_hash", sa.String(length=128), nullable=True),
        sa.Column("first_fetched_at", _TS, nullable=False),
        sa.Column("last_fetched_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["source_id"], ["sources.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source_id", "url", name="uq_pages_source_url"),
    )
    op.create_table(
        "changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("entity", sa.String(length=200), nullable=True),
        sa.Column("metric", sa.String(length=100), nullable=True),
        sa.Column("period", sa.String(length=50), nullable=True),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("old_value", _DEC, nullable=True),
        sa.Column("new_value", _DEC, nullable=True),
        sa.Column("sentence", sa.Text(), nullable=False),
        sa.Column("other_source", sa.String(length=200), nullable=True),
        sa.Column("page_key", sa.String(length=64), nullable=True),
        sa.Column("detected_at", _TS, nullable=False),
        sa.Column("fetch_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["fetch_id"], ["fetches.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_changes_detected", "changes", ["detected_at"], unique=False)
    op.create_table(
        "observations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("page_id", sa.Integer(), nullable=False),
        sa.Column("page_key", sa.String(length=64), nullable=False),
        sa.Column("occurrence", sa.Integer(), nullable=False),
        sa.Column("entity", sa.String(length=200), nullable=True),
        sa.Column("metric", sa.String(length=100), nullable=True),
        sa.Column("period", sa.String(length=50), nullable=True),
        sa.Column("value", _DEC, nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("low", _DEC, nullable=True),
        sa.Column("high", _DEC, nullable=True),
        sa.Column("qualifier", sa.String(length=16), nullable=False),
        sa.Column("conversion_value", _DEC, nullable=True),
        sa.Column("conversion_unit", sa.String(length=16), nullable=True),
        sa.Column("sentence", sa.Text(), nullable=False),
        sa.Column("span_start", sa.Integer(), nullable=False),
        sa.Column("span_end", sa.Integer(), nullable=False),
        sa.Column("first_seen_at", _TS, nullable=False),
        sa.Column("last_seen_at", _TS, nullable=False),
        sa.Column("fetch_id", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["fetch_id"], ["fetches.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["page_id"], ["pages.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_observations_page_active", "observations", ["page_id", "active"], unique=False
    )
    op.create_index(
        "ix_observations_series", "observations", ["entity", "metric", "period"], unique=False
    )
    op.create_table(
        "page_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("page_id", sa.Integer(), nullable=False),
        sa.Column("fetched_at", _TS, nullable=False),
        sa.Column("content_hash", sa.String(length=128), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["page_id"], ["pages.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_page_versions_page_fetched", "page_versions", ["page_id", "fetched_at"], unique=False
    )


def downgrade() -> None:
    op.drop_table("delivery_attempts")
    op.drop_table("page_versions")
    op.drop_table("observations")
    op.drop_table("changes")
    op.drop_table("pages")
    op.drop_table("fetches")
    op.drop_table("sources")
    op.drop_table("series")
    op.drop_table("alerts")
