"""Forbes China (www.forbeschina.com): body without view counter, author box, recommendations."""

from __future__ import annotations

import re
from typing import ClassVar

from selectolax.lexbor import LexborHTMLParser

from ..document import Document
from ..html_blocks import compile_drops
from ..registry import SiteParser
from . import _common as c

FORBESCHINA_DROP: tuple[str, ...] = (
    "h1", ".article-info", ".view-count", ".author-line", ".author-box", ".author-info",
    ".recommend", ".recommend-list", ".related", ".share", ".share-box", ".tags", ".ad",
    ".copyright", "aside", "nav", "header", "footer",
)
_DROPS = compile_drops(FORBESCHINA_DROP)  # once: sorting a drop list out is per list, not per page
_BYLINE = re.compile(r"^(?:Written by|By|文\s*[|｜/])\s*", re.IGNORECASE)


class ForbesChinaParser(SiteParser):
    """Forbes China articles: title, date, "Written by" author and `div.article-content`."""

    name: ClassVar[str] = "forbeschina"
    domains: ClassVar[tuple[str, ...]] = ("www.forbeschina.com", "forbeschina.com")

    def parse(self, tree: LexborHTMLParser, url: str | None) -> Document:
        page = c.Page(tree)  # its <meta> tags are read once for all lookups
        body = c.first(page, "div.article-content", "div.article-detail", "div.detail-content",
                       "article")
        byline = c.text_of(c.first(page, ".author-line a[href*='/author/']", ".author-line",
                                   "a[href*='/author/']"))
        author = _BYLINE.sub("", byline).strip() if byline else c.meta(page, "author")
        return c.document(
            page, url, self.name, c.body_blocks(body, _DROPS),
            title=c.page_title(page, "h1.article-title", "h1",
                               suffixes=("Forbes China", "福布斯中国")),
            published_at=c.published(page, ".article-info .date", "time[datetime]", ".date"),
            author=author or None,
        )
