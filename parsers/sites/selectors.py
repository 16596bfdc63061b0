"""Sources described by CSS selectors in config (`keep` / `drop`), no code needed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from selectolax.lexbor import LexborHTMLParser, LexborNode

from ..document import Block, Document
from ..html_blocks import compile_drops
from ..registry import SiteParser
from . import _common as c


class SelectorParser(SiteParser):
    """Config-described sites: blocks under the `keep` selectors (else `<body>`) minus `drop`."""

    name: ClassVar[str] = "selectors"

    def __init__(self, keep: Sequence[str] = (), drop: Sequence[str] = ()) -> None:
        self.keep = tuple(keep)
        self.drop = tuple(drop)

    def parse(self, tree: LexborHTMLParser, url: str | None) -> Document:
        page = c.Page(tree)  # its <meta> tags are read once for all lookups
        blocks: list[Block] = []
        drops = compile_drops(self.drop)  # once for all the kept roots
        for node in self._roots(page):
            blocks += c.body_blocks(node, drops)
        return c.document(
            page, url, self.name, blocks,
            title=c.page_title(page, "h1"),
            published_at=c.published(page, "time[datetime]"),
            author=c.meta(page, "author"),
        )

    def _roots(self, tree: c.Tree) -> list[LexborNode]:
        """Kept nodes in document order, without nodes nested in another kept node."""
        if not self.keep:
            return [tree.body] if tree.body is not None else []
        found: dict[int, LexborNode] = {}
        for selector in self.keep:
            try:
                found.update((n.mem_id, n) for n in tree.css(selector))
            except Exception:  # a bad selector from config keeps nothing, never crashes
                continue
        roots = [n for n in found.values() if not _has_ancestor_in(n, found)]
        order = {n.mem_id: i for i, n in enumerate(tree.root.traverse())} if tree.root else {}
        return sorted(roots, key=lambda n: order.get(n.mem_id, 0))


def _has_ancestor_in(node: LexborNode, found: dict[int, LexborNode]) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.mem_id in found:
            return True
        parent = parent.parent
    return False
