"""Batched outbox marks: one transaction for a dispatch batch, on every backend."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from service.alerts import PendingAlert
from service.db.models import DeliveryAttempt
from service.outbox import Dispatcher, DispatchReport
from service.store import Store
from tests import backends
from tests.backends import at

from .test_outbox import Clock, Flaky, MemoryStore, alert

db_url = backends.db_url
store = backends.store


def queue(store: Store, n: int) -> list[str]:
    alerts = [PendingAlert(id=f"00000000-0000-4000-8000-{i:012d}", channel="hook",
                           type="ops.source_error", data={"n": i},
                           created_at=at(0) + timedelta(seconds=i)) for i in range(n)]
    store.enqueue_alerts(alerts)
    return [a.id for a in alerts]


def test_mark_delivered_many_is_mark_delivered_for_each(store: Store) -> None:
    ids = queue(store, 5)
    claimed = store.claim_due_alerts(at(1))
    store.mark_attempt_failed(ids[0], at(1), "HTTP 503", at(1))
    assert store.mark_delivered_many([*ids[:3], ids[0], "no-such-alert"], at(2)) == 3
    assert len(claimed) == 5
    by_id = {r.id: r for r in store.alerts()}
    for aid in ids[:3]:
        rec = by_id[aid]
        assert (rec.state, rec.delivered_at, rec.last_error) == ("delivered", at(2), None)
    assert by_id[ids[0]].attempts == 2 and by_id[ids[1]].attempts == 1
    assert {by_id[a].state for a in ids[3:]} == {"pending"}
    # The rest are still claimed; the marked ones are never claimed again.
    assert [a.id for a in store.claim_due_alerts(at(20))] == ids[3:]
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(DeliveryAttempt.alert_id, DeliveryAttempt.ok)
                            .where(DeliveryAttempt.ok.is_(True))).all()
    assert sorted(r.alert_id for r in rows) == sorted(ids[:3])


def test_mark_delivered_many_of_nothing(store: Store) -> None:
    assert store.mark_delivered_many([], at(0)) == 0


def test_a_batch_costs_a_few_statements_not_a_few_per_alert(store: Store) -> None:
    ids = queue(store, 300)
    store.claim_due_alerts(at(1), limit=300)
    statements: list[str] = []
    sa.event.listen(store.engine, "before_cursor_execute",
                    lambda *args: statements.append(args[2]))
    assert store.mark_delivered_many(ids, at(2)) == 300
    assert len([s for s in statements if not s.startswith("BEGIN")]) == 2


class BatchStore(MemoryStore):
    """MemoryStore that also marks many at once, recording each batch."""

    def __init__(self, *alerts: PendingAlert) -> None:
        super().__init__(*alerts)
        self.batches: list[list[str]] = []

    def mark_delivered_many(self, alert_ids: list[str], at: Any) -> int:
        self.batches.append(list(alert_ids))
        for aid in alert_ids:
            self.mark_delivered(aid, at)
        return len(alert_ids)


async def test_dispatcher_marks_a_batch_in_one_call() -> None:
    store = BatchStore(*(alert(f"a{i}", channel="ok") for i in range(6)),
                       alert("bad", channel="flaky"))
    d = Dispatcher(store, {"ok": Flaky("ok", fail=0), "flaky": Flaky("flaky")}, clock=Clock(),
                   rng=random.Random(7), give_up_after=timedelta(hours=1), concurrency=3)
    assert await d.run_once() == DispatchReport(delivered=6, retried=1)
    assert [sorted(b) for b in store.batches] == [[f"a{i}" for i in range(6)]]
    assert store.rows["bad"].state == "pending"


async def test_dispatcher_flushes_early_once_flush_size_wait() -> None:
    store = BatchStore(*(alert(f"a{i}", channel="ok") for i in range(5)))
    d = Dispatcher(store, {"ok": Flaky("ok", fail=0)}, clock=Clock(), flush_size=2,
                   concurrency=1)
    assert await d.run_once() == DispatchReport(delivered=5)
    assert [len(b) for b in store.batches] == [2, 2, 1]


async def test_store_without_batches_gets_one_mark_each() -> None:
    store = MemoryStore(*(alert(f"a{i}", channel="ok") for i in range(3)))
    d = Dispatcher(store, {"ok": Flaky("ok", fail=0)}, clock=Clock())
    assert await d.run_once() == DispatchReport(delivered=3)
    assert {r.state for r in store.rows.values()} == {"delivered"}
