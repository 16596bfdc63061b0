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
# A newline takes the whitespace after it along (blank lines, indents): what lies
# between two newlines is blank and makes no sentence, so one cut does for the run
# (half as many matches on paragraph text).
_BOUNDARY_RE = re.compile(
    r"[\n。！？!?；.…](?:(?<=\n)\s*|(?<=[。！？!?；])[。！？!?；]*[”」』\"')）]*"
    r"|(?<=\.)(?=[\s”\"')）]|$)[”\"')）]*|(?<=…)…*)"
)
_WORD_BEFORE_RE = re.compile(r"([A-Za-z][A-Za-z.]*)$")


# What may stand right before the dot when `_WORD_BEFORE_RE` matches: a letter or
# dot of the word, or a newline after it ("$" also matches before a final newline).
_WORD_END_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.\n")


def _is_abbreviation(text: str, dot: int) -> bool:
    # Most sentence-final dots follow a digit, "%" or ")" ("up 36%."): no word
    # ends there, which is settled without the regex search.
    if not dot or text[dot - 1] not in _WORD_END_CHARS:
        return False
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
    """Sentence spans of `text`, in order, covering every non-blank character.

    Each boundary ends the sentence before it, boundary included; a newline is
    whitespace, so including it too and stripping gives the span without it.
    The stripping is written out in the loop (no helper call, no `m.group()`):
    a page has hundreds of boundaries and this is most of the work besides the
    regex.
    """
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _BOUNDARY_RE.finditer(text):
        cut = m.start()
        if text[cut] == "." and _is_abbreviation(text, cut):
            continue
        end = m.end()
        while start < end and text[start].isspace():
            start += 1
        last = end
        while last > start and text[last - 1].isspace():
            last -= 1
        if last > start:
            spans.append((start, last))
        start = end
    end = len(text)
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append((start, end))
    return spans
