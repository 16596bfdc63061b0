"""The tables, as SQLAlchemy 2 typed declarative models.

The schema itself is created by the Alembic migrations in `migrations/`
(never `create_all` on the production path); `tests/test_migrations.py`
checks the two agree.  Every time is timezone-aware UTC (`UTCDateTime`) and
every figure value an exact Decimal (`ExactDecimal`) on both backends.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .types import ExactDecimal, UTCDateTime


class Base(DeclarativeBase):
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads it as a class attribute
        datetime: UTCDateTime(),
        Decimal: ExactDecimal(),
        dict[str, Any]: sa.JSON(),
    }


class Source(Base):
    """A configured source and its health; the lease columns are for multi-replica scheduling."""

    __tablename__ = "sources"
    __table_args__ = (sa.Index("ix_sources_due", "enabled", "next_due_at"),)  # 0003

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    url: Mapped[str] = mapped_column(sa.Text)
    every_seconds: Mapped[int]
    enabled: Mapped[bool] = mapped_column(default=True)
    last_success_at: Mapped[datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    next_due_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(sa.String(200))
    lease_until: Mapped[datetime | None]
    # Operations-alert state (revision 0002): see service/health.py.
    first_seen_at: Mapped[datetime | None]
    consecutive_suspects: Mapped[int] = mapped_column(default=0, server_default="0")
    alerted_errors: Mapped[list[str] | None] = mapped_column(sa.JSON)  # classes alerted
    suspect_alerted: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    stale_alerted_at: Mapped[datetime | None]


class Fetch(Base):
    """One attempt to fetch a URL of a source, with its typed outcome."""

    __tablename__ = "fetches"
    __table_args__ = (sa.Index("ix_fetches_source_started", "source_id", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(sa.ForeignKey("sources.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(sa.Text)
    started_at: Mapped[datetime]
    status: Mapped[int | None]
    outcome: Mapped[str] = mapped_column(sa.String(16))  # ok|unchanged|failed|parse_suspect
    bytes: Mapped[int | None]
    elapsed: Mapped[float | None]
    error: Mapped[str | None] = mapped_column(sa.Text)
    figures: Mapped[int | None]  # figures found by an `ok` fetch (parser health; 0002)


class Page(Base):
    """A fetched URL of a source, with the validators for the next conditional request."""

    __tablename__ = "pages"
    __table_args__ = (sa.UniqueConstraint("source_id", "url", name="uq_pages_source_url"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(sa.ForeignKey("sources.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(sa.Text)
    etag: Mapped[str | None] = mapped_column(sa.Text)
    last_modified: Mapped[str | None] = mapped_column(sa.Text)
    content_hash: Mapped[str | None] = mapped_column(sa.String(128))
    first_fetched_at: Mapped[datetime]
    last_fetched_at: Mapped[datetime]
    # Figure counts of the last `ok` fetches, newest first ("50,49,51"; 0003).
    recent_figure_counts: Mapped[str | None] = mapped_column(sa.String(64))


class PageVersion(Base):
    """A zlib-compressed body; only the newest `keep_versions` per page are kept."""

    __tablename__ = "page_versions"
    __table_args__ = (sa.Index("ix_page_versions_page_fetched", "page_id", "fetched_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    page_id: Mapped[int] = mapped_column(sa.ForeignKey("pages.id", ondelete="CASCADE"))
    fetched_at: Mapped[datetime]
    content_hash: Mapped[str] = mapped_column(sa.String(128))
    size: Mapped[int]
    body: Mapped[bytes] = mapped_column(sa.LargeBinary)


class Observation(Base):
    """A figure as a page stated it, from first to last seen; a new value is a new row."""

    __tablename__ = "observations"
    __table_args__ = (
        sa.Index("ix_observations_page_active", "page_id", "active"),
        sa.Index("ix_observations_series_newest", "entity", "metric", "period", "first_seen_at",
                 "id", postgresql_where=sa.text("entity IS NOT NULL"),
                 sqlite_where=sa.text("entity IS NOT NULL")),  # 0004
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    page_id: Mapped[int] = mapped_column(sa.ForeignKey("pages.id", ondelete="CASCADE"))
    page_key: Mapped[str] = mapped_column(sa.String(64))
    occurrence: Mapped[int]
    entity: Mapped[str | None] = mapped_column(sa.String(200))
    metric: Mapped[str | None] = mapped_column(sa.String(100))
    period: Mapped[str | None] = mapped_column(sa.String(50))
    value: Mapped[Decimal]
    unit: Mapped[str] = mapped_column(sa.String(16))
    low: Mapped[Decimal | None]
    high: Mapped[Decimal | None]
    qualifier: Mapped[str] = mapped_column(sa.String(16))
    conversion_value: Mapped[Decimal | None]
    conversion_unit: Mapped[str | None] = mapped_column(sa.String(16))
    sentence: Mapped[str] = mapped_column(sa.Text)
    span_start: Mapped[int]
    span_end: Mapped[int]
    first_seen_at: Mapped[datetime]
    # Written when the row goes inactive; an active row was last seen when its page was
    # last fetched (read through `service.db.ingest.LAST_SEEN`).
    last_seen_at: Mapped[datetime]
    # The fetch that first found the figure; no foreign key (0004): it cost each insert a
    # lookup and a lock of the fetch row, and fetches go only with their source and pages.
    fetch_id: Mapped[int | None]
    active: Mapped[bool] = mapped_column(default=True)


class Series(Base):
    """The latest value of one (entity, metric, period) across all sources."""

    __tablename__ = "series"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(400), unique=True)  # entity␟metric␟period
    entity: Mapped[str] = mapped_column(sa.String(200))
    metric: Mapped[str] = mapped_column(sa.String(100))
    period: Mapped[str | None] = mapped_column(sa.String(50))
    unit: Mapped[str] = mapped_column(sa.String(16))
    latest_value: Mapped[Decimal]
    latest_conversion_value: Mapped[Decimal | None]
    latest_conversion_unit: Mapped[str | None] = mapped_column(sa.String(16))
    latest_source: Mapped[str] = mapped_column(sa.String(200))
    updated_at: Mapped[datetime]


class FigureTrack(Base):
    """Alert-confirmation state of one figure of a page at one `confirm_fetches` level.

    `confirmed` is the confirmed figure (NULL: confirmed absent), `before` the
    confirmed value it replaced (what a revert returns to); `pending` is a
    different figure (or, with `pending_absent`, the figure's absence) seen
    `streak` fetches in a row since `pending_since`; `updated_at` is when that state
    last changed (a fetch that leaves a track as it was does not rewrite its row).
    See service/confirm.py.
    """

    __tablename__ = "figure_tracks"
    __table_args__ = (sa.Index("ix_figure_tracks_page", "page_id", "level"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    page_id: Mapped[int] = mapped_column(sa.ForeignKey("pages.id", ondelete="CASCADE"))
    page_key: Mapped[str] = mapped_column(sa.String(64))
    level: Mapped[int]
    confirmed: Mapped[dict[str, Any] | None]  # the confirmed figure, JSON (values as text)
    before: Mapped[Decimal | None]
    pending: Mapped[dict[str, Any] | None]  # the candidate figure, JSON (values as text)
    pending_absent: Mapped[bool] = mapped_column(default=False)
    streak: Mapped[int] = mapped_column(default=0)
    pending_since: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class ChangeRow(Base):
    """A change the diff found (see `service.alerts.Change`)."""

    __tablename__ = "changes"
    __table_args__ = (sa.Index("ix_changes_detected", "detected_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(20))
    source: Mapped[str] = mapped_column(sa.String(200))
    url: Mapped[str] = mapped_column(sa.Text)
    entity: Mapped[str | None] = mapped_column(sa.String(200))
    metric: Mapped[str | None] = mapped_column(sa.String(100))
    period: Mapped[str | None] = mapped_column(sa.String(50))
    unit: Mapped[str] = mapped_column(sa.String(16))
    old_value: Mapped[Decimal | None]
    new_value: Mapped[Decimal | None]
    sentence: Mapped[str] = mapped_column(sa.Text)
    other_source: Mapped[str | None] = mapped_column(sa.String(200))
    page_key: Mapped[str | None] = mapped_column(sa.String(64))
    detected_at: Mapped[datetime]
    fetch_id: Mapped[int | None] = mapped_column(sa.ForeignKey("fetches.id", ondelete="SET NULL"))


class Alert(Base):
    """The outbox: one message for one channel; `id` is the receivers' idempotency key."""

    __tablename__ = "alerts"
    __table_args__ = (sa.Index("ix_alerts_due", "state", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    channel: Mapped[str] = mapped_column(sa.String(200))
    type: Mapped[str] = mapped_column(sa.String(60))
    data: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(sa.String(16), default="pending")  # pending|delivered|failed
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    claimed_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]


class DeliveryAttempt(Base):
    """One try at delivering an alert."""

    __tablename__ = "delivery_attempts"
    __table_args__ = (sa.Index("ix_delivery_attempts_alert", "alert_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[str] = mapped_column(sa.ForeignKey("alerts.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    ok: Mapped[bool]
    error: Mapped[str | None] = mapped_column(sa.Text)
