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

import re
from dataclasses import dataclass, field
from decimal import Decimal

from . import units as U
from .numbers import normalise, parse_arabic, parse_en_words, parse_zh, scale_of

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
_PREFIX = r"(?:us|hk|nt)\s?\$|(?:a|c|s|r)\$|\$|(?:rmb|usd|cny|hkd|eur|gbp|jpy)|人民币|[€£¥￥]"
_CUR_SUFFIX = (
    r"(?:u\.?s\.?\s?dollars?|hk\s?dollars|hong\s+kong\s+dollars|dollars?|yuan(?:\s+rmb)?"
    r"|renminbi|rmb|cny|usd|hkd|euros?|pounds(?:\s+sterling)?|yen)(?![a-z])"
    r"|美元|美金|港元|港币|欧元|英镑|日元|韩元|元人民币|人民币|元"
)
_ZH_NUMERALS = "零〇一二两三四五六七八九十百千万亿"
_NUM_CORE = rf"""
        (?P<arabic>(?:\d{{1,3}}(?:,\d{{3}})+(?![\d])|\d+)(?:\.\d+)?)
      | (?P<zh>[{_ZH_NUMERALS}]+)
"""
_NUM_WORDS = rf"""
      | (?P<en>(?:a\s+)?dozen|(?:{_EN_TENS})(?:[-\s](?:one|two|three|four|five|six|seven|eight|nine))?
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


def _amount_re(words: bool) -> re.Pattern[str]:
    num = _NUM_CORE + (_NUM_WORDS if words else "")
    return re.compile(
        rf"(?:(?P<pre>{_PREFIX})\s?)?(?P<num>{num}){_TAIL}", re.VERBOSE
    )


AMOUNT_RE = _amount_re(words=True)
AMOUNT_RE_DIGITS = _amount_re(words=False)
# Spelled-out numbers are read only before these (or as twice/doubled/翻番).
_WORD_TRIGGERS = ("times", "percent", "per cent", "illion", "thousand", "twice", "doubl",
                  "tripl", "quadrupl", "fold", "dozen", "hundred")
_ASCII_LOWER = str.maketrans(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz"
)
_NO_GLUE_BEFORE_DIGIT = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./")
_NO_BEFORE_ZH = frozenset("第数几上成每" + _ZH_NUMERALS)


def _left_ok(work: str, m: re.Match[str]) -> bool:
    """The left-context checks the regex leaves out (see the note above `_PREFIX`)."""
    s = m.start()
    prev = work[s - 1] if s else " "
    pre = m.group("pre")
    if pre:
        if not pre[0].isalpha():
            return True
        # Letter prefixes are codes written in capitals: "US$", "HK$", "RMB".
        written = work[s : s + len(pre)]
        return written.upper() == written and not (prev.isascii() and prev.isalpha())
    if m.group("arabic"):
        if prev in _NO_GLUE_BEFORE_DIGIT:
            return False
        # "GPT-4", "Top-5": a hyphen after a letter makes the number part of a name.
        return not (prev == "-" and s > 1 and work[s - 2].isascii() and work[s - 2].isalpha())
    if m.group("zh"):
        return prev not in _NO_BEFORE_ZH
    return not (prev.isascii() and prev.isalnum())


_QUALIFIER_RE = re.compile(
    r"(?:(?P<approx>\b(?:about|approximately|approx\.|around|roughly|nearly|almost|close\s+to"
    r"|some|an\s+estimated|estimated)|约|大约|大概|近|将近|接近|约合)"
    r"|(?P<over>\b(?:over|more\s+than|exceeded|exceeding|exceeds|exceed|above|at\s+least"
    r"|upwards\s+of|in\s+excess\s+of|surpassed|surpassing)|超过|超|逾|多于|突破|不少于)"
    r"|(?P<under>\b(?:under|less\s+than|below|up\s+to|as\s+much\s+as|as\s+high\s+as|at\s+most"
    r"|no\s+more\s+than|fewer\s+than)|不到|不足|少于|低于|高达|最多))\s*$",
    re.IGNORECASE,
)
_POST_QUALIFIER_RE = re.compile(r"\s?(?:(?P<over>以上|多|余)|(?P<approx>左右|上下))")
_FOOTNOTE_AFTER_RE = re.compile(r"\d{1,9}(?![\d.,%])")
_COUNTED_RE = re.compile(
    r"[ \t]+([A-Za-z][\w\-]*)(?:[ \t]+([A-Za-z][\w\-]*))?(?:[ \t]+([A-Za-z][\w\-]*))?"
)
_MEASURE_AFTER_RE = re.compile(r"[ \t]?(?:[a-z]*[A-Z]{2,}[A-Za-z]*(?<!s)|[kMGTP]?(?:W|Wh|B|Hz|FLOPS|m|g)|km|kg)\b")
_DATE_BEFORE_RE = re.compile(rf"\b(?i:{U.MONTHS})\.?\s$")
_DATE_AFTER_RE = re.compile(rf"\s?(?:(?i:st|nd|rd|th)\b|\s(?i:{U.MONTHS})\b|[:/]\d|-(?i:year|month|day|week|hour)s?\b)")
_NAME_BEFORE_RE = re.compile(r"(?:\b[A-Za-z][\w.\-]*[A-Z][\w.\-]*|\b[A-Z][\w.\-]*)\s$")
_RANK_BEFORE_RE = re.compile(r"(?:\b(?i:top|no\.|number|rank(?:ed)?|#)|第|排名)\s?$")


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
    extra: dict[str, str] = field(default_factory=dict)


def _group(m: re.Match[str], name: str) -> str | None:
    """A group that only the word-reading pattern has."""
    return m.group(name) if name in m.re.groupindex else None


def _number(m: re.Match[str]) -> Decimal | None:
    if m.group("arabic"):
        return parse_arabic(m.group("arabic"))
    if m.group("zh"):
        return parse_zh(m.group("zh"))
    if _group(m, "en"):
        return parse_en_words(re.sub(r"\s+", " ", m.group("en")))
    return parse_en_words(m.group("mult"))


def _scale(raw: str | None) -> Decimal | None:
    if not raw:
        return None
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


def _currency(m: re.Match[str], lang_hint: str) -> str | None:
    pre, suffix = m.group("pre"), m.group("cur")
    if suffix:
        code = U.CURRENCY_SUFFIX.get(re.sub(r"\s+", " ", suffix.strip().lower()))
        if code:
            return code
    if pre:
        return U.CURRENCY_PREFIX.get(re.sub(r"\s+", "", pre).lower())
    return None


def _base_unit(m: re.Match[str]) -> tuple[str | None, Decimal]:
    """The unit and a multiplier it implies (成 is tens of percent)."""
    if m.group("pct"):
        return "%", Decimal(1)
    if m.group("times") or m.group("xmult") or m.lastgroup == "mult" or _group(m, "mult"):
        return "x", Decimal(1)
    if m.group("cheng"):
        return "%", Decimal(10)
    code = _currency(m, "")
    return code, Decimal(1)


def _qualifier(work: str, start: int) -> str:
    q = _QUALIFIER_RE.search(work, max(0, start - 28), start)
    if not q:
        return "exact"
    return next(k for k in ("approx", "over", "under") if q.group(k))


def _line_start(work: str, start: int) -> bool:
    i = start - 1
    while i >= 0 and work[i] in " \t":
        i -= 1
    return i < 0 or work[i] == "\n"


def _classify_bare(work: str, a: Amount, m: re.Match[str]) -> None:
    """Decide what a unit-less number is: drop it, or leave it "bare" for later."""
    s, e = m.start("num"), a.end
    before, after = work[max(0, s - 12) : s], work[e : e + 12]
    text = m.group("num")
    if _group(m, "en") or m.group("zh"):
        # Spelled-out numbers without a unit are words, not figures ("one of the").
        a.kind = "drop"
        return
    is_int = "." not in text
    if (
        (is_int and not a.scaled and "," not in text and len(text) == 4 and 1800 <= a.value <= 2100)
        or (after.lstrip().startswith(U.ZH_TIME) and not after.lstrip().startswith("年度收"))
        or _DATE_BEFORE_RE.search(before)
        or _DATE_AFTER_RE.match(after)
        or (s > 0 and work[s - 1] in ":/")
        or re.search(r"(?:18|19|20)\d\d\s?[-–]\s?$", before)  # "2010-23"
        or U.STOCK_SUFFIX_AFTER.match(after)
        or U.STOCK_EXCHANGE_BEFORE.search(work[max(0, s - 12) : s])
        or _RANK_BEFORE_RE.search(before)
        or (_line_start(work, s) and re.match(r"\s?[.)、]", after))
        or after.startswith(("s ", "s,", "s.", "'s"))  # 1980s, 2023's
    ):
        a.kind = "drop"
        return
    if a.scaled:
        return
    prev = work[s - 1] if s else " "
    if prev not in " \t\n(（\"“$-~–—,，" and not prev.isdigit():
        # Glued to the word before it: a footnote marker ("计算机9", "losses2425").
        a.kind = "drop"
        return
    if _NAME_BEFORE_RE.search(before):
        # "RTX 3090", "Gaudi 2", "iPhone 16", "Deep Speech 2": part of a name.
        a.kind = "drop"


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
        if low.endswith("s") and not low.endswith("ss") and len(low) > 2 and low not in U.NOT_PLURAL:
            return word
    return None


def _zh_counter(work: str, end: int) -> str | None:
    after = work[end : end + 5].lstrip(" ")
    if not after or after[0] not in U.ZH_COUNTERS or after.startswith(U.ZH_COUNTER_BLOCK):
        return None
    return after[0]


def _attach_suffixes(work: str, a: Amount) -> None:
    pq = _POST_QUALIFIER_RE.match(work, a.end)
    if pq and a.unit is None and a.kind != "drop":
        a.qualifier = "over" if pq.group("over") else "approx"
        a.end = pq.end()
    if a.unit is not None and a.unit != "count":
        fm = _FOOTNOTE_AFTER_RE.match(work, a.end)
        if fm:
            a.footnote = fm.group()


def scan(work: str) -> list[Amount]:
    """Every number in `work` (already width-normalised) as an `Amount`, in order."""
    out: list[Amount] = []
    low = work.translate(_ASCII_LOWER)
    words = any(t in low for t in _WORD_TRIGGERS) or "翻" in low
    pattern = AMOUNT_RE if words else AMOUNT_RE_DIGITS
    pos = 0
    while (m := pattern.search(low, pos)) is not None:
        if not _left_ok(work, m):
            # A rejected currency prefix may hide a good one ("as $37.1 billion").
            pos = m.start() + 1 if m.group("pre") else m.end()
            continue
        pos = m.end()
        value = _number(m)
        if value is None:
            continue
        scale = _scale(m.group("scale"))
        raw_scale = m.group("scale") or ""
        if m.group("scale") and scale is None:
            continue
        unit, mult = _base_unit(m)
        if raw_scale.strip() in ("k", "m", "b", "t", "K", "M", "B", "T") and not m.group("pre"):
            # A bare "8m" or "5G" is not read without a currency sign before it.
            continue
        if m.group("cheng") and not m.group("zh"):
            unit = None
        value = value * (scale or 1) * mult
        start = m.start()
        a = Amount(start, m.end(), normalise(value), unit, "figure", scaled=scale is not None)
        a.scale = scale or Decimal(1)
        if unit is None:
            a.end = m.end("scale") if m.group("scale") else m.end("num")
            a.kind = "bare"
            if m.group("zh") and not m.group("scale") and m.group("zh")[-1] not in "万亿":
                counter = _zh_counter(work, a.end)
                if counter is None or value < 10:
                    continue
            _classify_bare(work, a, m)
            if a.kind == "bare":
                counter = _zh_counter(work, a.end)
                if counter:
                    a.unit, a.kind, a.noun = "count", "figure", counter
                    a.end = work.index(counter, a.end) + 1
        elif _group(m, "en") and unit not in ("x", "%") and not m.group("scale"):
            continue
        a.qualifier = _qualifier(work, start)
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
