"""The HTTP fetcher: one shared httpx transport, politeness limits, guarded redirects, retries.

Each `fetch` runs up to `retries + 1` attempts.  An attempt follows
redirects by hand so every hop passes the SSRF guard (and robots.txt), reads
the body as a stream — counting *decoded* bytes, so a small gzip that
inflates past `max_body_bytes` is stopped, having inflated no further
(`service.fetch.inflate`).  Each request is bounded by
`settings.timeout`, counted from when it holds its concurrency slot.  Only
transient failures are retried (connection errors, timeouts, 429, 500,
502-504), waiting Retry-After when given, else an exponential backoff with
jitter.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urldefrag, urljoin, urlsplit

import httpx
from tenacity import AsyncRetrying, RetryCallState, stop_after_attempt

from ..errors import FetchError, PermanentFetchError, TransientFetchError
from ..settings import Settings
from ..transport import AsyncioTransport, Lanes
from .base import Attempt, FetchResult
from .guard import AsyncResolver, acheck_target
from .inflate import read_decoded
from .limits import HostLimiter
from .retry import RetryTransient, WaitBackoff, parse_retry_after
from .robots import ROBOTS_TTL, RobotsCache

__all__ = ["DEFAULT_BACKOFF", "DEFAULT_MAX_BACKOFF", "DEFAULT_MAX_RETRY_AFTER",
           "DEFAULT_RETRIES", "MAX_CRAWL_DELAY", "Fetcher"]

log = logging.getLogger(__name__)

DEFAULT_RETRIES = 3
DEFAULT_BACKOFF = 0.5
DEFAULT_MAX_BACKOFF = 30.0
DEFAULT_MAX_RETRY_AFTER = 120.0
MAX_CRAWL_DELAY = 60.0  # a robots.txt asking for more would starve the watchlist
_ROBOTS_MAX_BYTES = 512 * 1024  # RFC 9309: parse at least 500 KiB
_DRAIN_MAX_BYTES = 64 * 1024  # a body we do not keep is read to reuse its connection
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_TRANSIENT = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class _Final:
    """The last hop of an attempt, before its status is judged."""

    url: str
    response: httpx.Response
    body: bytes


class Fetcher:
    """Fetches pages politely and safely; see the module docstring.

    `transport` replaces the network (httpx.MockTransport in unit tests);
    `resolver(host, port)` replaces DNS for the SSRF guard.  `retries`,
    `backoff` (first wait, seconds), `max_backoff` and `max_retry_after`
    (a longer Retry-After ends the retries and is left to the scheduler)
    default to the module constants.
    """

    def __init__(self, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None,
                 resolver: AsyncResolver | None = None, retries: int = DEFAULT_RETRIES,
                 backoff: float = DEFAULT_BACKOFF, max_backoff: float = DEFAULT_MAX_BACKOFF,
                 max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
                 robots_ttl: float = ROBOTS_TTL) -> None:
        self._settings = settings
        self._resolver = resolver
        self._retries = retries
        # Shared by every fetch: neither keeps state of its own (a `WaitBackoff` per
        # fetch seeded a new random generator from the OS each time).
        self._wait = WaitBackoff(backoff, max_backoff)
        self._retry = RetryTransient(max_retry_after)
        if transport is None:
            # Small pools, on asyncio sockets: see service.transport.
            tls = httpx.create_ssl_context()
            transport = Lanes(lambda limits: AsyncioTransport(ssl_context=tls, limits=limits),
                              max_connections=settings.max_concurrency)
        # No `httpx.AsyncClient`: requests go to the transport as built here.  Its
        # per-request work (merging headers, a cookie jar consulted on every
        # answer, the auth and redirect machinery) was a fifth of a fetch's CPU,
        # and a fetch needs none of it: redirects are followed by hand (each hop
        # is guarded), no cookie is ever kept (one source's cookies never change
        # what another fetch sees), and no proxy from the environment is used (it
        # would connect on our behalf to addresses the guard never saw).
        self._transport = transport
        self._headers = {"Accept": "*/*", "Accept-Encoding": "gzip, deflate",
                         "User-Agent": settings.user_agent}
        self._extensions = {"timeout": httpx.Timeout(
            settings.timeout, connect=min(settings.timeout, 10.0)).as_dict()}
        self._limiter = HostLimiter(settings.max_concurrency, settings.per_host_concurrency,
                                    settings.per_host_delay)
        self._robots = RobotsCache(self._get_robots, settings.user_agent, ttl=robots_ttl)

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def fetch(self, url: str, *, etag: str | None = None,
                    last_modified: str | None = None) -> FetchResult:
        """The page at `url`; raises FetchError carrying `attempts` (see `BaseFetcher.fetch`)."""
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        attempts: list[Attempt] = []
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._retries + 1),
            wait=self._wait,
            retry=self._retry,
            before_sleep=_log_retry,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    final = await self._attempt(url, headers, attempts)
        except FetchError as exc:
            exc.attempts = tuple(attempts)
            raise
        response = final.response
        media_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        charset = response.charset_encoding
        return FetchResult(
            url=url, final_url=final.url, status=response.status_code, body=final.body,
            content_type=media_type or None, charset=charset.lower() if charset else None,
            etag=response.headers.get("etag") or (etag if response.status_code == 304 else None),
            last_modified=response.headers.get("last-modified")
            or (last_modified if response.status_code == 304 else None),
            attempts=tuple(attempts),
        )

    async def _attempt(self, url: str, headers: dict[str, str],
                       attempts: list[Attempt]) -> _Final:
        started = time.monotonic()
        try:
            final = await self._follow(url, headers, robots=self._settings.respect_robots,
                                       max_bytes=self._settings.max_body_bytes)
            _judge(url, final.response)
        except FetchError as exc:
            attempts.append(Attempt(exc.status, 0, time.monotonic() - started, str(exc)))
            raise
        attempts.append(Attempt(final.response.status_code, len(final.body),
                                time.monotonic() - started, None))
        return final

    async def _follow(self, url: str, headers: dict[str, str], *, robots: bool,
                      max_bytes: int) -> _Final:
        """GET `url`, following redirects; every hop is guarded.  Any final status is returned."""
        current, seen = url, {url}
        for _ in range(self._settings.max_redirects + 1):
            addresses = await acheck_target(
                current, allow_private=self._settings.allow_private_targets,
                resolver=self._resolver)
            crawl_delay = 0.0
            if robots:
                if not await self._robots.allowed(current):
                    raise PermanentFetchError(current, "disallowed by robots.txt")
                crawl_delay = min(self._robots.crawl_delay(current) or 0.0, MAX_CRAWL_DELAY)
            async with self._limiter.slot(urlsplit(current).netloc.lower(),
                                          min_delay=crawl_delay), self._deadline(current):
                with _translate(current):
                    request = httpx.Request("GET", current, headers={**self._headers, **headers},
                                            extensions=self._extensions)
                    _pin(request, addresses)
                    response = await self._transport.handle_async_request(request)
                    response.request = request
                    try:
                        location = response.headers.get("location")
                        if response.status_code not in _REDIRECTS or not location:
                            if 200 <= response.status_code < 300:
                                body = await _read_capped(current, response, max_bytes)
                                return _Final(current, response, body)
                            await _drain(response)
                            return _Final(current, response, b"")
                        await _drain(response)
                    finally:
                        await response.aclose()
            try:
                target = urldefrag(urljoin(current, location.strip())).url
            except ValueError as exc:
                raise PermanentFetchError(current, f"invalid redirect Location {location!r}: "
                                                   f"{exc}", status=response.status_code) from exc
            if target in seen:
                raise PermanentFetchError(url, f"redirect loop: {current} -> {target}",
                                          status=response.status_code)
            seen.add(target)
            current = target
        raise PermanentFetchError(
            url, f"too many redirects (more than {self._settings.max_redirects}), last {current}")

    async def _get_robots(self, url: str) -> tuple[int, bytes]:
        """One try at a robots.txt; the robots cache decides what a failure means."""
        max_bytes = min(self._settings.max_body_bytes, _ROBOTS_MAX_BYTES)
        final = await self._follow(url, {}, robots=False, max_bytes=max_bytes)
        return final.response.status_code, final.body

    @asynccontextmanager
    async def _deadline(self, url: str) -> AsyncIterator[None]:
        """`settings.timeout` for one request, counted from when it may start.

        Time spent queued for a concurrency slot does not count: a cycle over
        ten thousand sources must not time out the ones still waiting their turn.
        """
        try:
            async with asyncio.timeout(self._settings.timeout):
                yield
        except TimeoutError as exc:
            raise TransientFetchError(url, f"timed out after {self._settings.timeout:g}s") \
                from exc


def _pin(request: httpx.Request, addresses: tuple[str, ...]) -> None:
    """For plain http, connect to an address the guard checked, not to whatever DNS says next.

    Without this a rebinding DNS server could answer the guard with a public
    address and httpx with 127.0.0.1.  The Host header keeps the name (it was
    set from the original URL).  https is not pinned: there the certificate
    check already refuses an internal server posing as the name, and httpcore
    pools connections by address alone, so a pinned TLS connection could be
    reused for another name on the same address.  IPv4 is preferred: a pinned
    connection has no happy-eyeballs fallback.
    """
    if request.url.scheme != "http" or not addresses or request.url.host in addresses:
        return
    address = next((a for a in addresses if ":" not in a), addresses[0])
    request.url = request.url.copy_with(host=address)


def _judge(url: str, response: httpx.Response) -> None:
    """Raise the FetchError a final status deserves; 2xx and 304 pass."""
    status = response.status_code
    if 200 <= status < 300 or status == 304:
        return
    reason = f"HTTP {status} {response.reason_phrase}".rstrip()
    if status in _TRANSIENT:
        raise TransientFetchError(url, reason, status=status,
                                  retry_after=parse_retry_after(response.headers.get("retry-after")))
    raise PermanentFetchError(url, reason, status=status)


async def _read_capped(url: str, response: httpx.Response, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise PermanentFetchError(
            url, f"body too large: Content-Length {int(declared)} > max_body_bytes {max_bytes}")
    if response.is_stream_consumed:  # a body given whole (test transports), as decoded
        return await read_decoded(url, _whole(response.content), "", max_bytes)
    # Counting decoded bytes, and inflating no step past the cap: a compression bomb
    # is cut off at `max_bytes`, whatever its ratio.
    return await read_decoded(url, response.aiter_raw(),
                              response.headers.get("content-encoding", ""), max_bytes)


async def _whole(body: bytes) -> AsyncIterator[bytes]:
    yield body


async def _drain(response: httpx.Response) -> None:
    """Read a body we do not keep (304, redirect, error page) to its end, if it is small, so
    the connection is reused: one closed before its body is read cannot be."""
    if response.is_stream_consumed:  # a body given whole (test transports)
        return
    read = 0
    async for chunk in response.aiter_raw():
        read += len(chunk)
        if read > _DRAIN_MAX_BYTES:
            return  # not worth reading: closing the response closes the connection


@contextmanager
def _translate(url: str) -> Iterator[None]:
    """httpx exceptions to figwatch's, naming the URL."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise TransientFetchError(url, f"timed out ({type(exc).__name__})") from exc
    except httpx.DecodingError as exc:
        raise PermanentFetchError(url, f"cannot decode response body: {exc}") from exc
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise PermanentFetchError(url, f"invalid URL: {exc}") from exc
    except httpx.RemoteProtocolError as exc:
        # httpx parses Location even when not following redirects; a broken
        # one will be just as broken on the next try.
        if "location header" in str(exc).lower():
            raise PermanentFetchError(url, f"invalid redirect Location: {exc}") from exc
        raise TransientFetchError(url, f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc
    except httpx.TransportError as exc:
        raise TransientFetchError(url, f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc
    except httpx.HTTPError as exc:
        raise TransientFetchError(url, f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome is not None else None
    wait = state.next_action.sleep if state.next_action is not None else 0.0
    log.info("retrying in %.2fs after attempt %d: %s", wait, state.attempt_number, exc)
