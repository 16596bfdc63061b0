"""A real HTTP server on 127.0.0.1 for fetcher tests, shared by the test session.

Each test registers its own paths (`server.route(...)` returns a fresh URL),
so tests never see each other's replies.  Replies are served in order, the
last one repeating.  The server answers conditional requests the way a real
one does: a reply carrying an ETag or Last-Modified becomes a 304 when the
request's If-None-Match / If-Modified-Since matches it.  `/robots.txt`
disallows `/private/` for every agent.

Use it by importing the fixture into a test module:
    from tests.fetch_server import FetchServer, fetch_server_fixture  # noqa: F401
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

ROBOTS_TXT = b"User-agent: *\nDisallow: /private/\n"


@dataclass(frozen=True)
class Reply:
    """What the server sends.  `delay` holds the reply back (released early at shutdown);
    `length=False` omits Content-Length and ends the body by closing the connection."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    length: bool = True


@dataclass(frozen=True)
class Seen:
    """A request the server received."""

    path: str
    headers: dict[str, str]
    at: float
    peer: int = 0  # the client's port: requests on one kept-alive connection share it


class FetchServer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: dict[str, list[Reply]] = {}
        self._seen: list[Seen] = []
        self._in_flight: dict[str, int] = {}
        self._max_in_flight: dict[str, int] = {}
        self._ids = itertools.count()
        self.stopping = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join()

    def route(self, *replies: Reply, path: str | None = None) -> str:
        """Serve `replies` at a new path (or `path`, under a unique prefix); return its URL."""
        full = f"/t{next(self._ids)}{path or '/page'}"
        with self._lock:
            self._routes[full] = list(replies) or [Reply()]
        return self.base_url + full

    def serve(self, path: str, *replies: Reply) -> str:
        """Serve `replies` at exactly `path` (replacing what was there); return its URL."""
        with self._lock:
            self._routes[path] = list(replies) or [Reply()]
        return self.base_url + path

    def seen(self, url: str) -> list[Seen]:
        path = urlsplit(url).path
        with self._lock:
            return [s for s in self._seen if s.path == path]

    def max_in_flight(self, url: str) -> int:
        with self._lock:
            return self._max_in_flight.get(urlsplit(url).path, 0)

    # Called from handler threads.
    def _next(self, path: str, headers: dict[str, str], peer: int = 0) -> Reply:
        with self._lock:
            self._seen.append(Seen(path, headers, time.monotonic(), peer))
            if path == "/robots.txt":
                return Reply(body=ROBOTS_TXT, headers={"Content-Type": "text/plain"})
            replies = self._routes.get(path)
            if not replies:
                return Reply(404, b"not found")
            reply = replies.pop(0) if len(replies) > 1 else replies[0]
            self._in_flight[path] = now = self._in_flight.get(path, 0) + 1
            self._max_in_flight[path] = max(self._max_in_flight.get(path, 0), now)
            return reply

    def _done(self, path: str) -> None:
        with self._lock:
            if path in self._in_flight:
                self._in_flight[path] -= 1


def _handler(server: FetchServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def handle(self) -> None:
            # The client may drop a kept-alive connection (cut-off bodies, timeouts).
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                super().handle()

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            headers = {k.lower(): v for k, v in self.headers.items()}
            reply = server._next(path, headers, self.client_address[1])
            try:
                if reply.delay:
                    server.stopping.wait(reply.delay)
                self._send(reply, headers)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up (timeout tests)
            finally:
                server._done(path)

        def _send(self, reply: Reply, request: dict[str, str]) -> None:
            status, body = reply.status, reply.body
            out = {k.lower(): v for k, v in reply.headers.items()}
            if status == 200 and _matches(out, request):
                status, body = 304, b""
            self.send_response(status)
            for key, value in reply.headers.items():
                self.send_header(key, value)
            if reply.length:
                self.send_header("Content-Length", str(len(body)))
            else:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if status != 304:
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def _matches(reply: dict[str, str], request: dict[str, str]) -> bool:
    if "etag" in reply and "if-none-match" in request:
        return request["if-none-match"] == reply["etag"]
    if "last-modified" in reply and "if-modified-since" in request:
        return request["if-modified-since"] == reply["last-modified"]
    return False


@pytest.fixture(scope="session", name="fetch_server")
def fetch_server_fixture() -> Iterator[FetchServer]:
    server = FetchServer()
    server.start()
    yield server
    server.stop()
