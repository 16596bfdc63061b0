"""Soak `figwatch run`: N minutes over 2,000 local sources, watching memory, descriptors
and how long a page change takes to reach a webhook.

    .venv/bin/python bench/soak.py                 # 10 minutes, SQLite
    .venv/bin/python bench/soak.py --minutes 2 --sources 1000 --every 45s
    .venv/bin/python bench/soak.py --database-url postgresql+psycopg://postgres@127.0.0.1/soak

A generated-pages server and a webhook receiver run in this process; `figwatch
run` runs as a child process (both from tests/live.py).  After every page's
first fetch (its baseline), the clock starts, and every few seconds a handful
of pages change.
Each minute the child's RSS (/proc/PID/status) and open descriptors
(/proc/PID/fd) are sampled.  At the end it prints:

- RSS per minute; "flat" when the last minute is within 10% of the second
  (the first minute is warm-up: caches, connection pools);
- open descriptors per minute; "steady" when the last is at most the second + 10;
- change-to-webhook latency p50/p99 (from the edit on the server to the webhook
  arriving: includes waiting for the source's next due time, up to `every`),
  and fetch-to-webhook p50/p99 (from the request that served the edit:
  parse, store, diff, outbox and delivery);
- checks per second and the counts of alerts made and received.

Exit status 0 when memory is flat, descriptors steady and every alert arrived once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.settings import parse_duration  # noqa: E402
from service.webhook_receiver import Received, WebhookReceiver  # noqa: E402
from tests.live import SECRET, PageFarm, Replica, page_version, write_config  # noqa: E402


def rss_kib(pid: int) -> int:
    match = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
    return int(match.group(1)) if match else 0


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def soak(args: argparse.Namespace) -> int:
    rng = random.Random(1)
    arrivals: dict[tuple[int, int], float] = {}
    ids: list[str] = []

    def on_receive(hook: Received) -> None:
        data = hook.body["data"]
        i = int(data["url"].rsplit("/", 1)[-1])
        arrivals.setdefault((i, page_version(i, int(data["new_value"]))), time.time())
        ids.append(hook.headers["webhook-id"])

    with tempfile.TemporaryDirectory(prefix="figwatch-soak-") as tmp, \
            PageFarm(args.sources) as farm:
        work = Path(tmp)
        db = args.database_url or f"sqlite:///{work / 'soak.db'}"
        async with WebhookReceiver(SECRET, on_receive=on_receive) as receiver:
            config = write_config(work / "figwatch.toml", db,
                                  [(f"soak{i:05}", farm.url(i)) for i in range(farm.n)],
                                  every=args.every, hook_url=receiver.url, timeout=20,
                                  extra=f"parse_workers = {args.parse_workers}")
            run = Replica(config, work / "run.log", "--log-level", "WARNING")
            try:
                return await _run(args, run, farm, rng, arrivals, ids)
            finally:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    run.terminate(timeout=60)
                run.kill()


async def _run(args: argparse.Namespace, run: Replica, farm: PageFarm, rng: random.Random,
               arrivals: dict[tuple[int, int], float], ids: list[str]) -> int:
    try:
        await run.wait_ready(60)
    except AssertionError as exc:  # it exited or did not become ready
        print(exc, file=sys.stderr)
        return 2
    print(f"figwatch run pid {run.pid}: {args.sources} sources every {args.every}, "
          f"{args.minutes} min after the baseline", flush=True)
    # The first fetch of a page is its baseline (no alerts): edit only after it.
    began = time.monotonic()
    while len(farm.arrived) < args.sources:
        if run.proc.poll() is not None or time.monotonic() - began > 900:
            print("figwatch run died or the baseline took over 15 minutes", file=sys.stderr)
            return 2
        await asyncio.sleep(0.5)  # polling with a deadline
    print(f"baseline of {args.sources} pages took {time.monotonic() - began:.0f}s; "
          f"RSS {rss_kib(run.pid) / 1024:.1f} MiB, fds {open_fds(run.pid)}", flush=True)
    samples: list[tuple[int, int, float]] = []
    start = time.monotonic()
    next_sample = start + 60
    last_checks, last_t = await run.checks_done(), start
    changes_made = 0
    stop_changes = start + args.minutes * 60 - parse_duration(args.every).total_seconds() - 20
    while time.monotonic() < start + args.minutes * 60:
        if time.monotonic() < stop_changes:
            for i in rng.sample(range(args.sources), args.changes):
                farm.change(i)
                changes_made += 1
        await asyncio.sleep(args.change_every)  # the pace of edits, not a synchronisation
        if time.monotonic() >= next_sample:
            checks = await run.checks_done()
            now = time.monotonic()
            rate = (checks - last_checks) / (now - last_t)
            last_checks, last_t = checks, now
            samples.append((rss_kib(run.pid), open_fds(run.pid), rate))
            print(f"minute {len(samples):2}: rss {samples[-1][0] / 1024:7.1f} MiB, "
                  f"fds {samples[-1][1]:4}, {rate:6.1f} checks/s, "
                  f"{len(ids)} webhooks", flush=True)
            next_sample += 60
    # Let the last edits arrive (they were made at least one interval ago).
    grace = time.monotonic() + 30
    while len(set(arrivals)) < expected_alerts(farm) and time.monotonic() < grace:
        await asyncio.sleep(0.5)  # polling with a deadline
    return report(samples, farm, arrivals, ids, changes_made)


def expected_alerts(farm: PageFarm) -> int:
    """Edits whose new version was fetched: each must alert once.  A page edited twice
    before its next fetch alerts once, for the second value."""
    with farm.lock:
        return sum(1 for k in farm.changed_at if k in farm.served_at)


def report(samples: list[tuple[int, int, float]], farm: PageFarm,
           arrivals: dict[tuple[int, int], float], ids: list[str], changes_made: int) -> int:
    change_lat = [arrivals[k] - farm.changed_at[k] for k in arrivals if k in farm.changed_at]
    fetch_lat = [arrivals[k] - farm.served_at[k] for k in arrivals if k in farm.served_at]
    expected = expected_alerts(farm)
    print()
    ok = True
    if len(samples) >= 2:
        second, last = samples[1][0], samples[-1][0]
        flat = abs(last - second) <= 0.10 * second
        ok &= flat
        print(f"RSS: minute 2 {second / 1024:.1f} MiB, last {last / 1024:.1f} MiB "
              f"({(last - second) / second:+.1%}) -> {'flat' if flat else 'GROWING'}")
        fd2, fdl = samples[1][1], samples[-1][1]
        steady = fdl <= fd2 + 10
        ok &= steady
        print(f"open fds: minute 2 {fd2}, last {fdl} -> {'steady' if steady else 'GROWING'}")
    else:
        print("RSS/fds: run at least 2 minutes to compare")
    rates = [r for _, _, r in samples[1:]] or [r for _, _, r in samples]
    print(f"checks/s: mean {statistics.fmean(rates) if rates else float('nan'):.1f}")
    print(f"change -> webhook: p50 {percentile(change_lat, 50):.2f}s, "
          f"p99 {percentile(change_lat, 99):.2f}s, max {max(change_lat, default=float('nan')):.2f}s"
          f" (n={len(change_lat)}; includes waiting for the next due time)")
    print(f"fetch -> webhook:  p50 {percentile(fetch_lat, 50):.3f}s, "
          f"p99 {percentile(fetch_lat, 99):.3f}s (n={len(fetch_lat)})")
    dupes = len(ids) - len(set(ids))
    print(f"edits {changes_made}, fetched edits {expected}, webhooks {len(ids)}, duplicates "
          f"{dupes}")
    ok &= dupes == 0 and len(set(arrivals)) >= expected
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--sources", type=int, default=2000)
    parser.add_argument("--every", default="2m", help="source interval (default 2m)")
    parser.add_argument("--changes", type=int, default=5, help="pages edited per step")
    parser.add_argument("--change-every", type=float, default=5.0, help="seconds per step")
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp dir")
    parser.add_argument("--parse-workers", type=int, default=0,
                        help="page worker processes of `figwatch run` (default 0)")
    sys.exit(asyncio.run(soak(parser.parse_args())))


if __name__ == "__main__":
    main()
