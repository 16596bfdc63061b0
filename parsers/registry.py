"""Registry from domain (and name) to site parser.

Built-in parsers register exactly as an outside package would: by subclassing
`SiteParser`.  An unknown domain falls back to the generic extractor; an
unknown parser *name* is an error that lists the known ones.
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import urlsplit

from selectolax.lexbor import LexborHTMLParser

from .document import Document
from .errors import UnknownParser

_BY_NAME: dict[str, type[SiteParser]] = {}


class SiteParser:
    """Base of every site parser: turn a parsed page into a Document.

    Subclasses set `name` (used in config as `parser = "..."`), `domains`
    (host names, matched exactly or as a parent domain), optionally
    `generators`, and a one-line
    docstring (shown by `figwatch parsers`), and implement `parse`.
    `parse` must not raise on odd markup: return an empty Document instead.
    """

    name: ClassVar[str] = ""
    domains: ClassVar[tuple[str, ...]] = ()
    # `<meta name=generator>` prefixes ("WordPress", "Hugo") this parser understands,
    # for sites on domains nobody registered.
    generators: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            _BY_NAME[cls.name] = cls

    def parse(self, tree: LexborHTMLParser, url: str | None) -> Document:
        raise NotImplementedError


def parser_names() -> list[str]:
    return sorted(_BY_NAME)


def parser_classes() -> list[type[SiteParser]]:
    return [_BY_NAME[n] for n in parser_names()]


def by_name(name: str) -> type[SiteParser]:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownParser(name, parser_names()) from None


def for_url(url: str | None) -> type[SiteParser] | None:
    """The parser registered for the URL's host or a parent domain of it."""
    if not url:
        return None
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:  # "http://[::1" and friends: not routable, not an error
        return None
    while host:
        for cls in _BY_NAME.values():
            if host in cls.domains:
                return cls
        _, _, host = host.partition(".")
    return None
