"""CNBC (www.cnbc.com): key points and `div.ArticleBody-articleBody`, without videos and credits."""

from __future__ import annotations

from typing import ClassVar

from selectolax.lexbor import LexborHTMLParser

from ..document import Block, Document
from ..html_blocks import compile_drops
from ..registry import SiteParser
from . import _common as c

CNBC_DROP: tuple[str, ...] = (
    ".InlineVideo-container", ".InlineVideo-wrapper", ".RelatedContent-relatedContent",
    ".RelatedQuotes-relatedQuotes", ".InlineImage-imageEmbedCredit", ".PlaceHolder-wrapper",
    ".ad", ".BoxInline-container", ".QuoteInBody-inlineButton", ".ArticleBody-subtitle-watch",
    ".ArticleBodyWrapper-subscribe", "[data-module='ArticleVideo']",
)
# Compiled once: sorting a drop list out is per list, not per page.
_DROPS = compile_drops(CNBC_DROP)
_KEY_POINTS_DROPS = compile_drops(("h2", ".RenderKeyPoints-title"))


class CnbcParser(SiteParser):
    """CNBC articles: headline, key points and body; drops inline video, related, ads."""

    name: ClassVar[str] = "cnbc"
    domains: ClassVar[tuple[str, ...]] = ("www.cnbc.com", "cnbc.com")

    def parse(self, tree: LexborHTMLParser, url: str | None) -> Document:
        page = c.Page(tree)  # its <meta> tags are read once for all lookups
        blocks: list[Block] = []
        key_points = c.first(page, ".RenderKeyPoints-list", ".RenderKeyPoints-keyPoints")
        if key_points is not None:
            blocks += c.body_blocks(key_points, _KEY_POINTS_DROPS)
        body = c.first(page, "div.ArticleBody-articleBody", "div.group", "article")
        blocks += c.body_blocks(body, _DROPS)
        return c.document(
            page, url, self.name, blocks,
            title=c.page_title(page, "h1.ArticleHeader-headline", "h1", suffixes=("CNBC",)),
            published_at=c.published(page, "time[data-testid='published-timestamp']",
                                     "time[itemprop='datePublished']", "time[datetime]"),
            author=c.text_of(c.first(page, "a.Author-authorName", ".Author-authorName"))
            or c.meta(page, "author"),
        )
