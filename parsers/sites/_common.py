"""Helpers the site parsers share: page metadata and the boilerplate text patterns.

Parsers drop chrome by structure first (selectors per site); the patterns
here are the small safety net for chrome that sits *inside* an article body
as plain text (reposted credit lines, PHP residue, promo lines).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode

from ..document import Block, Document
from ..html_blocks import blocks_from, inline_text
from ..registry import SiteParser, parser_classes

# One line of text that is chrome wherever it appears.  Anchored patterns match
# the whole block; unanchored ones are distinctive enough to match anywhere.
BOILERPLATE_PATTERNS: tuple[re.Pattern[str], ...] = tuple(re.compile(p, re.IGNORECASE) for p in (
    r"^\}?\s*\?>$",                                    # PHP residue "} ?>"
    r"^<\?php\b.*$",
    r"^\d{1,4} / \d{2,4}$",                               # "0 / 300" character counters
    r"根据《网络安全法》实名制要求",
    r"扫描下载\s*App",
    r"更多精彩内容|关注钛媒体微信号|下载钛媒体App",
    r"^本文系作者.{0,40}授权钛媒体发表",
    r"^本内容来源于钛媒体钛度号",
    r"^想和千万钛媒体用户分享",
    r"^敬原创，?,?有钛度，?,?得赞赏$",
    r"^(赞赏支持|发表评论|登录后输入评论内容|快报|更多)$",
    r"^Posted by\b.{0,60}$",
    r"^(Photo )?Credit:\s.{1,60}$",
    r"^\((photo|image|picture) source:.{1,100}\)$",
    r"^[^|\n]{1,60}\|[^|\n]{1,60}\|\s*(Getty Images|Reuters|AFP|AP|Bloomberg)$",
    r"^(#[\w-]+\s*){2,}$",                             # a line of hashtags
    r"^Leave a (Reply|Comment)\b",
    r"^Your email address will not be published",
    r"^(Share|Share this|Share this article)[:：]?$",
    r"^Try our platform free!?$",
    r"^Sign up for (a free trial|our newsletter).{0,60}$",
))


def is_boilerplate(text: str) -> bool:
    return any(p.search(text) for p in BOILERPLATE_PATTERNS)


def without_boilerplate(blocks: Iterable[Block]) -> list[Block]:
    """Blocks minus those whose whole text is a boilerplate line."""
    return [b for b in blocks if b.text and not is_boilerplate(b.text)]


def body_blocks(node: LexborNode | None, drop: Sequence[str] = ()) -> list[Block]:
    return without_boilerplate(blocks_from(node, drop_selectors=drop))


def first(tree: LexborHTMLParser, *selectors: str) -> LexborNode | None:
    """The first node matching any of `selectors`, tried in order."""
    for selector in selectors:
        node = tree.css_first(selector)
        if node is not None:
            return node
    return None


def text_of(node: LexborNode | None) -> str | None:
    if node is None:
        return None
    return inline_text(node)[0] or None


def meta(tree: LexborHTMLParser, *keys: str) -> str | None:
    """The content of the first `<meta property|name|itemprop=key>` that has one."""
    for key in keys:
        for attr in ("property", "name", "itemprop"):
            node = tree.css_first(f'meta[{attr}="{key}"]')
            content = (node.attributes.get("content") or "").strip() if node else ""
            if content:
                return content
    return None


def canonical_url(tree: LexborHTMLParser) -> str | None:
    """`<link rel=canonical>` else `og:url`, if absolute."""
    node = tree.css_first('link[rel="canonical"]')
    href = (node.attributes.get("href") or "").strip() if node else ""
    href = href or (meta(tree, "og:url") or "")
    if not href.startswith(("http://", "https://")):
        return None
    try:  # page markup is untrusted: "http://[::1" must not become an exception
        return href if urlsplit(href).hostname else None
    except ValueError:
        return None


def strip_suffix(title: str | None, suffixes: Sequence[str]) -> str | None:
    """The title without a site suffix ("… -钛媒体官方网站", "… | Forbes China")."""
    if not title:
        return None
    title = " ".join(title.split())
    for suffix in suffixes:
        pattern = re.compile(r"\s*[-–—_|｜]\s*" + re.escape(suffix) + r"\s*$", re.IGNORECASE)
        title = pattern.sub("", title)
    return title or None


def page_title(tree: LexborHTMLParser, *selectors: str, suffixes: Sequence[str] = ()) -> str | None:
    """Title from the article heading, else og:title, else `<title>`, suffix stripped."""
    heading = text_of(first(tree, *selectors)) if selectors else None
    raw = heading or meta(tree, "og:title") or text_of(tree.css_first("title"))
    return strip_suffix(raw, suffixes)


_DATE = re.compile(
    r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})日?"
    r"(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?"
)
_MDY = re.compile(r"^(\d{1,2})/(\d{1,2})\s+(\d{4})$")


def iso_date(text: str | None) -> str | None:
    """An ISO date(-time) from "2024-02-19 10:31", "2024年10月15日", "10/15 2024", ISO."""
    if not text:
        return None
    text = text.strip()
    if re.match(r"^\d{4}-\d{2}-\d{2}T", text):
        return text
    m = _DATE.search(text)
    if m:
        y, mo, d, hh, mm, ss = m.groups()
        date = f"{int(y):04d}-{int(mo):02d}-{int(d):02d}"
        if hh is not None:
            return f"{date}T{int(hh):02d}:{int(mm):02d}:{int(ss or 0):02d}"
        return date
    m = _MDY.match(text)
    if m:
        mo, d, y = m.groups()
        return f"{int(y):04d}-{int(mo):02d}-{int(d):02d}"
    return None


def published(tree: LexborHTMLParser, *selectors: str) -> str | None:
    """Publication time from meta tags, then `time[datetime]`, then visible text."""
    value = meta(tree, "article:published_time", "datePublished", "pubdate", "date")
    if value:
        return iso_date(value)
    for selector in selectors:
        node = tree.css_first(selector)
        if node is None:
            continue
        found = iso_date(node.attributes.get("datetime") or text_of(node))
        if found:
            return found
    return None


_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")


def detect_lang(blocks: Sequence[Block], tree: LexborHTMLParser) -> str | None:
    """"zh" or "en" by the script of the body text; the `<html lang>` when there is none.

    Content language wins over the declared one: TMTPost serves machine
    translations under `lang="zh-CN"`.
    """
    sample = "".join(b.text for b in blocks)[:20000]
    cjk, latin = len(_CJK.findall(sample)), len(_LATIN.findall(sample))
    if cjk or latin:
        # A CJK character carries about as much as a 3-4 letter word.
        return "zh" if cjk * 3 >= latin else "en"
    html = tree.css_first("html")
    declared = (html.attributes.get("lang") or "") if html else ""
    primary = re.split(r"[-_]", declared.strip().lower())[0]
    return primary or None


def document(
    tree: LexborHTMLParser,
    url: str | None,
    parser: str,
    blocks: list[Block],
    *,
    title: str | None,
    published_at: str | None = None,
    author: str | None = None,
) -> Document:
    return Document(
        url=url or canonical_url(tree),
        title=title,
        published=published_at,
        author=author,
        lang=detect_lang(blocks, tree),
        blocks=blocks,
        parser=parser,
    )


def parser_for_generator(tree: LexborHTMLParser) -> type[SiteParser] | None:
    """The parser whose `generators` names the page's `<meta name=generator>` ("WordPress 6.4")."""
    generator = (meta(tree, "generator") or "").lower()
    if not generator:
        return None
    for cls in parser_classes():
        names: tuple[str, ...] = getattr(cls, "generators", ())
        if any(generator.startswith(n.lower()) for n in names):
            return cls
    return None
