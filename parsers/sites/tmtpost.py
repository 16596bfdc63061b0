"""TMTPost / 钛媒体 (www.tmtpost.com, m.tmtpost.com): article body without the 快报 rail."""

from __future__ import annotations

from typing import ClassVar

from selectolax.lexbor import LexborHTMLParser

from ..document import Document
from ..html_blocks import DropSelectors, compile_drops
from ..registry import SiteParser
from . import _common as c

# Chrome shared by the TMTPost family (CN and EN sites), dropped by structure.
TMTPOST_DROP: tuple[str, ...] = (
    "h1", ".post-info", ".article-meta", ".pro_icon", ".pro_intro", ".post-abstract-label",
    "img", ".tag-list", ".post-tags", ".post-copyright", ".copyright", ".reward", ".appreciate",
    ".comments_mod_v1", "#comment", ".post-comment", ".comment-list", ".share", ".share-box",
    ".sidebar", "aside", ".see_world", ".flash-news", "ul:has(a[href*='/nictation/'])",
    ".hot_posts", ".hot_tags", ".related", ".related-posts", ".app_qrcode", ".get_app",
    ".app-download", ".stock-widget", ".stock-list", ".w3-part", ".ad", "header", "footer",
    "nav",
)


class TmtpostParser(SiteParser):
    """TMTPost CN (钛媒体): the `div.inner` body and metadata; drops 快报, comments, promos."""

    name: ClassVar[str] = "tmtpost"
    domains: ClassVar[tuple[str, ...]] = ("www.tmtpost.com", "m.tmtpost.com", "tmtpost.com")
    body_selectors: ClassVar[tuple[str, ...]] = (
        "article div.inner", "div.article-content", "div.post-content", "div.article_detail",
        "article",
    )
    summary_selectors: ClassVar[tuple[str, ...]] = ("article p.post-abstract", "p.post-abstract")
    title_selectors: ClassVar[tuple[str, ...]] = ("article > h1", "h1.post-title", "h1")
    time_selectors: ClassVar[tuple[str, ...]] = (
        ".post-info .time", ".post-info time", "time.time", "time[datetime]",
    )
    author_selectors: ClassVar[tuple[str, ...]] = (
        ".post-info a[href*='/user/']", ".post-info .author", "a[rel='author']",
    )
    title_suffixes: ClassVar[tuple[str, ...]] = ("钛媒体官方网站", "钛媒体", "TMTPOST")
    # TMTPOST_DROP and the summary selectors, compiled once per class (see below).
    body_drops: ClassVar[DropSelectors] = compile_drops((*TMTPOST_DROP, *summary_selectors))

    def __init_subclass__(cls, **kwargs: object) -> None:
        """A subclass with its own `summary_selectors` drops those from its body."""
        super().__init_subclass__(**kwargs)
        cls.body_drops = compile_drops((*TMTPOST_DROP, *cls.summary_selectors))

    def parse(self, tree: LexborHTMLParser, url: str | None) -> Document:
        page = c.Page(tree)  # its <meta> tags are read once for all lookups
        body = c.first(page, *self.body_selectors) or c.fragment_body(page)
        blocks = []
        summary = c.first(page, *self.summary_selectors)
        if summary is not None:  # the lede is content; the body walk skips it
            blocks += c.body_blocks(summary)
        blocks += c.body_blocks(body, self.body_drops)
        author = c.text_of(c.first(page, *self.author_selectors)) or c.meta(page, "author")
        return c.document(
            page, url, self.name, blocks,
            title=c.page_title(page, *self.title_selectors, suffixes=self.title_suffixes),
            published_at=c.published(page, *self.time_selectors),
            author=author,
        )
