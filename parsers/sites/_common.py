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
from ..html_blocks import DropSelectors, blocks_from, inline_text
from ..registry import SiteParser, parser_classes

# Chrome wherever it appears, in tables that are each one regex pass: whole-
# block lines, matched at the start of a block's text (`re.match`, so no
# leading "^"); lines that need a "|", tried only on text that has one (their
# `[^|]{1,60}` runs are the costly part of a failed match); and phrases
# distinctive enough to match anywhere (all start with Han characters, which
# have no case: only "App" needs `(?i:...)`).
BOILERPLATE_LINES: tuple[str, ...] = (
    r"\}?\s*\?>$",                                     # PHP residue "} ?>"
    r"<\?php\b.*$",
    r"\d{1,4} / \d{2,4}$",                               # "0 / 300" character counters
    r"本文系作者.{0,40}授权钛媒体发表",
    r"本内容来源于钛媒体钛度号",
    r"想和千万钛媒体用户分享",
    r"敬原创，?,?有钛度，?,?得赞赏$",
    r"(赞赏支持|发表评论|登录后输入评论内容|快报|更多)$",
    r"Posted by\b.{0,60}$",
    r"(Photo )?Credit:\s.{1,60}$",
    r"\((photo|image|picture) source:.{1,100}\)$",
    r"(#[\w-]+\s*){2,}$",                              # a line of hashtags
    r"Leave a (Reply|Comment)\b",
    r"Your email address will not be published",
    r"(Share|Share this|Share this article)[:：]?$",
    r"Try our platform free!?$",
    r"Sign up for (a free trial|our newsletter).{0,60}$",
)
BOILERPLATE_PIPE_LINES: tuple[str, ...] = (
    r"[^|\n]{1,60}\|[^|\n]{1,60}\|\s*(Getty Images|Reuters|AFP|AP|Bloomberg)$",
)
BOILERPLATE_PHRASES: tuple[str, ...] = (
    r"根据《网络安全法》实名制要求",
    r"扫描下载\s*(?i:App)",
    r"更多精彩内容",
    r"关注钛媒体微信号",
    r"下载钛媒体(?i:App)",
)
_LINE = re.compile("|".join(f"(?:{p})" for p in BOILERPLATE_LINES), re.IGNORECASE)
_PIPE_LINE = re.compile("|".join(f"(?:{p})" for p in BOILERPLATE_PIPE_LINES), re.IGNORECASE)
_PHRASE = re.compile("|".join(BOILERPLATE_PHRASES))


def _literal_lead(pattern: str) -> str:
    """The literal text every match of `pattern` starts with ("" if unsure)."""
    if "|" in pattern:  # an alternation may start anywhere
        return ""
    lead = re.match(r"[^\\.^$*+?{}\[\]|()]*", pattern).group()  # type: ignore[union-attr]
    return lead[:-1] if pattern[len(lead):len(lead) + 1] in ("?", "*", "{") else lead


# Each phrase's leading literal, which any match contains: a few substring tests
# are much faster than the regex's one step per character on text without them.
_PHRASE_LEADS = tuple(_literal_lead(p) for p in BOILERPLATE_PHRASES)


def is_boilerplate(text: str) -> bool:
    if _LINE.match(text) is not None or ("|" in text and _PIPE_LINE.match(text) is not None):
        return True
    if text.isascii():  # an ASCII-only text cannot hold a phrase (isascii() is O(1))
        return False
    # A plain loop: a generator in `any()` costs more than the substring tests.
    for lead in _PHRASE_LEADS:
        if lead in text:
            return _PHRASE.search(text) is not None
    return False


def without_boilerplate(blocks: Iterable[Block]) -> list[Block]:
    """Blocks minus those whose whole text is a boilerplate line."""
    return [b for b in blocks if b.text and not is_boilerplate(b.text)]


def body_blocks(node: LexborNode | None, drop: Sequence[str] | DropSelectors = ()) -> list[Block]:
    """`node`'s blocks without `drop` and boilerplate lines.

    A parser's fixed drop list is best passed as `html_blocks.compile_drops(...)`, made once
    at import: sorting the selectors out is then not repeated on every page.
    """
    return without_boilerplate(blocks_from(node, drop_selectors=drop))


class Page:
    """A parsed page as the helpers here read it: the tree, and its `<meta>` tags read once.

    A site parser wraps its tree once per parse (`page = c.Page(tree)`) so
    that the `meta` lookups of one parse (author, date, title, URL) share one
    selector pass; every helper also takes a bare tree.  `css`, `css_first`,
    `body` and `root` are the tree's.
    """

    __slots__ = ("_meta_index", "_metas", "tree")

    def __init__(self, tree: LexborHTMLParser | Page) -> None:
        self.tree: LexborHTMLParser = tree.tree if isinstance(tree, Page) else tree
        self._metas: list[dict[str, str | None]] | None = None
        self._meta_index: dict[tuple[str, str], str] | None = None

    def css(self, query: str) -> list[LexborNode]:
        return self.tree.css(query)

    def css_first(self, query: str) -> LexborNode | None:
        return self.tree.css_first(query)

    @property
    def body(self) -> LexborNode | None:
        return self.tree.body

    @property
    def root(self) -> LexborNode | None:
        return self.tree.root

    def metas(self) -> list[dict[str, str | None]]:
        """The attributes of every `<meta>`, in document order."""
        if self._metas is None:
            self._metas = [node.attributes for node in self.tree.css("meta")]
        return self._metas

    def meta_index(self) -> dict[tuple[str, str], str]:
        """(attribute, value) → the stripped content of the first `<meta>` with it.

        What `meta` reads, built in one pass over the tags instead of one scan
        per key and attribute.
        """
        if self._meta_index is None:
            index: dict[tuple[str, str], str] = {}
            for attrs in self.metas():
                content: str | None = None
                for attr in _META_ATTRS:
                    value = attrs.get(attr)
                    if value is not None and (attr, value) not in index:
                        if content is None:
                            content = (attrs.get("content") or "").strip()
                        index[(attr, value)] = content
            self._meta_index = index
        return self._meta_index


Tree = LexborHTMLParser | Page


def first(tree: Tree, *selectors: str) -> LexborNode | None:
    """The first node matching any of `selectors`, tried in order."""
    for selector in selectors:
        node = tree.css_first(selector)
        if node is not None:
            return node
    return None


def fragment_body(tree: Tree) -> LexborNode | None:
    """The `<body>` of a bare article fragment, else None.

    Feeds (`content:encoded`) and APIs (TMTPost's `data.main`) carry the body
    HTML alone: no `<head>`, no page chrome.  Such a fragment is all article,
    so a site parser that finds none of its body containers reads the whole
    of it instead of reporting an empty page.
    """
    head = tree.css_first("head")
    if head is not None and head.child is not None:
        return None
    if tree.css_first("header, nav, footer, aside") is not None:
        return None
    return tree.body


def text_of(node: LexborNode | None) -> str | None:
    if node is None:
        return None
    return inline_text(node)[0] or None


_META_ATTRS = ("property", "name", "itemprop")


def meta(tree: Tree, *keys: str) -> str | None:
    """The content of the first `<meta property|name|itemprop=key>` that has one.

    Keys are tried in order and, for each, the first `<meta>` in document order
    whose property, then name, then itemprop is exactly the key (what the
    selector `meta[property="key"]` matches: these values are case-sensitive);
    an empty content goes on to the next.
    """
    index = (tree if isinstance(tree, Page) else Page(tree)).meta_index()
    for key in keys:
        for attr in _META_ATTRS:
            content = index.get((attr, key))
            if content:
                return content
    return None


def canonical_url(tree: Tree) -> str | None:
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


def page_title(tree: Tree, *selectors: str, suffixes: Sequence[str] = ()) -> str | None:
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


def published(tree: Tree, *selectors: str) -> str | None:
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


# Counted on encoded bytes, which C does in a few passes instead of one regex
# step per character.  In UTF-16-LE every BMP character is two bytes and its
# high byte alone says whether it is in U+3400-U+9FFF or U+F900-U+FAFF
# (surrogates, D8-DF, are in neither).
_NOT_HAN_HIGH = bytes(b for b in range(256) if not (0x34 <= b <= 0x9F or b in (0xF9, 0xFA)))
_NOT_LATIN = bytes(b for b in range(256) if not (0x41 <= b <= 0x5A or 0x61 <= b <= 0x7A))


def _count_han(text: str) -> int:
    """Characters in U+3400-U+9FFF and U+F900-U+FAFF."""
    if text.isascii():
        return 0
    high = text.encode("utf-16-le", "surrogatepass")[1::2]
    return len(high.translate(None, _NOT_HAN_HIGH))


def _count_latin(text: str) -> int:
    """ASCII letters A-Z, a-z.

    In UTF-8 every byte of a non-ASCII character is 0x80 or above, so the
    letter bytes are exactly the ASCII letters; encoding to UTF-8 is faster
    than to ASCII with an error handler dropping the rest.
    """
    return len(text.encode("utf-8", "surrogatepass").translate(None, _NOT_LATIN))


def detect_lang(blocks: Sequence[Block], tree: Tree) -> str | None:
    """"zh" or "en" by the script of the body text; the `<html lang>` when there is none.

    Content language wins over the declared one: TMTPost serves machine
    translations under `lang="zh-CN"`.
    """
    sample = "".join([b.text for b in blocks])[:20000]
    cjk, latin = _count_han(sample), _count_latin(sample)
    if cjk or latin:
        # A CJK character carries about as much as a 3-4 letter word.
        return "zh" if cjk * 3 >= latin else "en"
    html = tree.css_first("html")
    declared = (html.attributes.get("lang") or "") if html else ""
    primary = re.split(r"[-_]", declared.strip().lower())[0]
    return primary or None


def document(
    tree: Tree,
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


def parser_for_generator(tree: Tree) -> type[SiteParser] | None:
    """The parser whose `generators` names the page's `<meta name=generator>` ("WordPress 6.4")."""
    generator = (meta(tree, "generator") or "").lower()
    if not generator:
        return None
    for cls in parser_classes():
        names: tuple[str, ...] = getattr(cls, "generators", ())
        if any(generator.startswith(n.lower()) for n in names):
            return cls
    return None
