"""CB Insights-style research: stat blocks as "period · label: figure", tables as cells."""

from __future__ import annotations

from typing import ClassVar

from selectolax.lexbor import LexborHTMLParser, LexborNode

from ..document import Block, Document
from ..html_blocks import compile_drops
from ..registry import SiteParser
from . import _common as c

CBINSIGHTS_DROP: tuple[str, ...] = (
    "h1", ".report-meta", ".stat-block", ".cta", ".cta-banner", ".newsletter",
    ".newsletter-signup", ".report-download", ".see-the-data", ".share", ".related-research",
    ".author-box", "aside", "nav", "header", "footer", "form",
)
# Compiled once: sorting a drop list out is per list, not per page.
_DROPS = compile_drops(CBINSIGHTS_DROP)
_STAT_DROPS = compile_drops((".stat-figure", ".stat-label", ".stat-period", ".see-the-data"))
_SEE_THE_DATA = compile_drops((".see-the-data",))


class CbInsightsParser(SiteParser):
    """CB Insights research: TLDR stat blocks, body and data tables; drops CTAs, newsletter."""

    name: ClassVar[str] = "cbinsights"
    domains: ClassVar[tuple[str, ...]] = ("www.cbinsights.com", "cbinsights.com")

    def parse(self, tree: LexborHTMLParser, url: str | None) -> Document:
        page = c.Page(tree)  # its <meta> tags are read once for all lookups
        root = c.first(page, "main", "article", "body")
        blocks: list[Block] = []
        if root is not None:
            # Stat blocks first, in page order, then the rest of the body.
            for stat in root.css(".stat-block"):
                blocks += _stat_blocks(stat)
        blocks += c.body_blocks(root, _DROPS)
        return c.document(
            page, url, self.name, blocks,
            title=c.page_title(page, "h1", suffixes=("CB Insights Research", "CB Insights")),
            published_at=c.published(page, ".report-meta time", "time[datetime]"),
            author=c.meta(page, "author"),
        )


def _stat_blocks(stat: LexborNode) -> list[Block]:
    """A stat block as one sentence ("Q1'24 · Global AI funding: $13.1B") plus its description."""
    figure = c.text_of(stat.css_first(".stat-figure"))
    if not figure:
        return c.body_blocks(stat, _SEE_THE_DATA)
    label = c.text_of(stat.css_first(".stat-label"))
    period = c.text_of(stat.css_first(".stat-period"))
    head = " · ".join(p for p in (period, label) if p)
    blocks = [Block("paragraph", f"{head}: {figure}" if head else figure)]
    blocks += c.body_blocks(stat, _STAT_DROPS)
    return blocks
