"""What a fetch returns, and what any fetcher must do.

`Fetcher` (client.py) is the HTTP implementation; tests and the offline demo
may pass anything with the same `fetch`/`aclose` shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["Attempt", "BaseFetcher", "FetchResult"]


@dataclass(frozen=True)
class Attempt:
    """One try at a URL (redirect hops included): final status, body bytes read, seconds taken."""

    status: int | None
    bytes: int
    elapsed: float
    error: str | None


@dataclass(frozen=True)
class FetchResult:
    """A fetched page.

    `content_type` is the media type only ("text/html"); `charset` is the
    Content-Type header's charset label, lower-cased, or None — decoding the
    body is the parser's job (`parsers.decode`), which also looks at the BOM
    and `<meta>`.  On a 304, `body` is empty and `etag`/`last_modified` fall
    back to the validators the caller sent when the server omits them.
    """

    url: str
    final_url: str
    status: int
    body: bytes
    content_type: str | None
    charset: str | None
    etag: str | None
    last_modified: str | None
    attempts: tuple[Attempt, ...]

    @property
    def not_modified(self) -> bool:
        return self.status == 304


class BaseFetcher(Protocol):
    """The fetcher the pipeline needs."""

    async def fetch(self, url: str, *, etag: str | None = None,
                    last_modified: str | None = None) -> FetchResult:
        """The page at `url` (status 2xx or 304).

        Raises `TransientFetchError` (retries exhausted: connection, timeout,
        429, 5xx) or `PermanentFetchError` (other 4xx, too large, refused
        target, disallowed by robots.txt, redirect loop).  Both carry an
        `attempts` tuple of `Attempt`.
        """
        ...

    async def aclose(self) -> None:
        """Release connections; the fetcher is unusable afterwards."""
        ...
