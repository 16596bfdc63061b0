"""A stored page whose next fetch goes wrong, through the whole check (fetch, record,
health) against a real HTTP server on 127.0.0.1: each case ends as a recorded `failed`
fetch whose error names what was wrong, and the figures stored before stay as they were.
A 304 ends as `unchanged`, with nothing parsed."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from service.fetch.client import Fetcher
from service.runtime import CycleReport, Runtime
from service.settings import Settings
from service.store import Store
from tests.fetch_server import FetchServer, Reply, fetch_server_fixture  # noqa: F401

from .conftest import SNAPSHOTS

MB = 1024 * 1024
ARTICLE = (SNAPSHOTS / "www.forbeschina.com" / "70175.html").read_bytes()
FIRST = Reply(body=ARTICLE, headers={"Content-Type": "text/html; charset=utf-8",
                                     "ETag": '"v1"'})


async def _check(db: Path, url: str, **overrides: Any) -> CycleReport:
    base: dict[str, Any] = {
        "database_url": f"sqlite:///{db}", "allow_private_targets": True,
        "respect_robots": False, "per_host_delay": 0.0, "timeout": 5.0,
        "max_body_bytes": MB,
        "sources": ({"name": "forbes", "url": url, "parser": "forbeschina"},)}
    settings = Settings(**{**base, **overrides})
    fetcher = Fetcher(settings, retries=1, backoff=0.01, max_backoff=0.02)
    async with Runtime(settings, fetcher=fetcher) as runtime:
        return await runtime.cycle()


def _stored(db: Path) -> list[tuple[object, ...]]:
    store = Store(f"sqlite:///{db}")
    try:
        return sorted((f.value, f.unit, f.entity, f.metric, f.period, f.page_key)
                      for f in store.figures("forbes"))
    finally:
        store.close()


def _loop(url: str) -> list[Reply]:
    return [Reply(302, b"", headers={"Location": url})]


CASES: dict[str, tuple[Any, dict[str, Any], str]] = {
    # name: (the replies after the first, or a function of the URL giving them;
    #        settings of the second check; what its error must say)
    "429 with a Retry-After past the cap": (
        [Reply(429, b"slow down", headers={"Retry-After": "86400"})], {}, "429"),
    "500 every time": ([Reply(500, b"<h1>oops</h1>")], {}, "500"),
    "timeout": ([Reply(body=ARTICLE, delay=2.0)], {"timeout": 0.3}, "timed out"),
    "redirect loop": (_loop, {}, "redirect loop"),
    "oversized body": ([Reply(body=b"<p>" + b"x" * (2 * MB))], {}, "bytes"),
    "gzip bomb": ([Reply(body=gzip.compress(b"\0" * (64 * MB)),
                         headers={"Content-Encoding": "gzip"})], {}, "bytes"),
    "robots.txt disallows it": ([FIRST], {"respect_robots": True}, "robots.txt"),
    "private target refused": ([FIRST], {"allow_private_targets": False},
                               "refused private target"),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_a_failed_fetch_is_recorded_and_loses_nothing_stored(
        case: str, fetch_server: FetchServer, tmp_path: Path) -> None:
    then, overrides, named = CASES[case]
    path = f"/private/{case.replace(' ', '-')}/{tmp_path.name}"  # robots.txt: /private/
    url = fetch_server.serve(path, FIRST)
    db = tmp_path / "fw.db"
    first = await _check(db, url)
    assert [p.outcome for p in first.pages] == ["ok"], first.pages[0].error
    before = _stored(db)
    assert len(before) >= 10

    fetch_server.serve(urlsplit(url).path, *(then(url) if callable(then) else then))
    second = await _check(db, url, **overrides)

    [page] = second.pages
    assert page.outcome == "failed"
    assert named in (page.error or "") and url in (page.error or "")
    assert _stored(db) == before  # nothing stored was lost
    store = Store(f"sqlite:///{db}")
    try:
        [health] = store.source_health()
        with store.engine.connect() as conn:
            fetches = conn.exec_driver_sql(
                "SELECT outcome, error FROM fetches ORDER BY id").all()
    finally:
        store.close()
    assert health.consecutive_failures == 1 and named in (health.last_error or "")
    assert health.last_success_at is not None  # the first check's success stands
    assert [f.outcome for f in fetches] == ["ok", "failed"]
    assert named in (fetches[-1].error or "")


async def test_a_304_is_recorded_unchanged_and_parses_nothing(
        fetch_server: FetchServer, tmp_path: Path) -> None:
    url = fetch_server.route(FIRST)  # the server answers If-None-Match: "v1" with a 304
    db = tmp_path / "fw.db"
    first = await _check(db, url)
    before = _stored(db)
    second = await _check(db, url)
    assert [p.outcome for p in first.pages] == ["ok"]
    assert [(p.outcome, p.status, p.figure_count) for p in second.pages] == [
        ("unchanged", 304, 0)]
    assert fetch_server.seen(url)[-1].headers.get("if-none-match") == '"v1"'
    assert _stored(db) == before
