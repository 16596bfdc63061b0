"""Live parts for end-to-end runs of `figwatch run`, shared by tests/test_replicas.py,
tests/test_server.py and bench/soak.py.

- `PageFarm`: generated pages on 127.0.0.1 that change on demand and record every
  hit (page, time, version served), when each version was made and first served;
  slow pages on request.
- `write_config`: a figwatch.toml for those pages (and a webhook channel).
- `Replica`: one `figwatch run` child process on a free port.
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
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

import httpx

from service.snapshot_server import send_conditional

FIGWATCH = Path(sys.executable).with_name("figwatch")
SECRET = "whsec_" + base64.b64encode(b"replicas-test-secret-0123456789").decode()


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
    """The funding figure page `i` shows at `version` (what an alert carries)."""
    return (100 + i % 50 + version * 7) * 1_000_000


def page_version(i: int, value: int) -> int:
    """The version of page `i` that shows `value` (the inverse of `page_value`)."""
    return (value // 1_000_000 - 100 - i % 50) // 7


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
    body.  Thread-safe; hold `lock` to read the records while the server runs."""

    def __init__(self, n: int, *, slow: frozenset[int] = frozenset(), delay: float = 1.0,
                 render: Callable[[int, int], bytes] = page_html) -> None:
        self.n, self.slow, self.delay, self.render = n, slow, delay, render
        self.arrived: set[int] = set()  # pages whose request has arrived (before any delay)
        self.versions = [0] * n
        self.changed_at: dict[tuple[int, int], float] = {}  # (page, version) -> time.time()
        self.served_at: dict[tuple[int, int], float] = {}  # the first 200 of a version
        self.hits: list[Hit] = []
        self.lock = threading.Lock()
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
                with farm.lock:
                    farm.arrived.add(i)
                if i in farm.slow:
                    time.sleep(farm.delay)  # playing a slow site, on purpose
                with farm.lock:
                    version = farm.versions[i]
                    farm.hits.append(Hit(i, arrived, version))
                served = time.time()
                if send_conditional(self, farm.render(i, version), f'"{i}-{version}"',
                                    "text/html; charset=utf-8"):
                    with farm.lock:
                        farm.served_at.setdefault((i, version), served)

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
        with self.lock:
            self.versions[i] += 1
            self.changed_at[(i, self.versions[i])] = time.time()
            return self.versions[i]

    def snapshot(self) -> list[Hit]:
        with self.lock:
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
                 every: str, hook_url: str | None = None, timeout: float = 10,
                 extra: str = "") -> Path:
    """A config of `sources` (name, url) every `every`; with `hook_url`, every change alerts
    a webhook signed with SECRET."""
    lines = [
        f'database_url = "{database_url}"',
        "allow_private_targets = true",
        "respect_robots = false",
        "per_host_delay = 0",
        "per_host_concurrency = 8",
        "max_concurrency = 8",
        f"timeout = {timeout:g}",
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

    async def checks_done(self) -> float:
        """figwatch_checks_total summed over results, from the replica's /metrics."""
        async with httpx.AsyncClient(timeout=5.0) as client:
            text = (await client.get(f"{self.url}/metrics")).text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("figwatch_checks_total{"))

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
