"""Soak `figwatch run`: N minutes over 2,000 local sources, watching memory, descriptors
and how long a page change takes to reach a webhook.

    .venv/bin/python bench/soak.py                 # 10 minutes, SQLite
    .venv/bin/python bench/soak.py --minutes 2 --sources 1000 --every 45s
    .venv/bin/python bench/soak.py --database-url postgresql+psycopg://postgres@127.0.0.1/soak

A generated-pages server and a webhook receiver run in this process; `figwatch
run` runs as a child process.  After every page's first fetch (its baseline),
the clock starts, and every few seconds a handful of pages change.
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
import base64
import contextlib
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.settings import parse_duration  # noqa: E402
from service.webhook_receiver import Received, WebhookReceiver  # noqa: E402

SECRET = "whsec_" + base64.b64encode(b"soak-secret-0123456789abcdef").decode()
FIGWATCH = Path(sys.executable).with_name("figwatch")


def page(i: int, version: int) -> bytes:
    value = 100 + i % 97 + version * 3
    return (f"<html><head><title>Company {i}</title></head><body><article>"
            f"<h1>Company {i} raises money</h1><p>Company {i} raised ${value} million in a "
            f"Series B funding round in 2024, the company said.</p><p>It plans to hire more "
            f"engineers next year.</p></article></body></html>").encode()


@dataclass
class Farm:
    """Serves /p/<i>; `change(i)` bumps a page's version and remembers when."""

    n: int
    versions: list[int] = field(default_factory=list)
    changed_at: dict[tuple[int, int], float] = field(default_factory=dict)
    served_at: dict[tuple[int, int], float] = field(default_factory=dict)  # first 200 of a version
    hits: int = 0
    seen: set[int] = field(default_factory=set)  # pages fetched at least once
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.versions = [0] * self.n
        farm = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                i = int(self.path.rsplit("/", 1)[-1])
                with farm.lock:
                    version = farm.versions[i]
                    farm.hits += 1
                    farm.seen.add(i)
                etag = f'"{i}-{version}"'
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                with farm.lock:
                    farm.served_at.setdefault((i, version), time.time())
                body = page(i, version)
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", etag)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.request_queue_size = 1024
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/p/{i}"

    def change(self, i: int) -> None:
        with self.lock:
            self.versions[i] += 1
            self.changed_at[(i, self.versions[i])] = time.time()


def write_config(path: Path, database_url: str, farm: Farm, every: str, hook: str) -> None:
    lines = [f'database_url = "{database_url}"', "allow_private_targets = true",
             "respect_robots = false", "per_host_delay = 0", "per_host_concurrency = 8",
             "max_concurrency = 8", "timeout = 20"]
    for i in range(farm.n):
        lines += ["[[sources]]", f'name = "soak{i:05}"', f'url = "{farm.url(i)}"',
                  f'every = "{every}"']
    lines += ["[[channels]]", 'name = "hook"', 'kind = "webhook"', f'url = "{hook}"',
              f'secret = "{SECRET}"', "[[rules]]", 'channels = ["hook"]', 'kinds = ["changed"]']
    path.write_text("\n".join(lines) + "\n")


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


async def checks_per_second(client: httpx.AsyncClient, url: str) -> float:
    text = (await client.get(f"{url}/metrics")).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("figwatch_checks_total{"))


async def soak(args: argparse.Namespace) -> int:
    farm = Farm(args.sources)
    rng = random.Random(1)
    arrivals: dict[tuple[int, int], float] = {}
    ids: list[str] = []

    def on_receive(hook: Received) -> None:
        data = hook.body["data"]
        i = int(data["url"].rsplit("/", 1)[-1])
        version = (int(data["new_value"]) // 1_000_000 - 100 - i % 97) // 3
        arrivals.setdefault((i, version), time.time())
        ids.append(hook.headers["webhook-id"])

    with tempfile.TemporaryDirectory(prefix="figwatch-soak-") as tmp:
        work = Path(tmp)
        db = args.database_url or f"sqlite:///{work / 'soak.db'}"
        async with WebhookReceiver(SECRET, on_receive=on_receive) as receiver:
            write_config(work / "figwatch.toml", db, farm, args.every, receiver.url)
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            log = (work / "run.log").open("wb")
            proc = subprocess.Popen([str(FIGWATCH), "run", "--config", str(work / "figwatch.toml"),
                                     "--listen", f"127.0.0.1:{port}", "--log-level", "WARNING"],
                                    stdout=subprocess.DEVNULL, stderr=log, cwd=work)
            base = f"http://127.0.0.1:{port}"
            try:
                return await _run(args, proc, base, farm, rng, arrivals, ids, work)
            finally:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(timeout=60)
                    if proc.poll() is None:
                        proc.kill()
                log.close()


async def _run(args: argparse.Namespace, proc: subprocess.Popen[bytes], base: str, farm: Farm,
               rng: random.Random, arrivals: dict[tuple[int, int], float], ids: list[str],
               work: Path) -> int:
    async with httpx.AsyncClient(timeout=10) as client:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                print((work / "run.log").read_text()[-3000:], file=sys.stderr)
                return 2
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(f"{base}/readyz")).status_code == 200:
                    break
            if time.monotonic() > deadline:
                print("figwatch run did not become ready", file=sys.stderr)
                return 2
            await asyncio.sleep(0.2)  # polling with a deadline
        print(f"figwatch run pid {proc.pid}: {args.sources} sources every {args.every}, "
              f"{args.minutes} min after the baseline", flush=True)
        # The first fetch of a page is its baseline (no alerts): edit only after it.
        began = time.monotonic()
        while len(farm.seen) < args.sources:
            if proc.poll() is not None or time.monotonic() - began > 900:
                print("figwatch run died or the baseline took over 15 minutes", file=sys.stderr)
                return 2
            await asyncio.sleep(0.5)  # polling with a deadline
        print(f"baseline of {args.sources} pages took {time.monotonic() - began:.0f}s; "
              f"RSS {rss_kib(proc.pid) / 1024:.1f} MiB, fds {open_fds(proc.pid)}", flush=True)
        samples: list[tuple[int, int, float]] = []
        start = time.monotonic()
        next_sample = start + 60
        last_checks, last_t = await checks_per_second(client, base), start
        changes_made = 0
        stop_changes = start + args.minutes * 60 - parse_duration(args.every).total_seconds() - 20
        while time.monotonic() < start + args.minutes * 60:
            if time.monotonic() < stop_changes:
                for i in rng.sample(range(args.sources), args.changes):
                    farm.change(i)
                    changes_made += 1
            await asyncio.sleep(args.change_every)  # the pace of edits, not a synchronisation
            if time.monotonic() >= next_sample:
                checks = await checks_per_second(client, base)
                now = time.monotonic()
                rate = (checks - last_checks) / (now - last_t)
                last_checks, last_t = checks, now
                samples.append((rss_kib(proc.pid), open_fds(proc.pid), rate))
                print(f"minute {len(samples):2}: rss {samples[-1][0] / 1024:7.1f} MiB, "
                      f"fds {samples[-1][1]:4}, {rate:6.1f} checks/s, "
                      f"{len(ids)} webhooks", flush=True)
                next_sample += 60
        # Let the last edits arrive (they were made at least one interval ago).
        grace = time.monotonic() + 30
        while len(set(arrivals)) < expected_alerts(farm) and time.monotonic() < grace:
            await asyncio.sleep(0.5)  # polling with a deadline
    return report(samples, farm, arrivals, ids, changes_made)


def expected_alerts(farm: Farm) -> int:
    """Edits whose new version was fetched: each must alert once.  A page edited twice
    before its next fetch alerts once, for the second value."""
    with farm.lock:
        return sum(1 for k in farm.changed_at if k in farm.served_at)


def report(samples: list[tuple[int, int, float]], farm: Farm,
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
    sys.exit(asyncio.run(soak(parser.parse_args())))


if __name__ == "__main__":
    main()
