"""TMTPost English (en.tmtpost.com): the same page family as 钛媒体, English text."""

from __future__ import annotations

from typing import ClassVar

from .tmtpost import TmtpostParser


class TmtpostEnParser(TmtpostParser):
    """TMTPost English (en.tmtpost.com): lede and body; drops Flash News, comments, app banner."""

    name: ClassVar[str] = "tmtpost_en"
    domains: ClassVar[tuple[str, ...]] = ("en.tmtpost.com",)
    body_selectors: ClassVar[tuple[str, ...]] = (
        "div.article-content", "article div.inner", "div.post-content", "article",
    )
    summary_selectors: ClassVar[tuple[str, ...]] = ("div.article-summary", "p.post-abstract")
    title_selectors: ClassVar[tuple[str, ...]] = ("h1.article-title", "article h1", "h1")
    time_selectors: ClassVar[tuple[str, ...]] = (
        ".article-meta time", ".article-meta .time", "time[datetime]",
    )
    author_selectors: ClassVar[tuple[str, ...]] = (
        ".article-meta .author", ".article-meta a[href*='/user/']", "a[rel='author']",
    )
    title_suffixes: ClassVar[tuple[str, ...]] = ("TMTPOST", "TMTPost", "钛媒体官方网站")
