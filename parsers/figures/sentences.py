"""Sentence boundaries for English and Chinese text, as (start, end) offsets.

A sentence ends at a newline, at 。！？ (and their ASCII forms when followed by
space or a closing quote), never inside a decimal ("1.79") and never after a
known abbreviation ("U.S.", "Inc.", "e.g.").  Spans exclude surrounding
whitespace.
"""

from __future__ import annotations

import re

_ABBREVIATIONS = frozenset({
    "u.s", "u.k", "u.n", "e.u", "mr", "mrs", "ms", "dr", "prof", "inc", "co", "corp",
    "ltd", "jr", "sr", "st", "vs", "etc", "e.g", "i.e", "no", "approx", "est", "fig",
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
    "p.m", "a.m", "dept", "gov", "u.s.a",
})
# A boundary starts with one of these characters, consumed first so the regex
# compiler can skip ahead in C to the next candidate; lookbehinds then say which
# it was: newline, 。！？ runs and closing quotes, "." before space/quote/end, "…".
_BOUNDARY_RE = re.compile(
    r"[\n。！？!?；.…](?:(?<=\n)|(?<=[。！？!?；])[。！？!?；]*[”」』\"')）]*"
    r"|(?<=\.)(?=[\s”\"')）]|$)[”\"')）]*|(?<=…)…*)"
)
_WORD_BEFORE_RE = re.compile(r"([A-Za-z][A-Za-z.]*)$")


def _is_abbreviation(text: str, dot: int) -> bool:
    m = _WORD_BEFORE_RE.search(text, max(0, dot - 12), dot)
    if not m:
        return False
    word = m.group(1).lower().rstrip(".")
    if word in _ABBREVIATIONS:
        # "the U.S. This..." cannot be told from "the U.S. market" by the dot alone;
        # a capitalised word after "U.S." that starts a clause is rare enough to keep joined.
        return True
    return len(word) == 1 and word.isalpha() and text[dot + 1 : dot + 3].strip()[:1].isupper()


def split(text: str) -> list[tuple[int, int]]:
    """Sentence spans of `text`, in order, covering every non-blank character."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _BOUNDARY_RE.finditer(text):
        if m.group().startswith(".") and _is_abbreviation(text, m.start()):
            continue
        end = m.end() if m.group() != "\n" else m.start()
        _push(text, start, end, spans)
        start = m.end()
    _push(text, start, len(text), spans)
    return spans


def _push(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append((start, end))
