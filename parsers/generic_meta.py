"""Page metadata for the generic extractor: title, published date, author, language.

Sources, most trusted first: Open Graph / article meta tags, JSON-LD
(`datePublished`, `author`), then the markup itself (`<h1>`, `<time
datetime>`, `<title>` with the site name stripped).  Every reader returns
None rather than raising on odd values.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from selectolax.lexbor import LexborHTMLParser

__all__ = ["Meta", "guess_lang", "read_meta"]

_TITLE_SEPARATORS = re.compile(r"\s+[|\-–—:·•»]\s+|\s*[|｜_]\s*")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LANG = re.compile(r"^([A-Za-z]{2,3})(?:[-_]|$)")
_MAX_JSONLD_CHARS = 200_000
_DATE_META = (
    "article:published_time", "og:published_time", "datePublished", "date", "pubdate",
    "publishdate", "publish-date", "DC.date.issued", "dcterms.created", "sailthru.date",
    "parsely-pub-date", "article.published",
)
_AUTHOR_META = ("author", "article:author", "dc.creator", "parsely-author", "byl")
# Bylines in the markup (one combined query: lexbor walks the tree once per query).
_AUTHOR_SELECTOR = "[itemprop=author], a[rel=author]"
_BY_PREFIX = re.compile(r"^(?:by|written by|posted by|author:?)\s+", re.I)
_MAX_AUTHOR_CHARS = 80


@dataclass(slots=True)
class Meta:
    title: str | None = None
    published: str | None = None
    author: str | None = None
    lang: str | None = None


def _clean(text: str | None) -> str | None:
    if not text:
        return None
    text = " ".join(text.split())
    return text or None


def _meta_index(tree: LexborHTMLParser) -> dict[str, str]:
    """Lower-cased meta name/property/itemprop → first non-empty content."""
    index: dict[str, str] = {}
    for node in tree.css("meta[content]"):
        attrs = node.attributes
        content = _clean(attrs.get("content"))
        if not content:
            continue
        for key in ("property", "name", "itemprop"):
            name = attrs.get(key)
            if name:
                index.setdefault(name.strip().lower(), content)
    return index


def _jsonld_items(tree: LexborHTMLParser) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for node in tree.css("script[type='application/ld+json']"):
        raw = node.text(deep=True) or ""
        if not raw.strip() or len(raw) > _MAX_JSONLD_CHARS:
            continue
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            continue
        stack: list[Any] = [data]
        while stack and len(items) < 50:
            cur = stack.pop()
            if isinstance(cur, list):
                stack.extend(reversed(cur[:50]))
            elif isinstance(cur, dict):
                items.append(cur)
                graph = cur.get("@graph")
                if isinstance(graph, list):
                    stack.extend(reversed(graph[:50]))
    return items


def _jsonld_author(value: Any) -> str | None:
    if isinstance(value, str):
        return _clean(value)
    if isinstance(value, dict):
        name = value.get("name")
        return _clean(name) if isinstance(name, str) else None
    if isinstance(value, list):
        names = [n for n in (_jsonld_author(v) for v in value[:10]) if n]
        return ", ".join(names) or None
    return None


def _strip_site_name(title: str) -> str:
    """"Deal count falls | CB Insights" → "Deal count falls" (keeps the longest part)."""
    parts = [p.strip() for p in _TITLE_SEPARATORS.split(title) if p.strip()]
    if len(parts) < 2:
        return title
    best = max(parts, key=len)
    # a short leftover is a site name; a title split in halves is just a title with a colon
    return best if len(best) >= 0.5 * len(title) or len(best.split()) >= 4 else title


def _byline(tree: LexborHTMLParser) -> str | None:
    """The author named in the first byline element, if it is a short name."""
    node = tree.css_first(_AUTHOR_SELECTOR)
    if node is None:
        return None
    name = node.css_first("[itemprop=name], a") or node
    text = _clean(name.attributes.get("content") or name.text(deep=True))
    if not text:
        return None
    text = _BY_PREFIX.sub("", text).strip()
    return text if 0 < len(text) <= _MAX_AUTHOR_CHARS else None


def guess_lang(text: str) -> str:
    """"zh" if CJK characters make up much of the letters, else "en"."""
    sample = text[:5000]
    cjk = len(_CJK.findall(sample))
    letters = sum(1 for c in sample if c.isalpha())
    return "zh" if letters and cjk / letters > 0.3 else "en"


def read_meta(tree: LexborHTMLParser) -> Meta:
    """Title, published date, author and declared language of a parsed page."""
    meta = _meta_index(tree)
    items = _jsonld_items(tree)
    out = Meta()

    title = meta.get("og:title") or meta.get("twitter:title")
    if not title:
        h1 = tree.css_first("h1")
        title = _clean(h1.text(deep=True)) if h1 is not None else None
    if not title:
        node = tree.css_first("title")
        title = _clean(node.text(deep=True)) if node is not None else None
    out.title = _strip_site_name(title) if title else None

    published = next((meta[k.lower()] for k in _DATE_META if k.lower() in meta), None)
    if not published:
        published = next((_clean(str(i["datePublished"])) for i in items
                          if isinstance(i.get("datePublished"), str)), None)
    if not published:
        node = tree.css_first("time[datetime]")
        published = _clean(node.attributes.get("datetime")) if node is not None else None
    out.published = published

    author = next((meta[k] for k in _AUTHOR_META
                   if k in meta and not meta[k].startswith(("http://", "https://"))), None)
    if not author:
        author = next((a for a in (_jsonld_author(i.get("author")) for i in items) if a), None)
    out.author = author or _byline(tree)

    html = tree.css_first("html")
    declared = (html.attributes.get("lang") if html is not None else None) or meta.get(
        "content-language"
    )
    match = _LANG.match(declared.strip()) if declared else None
    out.lang = match.group(1).lower() if match else None
    return out
