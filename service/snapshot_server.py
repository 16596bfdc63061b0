"""A small HTTP server for bundled snapshot pages, used by the demo and the tests.

It serves an in-memory map of path → bytes so that a caller can swap a page
between cycles (the demo's "edited version"), and answers conditional GETs
with ETags like a well-behaved site.
"""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType


def send_conditional(handler: BaseHTTPRequestHandler, body: bytes, etag: str,
                     content_type: str) -> bool:
    """Answer a GET with `body`, or with 304 Not Modified when the request's If-None-Match
    is `etag`, as a well-behaved site does; True when the body was sent."""
    if handler.headers.get("If-None-Match") == etag:
        handler.send_response(304)
        handler.send_header("ETag", etag)
        handler.send_header("Content-Length", "0")
        handler.end_headers()
        return False
    handler.send_response(200)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.send_header("ETag", etag)
    handler.end_headers()
    handler.wfile.write(body)
    return True


class SnapshotServer:
    """Serve `pages` (URL path → body) on 127.0.0.1 in a background thread."""

    def __init__(self, pages: dict[str, bytes] | None = None) -> None:
        self.pages: dict[str, bytes] = dict(pages or {})
        self.hits: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                server.hits.append(path)
                body = server.pages.get(path)
                if body is None:
                    self.send_error(404, "not found")
                    return
                etag = '"' + hashlib.sha1(body).hexdigest() + '"'
                ctype = "application/rss+xml" if path.endswith((".xml", ".rss")) else "text/html"
                send_conditional(self, body, etag, f"{ctype}; charset=utf-8")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @classmethod
    def from_directory(cls, root: Path) -> SnapshotServer:
        pages = {"/" + p.relative_to(root).as_posix(): p.read_bytes()
                 for p in sorted(root.rglob("*")) if p.is_file()}
        return cls(pages)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> SnapshotServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> SnapshotServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
