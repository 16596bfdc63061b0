"""Ops alerts end to end: a broken layout and a dead server, real HTTP on both sides.

The Forbes China seed snapshot is served over HTTP; figure alerts go to one
WebhookReceiver, operations alerts (`ops_channels`) to another.  The clock is
injected (an hour per cycle; the source is checked daily, so it never turns
stale here); fetches are not retried so a dead server fails at once.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import parsers
from service.fetch.client import Fetcher
from service.health import stale_summary
from service.runtime import CycleReport, Runtime
from service.settings import Settings
from service.snapshot_server import SnapshotServer
from service.webhook_receiver import WebhookReceiver
from tests import backends
from tests.backends import T0
from tests.conftest import SNAPSHOTS

db_url = backends.db_url

SECRET = "whsec_c2VjcmV0LWZvci10ZXN0cw=="
PATH = "/www.forbeschina.com/70175.html"
PAGE = (SNAPSHOTS / PATH.lstrip("/")).read_bytes()
# The site renames its article container: the site parser finds no body any more.
RELAID = PAGE.replace(b'class="article-content"', b'class="story-body"').replace(
    b"article-detail", b"story-wrap")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def make_settings(db_url: str, url: str, figures: WebhookReceiver, ops: WebhookReceiver,
                  **kw: Any) -> Settings:
    return Settings(
        database_url=db_url, allow_private_targets=True, respect_robots=False, per_host_delay=0,
        sources=({"name": "forbes", "url": url, "parser": "forbeschina", "every": "1d"},),
        channels=({"name": "desk", "kind": "webhook", "url": figures.url, "secret": SECRET},
                  {"name": "pager", "kind": "webhook", "url": ops.url, "secret": SECRET}),
        ops_channels=("pager",),
        rules=({"channels": ["desk"],
                "kinds": ["changed", "new", "removed", "reverted", "conflict"]},),
        **kw)


@pytest.fixture
async def receivers() -> AsyncIterator[tuple[WebhookReceiver, WebhookReceiver]]:
    async with WebhookReceiver(SECRET) as figures, WebhookReceiver(SECRET) as ops:
        yield figures, ops


def types(receiver: WebhookReceiver) -> list[str]:
    return [h.body["type"] for h in receiver.received]


async def cycle(runtime: Runtime, clock: Clock) -> CycleReport:
    clock.now += timedelta(hours=1)
    return await runtime.cycle()


async def test_layout_change_sends_one_parser_suspect_and_no_removed(
        db_url: str, receivers: tuple[WebhookReceiver, WebhookReceiver]) -> None:
    assert parsers.extract(RELAID, parser="forbeschina").is_empty()  # the premise
    figures, ops = receivers
    clock = Clock()
    with SnapshotServer({PATH: PAGE}) as site:
        settings = make_settings(db_url, site.base_url + PATH, figures, ops,
                                 parser_suspect_after=2)
        async with Runtime(settings, clock=clock) as runtime:
            assert (await cycle(runtime, clock)).pages[0].outcome == "ok"
            stored = len(runtime.store.figures("forbes"))
            site.pages[PATH] = RELAID
            outcomes = []
            for _ in range(3):
                report = await cycle(runtime, clock)
                outcomes.append(report.pages[0].outcome)
            assert outcomes == ["parse_suspect"] * 3
            assert report.pages[0].error == "article body is empty (parser forbeschina)"
            assert types(ops) == ["ops.parser_suspect"]
            (hook,) = ops.received
            assert hook.verified
            assert hook.body["data"] == {
                "kind": "parser_suspect", "source": "forbes", "url": site.base_url + PATH,
                "error": "article body is empty (parser forbeschina)",
                "consecutive_failures": 2, "detected_at": (T0 + timedelta(hours=3)).isoformat()}
            # No figure was "removed": the suspect fetches changed nothing.
            assert figures.requests == 0
            assert len(runtime.store.figures("forbes")) == stored
            site.pages[PATH] = PAGE  # the parser is fixed (or the site reverted)
            report = await cycle(runtime, clock)
            assert report.pages[0].outcome in ("ok", "unchanged")
            assert report.pages[0].changes == [] and figures.requests == 0
            assert types(ops) == ["ops.parser_suspect"]


class Switchable:
    """A one-page site on a fixed port that can stop answering (connection refused)."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.port = 0
        self._httpd: ThreadingHTTPServer | None = None

    @contextmanager
    def running(self) -> Iterator[None]:
        page = self.body

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, format: str, *args: object) -> None:
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        httpd.daemon_threads = True
        self.port = httpd.server_address[1]
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        try:
            yield
        finally:
            httpd.shutdown()
            httpd.server_close()
            thread.join(timeout=5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PATH}"


async def test_dead_server_alerts_once_after_max_failures_and_once_on_recovery(
        db_url: str, receivers: tuple[WebhookReceiver, WebhookReceiver]) -> None:
    figures, ops = receivers
    clock = Clock()
    site = Switchable(PAGE)
    with site.running():
        url = site.url
    settings = make_settings(db_url, url, figures, ops, max_failures=3)
    async with Runtime(settings, clock=clock, fetcher=Fetcher(settings, retries=0)) as runtime:
        with site.running():
            assert (await cycle(runtime, clock)).pages[0].outcome == "ok"
        outcomes = [(await cycle(runtime, clock)).pages[0].outcome for _ in range(2)]
        assert outcomes == ["failed", "failed"] and types(ops) == []
        assert (await cycle(runtime, clock)).pages[0].outcome == "failed"
        assert types(ops) == ["ops.source_error"]
        await cycle(runtime, clock)  # still down: not alerted again every cycle
        assert types(ops) == ["ops.source_error"]
        data = ops.received[0].body["data"]
        assert (data["kind"], data["source"], data["url"], data["consecutive_failures"]) == (
            "source_error", "forbes", url, 3)
        assert url in data["error"] and data["detected_at"] == (
            T0 + timedelta(hours=4)).isoformat()
        with site.running():
            report = await cycle(runtime, clock)
            assert report.pages[0].outcome in ("ok", "unchanged")
        assert types(ops) == ["ops.source_error", "ops.source_recovered"]
        assert ops.received[1].body["data"]["consecutive_failures"] == 0
        assert all(h.verified for h in ops.received)
        # The outage made no figure "removed" and nothing went to the figure channel.
        assert figures.requests == 0
        assert len(runtime.store.figures("forbes")) > 0


async def test_a_source_left_unchecked_turns_stale_once(
        db_url: str, receivers: tuple[WebhookReceiver, WebhookReceiver]) -> None:
    figures, ops = receivers
    clock = Clock()
    with SnapshotServer({PATH: PAGE, "/other.html": PAGE}) as site:
        settings = make_settings(db_url, site.base_url + PATH, figures, ops)
        settings = settings.model_copy(update={"sources": (
            *settings.sources,
            settings.sources[0].model_copy(update={"name": "other",
                                                   "url": site.base_url + "/other.html"}))})
        async with Runtime(settings, clock=clock) as runtime:
            runtime.store.sync_sources(settings.sources, at=clock())
            forbes = [settings.source("forbes")]
            clock.now += timedelta(hours=47)  # "other" is due daily and never checked
            await runtime.cycle(forbes)
            assert stale_summary(runtime.store, settings, clock()) == (0, 0.0)
            assert types(ops) == []
            clock.now += timedelta(hours=2)  # past 2x its interval
            await runtime.cycle(forbes)
            assert stale_summary(runtime.store, settings, clock()) == (1, 49 * 3600.0)
            assert types(ops) == ["ops.source_stale"]
            data = ops.received[0].body["data"]
            assert (data["source"], data["url"]) == ("other", site.base_url + "/other.html")
            clock.now += timedelta(hours=1)
            await runtime.cycle(forbes)
            assert types(ops) == ["ops.source_stale"]  # once per staleness episode
            assert figures.requests == 0
