"""RSS/Atom feeds and listing pages: the article URLs a source points at.

A feed entry carrying the full article (`content:encoded`, Atom `content`)
is kept as `content_html`, so the pipeline can skip fetching the page.
"""

from __future__ import annotations

import calendar
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

import feedparser
from selectolax.lexbor import LexborHTMLParser, SelectolaxError

from parsers.decode import decode_html

__all__ = ["FeedEntry", "discover_links", "parse_feed"]

_HTML_TYPES = {"text/html", "application/xhtml+xml"}


@dataclass(frozen=True)
class FeedEntry:
    """One feed item: its id (the link when the feed gives none), absolute URL, title, date."""

    guid: str
    url: str
    title: str | None
    published: datetime | None
    content_html: str | None


def parse_feed(body: bytes, base_url: str) -> list[FeedEntry]:
    """The entries of an RSS or Atom document, in feed order, without duplicate ids or URLs.

    Relative links resolve against `base_url`.  Entries with no link are
    skipped (there is no page to watch).  A body that is not a feed at all
    gives an empty list; feedparser's "bozo" flag covers merely sloppy feeds,
    which are still read.
    """
    parsed = feedparser.parse(io.BytesIO(body), response_headers={"content-location": base_url})
    out: list[FeedEntry] = []
    seen: set[str] = set()
    for entry in parsed.entries:
        link = entry.get("link")
        if not link:
            continue
        url = urldefrag(urljoin(base_url, link.strip())).url
        guid = (entry.get("id") or "").strip() or url
        if guid in seen or url in seen:
            continue
        seen.update((guid, url))
        out.append(FeedEntry(guid=guid, url=url, title=entry.get("title") or None,
                             published=_published(entry), content_html=_content(entry)))
    return out


def _published(entry: Any) -> datetime | None:
    stamp = entry.get("published_parsed") or entry.get("updated_parsed")
    if not stamp:
        return None
    return datetime.fromtimestamp(calendar.timegm(stamp), UTC)


def _content(entry: Any) -> str | None:
    for content in entry.get("content") or ():
        if content.get("type", "text/html") in _HTML_TYPES and content.get("value", "").strip():
            return str(content["value"])
    return None


def discover_links(html: str | bytes, base_url: str, selector: str, limit: int) -> list[str]:
    """Absolute http(s) URLs of the links `selector` matches on a listing page, first `limit`.

    A matched element that is not itself a link contributes its first
    `a[href]` descendant, so `follow = "article h2"` works as well as
    `follow = "article h2 a"`.  Fragments are dropped and duplicates removed.
    An invalid selector raises ValueError naming it.
    """
    text = decode_html(html) if isinstance(html, bytes) else html
    tree = LexborHTMLParser(text)
    try:
        nodes = tree.css(selector)
    except SelectolaxError as exc:
        raise ValueError(f"invalid CSS selector {selector!r} for {base_url}: {exc}") from exc
    found: list[str] = []
    for node in nodes:
        is_link = node.tag == "a" and node.attributes.get("href")
        link = node if is_link else node.css_first("a[href]")
        href = link.attributes.get("href") if link is not None else None
        if not href:
            continue
        url = urldefrag(urljoin(base_url, href.strip())).url
        if urlsplit(url).scheme not in ("http", "https") or url in found:
            continue
        found.append(url)
        if len(found) >= limit:
            break
    return found
