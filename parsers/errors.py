"""Exceptions raised by the pure parsing layer.

    ParseError                 the input cannot be turned into a Document
    ├── InputTooLarge          the page is over the size cap (names the size)
    └── UnknownParser          a parser name in config that no parser registered

Everything else (malformed HTML, odd charsets, empty pages) is not an error:
it yields a possibly empty Document.  The service layer translates these into
its own `FigwatchError` tree.
"""

from __future__ import annotations


class ParseError(Exception):
    """The input cannot be turned into a Document."""


class InputTooLarge(ParseError):
    """The page is larger than the parser accepts."""

    def __init__(self, size: int, limit: int, url: str | None = None) -> None:
        where = f" ({url})" if url else ""
        super().__init__(f"page of {size:,} bytes is over the {limit:,}-byte cap{where}")
        self.size = size
        self.limit = limit
        self.url = url

    def __reduce__(self) -> tuple[type[InputTooLarge], tuple[int, int, str | None]]:
        return (InputTooLarge, (self.size, self.limit, self.url))  # picklable across processes


class UnknownParser(ParseError):
    """A configured parser name that nothing registered."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown parser {name!r}; known parsers: {', '.join(sorted(known))}")
        self.name = name
        self.known = known

    def __reduce__(self) -> tuple[type[UnknownParser], tuple[str, list[str]]]:
        return (UnknownParser, (self.name, self.known))
