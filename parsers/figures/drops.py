"""Drop rules for unit-less numbers: what is certainly not a figure.

Years, dates, clock times, stock codes, ranks, list numbering, footnote markers
and parts of names ("RTX 3090").  `grammar.scan` asks `bare_dropped` about every
number written without a unit; each test is a regex on a short window before or
after the number.
"""

from __future__ import annotations

import re

from . import units as U

_YEAR_DASH_BEFORE_RE = re.compile(r"(?:18|19|20)\d\d\s?[-–]\s?$")
_LIST_MARK_RE = re.compile(r"\s?[.)、]")
_DATE_BEFORE_RE = re.compile(rf"\b(?i:{U.MONTHS})\.?\s$")
_DATE_AFTER_RE = re.compile(
    rf"\s?(?:(?i:st|nd|rd|th)\b|\s(?i:{U.MONTHS})\b|[:/]\d|-(?i:year|month|day|week|hour)s?\b)"
)
_NAME_BEFORE_RE = re.compile(r"(?:\b[A-Za-z][\w.\-]*[A-Z][\w.\-]*|\b[A-Z][\w.\-]*)\s$")
_RANK_BEFORE_RE = re.compile(r"(?:\b(?i:top|no\.|number|rank(?:ed)?|#)|第|排名)\s?$")
# The drop tests on the text before / after a unit-less number, each as one regex:
# a month ("February 15"), a year range ("2010-23"), an exchange ("HKG: 9888"), a
# rank ("top 10", "第 2"); an ordinal ("16th"), a month after, a clock time or
# date ("13:04", "10/15"), a duration ("20-month"), a stock suffix ("688256.SH").
_DROP_BEFORE_RE = re.compile(
    "(?:" + "|".join(p.pattern.removesuffix("$") for p in (
        _DATE_BEFORE_RE, _YEAR_DASH_BEFORE_RE, U.STOCK_EXCHANGE_BEFORE, _RANK_BEFORE_RE)) + ")$"
)  # the readable form; `_dropped_before` runs it reversed


def _reversed_words(alternation: str) -> str:
    return "|".join(word[::-1] for word in alternation.split("|"))


_EXCHANGES = U.STOCK_EXCHANGE_BEFORE.pattern.removeprefix("(?:").split(")", 1)[0]
# `_DROP_BEFORE_RE` read backwards: the same test as `_DROP_BEFORE_RE.search(before)`
# but as one anchored `match` on `before[::-1]` instead of a search that retries
# at every position of the window (\b is symmetric, so it reverses as itself).
_DROP_BEFORE_REVERSED_RE = re.compile(
    rf"\s\.?(?i:{_reversed_words(U.MONTHS)})\b"
    r"|\s?[-–]\s?\d\d(?:81|91|02)"
    rf"|\s?[:：]\s?(?:{_reversed_words(_EXCHANGES)})"
    r"|\s?(?:(?i:pot|\.on|rebmun|knar|deknar|#)\b|第|名排)"
)


def _dropped_before(before: str) -> bool:
    """`_DROP_BEFORE_RE.search(before) is not None`, faster ("$" also matches
    before a final newline, hence the second try)."""
    rev = before[::-1]
    return _DROP_BEFORE_REVERSED_RE.match(rev) is not None or (
        rev[:1] == "\n" and _DROP_BEFORE_REVERSED_RE.match(rev, 1) is not None
    )


_DROP_AFTER_RE = re.compile(f"(?:{_DATE_AFTER_RE.pattern}|{U.STOCK_SUFFIX_AFTER.pattern})")


# What may stand right before a unit-less number that is not glued to a word.
_FREE_BEFORE = frozenset(" \t\n(（\"“$-~–—,，")


def _line_start(work: str, start: int) -> bool:
    i = start - 1
    while i >= 0 and work[i] in " \t":
        i -= 1
    return i < 0 or work[i] == "\n"


def bare_dropped(
    work: str, s: int, arabic: str | None, zh: str | None, en: str | None,
    scale: str | None, e: int,
) -> bool:
    """Whether a unit-less number written from `s` to `e` is certainly not a figure:
    a year, date, clock time, stock code, rank, list number, footnote marker or name
    part.  `arabic`/`zh`/`en`/`scale` are the numeral and scale word as matched."""
    if en and "dozen" in en:
        return False  # "a dozen deals": a count if a counted noun follows (resolve_bare)
    if (en or zh) and not scale:
        # Spelled-out numbers without a unit are words: "one of the", "Six Little
        # Tigers", "two parallel ecosystems".
        return True
    # The tests are pure, so they run cheapest and most often true first (the
    # result is their "or"; a footnote, list number or glued name leads on news).
    scaled = bool(scale)
    prev = work[s - 1] if s else " "
    if prev in ":/" or (not scaled and prev not in _FREE_BEFORE and not prev.isdigit()):
        return True  # "13:04", "10/15"; glued to the word before: a footnote ("计算机9")
    after = work[e : e + 12]
    if (
        after.startswith(("s ", "s,", "s.", "'s"))  # 1980s, 2023's
        or (_line_start(work, s) and _LIST_MARK_RE.match(after))
    ):
        return True
    text = arabic or ""
    if not scaled and len(text) == 4 and text.isdigit() and "1800" <= text <= "2100":
        return True
    stripped = after.lstrip()
    if (stripped.startswith(U.ZH_TIME) and not stripped.startswith("年度收")) or (
        _DROP_AFTER_RE.match(after)
    ):
        return True
    before = work[max(0, s - 12) : s]
    if _dropped_before(before):
        return True
    if scaled:
        return False
    # "RTX 3090", "Gaudi 2", "iPhone 16", "Deep Speech 2": part of a name.  A name
    # has a capital A-Z, which lower() changes: most windows ("for page ") have
    # none and are settled without the regex search.
    return before != before.lower() and _NAME_BEFORE_RE.search(before) is not None
