"""Scale-out on the machine's PostgreSQL: three `figwatch run` processes share 500 sources.

Real parts only: a generated-pages HTTP server on 127.0.0.1 that records every
hit, a real webhook receiver verifying signatures, three real `figwatch run`
processes, and PostgreSQL (its own database `figwatch_replicas`, a fresh
schema per run).  It shows that every source is fetched once per interval by
exactly one replica (no two hits on a page closer than `every`), that every
alert is delivered exactly once (unique webhook-id), and that when a replica is
SIGKILLed its leased sources are taken over within the lease TTL.

The helpers (`PageFarm`, `Replica`, `write_config`) are shared with
tests/test_server.py.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

import httpx
import psycopg
import pytest
from psycopg import sql

from service.webhook_receiver import WebhookReceiver

ROOT = Path(__file__).resolve().parents[1]
FIGWATCH = Path(sys.executable).with_name("figwatch")
SECRET = "whsec_" + base64.b64encode(b"replicas-test-secret-0123456789").decode()
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"
DATABASE = "figwatch_replicas"


# -- a server of generated pages that records every hit --------------------------------------

@dataclass(frozen=True, slots=True)
class Hit:
    page: int
    at: float  # time.monotonic() when the request arrived
    version: int  # the version served (304s serve the version the client has)


def page_html(i: int, version: int) -> bytes:
    value = 100 + i % 50 + version * 7
    return (f"<html><head><title>Acme {i}</title></head><body><article>"
            f"<h1>Acme Robotics {i} funding update</h1>"
            f"<p>Acme Robotics raised ${value} million in a Series B funding round in 2024, "
            f"the company said on Monday.</p>"
            f"<p>The startup plans to hire more engineers next year.</p>"
            f"</article></body></html>").encode()


def page_value(i: int, version: int) -> int:
    return (100 + i % 50 + version * 7) * 1_000_000


class _QuietServer(ThreadingHTTPServer):
    """A client killed mid-request (the SIGKILLed replica) is expected, not an error."""

    daemon_threads = True
    request_queue_size = 1024

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class PageFarm:
    """`n` pages at /p/<i>, each with a version bumped by `change(i)`; answers conditional
    GETs with ETags; pages in `slow` take `delay` seconds; `render(i, version)` makes the
    body.  Thread-safe."""

    def __init__(self, n: int, *, slow: frozenset[int] = frozenset(), delay: float = 1.0,
                 render: Callable[[int, int], bytes] = page_html) -> None:
        self.n, self.slow, self.delay, self.render = n, slow, delay, render
        self.arrived: set[int] = set()  # pages whose request has arrived (before any delay)
        self.versions = [0] * n
        self.changed_at: dict[tuple[int, int], float] = {}  # (page, version) -> time.time()
        self.hits: list[Hit] = []
        self._lock = threading.Lock()
        farm = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: the fetcher reuses connections
            disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms stall

            def do_GET(self) -> None:
                arrived = time.monotonic()
                try:
                    i = int(self.path.rsplit("/", 1)[-1])
                    assert self.path.startswith("/p/") and 0 <= i < farm.n
                except (ValueError, AssertionError):
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                with farm._lock:
                    farm.arrived.add(i)
                if i in farm.slow:
                    time.sleep(farm.delay)  # playing a slow site, on purpose
                with farm._lock:
                    version = farm.versions[i]
                    farm.hits.append(Hit(i, arrived, version))
                etag = f'"{i}-{version}"'
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = farm.render(i, version)
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", etag)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def url(self, i: int) -> str:
        return f"{self.base_url}/p/{i}"

    def change(self, i: int) -> int:
        with self._lock:
            self.versions[i] += 1
            self.changed_at[(i, self.versions[i])] = time.time()
            return self.versions[i]

    def snapshot(self) -> list[Hit]:
        with self._lock:
            return list(self.hits)

    def served_current(self, pages: range | list[int], since: float) -> bool:
        """Every page in `pages` was served its current version after `since`."""
        seen = {h.page for h in self.snapshot() if h.at >= since and h.version ==
                self.versions[h.page]}
        return all(i in seen for i in pages)

    def __enter__(self) -> PageFarm:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def write_config(path: Path, database_url: str, sources: list[tuple[str, str]], *,
                 every: str, hook_url: str | None = None, extra: str = "") -> Path:
    lines = [
        f'database_url = "{database_url}"',
        "allow_private_targets = true",
        "respect_robots = false",
        "per_host_delay = 0",
        "per_host_concurrency = 8",
        "max_concurrency = 8",
        "timeout = 10",
        extra,
    ]
    for name, url in sources:
        lines += ["[[sources]]", f'name = "{name}"', f'url = "{url}"', f'every = "{every}"']
    if hook_url:
        lines += ["[[channels]]", 'name = "hook"', 'kind = "webhook"', f'url = "{hook_url}"',
                  f'secret = "{SECRET}"', "[[rules]]", 'channels = ["hook"]',
                  'kinds = ["changed"]']
    path.write_text("\n".join(lines) + "\n")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Replica:
    """One `figwatch run` process with its own port; stderr (JSON logs) goes to a file."""

    def __init__(self, config: Path, log: Path, *args: str, env: dict[str, str] | None = None
                 ) -> None:
        self.port = free_port()
        self._terminated = False
        self.log = log
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("FIGWATCH_")}
        full_env.update(env or {})
        with log.open("wb") as err:
            self.proc = subprocess.Popen(
                [str(FIGWATCH), "run", "--config", str(config), "--listen",
                 f"127.0.0.1:{self.port}", *args],
                stdout=subprocess.DEVNULL, stderr=err, env=full_env, cwd=config.parent)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def wait_ready(self, timeout: float = 30.0) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                assert self.proc.poll() is None, f"replica exited:\n{self.log.read_text()}"
                with contextlib.suppress(httpx.TransportError):
                    r = await client.get(f"{self.url}/readyz")
                    if r.status_code == 200:
                        return dict(r.json())
                assert time.monotonic() < deadline, f"not ready:\n{self.log.read_text()}"
                await asyncio.sleep(0.1)  # polling with a deadline

    def sigterm(self) -> None:
        """Send SIGTERM once (a second one would cut the grace period short)."""
        if self.proc.poll() is None and not self._terminated:
            self.proc.send_signal(signal.SIGTERM)
            self._terminated = True

    def terminate(self, timeout: float = 20.0) -> int:
        """SIGTERM (once) and the exit status."""
        self.sigterm()
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


async def wait_until(predicate: object, timeout: float, what: str, interval: float = 0.1) -> None:
    """Poll `predicate()` until true; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        await asyncio.sleep(interval)  # polling with a deadline


# -- PostgreSQL ----------------------------------------------------------------------------------

def _pg_unreachable() -> str | None:
    try:
        with psycopg.connect(ADMIN_DSN, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL at 127.0.0.1:5432 is unreachable: {exc}".strip()
    return None


@contextlib.contextmanager
def replicas_database(*, durable: bool = False) -> Iterator[tuple[str, str]]:
    """(SQLAlchemy URL, psycopg DSN) of a fresh schema in the `figwatch_replicas` database.

    Unless `durable`, the replicas' connections commit with `synchronous_commit=off`:
    this machine's disk takes ~5 ms per WAL flush, which would cap all replicas
    together at ~45 checks/s.  Leases, locks and visibility are the same either way;
    only durability across a PostgreSQL crash differs, which is not under test.
    """
    reason = _pg_unreachable()
    if reason:
        pytest.skip(reason)
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
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
    checks = [await _checks_done(r) for r in replicas]
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


async def _checks_done(replica: Replica) -> float:
    """figwatch_checks_total summed over results, from the replica's /metrics."""
    async with httpx.AsyncClient(timeout=5.0) as client:
        text = (await client.get(f"{replica.url}/metrics")).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("figwatch_checks_total{"))
