"""The grammar of amounts: one compiled pass finds every number with its unit.

`scan(work)` returns `Amount`s in text order.  Each is a number with what was
written around it — currency before or after, scale words (billion, 亿, 万亿),
percent, multiple (times, 倍, "19x"), Chinese counters (家, 笔, 枚) — plus a
`kind`: "figure" when a unit was found, "bare" for a plain number whose fate
depends on the neighbours (it may be the first half of "26.47 to 39.84
percent" or a count of "1,151 deals"), and "drop" for numbers that are
certainly not figures (years, dates, clock times, stock codes, model names,
list numbering, footnote markers).
"""

from __future__ import annotations

import bisect
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

from . import units as U
from .drops import bare_dropped
from .numbers import (
    SCALES,
    ascii_lower,
    normalise,
    parse_arabic,
    parse_en_words,
    parse_zh,
    scale_of,
)

_EN_ONES = ("zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen"
            "|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen")
_EN_TENS = "twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety"
_EN_SCALE = "thousand|million|billion|trillion"
_ZH_SCALE = "万亿|千亿|百亿|十亿|千万|百万|十万|亿|万|兆"

# The amount grammar runs on an ASCII-lower-cased copy of the text (same offsets),
# so it needs no case-insensitive flags; and every branch starts with a literal or
# a character class, so the regex engine can skip ahead on its first-character
# set.  Left-context checks (no digit glued to a letter, a word boundary before an
# English number word) are done in `scan`, where they do not slow the search.
_PREFIX = r"[$€£¥￥]"
# Letter prefixes are found by looking back from the number (so that the regex's
# first-character set stays small): "US$", "HK$ ", "RMB ", "USD", "人民币".
_DOLLAR_CODE_RE = re.compile(r"(?:us|hk|nt|a|c|s|r)\s?$")
_DOLLAR_CODE_LAST = frozenset("sktacr")  # the last letters of those codes
_CODE_LAST = frozenset("BDYPRK币")  # last letters of RMB USD CNY JPY EUR GBP HKD 人民币
_CODE_BEFORE_RE = re.compile(r"(?:rmb|usd|cny|hkd|eur|gbp|jpy|人民币)\s?$")
_CUR_SUFFIX = (
    r"(?:u\.?s\.?\s?dollars?|hk\s?dollars|hong\s+kong\s+dollars|dollars?|yuan(?:\s+rmb)?"
    r"|renminbi|rmb|cny|usd|hkd|euros?|pounds(?:\s+sterling)?|yen)(?![a-z])"
    r"|美元|美金|港元|港币|欧元|英镑|日元|韩元|元人民币|人民币|元"
)
_ZH_NUMERALS = "零〇一二两三四五六七八九十百千万亿"
# A Chinese-numeral amount is read only before a unit: currency (元, 美元...),
# 倍, 成, or a measure word.  (Without one, 一 and 二 are words: 一些, 第二.)
_ZH_UNIT_STARTS = "倍成元美港欧日韩人英" + "个家笔枚台名位款项次张件户座颗块套辆部份只条"
_NUM_CORE = rf"""
        (?P<arabic>(?:\d{{1,3}}(?:,\d{{3}})+(?![\d])|\d+)(?:\.\d+)?)
      | (?P<zh>[{_ZH_NUMERALS}]++(?=\s?[{_ZH_UNIT_STARTS}]))
"""
_NUM_WORDS = rf"""
      | (?P<en>(?:a\s+)?dozen
               |(?:{_EN_TENS})(?:[-\s](?:one|two|three|four|five|six|seven|eight|nine))?
               |(?:{_EN_ONES})|a\s+hundred)(?:\s+hundred)?(?![a-z])
      | (?P<mult>(?:twice|doubled|double(?![-\w])|tripled|triple(?![-\w])|quadrupled)(?![a-z])
               |翻了?[一两]番)
"""
_TAIL = rf"""
    (?P<scale>
        (?:\s?(?:{_EN_SCALE})(?![a-z])(?:\s(?:{_EN_SCALE})(?![a-z]))?)
      | (?:bn|mn|tn|[kmbt])(?![a-z0-9])
      | (?:\s?(?:{_ZH_SCALE}))
    )?
    (?P<unit>
        \s?(?P<pct>%|(?:percent|per\s?cent|pct)(?![a-z]))
      | \s?(?P<times>times(?![a-z])|倍|-?fold(?![a-z]))
      | (?P<xmult>x(?![\w]))
      | \s?(?P<cur>{_CUR_SUFFIX})
      | (?P<cheng>成(?![为立功本员交果长熟就都了绩效]))
    )?
"""


# The digits-only regex carries the word groups too, as a branch that never
# matches, so both regexes number their groups alike and `scan` reads them all
# with one `m.groups()`.
_NO_WORDS = r"""
      | (?P<en>(?!))(?P<mult>(?!))
"""


def _amount_re(words: bool) -> re.Pattern[str]:
    num = _NUM_CORE + (_NUM_WORDS if words else _NO_WORDS)
    return re.compile(
        # The leading lookahead gives the engine a first-character set to skip on
        # (an optional group in first position hides it): ~6x faster on prose.
        rf"(?=[$€£¥￥0-9{_ZH_NUMERALS}{'a-z翻' if words else ''}])"
        rf"(?:(?P<pre>{_PREFIX})\s?)?(?P<num>{num}){_TAIL}",
        re.VERBOSE,
    )


AMOUNT_RE = _amount_re(words=True)
AMOUNT_RE_DIGITS = _amount_re(words=False)
_GROUP_NAMES = ("pre", "num", "arabic", "zh", "en", "mult", "scale", "unit",
                "pct", "times", "xmult", "cur", "cheng")  # the order `scan` unpacks
if not (AMOUNT_RE.groupindex == AMOUNT_RE_DIGITS.groupindex
        == {name: i for i, name in enumerate(_GROUP_NAMES, 1)}):
    raise AssertionError("amount regex groups out of order")
# Group numbers (`groups()` is 0-based: group n is groups[n - 1]).
_NUM_GROUP, _SCALE_GROUP, _UNIT_GROUP, _CHENG_GROUP = 2, 7, 8, 13
_NO_UNIT: tuple[None, ...] = (None,) * 5
# Spelled-out numbers are read only before these words, or are these words.
# Substrings of the unit words ("illion" for million/billion/trillion, "cent" for
# percent / per cent): fewer look-ups per sentence.
_WORD_UNITS = ("times", "cent", "hundred", "thousand", "illion", "fold", "dozen")
_WORD_MULTIPLES = ("twice", "double", "tripl", "quadrupled", "翻")
_WORD_RE = re.compile(r"\S+")
# Any trigger at all?  An alternation of plain words, so the regex compiler builds
# a first-character set and the scan skips ahead in C.
_WORD_TRIGGER_RE = re.compile("|".join(_WORD_MULTIPLES + _WORD_UNITS))
_NO_GLUE_BEFORE_DIGIT = frozenset(string.ascii_letters + string.digits + "_./")
_NO_BEFORE_ZH = frozenset("第数几上成每" + _ZH_NUMERALS)


def _letter_prefix(work: str, low: str, m: re.Match[str]) -> tuple[int, str] | None:
    """(start, currency code) of a letter prefix right before the match, if any."""
    s = m.start()
    pre = m.group("pre")
    if pre == "$":
        # Most "$" follow another word ("of $5"): its last letter settles it.
        if low[max(0, s - 4) : s].rstrip()[-1:] not in _DOLLAR_CODE_LAST:
            return None
        regex, suffix = _DOLLAR_CODE_RE, "$"
    elif pre:
        return None
    else:
        regex, suffix = _CODE_BEFORE_RE, ""
    b = regex.search(low, max(0, s - 4), s)
    if b is None:
        return None
    start = b.start()
    written = work[start:s].strip()
    if written.upper() != written:
        return None  # codes are written in capitals: "US$", "RMB", not "us"
    if start and work[start - 1].isascii() and work[start - 1].isalpha():
        return None
    code = U.CURRENCY_PREFIX.get(written.replace(" ", "").lower() + suffix)
    return (start, code) if code else None


_QUALIFIERS: Mapping[str, str] = MappingProxyType({
    **dict.fromkeys(("about", "approximately", "approx.", "around", "roughly", "nearly",
                     "almost", "close to", "some", "an estimated", "estimated", "约", "大约",
                     "大概", "近", "将近", "接近", "约合"), "approx"),
    **dict.fromkeys(("over", "more than", "exceeded", "exceeding", "exceeds", "exceed", "above",
                     "at least", "upwards of", "in excess of", "surpassed", "surpassing", "超过",
                     "超", "逾", "多于", "突破", "不少于"), "over"),
    **dict.fromkeys(("under", "less than", "below", "up to", "as much as", "as high as",
                     "at most", "no more than", "fewer than", "不到", "不足", "少于", "低于",
                     "高达", "最多"), "under"),
})
# Longest first, so "more than" is tried before "than" would be (and "约合" before "合").
_QUALIFIER_PHRASES = tuple(sorted(_QUALIFIERS, key=len, reverse=True))
_QUALIFIER_ENDINGS = tuple(" ".join(p.split()) for p in _QUALIFIER_PHRASES)
_QUALIFIER_LENGTHS = tuple(sorted({len(p) for p in _QUALIFIER_PHRASES}, reverse=True))
# Last two characters (one for one-character phrases) of every ending: a window
# whose end is in neither set cannot end with a qualifier.
_QUALIFIER_TAIL2 = frozenset(p[-2:] for p in _QUALIFIER_ENDINGS if len(p) > 1)
_QUALIFIER_TAIL1 = frozenset(p for p in _QUALIFIER_ENDINGS if len(p) == 1)
_POST_QUALIFIER_RE = re.compile(r"\s?(?:(?P<over>以上|多|余)|(?P<approx>左右|上下))")
_FOOTNOTE_AFTER_RE = re.compile(r"\d{1,9}(?![\d.,%])")
_COUNTED_RE = re.compile(
    r"[ \t]+([A-Za-z][\w\-]*)(?:[ \t]+([A-Za-z][\w\-]*))?(?:[ \t]+([A-Za-z][\w\-]*))?"
)
_YEAR_HEADS = ("18", "19", "20")
_MEASURE_AFTER_RE = re.compile(
    r"[ \t]?(?:[a-z]*[A-Z]{2,}[A-Za-z]*(?<!s)|[kMGTP]?(?:W|Wh|B|Hz|FLOPS|m|g)|km|kg)\b"
)


_ONE = Decimal(1)
_TEN = Decimal(10)


@dataclass(slots=True)
class Amount:
    """One number with what was written around it (offsets into the text)."""

    start: int
    end: int
    value: Decimal
    unit: str | None  # ISO code, "%", "x", "count" or None (bare)
    kind: str  # "figure", "bare" or "drop"
    scaled: bool = False  # a scale word was written (billion, 亿)
    scale: Decimal = Decimal(1)
    qualifier: str = "exact"
    footnote: str | None = None
    noun: str | None = None  # the counted thing, for counts
    low: Decimal | None = None
    high: Decimal | None = None


def _number(g: dict[str, str | None]) -> Decimal | None:
    if arabic := g.get("arabic"):
        return parse_arabic(arabic)
    if zh := g.get("zh"):
        return parse_zh(zh)
    if en := g.get("en"):
        return parse_en_words(" ".join(en.split()))
    mult = g.get("mult")
    return parse_en_words(mult) if mult else None


def _scale(raw: str | None) -> Decimal | None:
    if not raw:
        return None
    single = SCALES.get(raw.strip())
    if single is not None:
        return single  # one scale word, as written in the lower-cased text
    words = raw.split()
    if len(words) == 2 and words[0].lower() == words[1].lower():
        # Machine translation doubles scale words ("31 billion billion US dollars"
        # for 310 亿美元); a doubled word is read once.
        words = words[:1]
    total = Decimal(1)
    for word in words:
        factor = scale_of(word)
        if factor is None:
            return None
        total *= factor
    return total


def _base_unit(
    groups: tuple[str | None, ...], mult: str | None, pre: str | None, pre_code: str | None,
) -> tuple[str | None, Decimal]:
    """The unit and a multiplier it implies (成 is tens of percent), from the unit
    groups (pct, times, xmult, cur, cheng; all None when no unit was written)."""
    pct, times, xmult, cur, cheng = groups
    if pct:
        return "%", _ONE
    if times or xmult or mult:
        return "x", _ONE
    if cheng:
        return "%", _TEN
    if cur:
        code = U.CURRENCY_SUFFIX.get(" ".join(cur.split()))
        if code:
            return code, _ONE
    if pre_code:
        return pre_code, _ONE
    return (U.CURRENCY_PREFIX.get(pre) if pre else None), _ONE


def _qualifier(low: str, start: int) -> str:
    """The qualifier written right before `start` ("more than", "超过"), or "exact"."""
    window = low[max(0, start - 24) : start].rstrip()
    if (window[-2:] not in _QUALIFIER_TAIL2 and window[-1:] not in _QUALIFIER_TAIL1) or (
        not window.endswith(_QUALIFIER_ENDINGS)
    ):
        return "exact"  # the common case: two set look-ups, else one C-level call
    for n in _QUALIFIER_LENGTHS:  # longest first: "more than" before "than"
        phrase = window[-n:]
        if phrase in _QUALIFIERS:
            head = window[:-n]
            if not phrase.isascii() or not head or not head[-1].isalpha():
                return _QUALIFIERS[phrase]
    return "exact"


def _counted_noun(work: str, a: Amount) -> str | None:
    """For "1,151 deals", "200 large models", "10 million GPUs": the counted noun."""
    cm = _COUNTED_RE.match(work, a.end, a.end + 60)
    if not cm:
        return None
    for i, word in enumerate(cm.groups()):
        if word is None:
            return None
        low = word.lower()
        if low in U.NOUN_STOP:
            # "30 of the world's richest": a count of the group that follows.
            return "of" if low == "of" and i == 0 and a.value >= 2 else None
        if low in U.EN_TIME_WORDS:
            return "time"
        plural = low.endswith("s") and not low.endswith("ss") and len(low) > 2
        if plural and low not in U.NOT_PLURAL:
            return word
    return None


def _zh_counter(work: str, end: int) -> str | None:
    after = work[end : end + 5].lstrip(" ")
    if not after or after[0] not in U.ZH_COUNTERS or after.startswith(U.ZH_COUNTER_BLOCK):
        return None
    return after[0]


def _attach_suffixes(work: str, a: Amount) -> None:
    nxt = work[a.end : a.end + 2].lstrip(" ")[:1]
    if not nxt:
        return
    if a.unit is None and nxt in "以多余左上":
        pq = _POST_QUALIFIER_RE.match(work, a.end)
        if pq:
            a.qualifier = "over" if pq.group("over") else "approx"
            a.end = pq.end()
    elif a.unit is not None and a.unit != "count" and work[a.end].isdigit():
        fm = _FOOTNOTE_AFTER_RE.match(work, a.end)
        if fm:
            a.footnote = fm.group()


def _word_starts(low: str) -> list[int]:
    """Where spelled-out numbers start: one to three words before "times",
    "percent", "billion"... ("nearly five times", "twenty-five percent"), and the
    multiple words themselves ("twice", "doubled", "翻了一番")."""
    first = _WORD_TRIGGER_RE.search(low)
    if first is None:
        return []  # the common case: one C-level scan instead of a find per trigger
    # No trigger occurs before the first hit, so each `find` starts there.
    at = first.start()
    starts: list[int] = []
    for trigger in _WORD_MULTIPLES:
        i = low.find(trigger, at)
        while i >= 0:
            starts.append(i)
            i = low.find(trigger, i + 1)
    for trigger in _WORD_UNITS:
        i = low.find(trigger, at)
        while i >= 0:
            j = i  # the start of the unit word: "b|illion", "per |cent", "per|cent"
            while j and low[j - 1].isalpha():
                j -= 1
            if low.endswith("per ", 0, j):
                j -= 4
            if (
                j >= 2 and low[j - 2].isalpha()  # "$1.79 trillion" is the main pass's
                # Every reading below ends with the word right before: when that word
                # is not a number word ("recent", "the times"), none can parse.
                and (head := low[max(0, j - 40) : j].split())
                and parse_en_words(head[-1]) is not None
            ):
                words = list(_WORD_RE.finditer(low, max(0, j - 40), j))[-3:]
                for n in (3, 2, 1):
                    if len(words) >= n and parse_en_words(
                        " ".join(w.group() for w in words[-n:])
                    ) is not None:
                        starts.append(words[-n].start())
                        break
            i = low.find(trigger, i + 1)
    return sorted(set(starts)) if len(starts) > 1 else starts


def _matches(work: str, low: str) -> list[re.Match[str]]:
    """Digit and Chinese-numeral matches in one pass; spelled-out ones where triggered."""
    found = list(AMOUNT_RE_DIGITS.finditer(low))
    word_starts = _word_starts(low)
    if word_starts:
        # Digit matches and word matches never overlap: a word number starts at a
        # letter (or 翻) outside every digit match.
        starts = [m.start() for m in found]
        words = []
        for start in word_starts:
            i = bisect.bisect_right(starts, start) - 1
            if i >= 0 and found[i].end() > start:
                continue
            m = AMOUNT_RE.match(low, start)
            if m is not None and (m.group("en") or m.group("mult")):
                words.append(m)
        if words:
            found = sorted(found + words, key=lambda m: m.start())
    return found


def scan(work: str) -> list[Amount]:
    """Every number in `work` (already width-normalised) as an `Amount`, in order."""
    out: list[Amount] = []
    low = ascii_lower(work)
    for m in _matches(work, low):
        groups = m.groups()
        pre, _, arabic, zh, en, mult, raw_scale, unit_raw = groups[:_UNIT_GROUP]
        if (
            arabic and len(arabic) == 4 and arabic[:2] in _YEAR_HEADS
            and not (unit_raw or raw_scale or pre)
        ):
            continue  # a year: the commonest number in news text, dropped first
        ms = m.start()
        letter = None
        if pre == "$" or (ms and (work[ms - 1] in _CODE_LAST or (
                work[ms - 1] == " " and ms > 1 and work[ms - 2] in _CODE_LAST))):
            letter = _letter_prefix(work, low, m)
        if letter is None and not pre:
            # The left-context checks the regex leaves out (see the note above `_PREFIX`).
            prev = work[ms - 1] if ms else " "
            if arabic:
                if prev in _NO_GLUE_BEFORE_DIGIT or (
                    # "GPT-4", "Top-5": a hyphen after a letter makes the number part of a name.
                    prev == "-" and ms > 1 and work[ms - 2].isascii() and work[ms - 2].isalpha()
                ):
                    continue
            elif zh:
                if prev in _NO_BEFORE_ZH:
                    continue
            elif prev.isascii() and prev.isalnum():
                continue
        zh_counted = bool(zh and not raw_scale and zh[-1] not in "万亿")
        bare_checked = False  # bare_dropped already said no
        num_end = m.end(_SCALE_GROUP) if raw_scale else m.end(_NUM_GROUP)
        if not (unit_raw or letter or pre or mult):
            # Unit-less: most are years, dates or markers; decide before any arithmetic.
            if zh_counted:
                pass  # a Chinese numeral before a measure word: read below
            elif bare_dropped(work, m.start(_NUM_GROUP), arabic, zh, en, raw_scale, num_end):
                continue
            else:
                bare_checked = True
        # Digits are the common case: skip the dispatch (same result as _number).
        value = parse_arabic(arabic) if arabic else _number(m.groupdict())
        if value is None:
            continue
        if raw_scale:
            scale = _scale(raw_scale)
            if scale is None:
                continue
            if not (pre or letter) and raw_scale.strip() in ("k", "m", "b", "t"):
                # A bare "8m" or "5G" is not read without a currency sign before it.
                continue
        else:
            scale = None
        unit, factor = _base_unit(
            groups[_UNIT_GROUP:] if unit_raw else _NO_UNIT, mult, pre,
            letter[1] if letter else None,
        )
        if groups[_CHENG_GROUP - 1] and not zh:
            unit = None
        if scale is not None or factor is not _ONE:
            value = normalise(value * (scale or 1) * factor)
        elif not arabic or "." in arabic:
            value = normalise(value)
        # else: an integer digit string is already normal (Decimal("1151"))
        start = letter[0] if letter else ms
        a = Amount(start, m.end(), value, unit, "figure", scale is not None, scale or _ONE)
        if unit is None:
            a.end = num_end
            a.kind = "bare"
            if zh_counted:
                counter = _zh_counter(work, a.end)
                if counter is None or value < 10:
                    continue
            elif not bare_checked and bare_dropped(work, m.start(_NUM_GROUP), arabic, zh, en,
                                                   raw_scale, a.end):
                # Years, dates, codes, names: not figures, and never half of a range
                # (the text between two amounts then no longer reads as "X to Y").
                continue
            counter = _zh_counter(work, a.end)
            if counter:
                a.unit, a.kind, a.noun = "count", "figure", counter
                a.end = work.index(counter, a.end) + 1
        elif en and unit not in ("x", "%") and not raw_scale:
            continue
        a.qualifier = _qualifier(low, start)
        _attach_suffixes(work, a)
        out.append(a)
    return out


def resolve_bare(work: str, a: Amount) -> None:
    """A bare number that did not join a range: a count of something, or not a figure."""
    noun = _counted_noun(work, a)
    if _MEASURE_AFTER_RE.match(work, a.end):
        a.kind = "drop"  # "20,000 petaFLOPS", "5 GW": a measurement, not a count
    elif noun == "time":
        a.kind = "drop"
    elif noun is not None:
        a.unit, a.kind, a.noun = "count", "figure", noun
    elif a.scaled or (a.value >= 1000 and a.value == a.value.to_integral_value()):
        a.unit, a.kind = "count", "figure"
    else:
        a.kind = "drop"
