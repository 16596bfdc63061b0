"""One pass over a page for the generic extractor: text runs with their link text and owner.

The walk linearises the page into `RawBlock`s: one per run of inline text
inside a block element, each remembering how much of it is link text and
which element it sits in (`owner`, an index into `Walk.parents`).  The
scoring in `generic.py` then works on these flat lists, never on the tree,
which keeps the Python work to one visit per node.

Subtrees that are never main text (scripts, navigation, forms' widgets,
hidden nodes, and elements whose class/id says sidebar, comments, share bar,
cookie banner, ...) are skipped by `mem_id`; the tree is never modified.
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
# Hidden, or a landmark that is never the main text.
_HIDDEN_SELECTOR = ", ".join((
    "[aria-hidden=true]", "[style*='display:none']", "[style*='display: none']",
    "[style*='visibility:hidden']", "[style*='visibility: hidden']",
    "[role=navigation]", "[role=complementary]", "[role=banner]", "[role=contentinfo]",
    "[role=search]", "[role=dialog]", "[role=menu]", "[role=menubar]", "[role=alert]",
))
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
_KEEP_TAGS = frozenset({"html", "body", "article", "main", "td", "th", "tr", "table"})


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


def _hidden_ids(root: LexborNode) -> set[int]:
    """mem_ids of hidden nodes and of landmarks that are never the main text."""
    return {n.mem_id for n in root.css(_HIDDEN_SELECTOR)}


def _unlikely_ids(root: LexborNode) -> set[int]:
    """mem_ids of containers whose class/id says sidebar, comments, share bar, ...

    These are not dropped outright (a page builder may wrap the whole article in
    a "widget"): the scoring discounts them and the output drops them only when
    they sit inside the chosen main-content container.
    """
    unlikely = {n.mem_id for n in root.css("[hidden]")}
    verdicts: dict[str, bool] = {}  # pages repeat the same few class strings
    for node in root.css("[class], [id]"):
        attrs = node.attributes
        label = f"{attrs.get('class') or ''} {attrs.get('id') or ''}".lower()
        verdict = verdicts.get(label)
        if verdict is None:
            verdict = bool(_ANY_WORD.search(label)) and (
                bool(_STRONG.search(label)) or not _MAYBE_CONTENT.search(label)
            )
            verdicts[label] = verdict
        if verdict and node.tag not in _KEEP_TAGS:
            unlikely.add(node.mem_id)
    return unlikely


class _State:
    """Mutable state of one walk (kept off the node objects, which lexbor recreates)."""

    __slots__ = ("buf", "buf_link", "cell", "guard", "out", "owner", "tables")

    def __init__(self, out: Walk) -> None:
        self.out = out
        self.buf: list[str] = []
        self.buf_link = 0
        self.owner = -1
        self.guard = -1
        # per open table: [table index, row, col]; cell: (table, row, col, is_th) or None
        self.tables: list[list[int]] = []
        self.cell: tuple[int, int, int, bool] | None = None

    def flush(self, kind: BlockKind) -> None:
        text = " ".join("".join(self.buf).split())
        if text:
            link = min(self.buf_link, len(text))
            block = RawBlock(text, kind, self.owner, link, self.guard)
            if kind == "table_cell" and self.cell is not None:
                block.table, block.row, block.col, block.is_th = self.cell
            self.out.blocks.append(block)
        self.buf = []
        self.buf_link = 0


def walk(tree: LexborHTMLParser) -> Walk:
    """Linearise the page body into RawBlocks (never raises on odd trees)."""
    out = Walk()
    root = tree.body or tree.root
    if root is None:
        return out
    dropped = _hidden_ids(root)
    unlikely = _unlikely_ids(root)
    st = _State(out)
    # frame: (node, element index, tag, kind, in_link, in_article, guard)
    out.parents.append(-1)
    out.tags.append(root.tag or "")
    frames: list[tuple[LexborNode, int, str, BlockKind, bool, bool, int]] = [
        (root, 0, "body", "paragraph", False, False, -1)
    ]
    cur = root.child
    while True:
        if cur is None:
            node, _eid, tag, kind, _, _, _ = frames.pop()
            if tag in _BLOCKISH:
                if st.buf:
                    st.flush(kind)
                if tag == "table" and st.tables:
                    st.tables.pop()
                elif tag in ("td", "th"):
                    st.cell = None
            if not frames:
                break
            cur = node.next
            continue
        tag = cur.tag or ""
        if tag == "-text":
            text = cur.text_content
            if text and (st.buf or not text.isspace()):
                top = frames[-1]
                if not st.buf:
                    st.owner = top[1]
                    st.guard = top[6]
                st.buf.append(text)
                if top[4]:
                    st.buf_link += len(text.strip())
            cur = cur.next
            continue
        parent = frames[-1]
        if tag in _SKIP_TAGS or cur.mem_id in dropped:
            if tag == "br" and st.buf:
                st.buf.append(" ")
            cur = cur.next
            continue
        kind = _KIND_OF.get(tag, parent[3])
        if tag in _BLOCKISH:
            if st.buf:
                st.flush(parent[3])
            if tag == "hr":
                cur = cur.next
                continue
            if tag == "table":
                st.tables.append([len(out.parents), -1, -1])
            elif tag == "tr" and st.tables:
                t = st.tables[-1]
                t[1] += 1
                t[2] = -1
            elif (tag == "td" or tag == "th") and st.tables:
                t = st.tables[-1]
                t[2] += 1
                st.cell = (t[0], t[1], t[2], tag == "th")
        eid = len(out.parents)
        out.parents.append(parent[1])
        out.tags.append(tag)
        frames.append((cur, eid, tag, kind, parent[4] or tag == "a",
                       parent[5] or tag == "article" or tag == "main",
                       eid if (cur.mem_id in unlikely or tag in _SOFT_TAGS
                               or (tag == "header" and not parent[5])) else parent[6]))
        cur = cur.child
    return out
