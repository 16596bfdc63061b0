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
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from selectolax.lexbor import LexborNode

from .document import Block, BlockKind, Footnote

__all__ = ["ALWAYS_DROP", "blocks_from", "inline_text", "is_footnote_marker"]

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
_SPLIT_WS = re.compile(r"(\s+)")


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


@dataclass
class _Run:
    """Accumulates inline text with whitespace collapsed as it arrives."""

    parts: list[str] = field(default_factory=list)
    length: int = 0
    pending_space: bool = False
    footnotes: list[Footnote] = field(default_factory=list)
    keep_newlines: bool = False

    def _ends_line(self) -> bool:
        return not self.parts or self.parts[-1].endswith("\n")

    def add_text(self, text: str) -> None:
        text = _ZERO_WIDTH.sub("", text)
        if self.keep_newlines:
            lines = text.split("\n")
            for i, line in enumerate(lines):
                if i:
                    self.newline()
                self._add_flat(line)
        else:
            self._add_flat(text)

    def _add_flat(self, text: str) -> None:
        for piece in _SPLIT_WS.split(text):
            if not piece:
                continue
            if piece.isspace():
                self.pending_space = not self._ends_line()
                continue
            if self.pending_space and not self._ends_line() and not self.parts[-1].endswith(" "):
                self._append(" ")
            self.pending_space = False
            self._append(piece)

    def _append(self, s: str) -> None:
        self.parts.append(s)
        self.length += len(s)

    def newline(self) -> None:
        self.pending_space = False
        if not self._ends_line():
            self._append("\n")

    def marker(self, text: str) -> None:
        marker = text.strip().strip("[]()").strip()
        if not marker:
            return
        if self.pending_space and not self._ends_line():
            # "ai <sup>1</sup>出品": the space stood before the marker, keep it there.
            self._append(" ")
        self.pending_space = False
        self.footnotes.append(Footnote(marker, self.length))

    def result(self) -> tuple[str, tuple[Footnote, ...]]:
        text = "".join(self.parts).rstrip()
        notes = tuple(Footnote(f.marker, min(f.offset, len(text))) for f in self.footnotes)
        return text, notes


_Restore = tuple[BlockKind, bool]  # the walker state to restore after a block element


class _Inline:
    """Returned for inline elements: their children continue the current run."""


_INLINE = _Inline()


class _Holder:
    """A stand-in parent so `children()` can walk one node itself."""

    def __init__(self, node: LexborNode) -> None:
        self.node = node


def _all_children(node: LexborNode | _Holder) -> Iterable[LexborNode]:
    if isinstance(node, _Holder):
        yield node.node
        return
    child = node.child
    while child is not None:
        yield child
        child = child.next


class _Walker:
    def __init__(self, skip: set[int]) -> None:
        self.skip = skip
        self.blocks: list[Block] = []
        self.kind: BlockKind = "paragraph"
        self.run = _Run()

    # -- runs --------------------------------------------------------------
    def flush(self) -> None:
        text, notes = self.run.result()
        if text:
            self.blocks.append(Block(self.kind, text, notes))
        self.run = _Run(keep_newlines=self.run.keep_newlines)

    # -- traversal (iterative: pages nest thousands of levels deep) ----------
    def children(self, node: LexborNode | _Holder) -> None:
        stack: list[tuple[LexborNode, _Restore | _Inline | None]] = [
            (child, None) for child in reversed(list(_all_children(node)))
        ]
        while stack:
            item, restore = stack.pop()
            if isinstance(restore, tuple):
                self.flush()
                self.kind, self.run.keep_newlines = restore
                continue
            if restore is not None:
                continue
            entered = self.enter(item)
            if entered is None:
                continue
            stack.append((item, entered))
            stack.extend((child, None) for child in reversed(list(_all_children(item))))

    def visit(self, node: LexborNode) -> None:
        """Walk `node` itself (not only its children)."""
        self.children(_Holder(node))

    def enter(self, node: LexborNode) -> _Restore | _Inline | None:
        """Handle `node`: None to skip its children, else what to do after them."""
        tag = node.tag or ""
        if tag == "-text":
            self.run.add_text(node.text_content or "")
            return None
        if tag.startswith("-") or tag.startswith("_") or tag in _SKIP_TAGS:
            return None
        if node.mem_id in self.skip:
            return None
        if is_footnote_marker(node):
            self.run.marker(node.text(deep=True))
            return None
        if tag == "br":
            self.run.newline()
            return None
        if tag == "table":
            self.flush()
            self.table(node)
            return None
        if tag not in _BLOCKISH:
            return _INLINE
        self.flush()
        restore = (self.kind, self.run.keep_newlines)
        self.kind = _KIND_OF.get(tag, self.kind)
        self.run.keep_newlines = self.run.keep_newlines or tag == "pre"
        return restore

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
                col_headers = _expand(row, self.skip)
                continue
            self.table_row(row, col_headers)

    def table_row(self, row: list[LexborNode], col_headers: list[str]) -> None:
        row_header: str | None = None
        col = 0
        for i, cell in enumerate(row):
            span = _colspan(cell)
            text, notes = inline_text(cell, self.skip)
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


def _expand(row: list[LexborNode], skip: set[int]) -> list[str]:
    headers: list[str] = []
    for cell in row:
        headers.extend([inline_text(cell, skip)[0]] * _colspan(cell))
    return headers


class _InlineWalker(_Walker):
    """Collects a whole subtree into one run; block boundaries become spaces."""

    def flush(self) -> None:
        self.run.add_text(" ")

    def table(self, table: LexborNode) -> None:
        self.children(table)


def inline_text(node: LexborNode, skip: set[int] | None = None) -> tuple[str, tuple[Footnote, ...]]:
    """All text under `node` as one normalised string, with its footnote markers."""
    walker = _InlineWalker(skip or set())
    walker.children(node)
    return walker.run.result()


def _skip_ids(node: LexborNode, selectors: Iterable[str]) -> set[int]:
    skip: set[int] = set()
    for selector in selectors:
        try:
            matches = node.css(selector)
        except Exception:  # an invalid selector from config must not crash parsing
            continue
        skip.update(m.mem_id for m in matches)
    return skip


def blocks_from(node: LexborNode | None, *, drop_selectors: Sequence[str] = ()) -> list[Block]:
    """The blocks of `node`'s subtree in reading order, skipping `drop_selectors` matches.

    `ALWAYS_DROP` (scripts, forms, hidden nodes, footnote lists) is skipped too.
    Returns [] for None.  Never raises on odd markup; an invalid selector is ignored.
    """
    if node is None:
        return []
    walker = _Walker(_skip_ids(node, (*ALWAYS_DROP, *drop_selectors)))
    if node.mem_id in walker.skip:
        return []
    walker.visit(node)
    walker.flush()
    return walker.blocks
