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
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ..alerts import PendingAlert
from ..errors import StoreError
from .models import Alert, DeliveryAttempt

__all__ = ["CHUNK", "claim_due", "mark_delivered_many"]

def claim_due(session: Session, now: datetime, limit: int,
              lease: timedelta) -> list[PendingAlert]:
    """Lease up to `limit` due pending alerts till `now + lease`: one UPDATE ... RETURNING.

    The oldest due first (`next_attempt_at`, `created_at`, `id`); on PostgreSQL
    the rows are picked `FOR UPDATE SKIP LOCKED`, so replicas claim disjoint
    rows without waiting.  Half the time of loading the rows as ORM objects
    and flushing an UPDATE per row, which the dispatcher waits for every batch.
    """
    due = (sa.select(Alert.id)
           .where(Alert.state == "pending", Alert.next_attempt_at <= now,
                  sa.or_(Alert.claimed_until.is_(None), Alert.claimed_until <= now))
           .order_by(Alert.next_attempt_at, Alert.created_at, Alert.id)
           .limit(limit))
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    returned = session.execute(
        sa.update(Alert).where(Alert.id.in_(due.scalar_subquery()))
        .values(claimed_until=now + lease)
        .returning(Alert.id, Alert.channel, Alert.type, Alert.data, Alert.created_at,
                   Alert.attempts, Alert.next_attempt_at)
        .execution_options(synchronize_session=False)).all()
    # RETURNING has no order of its own
    rows = sorted(returned, key=lambda r: (r.next_attempt_at, r.created_at, r.id))
    return [PendingAlert(id=r.id, channel=r.channel, type=r.type, data=r.data,
                         created_at=r.created_at, attempts=r.attempts) for r in rows]


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
