"""Observations stored and diffed per second, and webhook deliveries per second.

    .venv/bin/python bench/diff.py                       # SQLite file, then PostgreSQL
    .venv/bin/python bench/diff.py --backend sqlite --pages 300 --alerts 2000
    .venv/bin/python bench/diff.py --only dispatch       # part 2 only

Part 1 ingests `--pages` pages of real seed figures (the bundled snapshots,
parsed and extracted once up front), first as baselines, then again with a
tenth of the values changed, and reports observations per second through
`Store.ingest` (diff, observations, changes, series, outbox rows in one
transaction per page).  Part 2 queues `--alerts` webhook alerts and times the
dispatcher delivering them, signed, to a local receiver that verifies them.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import parsers  # noqa: E402
from bench._pg import fresh_database  # noqa: E402
from parsers.figures import Figure  # noqa: E402
from service.alerts import PendingAlert  # noqa: E402
from service.channels import build_channels  # noqa: E402
from service.outbox import Dispatcher  # noqa: E402
from service.pages import figures_of  # noqa: E402
from service.settings import RuleConfig, Settings, SourceConfig  # noqa: E402
from service.store import Store  # noqa: E402
from service.webhook_receiver import WebhookReceiver  # noqa: E402


def seed_figures() -> list[tuple[bytes, list[Figure]]]:
    out = []
    for path in sorted((ROOT / "seeds" / "snapshots").rglob("*.html")):
        body = path.read_bytes()
        out.append((body, figures_of(parsers.extract(body))))
    return out


def bump(figs: list[Figure], every: int) -> list[Figure]:
    return [dataclasses.replace(f, value=f.value * Decimal("1.1")) if i % every == 0 else f
            for i, f in enumerate(figs)]


def bench_ingest(url: str, pages: int) -> None:
    seeds = seed_figures()
    store = Store(url)
    store.migrate()
    store.sync_sources([SourceConfig(name=f"s{i}", url=f"https://example.com/{i}")
                        for i in range(pages)])
    rules = (RuleConfig(channels=("hook",)),)
    for label, every in (("baseline", 0), ("10% changed", 10)):
        n_obs = changes = 0
        start = time.perf_counter()
        for i in range(pages):
            body, figs = seeds[i % len(seeds)]
            figs = bump(figs, every) if every else figs
            res = store.ingest(source=f"s{i}", url=f"https://example.com/{i}",
                               at=datetime.now(UTC), figures=figs, body=body + label.encode(),
                               content_hash=hashlib.sha256(body + label.encode()).hexdigest(),
                               etag=None, last_modified=None, status=200, rules=rules,
                               keep_versions=3)
            n_obs += len(figs)
            changes += len(res.changes)
        secs = time.perf_counter() - start
        print(f"  ingest {label:12}: {n_obs:6,} observations in {secs:5.1f} s = "
              f"{n_obs / secs:7,.0f} obs/s  ({pages / secs:5.0f} pages/s, {changes:,} changes)")
    store.close()


async def bench_dispatch(url: str, n: int) -> None:
    secret = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQ="
    store = Store(url)
    store.migrate()
    now = datetime.now(UTC)
    store.enqueue_alerts([
        PendingAlert(id=str(uuid.uuid4()), channel="hook", type="figure.changed",
                     data={"kind": "changed", "source": "bench", "new_value": str(i)},
                     created_at=now)
        for i in range(n)
    ])
    statements = commits = 0

    def count_statement(*_: object) -> None:
        nonlocal statements
        statements += 1

    def count_commit(*_: object) -> None:
        nonlocal commits
        commits += 1

    async with WebhookReceiver(secret) as receiver:
        settings = Settings(database_url=url, allow_private_targets=True, channels=(
            {"name": "hook", "kind": "webhook", "url": receiver.url, "secret": secret},))
        channels = build_channels(settings)
        dispatcher = Dispatcher(store, channels, give_up_after=timedelta(hours=1),
                                batch_size=200, concurrency=32)
        sa.event.listen(store.engine, "before_cursor_execute", count_statement)
        sa.event.listen(store.engine, "commit", count_commit)
        start, cpu = time.perf_counter(), time.process_time()
        delivered = 0
        while delivered < n:
            report = await dispatcher.run_once()
            if report.total == 0:
                break
            delivered += report.delivered
        secs, cpu = time.perf_counter() - start, time.process_time() - cpu
        sa.event.remove(store.engine, "before_cursor_execute", count_statement)
        sa.event.remove(store.engine, "commit", count_commit)
        await channels.aclose()
    ok = sum(1 for r in receiver.received if r.verified)
    ids = len({r.headers["webhook-id"] for r in receiver.received})
    print(f"  dispatch: {delivered:,} webhooks in {secs:5.1f} s = {delivered / secs:6,.0f}/s "
          f"({ok:,} verified by the receiver, {ids:,} distinct ids)")
    # CPU time counts sender and receiver (one process): throughput a busy machine hides.
    per = max(delivered, 1)
    print(f"            {statements / per:.3f} SQL statements and {commits / per:.3f} commits "
          f"per delivery; {receiver.connections:,} connections to the receiver; "
          f"{cpu * 1000 / per:.2f} ms CPU per delivery ({per / max(cpu, 1e-9):,.0f}/CPU-s)")
    store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=300)
    ap.add_argument("--alerts", type=int, default=2000)
    ap.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--only", choices=("ingest", "dispatch"),
                    help="run one part (default: both)")
    args = ap.parse_args()
    for backend in (("sqlite", "postgresql") if args.backend == "both" else (args.backend,)):
        if backend == "postgresql":
            ingest_db = fresh_database("figwatch_bench_diff")
            outbox_db = fresh_database("figwatch_bench_outbox")
            if ingest_db is None or outbox_db is None:
                continue
            urls = (ingest_db, outbox_db)
        else:
            tmp = tempfile.mkdtemp(prefix="fw-diff-")
            urls = (f"sqlite:///{tmp}/ingest.db", f"sqlite:///{tmp}/outbox.db")
        print(f"{backend}:")
        if args.only != "dispatch":
            bench_ingest(urls[0], args.pages)
        if args.only != "ingest":
            asyncio.run(bench_dispatch(urls[1], args.alerts))


if __name__ == "__main__":
    main()
