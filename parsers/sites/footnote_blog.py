"""Hugo/Jekyll blogs with Markdown footnotes: markers kept apart, notes and chrome dropped."""

from __future__ import annotations

from typing import ClassVar

from selectolax.lexbor import LexborHTMLParser

from ..document import Document
from ..html_blocks import compile_drops
from ..registry import SiteParser
from . import _common as c

BLOG_DROP: tuple[str, ...] = (
    "header.post-header", ".post-meta", ".toc", "#TableOfContents", "nav", "aside",
    "footer", ".post-footer", ".post-tags", ".paginav", ".share-buttons", ".comments",
    "#disqus_thread", ".related", ".breadcrumbs", "a.anchor", "a.footnote-backref",
    "a.reversefootnote", "a.footnote-return",
)
_DROPS = compile_drops(BLOG_DROP)  # once: sorting a drop list out is per list, not per page


class FootnoteBlogParser(SiteParser):
    """Hugo (goldmark) and Jekyll (kramdown) posts: body with footnote markers as `Footnote`s."""

    name: ClassVar[str] = "footnote_blog"
    domains: ClassVar[tuple[str, ...]] = ()
    generators: ClassVar[tuple[str, ...]] = ("Hugo", "Jekyll")

    def parse(self, tree: LexborHTMLParser, url: str | None) -> Document:
        page = c.Page(tree)  # its <meta> tags are read once for all lookups
        body = c.first(page, "div.post-content", "div.post-body", "div.entry-content",
                       "article .content", "article.post", "main article", "article", "main")
        return c.document(
            page, url, self.name, c.body_blocks(body, _DROPS),
            title=c.page_title(page, "h1.post-title", "article h1", "h1"),
            published_at=c.published(page, "time[datetime]", ".post-meta span", ".post-date"),
            author=c.meta(page, "author")
            or c.text_of(c.first(page, ".post-meta .author", "[rel='author']")),
        )
