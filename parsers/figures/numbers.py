"""The numeral grammar: Arabic digits (with full-width forms), Chinese numerals, English words.

Every function here is pure and works on already-matched surface text; the
regular expressions that find candidates live in `grammar.py`.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from types import MappingProxyType

# Full-width ASCII (U+FF01..U+FF5E) and the ideographic space map 1:1 onto ASCII,
# so the translated text keeps every offset of the original.
FULLWIDTH = MappingProxyType({
    **{cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F) if cp != 0xFF0C},
    0x3000: 0x20,  # ideographic space
    0x2212: ord("-"),  # minus sign
})

# ASCII upper → lower, 1:1, so a lowered copy keeps the offsets of the original.
ASCII_LOWER = MappingProxyType(str.maketrans(string.ascii_uppercase, string.ascii_lowercase))

_FULLWIDTH_RE = re.compile("[\uff01-\uff5e\u3000\u2212]")


def to_ascii_width(text: str) -> str:
    """Full-width forms → ASCII, 1:1 (str.translate is slow, so only when needed)."""
    if text.isascii():  # O(1): most text, and it has no full-width form to map
        return text
    return text.translate(FULLWIDTH) if _FULLWIDTH_RE.search(text) else text


def ascii_lower(text: str) -> str:
    """A lower-cased copy with the same length and offsets as `text`."""
    low = text.lower()
    # str.lower() is fast; it only breaks offsets for the rare letters that
    # lower-case to two characters ("İ"), so fall back to ASCII-only then.
    return low if len(low) == len(text) else text.translate(ASCII_LOWER)


MAX_DIGITS = 24  # longer digit runs are identifiers or garbage, never amounts

ZH_DIGITS = MappingProxyType({"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4,
             "五": 5, "六": 6, "七": 7, "八": 8, "九": 9})
ZH_SMALL_UNITS = MappingProxyType({"十": 10, "百": 100, "千": 1000})

# Scale words after a number.  Chinese compounds are read as written: 万亿 = 10^12.
SCALES: Mapping[str, Decimal] = MappingProxyType({
    "thousand": Decimal(10) ** 3, "k": Decimal(10) ** 3,
    "million": Decimal(10) ** 6, "mn": Decimal(10) ** 6, "m": Decimal(10) ** 6,
    "billion": Decimal(10) ** 9, "bn": Decimal(10) ** 9, "b": Decimal(10) ** 9,
    "trillion": Decimal(10) ** 12, "tn": Decimal(10) ** 12, "t": Decimal(10) ** 12,
    "十": Decimal(10), "百": Decimal(100), "千": Decimal(1000),
    "万": Decimal(10) ** 4, "十万": Decimal(10) ** 5, "百万": Decimal(10) ** 6,
    "千万": Decimal(10) ** 7, "亿": Decimal(10) ** 8, "十亿": Decimal(10) ** 9,
    "百亿": Decimal(10) ** 10, "千亿": Decimal(10) ** 11, "万亿": Decimal(10) ** 12,
    "兆": Decimal(10) ** 12,
})

EN_ONES = MappingProxyType({
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
    "eighteen": 18, "nineteen": 19,
})
EN_TENS = MappingProxyType({"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
           "seventy": 70, "eighty": 80, "ninety": 90})
EN_SPECIAL = MappingProxyType({"a dozen": 12, "dozen": 12, "a hundred": 100, "hundred": 100,
              "twice": 2, "double": 2, "doubled": 2, "triple": 3, "tripled": 3,
              "quadrupled": 4, "翻了一番": 2, "翻一番": 2, "翻番": 2, "翻了两番": 4})


def parse_arabic(surface: str) -> Decimal | None:
    """"1,151" → 1151, "1.79" → 1.79; None for digit runs too long to be an amount."""
    digits = surface.replace(",", "")
    if len(digits) > MAX_DIGITS:
        return None
    try:
        return Decimal(digits)
    except InvalidOperation:
        return None


def parse_zh(surface: str) -> Decimal | None:
    """Chinese numerals: 一百二十亿 → 1.2e10, 两千万 → 2e7, 千万 → 1e7, 三 → 3."""
    total = 0  # everything at or above 亿
    wan = 0  # the 万 section
    section = 0  # below 万
    number = 0
    seen = False
    for ch in surface:
        if ch in ZH_DIGITS:
            number = ZH_DIGITS[ch]
            seen = True
        elif ch in ZH_SMALL_UNITS:
            section += (number or 1) * ZH_SMALL_UNITS[ch]
            number = 0
            seen = True
        elif ch == "万":
            wan = (section + number or 1) * 10**4 if (section + number) or not wan else wan * 10**4
            section = number = 0
            seen = True
        elif ch == "亿":
            total = (total + wan + section + number or 1) * 10**8
            wan = section = number = 0
            seen = True
        else:
            return None
    if not seen:
        return None
    return Decimal(total + wan + section + number)


def parse_en_words(surface: str) -> Decimal | None:
    """"five" → 5, "twenty-five" → 25, "a dozen" → 12, "one hundred" → 100, "twice" → 2."""
    key = surface.lower().strip()
    if key in EN_SPECIAL:
        return Decimal(EN_SPECIAL[key])
    value = 0
    for word in key.replace("-", " ").split():
        if word in EN_ONES:
            value += EN_ONES[word]
        elif word in EN_TENS:
            value += EN_TENS[word]
        elif word == "hundred":
            value = (value or 1) * 100
        elif word in ("a", "and"):
            continue
        else:
            return None
    return Decimal(value)


def scale_of(word: str) -> Decimal | None:
    """The multiplier of a scale word ("billion", "bn", "亿", "万亿"), case-insensitive."""
    word = word.strip()
    return SCALES.get(word) or SCALES.get(word.lower())


def normalise(value: Decimal) -> Decimal:
    """Drop trailing zeros and exponent noise: 1.790E+12 → 1790000000000."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()
