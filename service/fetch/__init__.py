"""Fetching sources: the HTTP client, the SSRF guard, robots.txt, feeds and listing pages."""

from __future__ import annotations

from .base import Attempt, BaseFetcher, FetchResult
from .client import Fetcher
from .feeds import FeedEntry, discover_links, parse_feed
from .guard import acheck_target, check_target

__all__ = ["Attempt", "BaseFetcher", "FeedEntry", "FetchResult", "Fetcher", "acheck_target",
           "check_target", "discover_links", "parse_feed"]
