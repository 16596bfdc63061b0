"""figwatch's pure layer: HTML in, Document and Figures out.

No network, database, clock or mutable global state here; `service/` does the
I/O and calls in.  This package never imports `service`.
"""

from __future__ import annotations

from collections.abc import Sequence

from selectolax.lexbor import LexborHTMLParser

from . import sites as _sites  # noqa: F401  (registers the built-in site parsers)
from .decode import decode_html
from .document import Block, Document, Footnote
from .errors import InputTooLarge, ParseError, UnknownParser
from .generic import GenericExtractor
from .registry import SiteParser, by_name, for_url, parser_names
from .sites._common import canonical_url, parser_for_generator
from .sites.selectors import SelectorParser

__all__ = [
    "MAX_PAGE_BYTES",
    "Block",
    "Document",
    "Footnote",
    "InputTooLarge",
    "ParseError",
    "SiteParser",
    "UnknownParser",
    "extract",
    "parser_names",
]

MAX_PAGE_BYTES = 20 * 1024 * 1024


def extract(
    html: str | bytes,
    url: str | None = None,
    *,
    parser: str | None = None,
    keep: Sequence[str] = (),
    drop: Sequence[str] = (),
    charset: str | None = None,
    max_bytes: int = MAX_PAGE_BYTES,
) -> Document:
    """The main content of a page as a Document.

    The parser is, in order: the one named by `parser`; one described by
    `keep`/`drop` CSS selectors; the one registered for the URL's domain
    (without `url`, the page's canonical / og:url); the one for the page's
    `<meta name=generator>`; the generic extractor.  `charset` is the HTTP
    header's charset for bytes input.  Raises `InputTooLarge` over
    `max_bytes`, `UnknownParser` for a bad name; any other odd input yields
    a (possibly empty) Document.
    """
    size = len(html) if isinstance(html, bytes) else len(html.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise InputTooLarge(size, max_bytes, url)
    text = decode_html(html, charset) if isinstance(html, bytes) else html
    tree = LexborHTMLParser(text)
    site: SiteParser
    if parser:
        site = by_name(parser)()
    elif keep or drop:
        site = SelectorParser(keep=keep, drop=drop)
    else:
        # Saved pages (url=None) still route by their own canonical URL, then by
        # the generator that built them (WordPress, Hugo, Jekyll).
        cls = for_url(url or canonical_url(tree)) or parser_for_generator(tree)
        site = cls() if cls else GenericExtractor()
    doc = site.parse(tree, url)
    if doc.url is None:
        doc.url = url or canonical_url(tree)
    return doc
