"""Outbox writes for many alerts in one transaction (the dispatcher's hot path).

`Store.mark_delivered` costs a transaction and three statements per alert; a
dispatcher that delivers hundreds a second spends its time in commits (an
fsync each on PostgreSQL).  `mark_delivered_many` records a whole batch with
two statements and one commit, whatever its size (up to `CHUNK` ids per
statement):

    UPDATE alerts SET state = 'delivered', ... WHERE id IN (...)
    INSERT INTO delivery_attempts (alert_id, at, ok) SELECT id, ... WHERE id IN (...)

It has the same effect per alert as `Store.mark_delivered`, except that an
unknown id is skipped (counted out of the return value) rather than raised:
one vanished row must not roll back the marks of the others, which would
make every one of them be sent again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ..errors import StoreError
from .models import Alert, DeliveryAttempt

__all__ = ["CHUNK", "mark_delivered_many"]

# Ids per statement: well under SQLite's bound-parameter limit (32766).
CHUNK = 500


def mark_delivered_many(sessions: sessionmaker[Session], alert_ids: Sequence[str],
                        at: datetime) -> int:
    """Mark `alert_ids` delivered at `at` in one transaction; how many rows existed.

    Raises `StoreError` (nothing is marked) when the database fails.
    """
    ids = list(dict.fromkeys(alert_ids))
    if not ids:
        return 0
    marked = 0
    try:
        with sessions.begin() as session:
            for start in range(0, len(ids), CHUNK):
                marked += _mark_chunk(session, ids[start:start + CHUNK], at)
    except SQLAlchemyError as exc:
        raise StoreError(f"mark {len(ids)} alerts delivered: "
                         f"{type(exc).__name__}: {exc}") from exc
    return marked


def _mark_chunk(session: Session, ids: list[str], at: datetime) -> int:
    result = session.execute(
        sa.update(Alert).where(Alert.id.in_(ids))
        .values(state="delivered", delivered_at=at, claimed_until=None, last_error=None,
                attempts=Alert.attempts + 1)
        .execution_options(synchronize_session=False))
    attempts = sa.select(Alert.id, sa.literal(at, Alert.delivered_at.type),
                         sa.true()).where(Alert.id.in_(ids))
    session.execute(sa.insert(DeliveryAttempt).from_select(
        ["alert_id", "at", "ok"], attempts))
    return int(getattr(result, "rowcount", 0) or 0)
