"""The fetcher against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from parsers.decode import decode_html
from service.errors import PermanentFetchError, TransientFetchError
from service.fetch.client import Fetcher
from service.fetch.feeds import discover_links, parse_feed
from service.settings import Settings
from tests.fetch_server import FetchServer, Reply, fetch_server_fixture  # noqa: F401

FAST = {"retries": 2, "backoff": 0.01, "max_backoff": 0.05}
MB = 1024 * 1024


def settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {"allow_private_targets": True, "respect_robots": False,
                            "per_host_delay": 0.0, "timeout": 5.0, "max_body_bytes": MB,
                            "user_agent": "figwatch-test/1.0"}
    base.update(overrides)
    return Settings(**base)


@pytest.fixture
async def make_fetcher() -> AsyncIterator[Callable[..., Fetcher]]:
    made: list[Fetcher] = []

    def make(*, fetch_kw: dict[str, Any] | None = None, **overrides: Any) -> Fetcher:
        fetcher = Fetcher(settings(**overrides), **{**FAST, **(fetch_kw or {})})
        made.append(fetcher)
        return fetcher

    yield make
    for fetcher in made:
        await fetcher.aclose()


async def test_200_returns_body_headers_and_one_attempt(
        fetch_server: FetchServer, make_fetcher: Callable[..., Fetcher]) -> None:
    url = fetch_server.route(Reply(body=b"<p>hello</p>", headers={
        "Content-Type": "text/html; charset=UTF-8", "ETag": '"v1"',
        "Last-Modified": "Wed, 25 Nov 2026 10:00:00 GMT"}))
    result = await make_fetcher().fetch(url)
    assert (result.status, result.body, result.final_url) == (200, b"<p>hello</p>", url)
    assert (result.content_type, result.charset) == ("text/html", "utf-8")
    assert (result.etag, result.last_modified) == ('"v1"', "Wed, 25 Nov 2026 10:00:00 GMT")
    assert not result.not_modified
    assert [(a.status, a.bytes, a.error) for a in result.attempts] == [(200, 12, None)]
    assert fetch_server.seen(url)[0].headers["user-agent"] == "figwatch-test/1.0"


async def test_304_with_etag(fetch_server: FetchServer,
                             make_fetcher: Callable[..., Fetcher]) -> None:
    url = fetch_server.route(Reply(body=b"page", headers={"ETag": '"abc"'}))
    fetcher = make_fetcher()
    first = await fetcher.fetch(url)
    second = await fetcher.fetch(url, etag=first.etag)
    assert second.not_modified and second.status == 304 and second.body == b""
    assert second.etag == '"abc"'
    assert fetch_server.seen(url)[1].headers["if-none-match"] == '"abc"'


async def test_answers_without_a_kept_body_leave_the_connection_reusable(
        fetch_server: FetchServer, make_fetcher: Callable[..., Fetcher]) -> None:
    """A 304, a redirect or an error page is read to its end, so the next request to the host
    goes on the same connection (a cycle of 304s must not open one connection per page)."""
    page = fetch_server.route(Reply(body=b"page", headers={"ETag": '"abc"'}))
    moved = fetch_server.route(Reply(302, b"moved", headers={"Location": page}))
    gone = fetch_server.route(Reply(404, b"<html>not here</html>" * 50))
    fetcher = make_fetcher()
    etag = (await fetcher.fetch(page)).etag
    for _ in range(3):
        assert (await fetcher.fetch(page, etag=etag)).not_modified
    assert (await fetcher.fetch(moved, etag=etag)).not_modified
    with pytest.raises(PermanentFetchError):
        await fetcher.fetch(gone)
    assert len(fetch_server.seen(page)) == 5
    assert len({s.peer for s in fetch_server.seen(page) + fetch_server.seen(gone)}) == 1


async def test_no_cookie_is_kept_between_fetches(fetch_server: FetchServer,
                                                 make_fetcher: Callable[..., Fetcher]) -> None:
    """One source's cookies never change what another fetch (of any source) sends."""
    url = fetch_server.route(Reply(body=b"page", headers={"Set-Cookie": "session=abc; Path=/"}))
    fetcher = make_fetcher()
    await fetcher.fetch(url)
    await fetcher.fetch(url)
    assert [s.headers.get("cookie") for s in fetch_server.seen(url)] == [None, None]
    assert fetch_server.seen(url)[1].headers["accept-encoding"] == "gzip, deflate"


async def test_304_with_last_modified(fetch_server: FetchServer,
                                      make_fetcher: Callable[..., Fetcher]) -> None:
    stamp = "Tue, 24 Nov 2026 08:00:00 GMT"
    url = fetch_server.route(Reply(body=b"page", headers={"Last-Modified": stamp}))
    result = await make_fetcher().fetch(url, last_modified=stamp)
    assert result.not_modified and result.body == b"" and result.last_modified == stamp
    assert fetch_server.seen(url)[0].headers["if-modified-since"] == stamp
    assert "if-none-match" not in fetch_server.seen(url)[0].headers


async def test_429_honours_retry_after_then_succeeds(
        fetch_server: FetchServer, make_fetcher: Callable[..., Fetcher]) -> None:
    url = fetch_server.route(Reply(429, headers={"Retry-After": "1"}), Reply(body=b"ok"))
    result = await make_fetcher().fetch(url)
    assert result.body == b"ok"
    assert [a.status for a in result.attempts] == [429, 200]
    first, second = fetch_server.seen(url)
    assert second.at - first.at >= 0.9


async def test_429_with_long_retry_after_is_left_to_the_scheduler(
        fetch_server: FetchServer, make_fetcher: Callable[..., Fetcher]) -> None:
    url = fetch_server.route(Reply(429, headers={"Retry-After": "3600"}), Reply(body=b"ok"))
    with pytest.raises(TransientFetchError) as info:
        await make_fetcher(fetch_kw={"max_retry_after": 60}).fetch(url)
    assert info.value.status == 429 and info.value.retry_after == 3600
    assert len(info.value.attempts) == 1  # type: ignore[attr-defined]


async def test_500_is_retried(fetch_server: FetchServer,
                              make_fetcher: Callable[..., Fetcher]) -> None:
    url = fetch_server.route(Reply(500), Reply(503), Reply(body=b"ok"))
    result = await make_fetcher().fetch(url)
    assert [a.status for a in result.attempts] == [500, 503, 200]
    assert result.attempts[0].error is not None and url in result.attempts[0].error


async def test_persistent_502_raises_transient_with_all_attempts(
        fetch_server: FetchServer, make_fetcher: Callable[..., Fetcher]) -> None:
    url = fetch_server.route(Reply(502))
    with pytest.raises(TransientFetchError, match="HTTP 502") as info:
        await make_fetcher().fetch(url)
    assert [a.status for a in info.value.attempts] == [502, 502, 502]  # type: ignore[attr-defined]
    assert url in str(info.value)


async def test_timeout_is_transient_after_retries(
        fetch_server: FetchServer, make_fetcher: Callable[..., Fetcher]) -> None:
    url = fetch_server.route(Reply(body=b"late", delay=5.0))
    started = time.monotonic()
    with pytest.raises(TransientFetchError, match="timed out") as info:
        await make_fetcher(timeout=0.3).fetch(url)
    assert len(info.value.attempts) == 3  # type: ignore[attr-defined]
    assert len(fetch_server.seen(url)) == 3
    assert time.monotonic() - started < 3


async def test_time_queued_for_a_slot_does_not_count_against_the_timeout(
        fetch_server: FetchServer, make_fetcher: Callable[..., Fetcher]) -> None:
    # One slot, six requests of 0.2 s each: the last starts after ~1 s in the
    # queue, well past the 0.5 s timeout, and must still succeed.
    url = fetch_server.route(Reply(body=b"steady", delay=0.2))
    fetcher = make_fetcher(timeout=0.5, max_concurrency=1, per_host_concurrency=1,
                           fetch_kw={"retries": 0})
    results = await asyncio.gather(*(fetcher.fetch(f"{url}?n={i}") for i in range(6)))
    assert [r.body for r in results] == [b"steady"] * 6
    assert all(len(r.attempts) == 1 for r in results)


async def test_404_is_permanent_without_retry(fetch_server: FetchServer,
                                              make_fetcher: Callable[..., Fetcher]) -> None:
    url = fetch_server.route(Reply(404, b"gone"))
    with pytest.raises(PermanentFetchError, match="HTTP 404") as info:
        await make_fetcher().fetch(url)
    assert info.value.status == 404 and url in str(info.value)
    assert len(info.value.attempts) == 1  # type: ignore[attr-defined]
    assert len(fetch_server.seen(url)) == 1


async def test_redirect_is_followed_and_reported(fetch_server: FetchServer,
                                                 make_fetcher: Callable[..., Fetcher]) -> None:
    target = fetch_server.route(Reply(body=b"moved here"))
    url = fetch_server.route(Reply(301, headers={"Location": target.replace(
        fetch_server.base_url, "")}))
    result = await make_fetcher().fetch(url)
    assert (result.url, result.final_url, result.body) == (url, target, b"moved here")


async def test_redirect_loop_is_permanent(fetch_server: FetchServer,
                                          make_fetcher: Callable[..., Fetcher]) -> None:
    a = fetch_server.route(Reply(302, headers={"Location": "b"}), path="/loop/a")
    fetch_server.serve(a.replace(fetch_server.base_url, "").replace("/a", "/b"),
                       Reply(302, headers={"Location": "a"}))
    with pytest.raises(PermanentFetchError, match="redirect loop") as info:
        await make_fetcher().fetch(a)
    assert len(info.value.attempts) == 1  # type: ignore[attr-defined]


async def test_too_many_redirects(fetch_server: FetchServer,
                                  make_fetcher: Callable[..., Fetcher]) -> None:
    url = fetch_server.route(Reply(body=b"end"))
    for _ in range(3):
        url = fetch_server.route(Reply(302, headers={"Location": url}))
    assert (await make_fetcher(max_redirects=3).fetch(url)).body == b"end"
    with pytest.raises(PermanentFetchError, match="too many redirects"):
        await make_fetcher(max_redirects=2).fetch(url)


async def test_oversized_body_declared(fetch_server: FetchServer,
                                       make_fetcher: Callable[..., Fetcher]) -> None:
    url = fetch_server.route(Reply(body=b"x" * (MB + 1)))
    with pytest.raises(PermanentFetchError, match=r"too large.*1048577") as info:
        await make_fetcher().fetch(url)
    assert url in str(info.value)


async def test_oversized_body_streamed_without_length(
        fetch_server: FetchServer, make_fetcher: Callable[..., Fetcher]) -> None:
    url = fetch_server.route(Reply(body=b"x" * (2 * MB), length=False))
    with pytest.raises(PermanentFetchError, match="max_body_bytes 1048576"):
        await make_fetcher().fetch(url)


async def test_gzip_bomb_is_cut_off_by_decoded_size(
        fetch_server: FetchServer, make_fetcher: Callable[..., Fetcher]) -> None:
    bomb = gzip.compress(b"\0" * (16 * MB))
    assert len(bomb) < 64 * 1024
    url = fetch_server.route(Reply(body=bomb, headers={"Content-Encoding": "gzip",
                                                       "Content-Type": "text/html"}))
    with pytest.raises(PermanentFetchError, match="after decoding") as info:
        await make_fetcher().fetch(url)
    assert url in str(info.value) and "max_body_bytes 1048576" in str(info.value)


async def test_small_gzip_page_is_decoded(fetch_server: FetchServer,
                                          make_fetcher: Callable[..., Fetcher]) -> None:
    url = fetch_server.route(Reply(body=gzip.compress(b"<p>zipped</p>"),
                                   headers={"Content-Encoding": "gzip"}))
    assert (await make_fetcher().fetch(url)).body == b"<p>zipped</p>"


async def test_gbk_page_keeps_bytes_and_header_charset(
        fetch_server: FetchServer, make_fetcher: Callable[..., Fetcher]) -> None:
    text = "<html><body><p>英伟达市值达到3.39万亿美元</p></body></html>"
    raw = text.encode("gbk")
    url = fetch_server.route(Reply(body=raw, headers={"Content-Type": "text/html; charset=GBK"}))
    result = await make_fetcher().fetch(url)
    assert result.body == raw and result.charset == "gbk"
    assert "英伟达市值达到3.39万亿美元" in decode_html(result.body, result.charset)


async def test_robots_disallow_and_cache(fetch_server: FetchServer,
                                         make_fetcher: Callable[..., Fetcher]) -> None:
    blocked = fetch_server.base_url + "/private/secret"
    allowed = fetch_server.route(Reply(body=b"public"))
    robots = fetch_server.base_url + "/robots.txt"
    before = len(fetch_server.seen(robots))
    fetcher = make_fetcher(respect_robots=True)
    with pytest.raises(PermanentFetchError, match=r"disallowed by robots\.txt") as info:
        await fetcher.fetch(blocked)
    assert blocked in str(info.value)
    assert (await fetcher.fetch(allowed)).body == b"public"
    assert len(fetch_server.seen(robots)) == before + 1  # fetched once, then cached
    assert fetch_server.seen(blocked) == []


async def test_robots_ignored_when_switched_off(fetch_server: FetchServer,
                                                make_fetcher: Callable[..., Fetcher]) -> None:
    url = fetch_server.serve("/private/page", Reply(body=b"mine"))
    robots = fetch_server.base_url + "/robots.txt"
    before = len(fetch_server.seen(robots))
    assert (await make_fetcher(respect_robots=False).fetch(url)).body == b"mine"
    assert len(fetch_server.seen(robots)) == before


async def test_private_target_refused(fetch_server: FetchServer,
                                      make_fetcher: Callable[..., Fetcher]) -> None:
    url = fetch_server.route(Reply(body=b"internal"))
    with pytest.raises(PermanentFetchError, match=r"refused private target 127\.0\.0\.1") as info:
        await make_fetcher(allow_private_targets=False).fetch(url)
    assert url in str(info.value)
    assert len(info.value.attempts) == 1  # type: ignore[attr-defined]
    assert fetch_server.seen(url) == []


async def test_per_host_concurrency_and_delay(fetch_server: FetchServer,
                                              make_fetcher: Callable[..., Fetcher]) -> None:
    url = fetch_server.route(Reply(body=b"slow", delay=0.1))
    fetcher = make_fetcher(per_host_concurrency=2)
    await asyncio.gather(*(fetcher.fetch(url) for _ in range(5)))
    assert fetch_server.max_in_flight(url) == 2

    spaced = fetch_server.route(Reply(body=b"x"))
    fetcher = make_fetcher(per_host_delay=0.1, per_host_concurrency=4)
    await asyncio.gather(*(fetcher.fetch(spaced) for _ in range(3)))
    starts = [s.at for s in fetch_server.seen(spaced)]
    assert all(b - a >= 0.08 for a, b in itertools.pairwise(starts))


FEED = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel><title>Deals</title><link>https://news.example/</link>
<item><title>OpenAI valued at $157B</title><link>/a/openai</link>
<guid isPermaLink="false">g-1</guid>
<pubDate>Wed, 02 Oct 2024 12:00:00 GMT</pubDate>
<description>short</description>
<content:encoded><![CDATA[<p>OpenAI is now valued at <b>$157 billion</b>.</p>]]></content:encoded>
</item>
<item><title>Same story again</title><link>/a/openai</link><guid>g-2</guid></item>
<item><title>No full text</title><link>https://news.example/b#top</link>
<guid isPermaLink="false">g-3</guid></item>
</channel></rss>"""


async def test_feed_with_content_encoded(fetch_server: FetchServer,
                                         make_fetcher: Callable[..., Fetcher]) -> None:
    url = fetch_server.route(Reply(body=FEED, headers={"Content-Type": "application/rss+xml"}),
                             path="/feed.xml")
    result = await make_fetcher().fetch(url)
    entries = parse_feed(result.body, "https://news.example/feed.xml")
    assert [(e.guid, e.url) for e in entries] == [("g-1", "https://news.example/a/openai"),
                                                  ("g-3", "https://news.example/b")]
    first = entries[0]
    assert first.title == "OpenAI valued at $157B"
    assert first.content_html is not None and "$157 billion" in first.content_html
    assert first.published is not None and first.published.isoformat().startswith("2024-10-02")
    assert entries[1].content_html is None


async def test_listing_page_links(fetch_server: FetchServer,
                                  make_fetcher: Callable[..., Fetcher]) -> None:
    page = (b"<ul class=news><li><a href='/x/1'>one</a></li><li><a href='/x/2#c'>two</a></li>"
            b"<li><a href='/x/1'>dup</a></li><li><a href='/x/3'>three</a></li></ul>")
    url = fetch_server.route(Reply(body=page, headers={"Content-Type": "text/html"}))
    result = await make_fetcher().fetch(url)
    links = discover_links(result.body, result.final_url, "ul.news li", 2)
    assert links == [fetch_server.base_url + "/x/1", fetch_server.base_url + "/x/2"]
