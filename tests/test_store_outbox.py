"""The outbox side of the store on every backend: claim, deliver, fail, give up, retry."""

from __future__ import annotations

import threading
from datetime import timedelta

from service.alerts import PendingAlert
from service.store import Store
from tests import backends
from tests.backends import at

db_url = backends.db_url
store = backends.store


def queue(store: Store, n: int, *, hours: float = 0) -> list[str]:
    alerts = [PendingAlert(id=f"00000000-0000-4000-8000-{i:012d}", channel="hook",
                           type="ops.source_error", data={"source": "a", "n": i},
                           created_at=at(hours) + timedelta(seconds=i)) for i in range(n)]
    store.enqueue_alerts(alerts)
    return [a.id for a in alerts]


def test_claim_returns_due_alerts_once_per_lease(store: Store) -> None:
    ids = queue(store, 3)
    assert store.claim_due_alerts(at(0) - timedelta(seconds=1)) == []  # not due yet
    claimed = store.claim_due_alerts(at(0) + timedelta(minutes=1))
    assert [a.id for a in claimed] == ids
    assert claimed[0].data == {"source": "a", "n": 0} and claimed[0].attempts == 0
    assert claimed[0].created_at == at(0)
    assert store.claim_due_alerts(at(0) + timedelta(minutes=2)) == []  # leased
    # The claimer died: after the lease the alerts come back (at-least-once).
    again = store.claim_due_alerts(at(0) + timedelta(minutes=7))
    assert [a.id for a in again] == ids


def test_limit(store: Store) -> None:
    ids = queue(store, 5)
    assert [a.id for a in store.claim_due_alerts(at(1), limit=2)] == ids[:2]
    assert [a.id for a in store.claim_due_alerts(at(1), limit=10)] == ids[2:]


def test_delivered_is_never_claimed_again(store: Store) -> None:
    (aid,) = queue(store, 1)
    store.claim_due_alerts(at(1))
    store.mark_delivered(aid, at(1))
    assert store.claim_due_alerts(at(10)) == []
    (rec,) = store.alerts()
    assert (rec.state, rec.attempts, rec.delivered_at, rec.last_error) == (
        "delivered", 1, at(1), None)


def test_failed_attempt_waits_then_gives_up_then_retry(store: Store) -> None:
    (aid,) = queue(store, 1)
    store.claim_due_alerts(at(1))
    store.mark_attempt_failed(aid, at(1), "HTTP 503", at(1) + timedelta(minutes=1))
    assert store.claim_due_alerts(at(1) + timedelta(seconds=30)) == []
    (again,) = store.claim_due_alerts(at(1) + timedelta(minutes=1))
    assert again.attempts == 1
    store.mark_attempt_failed(aid, at(2), "HTTP 410", None)  # give up
    assert store.claim_due_alerts(at(20)) == []
    (failed,) = store.failed_alerts()
    assert (failed.id, failed.state, failed.attempts, failed.last_error) == (
        aid, "failed", 2, "HTTP 410")
    store.retry_alert(aid, at(30))
    assert store.failed_alerts() == []
    (retried,) = store.claim_due_alerts(at(30))
    assert retried.id == aid and retried.attempts == 0


def test_concurrent_claimers_get_disjoint_alerts(store: Store) -> None:
    ids = queue(store, 40)
    others = [Store(store.database_url) for _ in range(3)]
    results: list[list[str]] = [[] for _ in others]
    start = threading.Barrier(len(others))

    def claim(i: int) -> None:
        start.wait()
        for _ in range(10):
            results[i] += [a.id for a in others[i].claim_due_alerts(at(1), limit=3)]

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(others))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    for s in others:
        s.close()
    claimed = [aid for r in results for aid in r]
    assert sorted(claimed) == sorted(ids)  # every alert claimed exactly once
