"""The Document model: what every parser produces and the figure extractor reads.

A Document is the article body only, as ordered blocks.  Keeping blocks (not
one string) lets figures be tied to a block position and lets table cells
carry the row and column headers that give their numbers a metric and period.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

BlockKind = Literal["heading", "paragraph", "list_item", "table_cell", "caption"]


@dataclass(frozen=True, slots=True)
class Footnote:
    """A footnote marker removed from a block's text ("171%²" → text "171%", marker "2").

    `offset` is the character offset in the block text where the marker stood.
    """

    marker: str
    offset: int


@dataclass(frozen=True, slots=True)
class Block:
    """One unit of main content, in reading order.

    For `table_cell` blocks `row_header` / `column_header` hold the headers of
    the cell's row and column, so "$2B" under "Funding" in row "Q3'24" can get
    a metric and a period.
    """

    kind: BlockKind
    text: str
    footnotes: tuple[Footnote, ...] = ()
    row_header: str | None = None
    column_header: str | None = None

    @property
    def context_text(self) -> str:
        """The text the figure extractor should read for this block.

        Table cells are read together with their headers ("Q3'24 · Funding: $2B")
        so that the headers act as the sentence around the number.
        """
        if self.kind != "table_cell":
            return self.text
        headers = " · ".join(h for h in (self.row_header, self.column_header) if h)
        return f"{headers}: {self.text}" if headers else self.text


@dataclass(slots=True)
class Document:
    """The main content of one page and what is known about it."""

    url: str | None = None
    title: str | None = None
    published: str | None = None  # ISO 8601 date or datetime, as the page states it
    author: str | None = None
    lang: str | None = None  # "en", "zh", ... (BCP 47 primary subtag)
    blocks: list[Block] = field(default_factory=list)
    parser: str = "generic"

    @property
    def text(self) -> str:
        """Main content as plain text: one block per line group, blank line between."""
        return "\n\n".join(b.context_text for b in self.blocks if b.text)

    def is_empty(self) -> bool:
        return not any(b.text.strip() for b in self.blocks)
