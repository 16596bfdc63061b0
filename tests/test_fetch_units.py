"""Fetcher parts without a server: the SSRF guard, robots rules, Retry-After, transport errors,
bounded decoding of compressed bodies."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import time
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from service.errors import PermanentFetchError, TransientFetchError
from service.fetch.client import Fetcher
from service.fetch.feeds import discover_links, parse_feed
from service.fetch.guard import acheck_target, check_target, refused_reason
from service.fetch.inflate import CappedDecoder, read_decoded
from service.fetch.limits import HostLimiter
from service.fetch.retry import parse_retry_after
from service.fetch.robots import RobotsCache
from service.settings import Settings


def _public(host: str, port: int) -> list[str]:
    return {"news.example": ["93.184.216.34"], "sneaky.example": ["93.184.216.34", "10.1.2.3"],
            "v6.example": ["2606:2800:220:1:248:1893:25c8:1946"]}[host]


@pytest.mark.parametrize(("url", "address"), [
    ("http://127.0.0.1:8080/x", "127.0.0.1"),
    ("http://10.0.0.5/", "10.0.0.5"),
    ("http://192.168.1.1/", "192.168.1.1"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
    ("http://[fd00:ec2::254]/", "fd00:ec2::254"),
    ("http://[::1]/", "::1"),
    ("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1"),
    ("http://[64:ff9b::a9fe:a9fe]/", "64:ff9b::a9fe:a9fe"),
    ("http://0.0.0.0/", "0.0.0.0"),
    ("http://224.0.0.1/", "224.0.0.1"),
    ("http://100.64.0.1/", "100.64.0.1"),
    ("http://sneaky.example/", "10.1.2.3"),
])
def test_guard_refuses_internal_addresses(url: str, address: str) -> None:
    with pytest.raises(PermanentFetchError, match="refused private target") as info:
        check_target(url, allow_private=False, resolver=_public)
    assert url in str(info.value) and address in str(info.value)


def test_guard_names_metadata_endpoint() -> None:
    with pytest.raises(PermanentFetchError, match="cloud metadata"):
        check_target("http://169.254.169.254/", allow_private=False)
    assert refused_reason("fd00:ec2::254") == "cloud metadata"


@pytest.mark.parametrize("url", ["ftp://news.example/x", "file:///etc/passwd",
                                 "gopher://news.example/", "news.example/no-scheme"])
def test_guard_refuses_other_schemes_even_when_private_allowed(url: str) -> None:
    with pytest.raises(PermanentFetchError, match="scheme"):
        check_target(url, allow_private=True)


def test_guard_allows_public_and_private_when_told() -> None:
    check_target("https://news.example/a", allow_private=False, resolver=_public)
    check_target("http://v6.example/a", allow_private=False, resolver=_public)
    check_target("http://127.0.0.1/", allow_private=True)


async def test_async_guard_with_async_and_sync_resolvers() -> None:
    async def resolve(host: str, port: int) -> list[str]:
        return ["10.0.0.1"]

    with pytest.raises(PermanentFetchError, match=r"10\.0\.0\.1"):
        await acheck_target("http://intranet.example/", allow_private=False, resolver=resolve)
    await acheck_target("http://news.example/", allow_private=False, resolver=_public)


def test_guard_unresolvable_host_is_transient() -> None:
    def fail(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(TransientFetchError, match="cannot resolve"):
        check_target("http://nowhere.example/", allow_private=False, resolver=fail)


def test_retry_after_seconds_and_http_date() -> None:
    now = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120
    assert parse_retry_after("Wed, 25 Nov 2026 12:00:30 GMT", now=now) == 30
    assert parse_retry_after("Wed, 25 Nov 2026 11:00:00 GMT", now=now) == 0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_robots_rules_status_and_ttl() -> None:
    replies: dict[str, Any] = {
        "https://a.example/robots.txt": (200, b"User-agent: figwatch\nDisallow: /x/\n"
                                              b"Crawl-delay: 5\n"
                                              b"User-agent: *\nDisallow: /\n"),
        "https://b.example/robots.txt": (404, b""),
        "https://c.example/robots.txt": (503, b""),
        "https://d.example/robots.txt": PermanentFetchError("https://d.example/robots.txt",
                                                            "refused"),
    }
    calls: list[str] = []

    async def get(url: str) -> tuple[int, bytes]:
        calls.append(url)
        reply = replies[url]
        if isinstance(reply, Exception):
            raise reply
        return reply  # type: ignore[no-any-return]

    clock = _Clock()
    cache = RobotsCache(get, "figwatch/0.1 (+https://figwatch.example)", ttl=100, error_ttl=10,
                        clock=clock)
    assert await cache.allowed("https://a.example/news/1")
    assert not await cache.allowed("https://a.example/x/secret")
    assert cache.crawl_delay("https://a.example/news/1") == 5
    assert await cache.allowed("https://b.example/anything")
    assert cache.crawl_delay("https://b.example/anything") is None
    assert await cache.allowed("https://c.example/anything")
    assert await cache.allowed("https://d.example/anything")
    assert len(calls) == 4
    clock.now = 50  # server errors are remembered for error_ttl only
    await cache.allowed("https://a.example/")
    await cache.allowed("https://c.example/")
    assert calls[4:] == ["https://c.example/robots.txt"]
    clock.now = 150
    await cache.allowed("https://a.example/")
    assert calls[-1] == "https://a.example/robots.txt"


async def test_connection_errors_are_transient_and_retried() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, content=b"ok", headers={"content-type": "text/plain"})

    settings = Settings(allow_private_targets=True, respect_robots=False, per_host_delay=0)
    async with Fetcher(settings, transport=httpx.MockTransport(handler), retries=2,
                       backoff=0.01) as fetcher:
        result = await fetcher.fetch("http://127.0.0.1/page")
        assert result.body == b"ok" and calls == 3
        assert [a.status for a in result.attempts] == [None, None, 200]
        assert "ConnectError" in (result.attempts[0].error or "")
        calls = -10
        with pytest.raises(TransientFetchError, match=r"http://127\.0\.0\.1/page.*ConnectError"):
            await fetcher.fetch("http://127.0.0.1/page")


def _guarded_settings() -> Settings:
    return Settings(allow_private_targets=False, respect_robots=False, per_host_delay=0)


async def test_redirect_hop_to_metadata_address_refused() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(302, headers={"location": "http://169.254.169.254/latest/"})

    async with Fetcher(_guarded_settings(), transport=httpx.MockTransport(handler),
                       resolver=_public, retries=2, backoff=0.01) as fetcher:
        with pytest.raises(PermanentFetchError,
                           match=r"refused private target 169\.254\.169\.254") as info:
            await fetcher.fetch("http://news.example/a")
    assert len(seen) == 1 and len(info.value.attempts) == 1  # type: ignore[attr-defined]


async def test_http_connects_to_the_checked_address_not_a_second_lookup() -> None:
    # A rebinding resolver would answer httpx differently; the fetcher never asks it twice.
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if request.url.path == "/a":
            return httpx.Response(301, headers={"location": "/b"})
        return httpx.Response(200, content=b"ok")

    async with Fetcher(_guarded_settings(), transport=httpx.MockTransport(handler),
                       resolver=_public) as fetcher:
        result = await fetcher.fetch("http://news.example/a")
        https = await fetcher.fetch("https://news.example/b")
    assert [(r.url.host, r.headers["host"]) for r in requests] == [
        ("93.184.216.34", "news.example"), ("93.184.216.34", "news.example"),
        ("news.example", "news.example")]  # https relies on the certificate check
    assert result.final_url == "http://news.example/b" and https.body == b"ok"


async def test_bad_redirect_location_is_permanent() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"location": "http://[::1/oops"})

    settings = Settings(allow_private_targets=True, respect_robots=False, per_host_delay=0)
    async with Fetcher(settings, transport=httpx.MockTransport(handler)) as fetcher:
        with pytest.raises(PermanentFetchError, match="invalid redirect Location") as info:
            await fetcher.fetch("http://127.0.0.1/a")
        assert len(info.value.attempts) == 1  # type: ignore[attr-defined]
        with pytest.raises(PermanentFetchError, match="invalid URL"):
            await fetcher.fetch("http://[::1/a")


async def test_cookies_are_not_kept_between_fetches() -> None:
    cookies: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        cookies.append(request.headers.get("cookie"))
        return httpx.Response(200, headers={"set-cookie": "session=abc; Path=/"})

    settings = Settings(allow_private_targets=True, respect_robots=False, per_host_delay=0)
    async with Fetcher(settings, transport=httpx.MockTransport(handler)) as fetcher:
        await fetcher.fetch("http://127.0.0.1/a")
        await fetcher.fetch("http://127.0.0.1/a")
    assert cookies == [None, None]


def test_parse_feed_atom_and_garbage() -> None:
    atom = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>
<entry><id>urn:uuid:1</id><title>One</title><link href="/p/1"/>
<updated>2024-02-01T00:00:00Z</updated>
<content type="html">&lt;p&gt;NVIDIA hit $1.79 trillion&lt;/p&gt;</content></entry>
<entry><id>urn:uuid:1</id><title>Dup id</title><link href="/p/2"/></entry>
</feed>"""
    entries = parse_feed(atom, "https://blog.example/feed")
    assert [(e.guid, e.url) for e in entries] == [("urn:uuid:1", "https://blog.example/p/1")]
    assert entries[0].content_html is not None and "$1.79 trillion" in entries[0].content_html
    assert parse_feed(b"<html><body>not a feed</body></html>", "https://x.example/") == []


def test_discover_links_rejects_bad_selector() -> None:
    with pytest.raises(ValueError, match=r"a\[\["):
        discover_links("<p></p>", "https://x.example/", "a[[", 5)


async def test_host_limiter_spaces_starts_by_the_larger_delay() -> None:
    limiter = HostLimiter(total=4, per_host=4, delay=0.0)
    starts: list[float] = []

    async def one() -> None:
        async with limiter.slot("news.example", min_delay=0.1):
            starts.append(time.monotonic())

    await asyncio.gather(one(), one(), one())
    async with limiter.slot("other.example"):  # other hosts are not held back
        starts.append(time.monotonic())
    gaps = [b - a for a, b in itertools.pairwise(starts[:3])]
    assert all(gap >= 0.09 for gap in gaps), gaps
    assert starts[3] - starts[2] < 0.09


MB = 1024 * 1024
PAGE = "<html><body><p>英伟达市值达到3.39万亿美元 ($3.39 trillion)</p></body></html>".encode()


async def _stream(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


def test_a_compression_bomb_is_inflated_no_further_than_the_room_left() -> None:
    bomb = gzip.compress(b"\0" * (64 * MB))
    decoder = CappedDecoder("http://news.example/a", "gzip")
    assert len(decoder.decode(bomb, room=MB)) == MB + 1  # not the 64 MB it holds


@pytest.mark.parametrize("chunk", [1, 7, 4096])
async def test_gzip_and_both_kinds_of_deflate_decode_in_any_chunking(chunk: int) -> None:
    raw_deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    bodies = {"gzip": gzip.compress(PAGE), "deflate": zlib.compress(PAGE),
              "DEFLATE ": raw_deflate.compress(PAGE) + raw_deflate.flush(), "identity": PAGE,
              "": PAGE}
    for encoding, body in bodies.items():
        decoded = await read_decoded("http://news.example/a", _stream(body, chunk), encoding, MB)
        assert decoded == PAGE, encoding


async def test_bodies_past_the_cap_unknown_encodings_and_corrupt_data_are_named() -> None:
    url = "http://news.example/a"
    with pytest.raises(PermanentFetchError, match="more than max_body_bytes 100 after decoding"):
        await read_decoded(url, _stream(gzip.compress(b"x" * 101), 10), "gzip", 100)
    assert await read_decoded(url, _stream(gzip.compress(b"x" * 100), 10), "gzip", 100) == (
        b"x" * 100)
    with pytest.raises(PermanentFetchError, match="unsupported Content-Encoding 'br'") as info:
        await read_decoded(url, _stream(PAGE, 10), "br", MB)
    assert url in str(info.value)
    with pytest.raises(PermanentFetchError, match="cannot decode response body"):
        await read_decoded(url, _stream(b"\x1f\x8b" + b"garbage" * 10, 8), "gzip", MB)
