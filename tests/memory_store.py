"""The dispatcher's alert-store protocol in memory, shared by the outbox and channel tests."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from service.alerts import PendingAlert

LEASE = timedelta(minutes=5)
T0 = datetime(2024, 10, 1, 12, 0, tzinfo=UTC)


@dataclass
class Row:
    alert: PendingAlert
    next_attempt_at: datetime | None
    state: str = "pending"
    errors: list[str] = field(default_factory=list)
    delivered_at: datetime | None = None


class MemoryStore:
    """The dispatcher's store protocol in memory; a claim leases the alert for LEASE."""

    def __init__(self, *alerts: PendingAlert) -> None:
        self.rows: dict[str, Row] = {}
        self.add(*alerts)

    def add(self, *alerts: PendingAlert) -> None:
        for a in alerts:
            self.rows[a.id] = Row(a, a.created_at)

    def claim_due_alerts(self, now: datetime, limit: int) -> list[PendingAlert]:
        due = sorted((r for r in self.rows.values() if r.state == "pending"
                      and r.next_attempt_at is not None and r.next_attempt_at <= now),
                     key=lambda r: r.alert.created_at)[:limit]
        for r in due:
            r.next_attempt_at = now + LEASE
        return [r.alert for r in due]

    def mark_delivered(self, alert_id: str, at: datetime) -> None:
        row = self.rows[alert_id]
        assert row.state == "pending", f"{alert_id} marked delivered twice"
        row.state, row.delivered_at, row.next_attempt_at = "delivered", at, None

    def mark_attempt_failed(self, alert_id: str, at: datetime, error: str,
                            next_attempt_at: datetime | None) -> None:
        row = self.rows[alert_id]
        row.errors.append(error)
        row.alert = replace(row.alert, attempts=row.alert.attempts + 1)
        row.next_attempt_at = next_attempt_at
        if next_attempt_at is None:
            row.state = "failed"


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now
