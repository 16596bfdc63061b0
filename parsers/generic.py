"""The generic main-content extractor: the fallback for every site without its own parser.

How it decides what the main content is (ideas from readability, jusText and
boilerpipe, tuned on the extraction-dev set with `bench/extraction.py`):

1. One walk over the page (`generic_walk.walk`) skips what is never content
   (scripts, styles, form widgets, `aria-hidden` and navigation landmarks) and
   cuts the rest into runs of text, each knowing its link text, its element,
   and its nearest "chrome-looking" ancestor: `nav`/`aside`/`footer`, a page
   `header`, `hidden`/`display:none`, or a class/id saying sidebar, comments,
   share bar, cookie banner, related, ...
2. Each run gets a score: long, punctuated, link-poor text scores its length;
   link-heavy runs (menus, tag clouds, but also the items of a listing) and
   short labels score nothing.  Length is counted in characters, so Chinese, which has no
   spaces, scores like English.  Text under a chrome-looking element scores
   nothing, unless that element holds a large share of the page's content
   (then it is a wrapper: page builders and JS-revealed pages put the whole
   article inside one).
3. Every element's score is the sum over its subtree; the main content is the
   deepest element that still holds most of the best score.
4. The runs inside it become blocks, minus those under chrome-looking
   sub-elements.  Link-only runs inside the main container are kept: on
   listing, documentation and service pages the links are the content.
   Table cells get their row and column headers when the table has header
   cells.

An all-boilerplate page gives an empty Document.
"""

from __future__ import annotations

import re

from selectolax.lexbor import LexborHTMLParser

from .document import Block, Document
from .generic_meta import guess_lang, read_meta
from .generic_walk import RawBlock, Walk, walk
from .registry import SiteParser

__all__ = ["GenericExtractor"]

_PUNCT = re.compile(r"[.,;:!?。，、；：！？]")
# A container must hold this share of the best subtree score to be preferred
# over its (larger) ancestor.
_DESCEND_SHARE = 0.8
_SHORT = 25  # characters; shorter runs without punctuation are neutral (labels, buttons)
_PUNCT_BONUS = 10.0
_MIN_SCORE = 20.0  # below this nothing on the page looks like content
_MAX_LINK_DENSITY = 0.5
# A chrome-looking element holding this share of the page's content is a wrapper
# ("sidebar-layout" around article and sidebar), not chrome.
_WRAPPER_SHARE = 0.3
_WRAPPER_MIN_SCORE = 200.0
_UNLIKELY_FACTOR = 0.0  # content score kept by text inside a chrome-looking element


def _block_score(block: RawBlock) -> float:
    """How much a run of text looks like article content (0 = no evidence either way)."""
    n = len(block.text)
    density = block.link_chars / n
    if density > _MAX_LINK_DENSITY:
        # neutral, not negative: a list of links is sometimes the content (listings)
        return 0.0
    punct = len(_PUNCT.findall(block.text))
    if n < _SHORT and not punct:
        return 0.0
    return n * (1.0 - density) + _PUNCT_BONUS * min(punct, 10)


def _subtree_scores(w: Walk, scores: list[float]) -> list[float]:
    total = [0.0] * len(w.parents)
    for block, score in zip(w.blocks, scores, strict=True):
        total[block.owner] += score
    parents = w.parents
    # elements are numbered in document order, so children come after parents
    for eid in range(len(total) - 1, 0, -1):
        total[parents[eid]] += total[eid]
    return total


def _best_container(w: Walk, total: list[float]) -> int:
    """The deepest element holding nearly all of the best subtree score, or -1."""
    best = max(range(len(total)), key=total.__getitem__)
    if total[best] < _MIN_SCORE:
        return -1
    # each element's highest-scoring child; one pass, children come after parents
    top_child = [-1] * len(total)
    parents = w.parents
    for eid in range(1, len(parents)):
        p = parents[eid]
        c = top_child[p]
        if c < 0 or total[eid] > total[c]:
            top_child[p] = eid
    while True:
        child = top_child[best]
        if child < 0 or total[child] < _DESCEND_SHARE * total[best]:
            return best
        best = child


def _inside(w: Walk, container: int) -> list[bool]:
    """For every element: is it the container or one of its descendants?"""
    inside = [False] * len(w.parents)
    inside[container] = True
    parents = w.parents
    for eid in range(container + 1, len(parents)):
        p = parents[eid]
        if p >= container and inside[p]:
            inside[eid] = True
    return inside


def _table_headers(blocks: list[RawBlock]) -> dict[tuple[int, int, int], tuple[str | None,
                                                                             str | None]]:
    """(table, row, col) → (row header, column header) for tables that have <th> cells."""
    cells: dict[tuple[int, int, int], RawBlock] = {}
    for b in blocks:
        if b.table >= 0:
            cells.setdefault((b.table, b.row, b.col), b)
    first_row: dict[int, int] = {}
    all_th: dict[int, bool] = {}
    for (table, row, _col) in cells:
        first_row[table] = min(first_row.get(table, row), row)
    for (table, row, _col), b in cells.items():
        if row == first_row[table]:
            all_th[table] = all_th.get(table, True) and b.is_th
    header_rows = {t: r for t, r in first_row.items() if all_th.get(t)}
    out: dict[tuple[int, int, int], tuple[str | None, str | None]] = {}
    for (table, row, col), b in cells.items():
        if b.is_th:
            continue
        hrow = header_rows.get(table)
        first = cells.get((table, row, 0))
        row_header = first.text if first is not None and first.is_th and col > 0 else None
        col_cell = cells.get((table, hrow, col)) if hrow is not None and row > hrow else None
        col_header = col_cell.text if col_cell is not None and col_cell.is_th else None
        if row_header or col_header:
            out[(table, row, col)] = (row_header, col_header)
    return out


def _to_blocks(selected: list[RawBlock]) -> list[Block]:
    headers = _table_headers(selected) if any(b.table >= 0 for b in selected) else {}
    out: list[Block] = []
    for b in selected:
        if b.kind == "table_cell":
            row_h, col_h = headers.get((b.table, b.row, b.col), (None, None))
            out.append(Block("table_cell", b.text, row_header=row_h, column_header=col_h))
        else:
            out.append(Block(b.kind, b.text))
    return out


def _effective_guards(w: Walk, raw: list[float]) -> list[int]:
    """Each block's nearest chrome-looking ancestor that is not a page-wide wrapper."""
    positive = _subtree_scores(w, [max(r, 0.0) for r in raw])
    wrapper_min = max(_WRAPPER_SHARE * positive[0], _WRAPPER_MIN_SCORE)
    outer = w.outer_guards
    resolved: dict[int, int] = {}
    guards: list[int] = []
    for b in w.blocks:
        g = b.guard
        eff = resolved.get(g)
        if eff is None:
            eff = g
            while eff >= 0 and positive[eff] >= wrapper_min:
                eff = outer[eff]
            resolved[g] = eff
        guards.append(eff)
    return guards


def select_blocks(w: Walk) -> list[RawBlock]:
    """The runs of text that make up the main content, in reading order."""
    if not w.blocks:
        return []
    raw = [_block_score(b) for b in w.blocks]
    guards = _effective_guards(w, raw)
    scores = [
        r * _UNLIKELY_FACTOR if g >= 0 and r > 0 else r
        for r, g in zip(raw, guards, strict=True)
    ]
    total = _subtree_scores(w, scores)
    container = _best_container(w, total)
    if container < 0:
        return []
    inside = _inside(w, container)
    return [
        b for b, g in zip(w.blocks, guards, strict=True)
        if inside[b.owner] and (g <= container or not inside[g])
    ]


class GenericExtractor(SiteParser):
    """Any site: main content found by text density, link density and page structure."""

    name = "generic"

    def parse(self, tree: LexborHTMLParser, url: str | None) -> Document:
        meta = read_meta(tree)
        blocks = _to_blocks(select_blocks(walk(tree)))
        lang = meta.lang or guess_lang(" ".join(b.text for b in blocks[:50]))
        return Document(
            url=url,
            title=meta.title,
            published=meta.published,
            author=meta.author,
            lang=lang,
            blocks=blocks,
            parser=self.name,
        )
