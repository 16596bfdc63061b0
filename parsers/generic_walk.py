"""One pass over a page for the generic extractor: text runs with their link text and owner.

The walk linearises the page into `RawBlock`s: one per run of inline text
inside a block element, each remembering how much of it is link text and
which element it sits in (`owner`, an index into `Walk.parents`).  The
scoring in `generic.py` then works on these flat lists, never on the tree,
which keeps the Python work to one visit per node.

Subtrees that are never main text (scripts, styles, form widgets,
`aria-hidden` nodes, navigation/banner/dialog landmarks) are skipped.
Elements that merely look like chrome (`nav`, `aside`, `footer`, a page
`header`, `hidden` or `display:none`, a class/id saying sidebar, comments,
share bar, cookie banner, ...) are walked, and each run records the nearest
such element as its `guard`; `generic.py` decides what that costs.  The tree
is never modified.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from selectolax.lexbor import LexborHTMLParser, LexborNode

from .document import BlockKind

__all__ = ["RawBlock", "Walk", "walk"]

# Never main text, whatever the page.
_SKIP_TAGS = frozenset({
    "script", "style", "template", "svg", "math", "canvas", "iframe", "object",
    "embed", "video", "audio", "button", "select", "option", "textarea", "input",
    "head", "title", "meta", "link", "dialog", "label", "img", "picture",
    "source", "map", "menu", "-comment", "base", "frameset", "noembed", "br", "wbr",
})
_KIND_OF: dict[str, BlockKind] = {
    **{f"h{i}": "heading" for i in range(1, 7)},
    "li": "list_item", "dt": "list_item", "dd": "list_item",
    "td": "table_cell", "th": "table_cell",
    "figcaption": "caption", "caption": "caption",
}
# Elements that end the current run of inline text.
_BLOCKISH = frozenset({
    *_KIND_OF, "p", "div", "section", "article", "main", "header", "ul", "ol", "dl",
    "figure", "blockquote", "pre", "address", "hr", "form", "fieldset", "details", "summary",
    "center", "table", "tr", "thead", "tbody", "tfoot", "body", "html", "legend",
    "hgroup", "search", "nav", "aside", "footer",
})
# Inline elements are not recorded as elements: their text belongs to the enclosing block,
# which keeps the element tree (and every pass over it) small.
_INLINE = frozenset({
    "a", "span", "strong", "em", "b", "i", "u", "small", "sup", "sub", "code", "abbr",
    "time", "mark", "font", "cite", "q", "s", "del", "ins", "kbd", "var", "bdi", "bdo",
    "data", "dfn", "samp", "tt", "big", "strike", "nobr",
})
# Hidden, or a landmark that is never the main text.  Checked in Python on the few
# nodes that have these attributes: cheaper than substring selectors in lexbor.
_HIDDEN_SELECTOR = "[style], [role], [aria-hidden], [hidden]"
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)
_CHROME_ROLES = frozenset({
    "navigation", "complementary", "banner", "contentinfo", "search", "dialog", "menu",
    "menubar", "alert",
})
# Chrome is wrapped in containers; spans, links and paragraphs are not worth a lookup.
_CONTAINER_SELECTOR = ", ".join(
    f"{t}[class], {t}[id]" for t in ("div", "section", "ul", "ol", "li", "aside", "form")
)
# class/id words that mark boilerplate containers (readability's "unlikely candidates",
# extended with what modern pages wrap their chrome in).  Matched at the start of a
# class/id token, so "comments-area" matches "comment" but "nocomment" does not.
_STRONG_WORDS = (
    "sidebar", "side-bar", "footer", "cookie", "consent", "gdpr", "share", "sharing", "social",
    "related", "newsletter", "subscribe", "breadcrumb", "disqus", "outbrain", "taboola",
    "popup", "modal", "offcanvas", "off-canvas", "sr-only", "screen-reader", "visually-hidden",
    "skip-link", "skiplink", "trending", "most-popular", "more-stories", "recommend",
    "advert", "sponsor", "signup", "sign-up", "login", "pagination", "pager",
)
_WEAK_WORDS = (
    "comment", "menu", "nav", "header", "masthead", "banner", "promo", "toolbar", "topbar",
    "top-bar", "author-bio", "tags", "tag-list", "read-more", "readmore",
)


def _first_letter_alternation(words: tuple[str, ...]) -> str:
    """"(?:s(?:hare|idebar)|c(?:ookie))": lets `re` reject most positions on one character."""
    groups: dict[str, list[str]] = {}
    for w in words:
        groups.setdefault(w[0], []).append(re.escape(w[1:]))
    return "(?:" + "|".join(
        f"{re.escape(c)}(?:{'|'.join(sorted(rest, key=len, reverse=True))})"
        for c, rest in groups.items()
    ) + ")"


_ANY_WORD = re.compile(
    r"(?<![a-z0-9])" + _first_letter_alternation((*_STRONG_WORDS, *_WEAK_WORDS))
)
_STRONG = re.compile(r"(?<![a-z0-9])" + _first_letter_alternation(_STRONG_WORDS))
# ...a weak word is forgiven when the same class/id also says this is the content.
_MAYBE_CONTENT = re.compile(
    r"article|body|content|main|entry|post|story|text|column|shadow|prose|markdown"
)
# Chrome by their tag, but walked anyway: broken markup can leave a whole page inside
# an unclosed <aside>, and streamed pages keep their body in <div hidden> until JS runs.
_SOFT_TAGS = frozenset({"nav", "aside", "footer"})


@dataclass(slots=True)
class RawBlock:
    """A run of text with what the scoring needs to know about it."""

    text: str
    kind: BlockKind
    owner: int  # index of the innermost element holding the text
    link_chars: int
    guard: int  # nearest enclosing element whose class/id looks like chrome, else -1
    table: int = -1  # index of the enclosing <table> for cells, else -1
    row: int = -1
    col: int = -1
    is_th: bool = False


@dataclass(slots=True)
class Walk:
    """The result of one pass: blocks in reading order and the element tree they hang on."""

    blocks: list[RawBlock] = field(default_factory=list)
    parents: list[int] = field(default_factory=list)  # element index → parent index (-1 root)
    tags: list[str] = field(default_factory=list)
    # element index → nearest chrome-looking element strictly above it, else -1
    outer_guards: list[int] = field(default_factory=list)


_HIDDEN = 1
_UNLIKELY = 2


def _flags(root: LexborNode) -> dict[int, int]:
    """mem_id → _HIDDEN (never walked) or _UNLIKELY (chrome by its class/id, or `hidden`).

    Unlikely elements are not dropped outright (a page builder may wrap the whole
    article in one): the scoring ignores their text unless they hold much of the
    page, and the output drops them when they sit inside the main container.
    """
    flags: dict[int, int] = {}
    verdicts: dict[tuple[str | None, str | None], bool] = {}  # pages repeat class strings
    for node in root.css(_CONTAINER_SELECTOR):
        attrs = node.attributes
        key = (attrs.get("class"), attrs.get("id"))
        verdict = verdicts.get(key)
        if verdict is None:
            label = f"{key[0] or ''} {key[1] or ''}".lower()
            verdict = bool(_ANY_WORD.search(label)) and (
                bool(_STRONG.search(label)) or not _MAYBE_CONTENT.search(label)
            )
            verdicts[key] = verdict
        if verdict:
            flags[node.mem_id] = _UNLIKELY
    for node in root.css(_HIDDEN_SELECTOR):
        attrs = node.attributes
        style = attrs.get("style")
        role = (attrs.get("role") or "").strip().lower()
        if attrs.get("aria-hidden") == "true" or role in _CHROME_ROLES:
            flags[node.mem_id] = _HIDDEN
        elif "hidden" in attrs or (style and _HIDDEN_STYLE.search(style)):
            # soft: JS-revealed pages keep the whole article in a display:none wrapper
            flags[node.mem_id] = _UNLIKELY
    return flags


def walk(tree: LexborHTMLParser) -> Walk:
    """Linearise the page body into RawBlocks (never raises on odd trees).

    One flat loop with local state: this is the hot path of the extractor.
    """
    out = Walk()
    root = tree.body or tree.root
    if root is None:
        return out
    flags = _flags(root)
    blocks = out.blocks
    parents = out.parents
    tags = out.tags
    outer_guards = out.outer_guards
    buf: list[str] = []
    buf_link = 0
    owner = guard = -1
    tables: list[list[int]] = []  # per open table: [table element, row, col]
    cell: tuple[int, int, int, bool] | None = None

    def flush(kind: BlockKind) -> None:
        text = " ".join("".join(buf).split())
        if text:
            block = RawBlock(text, kind, owner, min(buf_link, len(text)), guard)
            if cell is not None and kind == "table_cell":
                block.table, block.row, block.col, block.is_th = cell
            blocks.append(block)
        buf.clear()

    parents.append(-1)
    tags.append(root.tag or "")
    outer_guards.append(-1)
    # frame: (node, element index, tag, kind, in_link, in_article, guard)
    frames: list[tuple[LexborNode, int, str, BlockKind, bool, bool, int]] = [
        (root, 0, "body", "paragraph", False, False, -1)
    ]
    cur = root.child
    while True:
        if cur is None:
            node, _eid, tag, kind, _, _, _ = frames.pop()
            if tag in _BLOCKISH:
                if buf:
                    flush(kind)
                    buf_link = 0
                if tag == "table" and tables:
                    tables.pop()
                elif tag == "td" or tag == "th":
                    cell = None
            if not frames:
                break
            cur = node.next
            continue
        tag = cur.tag or ""
        if tag == "-text":
            text = cur.text_content
            if text and (buf or not text.isspace()):
                top = frames[-1]
                if not buf:
                    owner = top[1]
                    guard = top[6]
                buf.append(text)
                if top[4]:
                    buf_link += len(text.strip())
            cur = cur.next
            continue
        if tag in _SKIP_TAGS:
            if tag == "br" and buf:
                buf.append(" ")
            cur = cur.next
            continue
        flag = flags.get(cur.mem_id, 0)
        if flag == _HIDDEN:
            cur = cur.next
            continue
        parent = frames[-1]
        kind = _KIND_OF.get(tag, parent[3])
        if tag in _BLOCKISH:
            if buf:
                flush(parent[3])
                buf_link = 0
            if tag == "hr":
                cur = cur.next
                continue
            if tag == "table":
                tables.append([len(parents), -1, -1])
            elif tag == "tr" and tables:
                t = tables[-1]
                t[1] += 1
                t[2] = -1
            elif (tag == "td" or tag == "th") and tables:
                t = tables[-1]
                t[2] += 1
                cell = (t[0], t[1], t[2], tag == "th")
        if tag in _INLINE:
            frames.append((cur, parent[1], tag, kind, parent[4] or tag == "a", parent[5],
                           parent[6]))
            cur = cur.child
            continue
        eid = len(parents)
        parents.append(parent[1])
        tags.append(tag)
        outer_guards.append(parent[6])
        frames.append((cur, eid, tag, kind, parent[4] or tag == "a",
                       parent[5] or tag == "article" or tag == "main",
                       eid if (flag or tag in _SOFT_TAGS or (tag == "header" and not parent[5]))
                       else parent[6]))
        cur = cur.child
    return out
