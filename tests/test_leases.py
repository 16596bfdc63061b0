"""Source leases on every backend: claims are exclusive, expire, and carry the next due time.

The scheduler that runs checks on them: tests/test_scheduler.py."""

from __future__ import annotations

import random
import threading
from datetime import timedelta

import pytest

from service.leases import SourceLeases
from service.settings import SourceConfig
from service.store import Store
from tests import backends
from tests.backends import T0, at

db_url = backends.db_url
store = backends.store

TTL = timedelta(seconds=30)


def sources(n: int, every: str = "10s") -> list[SourceConfig]:
    return [SourceConfig(name=f"s{i:03}", url=f"http://example.com/{i}", every=every)
            for i in range(n)]


def leases(store: Store, owner: str) -> SourceLeases:
    return SourceLeases(store.engine, owner, TTL, rng=random.Random(7))


def test_a_claim_is_exclusive_until_finished(store: Store) -> None:
    store.sync_sources(sources(3))
    a, b = leases(store, "a"), leases(store, "b")
    assert sorted(c.name for c in a.claim_due(T0, 10)) == ["s000", "s001", "s002"]
    assert b.claim_due(T0, 10) == []

    nxt = a.finish("s000", T0 + timedelta(seconds=1), failed=False, every_seconds=10)
    assert nxt is not None and at(0) + timedelta(seconds=11) <= nxt <= at(0) + timedelta(seconds=12)
    assert b.claim_due(T0 + timedelta(seconds=5), 10) == []  # s000 not due, others leased
    assert [c.name for c in b.claim_due(nxt, 10)] == ["s000"]


def test_an_expired_lease_is_taken_over_and_the_old_owner_cannot_finish(store: Store) -> None:
    store.sync_sources(sources(2))
    a, b = leases(store, "a"), leases(store, "b")
    assert len(a.claim_due(T0, 10)) == 2
    assert a.renew(T0 + timedelta(seconds=20), ["s000"]) == 1  # s000 still in flight
    later = T0 + TTL + timedelta(seconds=1)
    assert [c.name for c in b.claim_due(later, 10)] == ["s001"]  # s000's lease was renewed
    assert a.finish("s001", later, failed=False, every_seconds=10) is None  # lost to b
    assert b.finish("s001", later, failed=False, every_seconds=10) is not None


def test_failures_back_off_from_the_database_count(store: Store) -> None:
    store.sync_sources(sources(1))
    a = leases(store, "a")
    for failures in (1, 2, 3):
        now = T0 + timedelta(hours=failures)
        assert a.claim("s000", now) is not None
        store.record_failure(source="s000", url="http://example.com/0", at=now, error="boom")
        nxt = a.finish("s000", now, failed=True)
        assert nxt is not None
        base = timedelta(seconds=10 * 2 ** failures)
        assert now + base <= nxt <= now + base + timedelta(seconds=1)


def test_check_now_claim_and_release(store: Store) -> None:
    store.sync_sources(sources(1))
    a, b = leases(store, "a"), leases(store, "b")
    assert a.claim("s000", T0) is not None
    assert b.claim("s000", T0) is None
    assert b.holder("s000") == ("a", T0 + TTL)
    with pytest.raises(KeyError):
        a.claim("nope", T0)
    assert a.release(["s000"]) == 1
    assert b.claim("s000", T0) is not None


def test_next_wake_is_the_earliest_due_time_or_lease_expiry(store: Store) -> None:
    store.sync_sources(sources(2))
    a = leases(store, "a")
    assert a.next_wake(T0) == T0  # never checked: due now
    a.claim_due(T0, 10)
    assert a.next_wake(T0) == T0 + TTL
    nxt = a.finish("s000", T0, failed=False, every_seconds=10)
    assert a.next_wake(T0) == nxt


def test_concurrent_claimers_take_disjoint_sources(store: Store) -> None:
    store.sync_sources(sources(200))
    claimed: dict[str, list[str]] = {}
    start = threading.Barrier(4)

    def claimer(owner: str) -> None:
        mine = leases(store, owner)
        start.wait()
        got: list[str] = []
        while batch := mine.claim_due(T0, 15):
            got += [c.name for c in batch]
        claimed[owner] = got

    threads = [threading.Thread(target=claimer, args=(f"r{k}",)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    everything = [name for got in claimed.values() for name in got]
    assert len(everything) == len(set(everything)) == 200
