"""Scale-out on the machine's PostgreSQL: three `figwatch run` processes share 500 sources.

Real parts only: a generated-pages HTTP server on 127.0.0.1 that records every
hit, a real webhook receiver verifying signatures, three real `figwatch run`
processes, and PostgreSQL (its own database `figwatch_replicas`, a fresh
schema per run).  It shows that every source is fetched once per interval by
exactly one replica (no two hits on a page closer than `every`), that every
alert is delivered exactly once (unique webhook-id), and that when a replica is
SIGKILLed its leased sources are taken over within the lease TTL.

The live parts (`PageFarm`, `Replica`, `write_config`) are in tests/live.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from service.webhook_receiver import WebhookReceiver
from tests.backends import POSTGRES_DSN, postgres_unreachable
from tests.live import SECRET, Hit, PageFarm, Replica, page_value, wait_until, write_config

DATABASE = "figwatch_replicas"


# -- PostgreSQL ----------------------------------------------------------------------------------

@contextlib.contextmanager
def replicas_database(*, durable: bool = False) -> Iterator[tuple[str, str]]:
    """(SQLAlchemy URL, psycopg DSN) of a fresh schema in the `figwatch_replicas` database.

    Unless `durable`, the replicas' connections commit with `synchronous_commit=off`:
    this machine's disk takes ~5 ms per WAL flush, which would cap all replicas
    together at ~45 checks/s.  Leases, locks and visibility are the same either way;
    only durability across a PostgreSQL crash differs, which is not under test.
    """
    reason = postgres_unreachable()
    if reason:
        pytest.skip(reason)
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone() \
                is None:
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
    dsn = f"postgresql://postgres@127.0.0.1:5432/{DATABASE}"
    schema = f"fwrep_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    options = f"-csearch_path%3D{schema}" + ("" if durable else "%20-csynchronous_commit%3Doff")
    try:
        yield (f"postgresql+psycopg://postgres@127.0.0.1:5432/{DATABASE}?options={options}",
               f"{dsn}?options=-csearch_path%3D{schema}")
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def query(dsn: str, q: str, *args: object) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return list(conn.execute(q, args).fetchall())  # type: ignore[arg-type]


# -- the test --------------------------------------------------------------------------------------

N_SOURCES = 500
EVERY = 10.0  # what this 2-core machine sustains for 500 sources with CPU to spare (see below)
TTL = 3.0
SLOW = frozenset(range(0, N_SOURCES, 25))  # 20 pages that take a second to answer
CHANGED = range(200)  # pages that change once after the baseline


def gaps_by_page(hits: list[Hit]) -> dict[int, list[float]]:
    times: dict[int, list[float]] = {}
    for h in hits:
        times.setdefault(h.page, []).append(h.at)
    return {p: [b - a for a, b in zip(sorted(ts), sorted(ts)[1:], strict=False)]
            for p, ts in times.items()}


@pytest.mark.slow
async def test_three_replicas_share_sources_deliver_once_and_take_over(tmp_path: Path) -> None:
    with replicas_database() as (db_url, dsn), PageFarm(N_SOURCES, slow=SLOW) as farm:
        async with WebhookReceiver(SECRET) as receiver:
            config = write_config(tmp_path / "figwatch.toml", db_url,
                                  [(f"s{i:03}", farm.url(i)) for i in range(N_SOURCES)],
                                  every=f"{EVERY:g}s", hook_url=receiver.url)
            replicas = [Replica(config, tmp_path / f"replica{k}.log", "--lease-ttl",
                                f"{TTL:g}s", "--grace", "5") for k in range(3)]
            try:
                await _exercise(farm, receiver, replicas, dsn)
            finally:
                for r in replicas:
                    r.kill()


async def _exercise(farm: PageFarm, receiver: WebhookReceiver, replicas: list[Replica],
                    dsn: str) -> None:
    owners = [str(ready["replica"]) for ready in
              await asyncio.gather(*(r.wait_ready(60) for r in replicas))]
    started = time.monotonic()
    # Pages change once their baseline is in (the first ones are due first); each change
    # must reach the receiver exactly once.
    await wait_until(lambda: farm.served_current(CHANGED, 0), 45, "the first baselines")
    changed_at = time.monotonic()
    for i in CHANGED:
        farm.change(i)
    await wait_until(lambda: farm.served_current(range(N_SOURCES), 0), 45,
                     "the baseline fetch of every page")
    baseline_done = time.monotonic()
    await wait_until(lambda: farm.served_current(CHANGED, changed_at), EVERY * 2 + 10,
                     "the changed pages to be fetched again")
    hooks = await receiver.wait_for(len(CHANGED), timeout=20)
    steady_end = time.monotonic()
    ids = [h.headers["webhook-id"] for h in hooks]
    assert len(ids) == len(set(ids)) == len(CHANGED), "an alert was delivered twice"
    assert all(h.verified for h in hooks)
    assert {(h.body["data"]["url"], h.body["data"]["new_value"]) for h in hooks} == {
        (farm.url(i), str(page_value(i, 1))) for i in CHANGED}
    await wait_until(lambda: query(dsn, "SELECT state, count(*) FROM alerts GROUP BY state")
                     == [("delivered", len(CHANGED))], 10, "every alert marked delivered")

    # No page was fetched twice within an interval; none waited behind the others for
    # longer than one pass over the watchlist takes at the rate the replicas achieved
    # (claims go oldest-due first); every replica did a share.
    hits = [h for h in farm.snapshot() if h.at <= steady_end]
    gaps = gaps_by_page(hits)
    shortest = min(g for gs in gaps.values() for g in gs)
    assert shortest >= EVERY - 0.05, f"a page was fetched twice within {shortest:.2f}s"
    rate = len(hits) / (steady_end - started)
    longest = max(g for p, gs in gaps.items() if p not in SLOW for g in gs)
    bound = max(EVERY, N_SOURCES / rate) * 1.3 + 1
    assert longest <= bound, (f"a page waited {longest:.2f}s between fetches (bound "
                              f"{bound:.1f}s); {_gap_profile(gaps, hits, started)}")
    checks = [await r.checks_done() for r in replicas]
    assert all(c >= sum(checks) / 10 for c in checks), f"checks per replica: {checks}"

    # SIGKILL a replica in the middle of checks: once their leases expire, the others
    # check those sources.  (A check the victim had already recorded set the source's
    # next due time; that source is simply not due yet, and its lease just lapses.)
    victim, owner = replicas[0], owners[0]
    in_progress = ("SELECT name FROM sources WHERE lease_owner = %s AND lease_until > now() "
                   "AND next_due_at <= now()")
    await wait_until(lambda: bool(query(dsn, in_progress, owner)), 20,
                     "the victim to be in the middle of a check", 0.02)
    victim.kill()
    killed_at = time.monotonic()
    orphans = [int(str(n)[1:]) for (n,) in query(dsn, in_progress, owner)]
    assert orphans, "the victim finished its checks before it died; nothing to take over"

    def first_hit_after_kill(i: int) -> float | None:
        return min((h.at for h in farm.snapshot() if h.page == i and h.at > killed_at),
                   default=None)

    await wait_until(lambda: all(first_hit_after_kill(i) for i in orphans), TTL + 10,
                     "the dead replica's sources to be checked again")
    took = max(first_hit_after_kill(i) or 0.0 for i in orphans) - killed_at
    assert took <= TTL + 2.0, f"takeover took {took:.2f}s (lease TTL {TTL:g}s)"
    assert not set(query(dsn, in_progress, owner)) & {(f"s{i:03}",) for i in orphans}

    for r in replicas[1:]:
        r.sigterm()
    for r in replicas[1:]:
        assert r.terminate() == 0, r.log.read_text()[-2000:]
    print(f"\nreplicas: baseline of {N_SOURCES} pages {baseline_done - started:.1f}s; "
          f"{len(hits)} fetches in {steady_end - started:.1f}s ({rate:.0f}/s), gaps "
          f"{shortest:.2f}..{longest:.2f}s (every {EVERY:g}s); {len(CHANGED)} alerts once "
          f"each; {len(orphans)} orphaned sources refetched within {took:.2f}s of SIGKILL "
          f"(TTL {TTL:g}s); checks per replica {checks}")


def _gap_profile(gaps: dict[int, list[float]], hits: list[Hit], started: float) -> str:
    flat = sorted(g for gs in gaps.values() for g in gs)
    pct = {q: flat[int(q / 100 * (len(flat) - 1))] for q in (50, 90, 99)}
    per_second: dict[int, int] = {}
    for h in hits:
        per_second[int(h.at - started)] = per_second.get(int(h.at - started), 0) + 1
    return f"gap percentiles {pct}; fetches per second {sorted(per_second.items())}"
