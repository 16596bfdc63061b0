"""HTML subtree → ordered `Block`s: the one walker every parser shares.

`blocks_from(node)` walks the element in document order and emits one block
per run of text in a block element (h1-h6 → heading, p/blockquote/pre/div →
paragraph, li/dt/dd → list_item, figcaption/caption → caption, td/th →
table_cell).  Data tables become `table_cell` blocks carrying their row and
column headers; layout tables (no header cells) are walked like any other
container.  Footnote markers (`sup.footnote-ref`, `sup[id^=fnref]`,
`a.footnote`, `a[role=doc-noteref]`) are removed from the text and recorded
as `Footnote(marker, offset)`.  Whitespace, `&nbsp;` and zero-width characters
are normalised; `<br>` keeps a line break.

The tree is never modified: dropped subtrees are skipped by identity, so a
caller can run several extractions over one parsed tree.

Speed (bench/parsers.py): Python per node is the cost, so as little as
possible runs per node.  Drop selectors that are a bare tag name are matched
by tag in the walk and the others in one joined selector pass; elements with
nothing to decide inside (see `_containers`) are read with one `node.text()`
call instead of text node by text node; `_Run` takes a text node in one
`str.split()`, or none when the text is printable without double spaces
(`_joined_words`).  Site parsers pass their drop lists compiled once
(`compile_drops`), and `_walk` runs the common cases of `leaf_block` and
`flush` inline.  The output is the same, block for block, as walking every node.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Container, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from typing import ClassVar

from selectolax.lexbor import LexborNode

from .document import Block, BlockKind, Footnote

__all__ = [
    "ALWAYS_DROP", "DropSelectors", "blocks_from", "compile_drops", "inline_text",
    "is_footnote_marker",
]

# Never main text, whatever the page: code, forms, hidden nodes, footnote lists.
ALWAYS_DROP: tuple[str, ...] = (
    "script", "style", "noscript", "template", "svg", "canvas", "iframe", "object",
    "button", "select", "textarea", "input",
    "[hidden]", "[aria-hidden=true]",
    "div.footnotes", "section.footnotes", "[role=doc-endnotes]", "ol.footnotes",
)

_KIND_OF: dict[str, BlockKind] = {
    **{f"h{i}": "heading" for i in range(1, 7)},
    "li": "list_item", "dt": "list_item", "dd": "list_item",
    "figcaption": "caption", "caption": "caption",
}
# Elements that end the current run of inline text.
_BLOCKISH = frozenset({
    *_KIND_OF, "p", "div", "section", "article", "main", "header", "footer", "aside",
    "nav", "ul", "ol", "dl", "menu", "figure", "blockquote", "pre", "address", "hr",
    "form", "fieldset", "details", "summary", "center", "table", "tr", "td", "th",
    "thead", "tbody", "tfoot", "body", "html", "video", "audio", "picture",
})
_SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "head", "title", "meta",
                        "link", "svg", "img", "input", "textarea", "select", "button"})
_ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")


def _without_zero_width(text: str) -> str:
    # isascii() is O(1) in CPython (a flag of the string), and six substring
    # tests are several times faster than one regex step per character.
    if text.isascii() or not (
        "\u200b" in text or "\u00ad" in text or "\u200c" in text or "\u200d" in text
        or "\u2060" in text or "\ufeff" in text
    ):
        return text
    return _ZERO_WIDTH.sub("", text)


def _joined_words(text: str) -> str:
    """`" ".join(text.split())`, without splitting text that is already like that.

    Every whitespace character but U+0020 is unprintable, so printable text
    with no double space is its own words joined, less a space at either end.
    The two C scans cost half of building the list of words and joining it.
    """
    if text.isprintable() and "  " not in text:
        return text.strip(" ")
    return " ".join(text.split())


def _collapsed(text: str) -> str:
    """`text` without zero-width characters, its words joined by single spaces.

    Printable text has no zero-width characters (all are format characters).
    """
    if text.isprintable() and "  " not in text:
        return text.strip(" ")
    return " ".join(_without_zero_width(text).split())


_MARKER_TAGS = frozenset({"sup", "a"})  # the only tags is_footnote_marker accepts
_MARKER_ATTRS = frozenset({"class", "role"})  # an `a` without either is no marker
# Tags whose element needs the node-by-node walk around it (see `_containers`).
# `img` is void: skipping it and reading its (absent) text are the same.
_WALK_TAGS = (_BLOCKISH | _SKIP_TAGS | {"br"}) - {"img"}
# Common inline tags, never a reason to walk node by node (unless dropped by id).
_PLAIN_TAGS = frozenset({"span", "strong", "em", "b", "i", "u", "code", "time", "img", "small",
                         "abbr", "cite", "mark", "q", "s", "sub", "-comment"})
# Drop selectors that are a bare tag name are matched by `node.tag` in the walk;
# the rest go to one selector pass (see `_split_drops`).
_TAG_NAME = re.compile(r"[a-z][a-z0-9]*").fullmatch
_RISKY = re.compile(r"""[\\,"'()\[\]/]""").search
_ALWAYS_DROP_TAGS = frozenset(s for s in ALWAYS_DROP if _TAG_NAME(s))
_ALWAYS_DROP_CSS = tuple(s for s in ALWAYS_DROP if not _TAG_NAME(s))


def is_footnote_marker(node: LexborNode) -> bool:
    """True for a footnote reference (Hugo/goldmark, Jekyll/kramdown, Blackfriday, generic)."""
    tag = node.tag
    attrs = node.attributes
    classes = (attrs.get("class") or "").split()
    if tag == "sup":
        return "footnote-ref" in classes or (attrs.get("id") or "").startswith("fnref")
    if tag == "a":
        return ("footnote" in classes or "footnote-ref" in classes
                or attrs.get("role") == "doc-noteref")
    return False


class _Run:
    """Accumulates inline text with whitespace collapsed as it arrives.

    This is a per-character state machine (whitespace sets a pending space,
    other characters append it first), so feeding it one string or the same
    string in pieces gives the same text; one text node is one `str.split()`
    and one append, not a loop over its words.  `str.split()` and `re`'s `\\s`
    agree on what whitespace is (Unicode spaces, `&nbsp;` included).  `last`
    is the last character appended, "\\n" at the start of a line (an empty
    run counts as one).
    """

    __slots__ = ("footnotes", "keep_newlines", "last", "length", "parts", "pending_space")

    def __init__(self, keep_newlines: bool = False) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.pending_space = False
        self.footnotes: list[Footnote] = []
        self.keep_newlines = keep_newlines
        self.last = "\n"

    def clear(self) -> None:
        self.parts = []
        self.length = 0
        self.pending_space = False
        self.footnotes = []
        self.last = "\n"

    def add_text(self, text: str) -> None:
        if not text.isascii():
            text = _without_zero_width(text)
        if self.keep_newlines and "\n" in text:
            for i, line in enumerate(text.split("\n")):
                if i:
                    self.newline()
                self._add_flat(line)
        else:
            self._add_flat(text)

    def _add_flat(self, text: str) -> None:
        piece = _joined_words(text)
        if not piece:
            if text:  # whitespace only: a space, unless at the start of a line
                self.pending_space = self.last != "\n"
            return
        last = self.last
        if text[0].isspace():
            self.pending_space = last != "\n"
        if self.pending_space and last != "\n" and last != " ":
            self.parts.append(" ")
            self.length += 1
        self.parts.append(piece)
        self.length += len(piece)
        self.last = piece[-1]
        self.pending_space = text[-1].isspace()

    def _append(self, s: str) -> None:
        self.parts.append(s)
        self.length += len(s)
        self.last = s[-1]

    def newline(self) -> None:
        self.pending_space = False
        if self.last != "\n":
            self._append("\n")

    def marker(self, text: str) -> None:
        marker = text.strip().strip("[]()").strip()
        if not marker:
            return
        if self.pending_space and self.last != "\n":
            # "ai <sup>1</sup>出品": the space stood before the marker, keep it there.
            self._append(" ")
        self.pending_space = False
        self.footnotes.append(Footnote(marker, self.length))

    def result(self) -> tuple[str, tuple[Footnote, ...]]:
        text = "".join(self.parts).rstrip()
        if not self.footnotes:
            return text, ()
        # Footnotes are frozen values: one whose offset already fits is reused as is.
        n = len(text)
        return text, tuple(f if f.offset <= n else Footnote(f.marker, n) for f in self.footnotes)


_new = object.__new__
_SET_KIND, _SET_TEXT, _SET_FOOTNOTES, _SET_ROW_HEADER, _SET_COLUMN_HEADER = (
    getattr(Block, f.name).__set__ for f in fields(Block)
)


def _block(kind: BlockKind, text: str, footnotes: tuple[Footnote, ...] = ()) -> Block:
    """`Block(kind, text, footnotes)`, built a third faster.

    A frozen dataclass's `__init__` sets each field through `object.__setattr__`;
    this sets the same slots directly (pages have hundreds of blocks).
    """
    block = _new(Block)
    _SET_KIND(block, kind)
    _SET_TEXT(block, text)
    _SET_FOOTNOTES(block, footnotes)
    _SET_ROW_HEADER(block, None)
    _SET_COLUMN_HEADER(block, None)
    return block


_Restore = tuple[BlockKind, bool]  # the walker state to restore after a block element


class _Walker:
    """Walks element by element, but reads a subtree with nothing to decide in
    it (no block, `<br>`, table, skipped or dropped element, footnote marker:
    see `_containers`) with one `node.text()` call, which `_Run` turns into the
    same text as the text nodes one by one."""

    # True when `leaf_block` and `flush` are this class's: `_walk` then runs their
    # common cases inline.
    plain_leaves: ClassVar[bool] = True

    def __init__(
        self, skip: Container[int], skip_tags: frozenset[str], containers: set[int]
    ) -> None:
        self.skip = skip
        self.skip_tags = skip_tags
        self.containers = containers
        self.blocks: list[Block] = []
        self.kind: BlockKind = "paragraph"
        self.run = _Run()

    # -- runs --------------------------------------------------------------
    def flush(self) -> None:
        run = self.run
        if run.parts or run.footnotes:
            text, notes = run.result()
            if text:
                self.blocks.append(_block(self.kind, text, notes))
            run.clear()
        else:  # nothing since the last flush: most block boundaries
            run.pending_space = False

    def leaf_block(self, tag: str, text: str) -> None:
        """A block element whose whole text is `text` (see `_Walker`)."""
        self.flush()
        if self.run.keep_newlines or tag == "pre":
            kind, keep = self.kind, self.run.keep_newlines
            self.kind = _KIND_OF.get(tag, kind)
            self.run.keep_newlines = True
            self.run.add_text(text)
            self.flush()
            self.kind, self.run.keep_newlines = kind, keep
            return
        # A fresh run given one string ends as its words joined by single spaces.
        text = _collapsed(text)
        if text:
            self.blocks.append(_block(_KIND_OF.get(tag, self.kind), text))

    # -- traversal (iterative: pages nest thousands of levels deep) ----------
    def children(self, node: LexborNode) -> None:
        if node.mem_id not in self.containers:
            text = node.text()
            if "\ufffd" not in text:  # see `_walk`
                self.run.add_text(text)
                return
        self._walk(node.iter(include_text=True))

    def visit(self, node: LexborNode) -> None:
        """Walk `node` itself (not only its children)."""
        self._walk(iter((node,)))

    def _walk(self, nodes: Iterator[LexborNode]) -> None:
        # One child iterator per open element; an element's restore runs when
        # its iterator is exhausted, i.e. after its last descendant.  The loop
        # body is `enter` inlined: it runs for every node above the leaves.
        stack: list[tuple[Iterator[LexborNode], _Restore | None]] = [(nodes, None)]
        skip, skip_tags, containers = self.skip, self.skip_tags, self.containers
        run, blocks, plain_leaves = self.run, self.blocks, self.plain_leaves
        blockish, kind_of, marker_tags = _BLOCKISH, _KIND_OF, _MARKER_TAGS  # locals: faster
        while stack:
            children, restore = stack[-1]
            for child in children:
                tag = child.tag
                if tag == "-text":
                    text = child.text_content
                    if not text:
                        continue
                    # `run.add_text` inlined but for kept newlines; whitespace
                    # alone only sets the pending space, as `_add_flat` would.
                    if run.keep_newlines and "\n" in text:
                        run.add_text(text)
                    elif text.isspace():
                        run.pending_space = run.last != "\n"
                    else:
                        run._add_flat(text if text.isascii() else _without_zero_width(text))
                    continue
                if tag is None:  # an odd node type: its children continue the run
                    stack.append((child.iter(include_text=True), None))
                    break
                if tag in skip_tags or tag[0] in "-_":
                    continue
                mem_id = child.mem_id
                if mem_id in skip:
                    continue
                if tag in marker_tags and is_footnote_marker(child):
                    run.marker(child.text())
                    continue
                if tag == "br":
                    run.newline()
                    continue
                if tag == "table":
                    self.flush()
                    self.table(child)
                    continue
                if mem_id not in containers:
                    whole = child.text()
                    # U+FFFD may stand for bytes lexbor kept verbatim (a tree parsed
                    # from bytes): only text node by text node decodes them as before.
                    if "\ufffd" not in whole:
                        if tag not in blockish:
                            run.add_text(whole)
                        elif plain_leaves and tag != "pre" and not run.keep_newlines:
                            # `leaf_block` inlined for its common case (most elements
                            # of a page end here): flush, then one fresh run's text.
                            if run.parts or run.footnotes:
                                self.flush()
                            else:
                                run.pending_space = False
                            whole = _collapsed(whole)
                            if whole:
                                blocks.append(_block(kind_of.get(tag, self.kind), whole))
                        else:
                            self.leaf_block(tag, whole)
                        continue
                if tag in blockish:
                    if run.parts or run.footnotes or not plain_leaves:
                        self.flush()
                    else:  # `flush` with nothing to flush, inline
                        run.pending_space = False
                    state = (self.kind, run.keep_newlines)
                    self.kind = kind_of.get(tag, self.kind)
                    run.keep_newlines = state[1] or tag == "pre"
                    stack.append((child.iter(include_text=True), state))
                else:
                    stack.append((child.iter(include_text=True), None))
                break
            else:
                stack.pop()
                if restore is not None:
                    if run.parts or run.footnotes or not plain_leaves:
                        self.flush()
                    else:
                        run.pending_space = False
                    self.kind, run.keep_newlines = restore

    # -- tables ------------------------------------------------------------
    def table(self, table: LexborNode) -> None:
        rows = [tr for tr in table.css("tr") if _owner_table(tr) == table.mem_id]
        grid = [[c for c in _element_children(tr) if c.tag in ("td", "th")] for tr in rows]
        has_th = any(c.tag == "th" for row in grid for c in row)
        if not has_th:  # a layout table: its cells are ordinary containers
            caption = table.css_first("caption")
            if caption is not None:
                self.visit(caption)
            for row in grid:
                for cell in row:
                    self.visit(cell)
            return
        caption = table.css_first("caption")
        if caption is not None and _owner_table(caption) == table.mem_id:
            self.visit(caption)
        col_headers: list[str] = []
        for tr, row in zip(rows, grid, strict=True):
            in_thead = tr.parent is not None and tr.parent.tag == "thead"
            if in_thead or (row and all(c.tag == "th" for c in row) and not col_headers):
                col_headers = self.expand(row)
                continue
            self.table_row(row, col_headers)

    def inline(self, node: LexborNode) -> tuple[str, tuple[Footnote, ...]]:
        if node.mem_id not in self.containers:  # a plain cell: a fresh run of its text
            text = node.text()
            if "\ufffd" not in text:  # see `_walk`
                return _collapsed(text), ()
        walker = _InlineWalker(self.skip, self.skip_tags, self.containers)
        walker.children(node)
        return walker.run.result()

    def expand(self, row: list[LexborNode]) -> list[str]:
        headers: list[str] = []
        for cell in row:
            headers.extend([self.inline(cell)[0]] * _colspan(cell))
        return headers

    def table_row(self, row: list[LexborNode], col_headers: list[str]) -> None:
        row_header: str | None = None
        col = 0
        for i, cell in enumerate(row):
            span = _colspan(cell)
            text, notes = self.inline(cell)
            is_row_header = i == 0 and len(row) > 1 and (cell.tag == "th" or bool(col_headers))
            if is_row_header:
                row_header = text or None
            elif text:
                header = col_headers[col] if col < len(col_headers) else None
                self.blocks.append(Block("table_cell", text, notes, row_header, header or None))
            col += span


def _element_children(node: LexborNode) -> Iterable[LexborNode]:
    child = node.child
    while child is not None:
        if child.is_element_node:
            yield child
        child = child.next


def _owner_table(node: LexborNode) -> int | None:
    parent = node.parent
    while parent is not None:
        if parent.tag == "table":
            return parent.mem_id
        parent = parent.parent
    return None


def _colspan(cell: LexborNode) -> int:
    try:
        return max(1, min(int(cell.attributes.get("colspan") or 1), 100))
    except ValueError:
        return 1


class _InlineWalker(_Walker):
    """Collects a whole subtree into one run; block boundaries become spaces."""

    plain_leaves: ClassVar[bool] = False

    def flush(self) -> None:
        self.run.add_text(" ")

    def leaf_block(self, tag: str, text: str) -> None:
        self.flush()
        keep = self.run.keep_newlines
        self.run.keep_newlines = keep or tag == "pre"
        self.run.add_text(text)
        self.flush()
        self.run.keep_newlines = keep

    def table(self, table: LexborNode) -> None:
        self.children(table)


def inline_text(node: LexborNode, skip: set[int] | None = None) -> tuple[str, tuple[Footnote, ...]]:
    """All text under `node` as one normalised string, with its footnote markers."""
    first = node.child
    if not skip and (first is None or (first.next is None and first.tag == "-text")):
        # Text alone (a title, a byline): what the walker would make of it, without one.
        text = node.text()
        if "\ufffd" not in text:  # see `_Walker._walk`
            return _collapsed(text), ()
    skip = skip or set()
    walker = _InlineWalker(skip, _SKIP_TAGS, _containers(node, _SKIP_TAGS, skip_ids=skip))
    walker.children(node)
    return walker.run.result()


def _marking(
    root: LexborNode,
    skip_tags: frozenset[str],
    skip_nodes: Iterable[LexborNode],
    skip_ids: set[int] | None,
) -> Iterator[LexborNode]:
    """The nodes under `root` whose ancestors `_containers` marks: the dropped nodes
    first (so the traversal needs no `mem_id` per node), then each node of the
    traversal that is not plain inline text."""
    stop = root.mem_id
    for node in skip_nodes:
        if node.mem_id != stop:
            yield node
    walk_tags = _WALK_TAGS | skip_tags
    plain = frozenset() if skip_ids else _PLAIN_TAGS - skip_tags
    nodes = root.traverse()
    first = next(nodes, None)  # `root` itself: nothing above it to mark
    if first is not None and first.mem_id != stop:
        nodes = itertools.chain((first,), nodes)
    for node in nodes:
        tag = node.tag
        if tag in plain:
            continue
        if (
            tag is None
            or tag in walk_tags
            # a possible footnote marker (what `is_footnote_marker` reads: a `sup`,
            # or an `a` with a class or role), inline: pages hold hundreds of links
            or tag == "sup"
            or (tag == "a" and not _MARKER_ATTRS.isdisjoint(node.attributes))
            or (skip_ids and node.mem_id in skip_ids)
        ):
            yield node


def _containers(
    root: LexborNode,
    skip_tags: frozenset[str],
    skip_nodes: Iterable[LexborNode] = (),
    skip_ids: set[int] | None = None,
) -> set[int]:
    """`mem_id`s of the elements under `root` (inclusive) that must be walked node by node.

    An element is one when a descendant is a block, `<br>`, table, skipped tag,
    dropped node (`skip_nodes`, or any node whose id is in `skip_ids`),
    possible footnote marker (`sup`, `a` with a class or role) or a node
    without a tag name; every other element's text is its `node.text()`.
    One traversal reading tag names (`_marking`), plus a walk up from each
    such descendant that stops at the first marked ancestor (inline: it runs
    for most elements of a page, and a call costs as much as its body).
    One CSS list of these tags instead of the traversal would cost lexbor a
    pass per selector, several times the Python.
    """
    marked: set[int] = set()
    mark = marked.add
    stop = root.mem_id
    for node in _marking(root, skip_tags, skip_nodes, skip_ids):
        parent = node.parent
        while parent is not None:
            mem_id = parent.mem_id
            if mem_id in marked:
                break
            mark(mem_id)
            if mem_id == stop:
                break
            parent = parent.parent
    return marked


def _split_drops(selectors: Iterable[str]) -> tuple[frozenset[str], list[str], list[str]]:
    """Drop selectors as (plain tag names, selectors safe to join in one list, the rest).

    A plain tag name is matched by `node.tag` in the walker instead of a CSS
    pass over the subtree (each selector costs one).  The rest are queried
    one by one, so an invalid selector from config is ignored alone; joining
    is safe only when no item can swallow the comma (brackets, parentheses
    and quotes balanced, no escapes or comments, no comma of its own).
    """
    tags: set[str] = set()
    joinable: list[str] = []
    alone: list[str] = []
    for selector in selectors:
        if _TAG_NAME(selector):
            tags.add(selector)
        elif not selector.strip() or (_RISKY(selector) and not _balanced(selector)):
            alone.append(selector)
        else:
            joinable.append(selector)
    return frozenset(tags), joinable, alone


@dataclass(frozen=True, slots=True)
class DropSelectors:
    """Drop selectors sorted out once (see `compile_drops`), not on every `blocks_from` call.

    Site parsers drop the same selectors on every page: splitting them, joining
    the CSS query and building the walk's tag sets is per-list work, not per-page.
    """

    skip_tags: frozenset[str]  # ALWAYS_DROP and bare tag names, matched by `node.tag`
    joinable: tuple[str, ...]  # ALWAYS_DROP's and the list's selectors safe to join in one query
    alone: tuple[str, ...]  # selectors queried one by one
    query: str  # `joinable` joined with commas


def compile_drops(selectors: Iterable[str] = ()) -> DropSelectors:
    """`selectors` (CSS, from a site parser or config) ready for `blocks_from`."""
    tags, joinable, alone = _split_drops(selectors)
    skip_tags = _SKIP_TAGS | _ALWAYS_DROP_TAGS | tags
    joined = (*_ALWAYS_DROP_CSS, *joinable)
    return DropSelectors(skip_tags, joined, tuple(alone), ",".join(joined))


def _balanced(selector: str) -> bool:
    c = selector.count
    return ("\\" not in selector and "/*" not in selector and "," not in selector
            and c("(") == c(")") and c("[") == c("]") and c('"') % 2 == 0 and c("'") % 2 == 0)


def _skip_nodes(node: LexborNode, drops: DropSelectors) -> dict[int, LexborNode]:
    """The nodes under `node` (inclusive) that the selectors match, by `mem_id`."""
    skip: dict[int, LexborNode] = {}
    alone: Iterable[str] = drops.alone
    if drops.query:
        try:
            skip.update((m.mem_id, m) for m in node.css(drops.query))
        except Exception:  # one invalid selector spoils the list: ask one by one
            alone = (*drops.joinable, *alone)
    for selector in alone:
        try:
            matches = node.css(selector)
        except Exception:  # an invalid selector from config must not crash parsing
            continue
        skip.update((m.mem_id, m) for m in matches)
    return skip


def blocks_from(
    node: LexborNode | None, *, drop_selectors: Sequence[str] | DropSelectors = ()
) -> list[Block]:
    """The blocks of `node`'s subtree in reading order, skipping `drop_selectors` matches.

    `ALWAYS_DROP` (scripts, forms, hidden nodes, footnote lists) is skipped too.
    Returns [] for None.  Never raises on odd markup; an invalid selector is ignored.
    A parser that drops the same selectors on every page passes them compiled
    once (`compile_drops`).
    """
    if node is None:
        return []
    if isinstance(drop_selectors, DropSelectors):
        drops = drop_selectors
    else:
        drops = compile_drops(drop_selectors) if drop_selectors else _NO_DROPS
    skip = _skip_nodes(node, drops)
    skip_tags = drops.skip_tags
    if node.mem_id in skip or node.tag in skip_tags:
        return []
    walker = _Walker(skip, skip_tags, _containers(node, skip_tags, skip.values()))
    walker.visit(node)
    walker.flush()
    return walker.blocks


_NO_DROPS = compile_drops()
