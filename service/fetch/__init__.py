"""Fetching sources: the HTTP client (`client`), the SSRF guard (`guard`), robots.txt
(`robots`), feeds and listing pages (`feeds`).

Only the plain result types are imported here: a page worker needs `FetchResult`
but not the HTTP stack, so the rest is imported from its own module.
"""

from __future__ import annotations

from .base import Attempt, BaseFetcher, FetchResult

__all__ = ["Attempt", "BaseFetcher", "FetchResult"]
