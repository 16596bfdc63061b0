"""Who, what and when: entity, metric and period for figures in one sentence.

Mentions are found once per sentence.  For each figure the candidates are
tried in tiers — before it in its clause, before it in its sentence, after it
in its clause, after it in its sentence — and the first tier with a fitting
candidate wins.  Within a tier an entity is chosen by kind (person > company >
market), then a possessive ("NVIDIA's", "英伟达的"), then the earliest mention
(the subject); a metric or period by distance to the number ("metric keyword
close to the number wins").  Metrics must accept the figure's unit.  A period
after "from", "than", "since", "compared with", 较, 比 is a comparison base
and is skipped.
"""

from __future__ import annotations

import datetime as dt
import re
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

from .lexicon import KIND_PRIORITY, Lexicon, Metric, matchers
from .numbers import ascii_lower

_ADJACENT_RE = re.compile(r"\s*年?\s*(?:的|为|是|:)?\s*")
_SINCE_AFTER_RE = re.compile(r"\s?年?\s?以来")
_SEGMENT_RE = re.compile(r"[;；]")
# A clause cut: one punctuation character, then checks that look back at it.
# Starting with a character class lets the regex compiler skip ahead in C to the
# next candidate (a leading lookahead hides that set: ~1.5x slower).  A comma
# inside "1,151" and a hyphen in a word are not cuts.
_CLAUSE_RE = re.compile(
    r"[;；，。：、,\-–—](?:(?<=[;；，。：、])|(?<=,)(?!\d{3}(?!\d))|(?<=\s[-–—])(?=\s))"
)
_ORD = MappingProxyType({
    "first": 1, "second": 2, "third": 3, "fourth": 4, "一": 1, "二": 2, "三": 3, "四": 4,
    "1": 1, "2": 2, "3": 3, "4": 4, "上": 1, "下": 2,
})
_YEAR_RE = re.compile(r"(?:19|20)\d\d")
# Context around a year, matched on the ASCII-lower-cased sentence.
_FY_BEFORE = re.compile(r"(?:fiscal\s+year|fiscal|fy)\s?'?$")
_Q_BEFORE = re.compile(r"(?:q([1-4])|(first|second|third|fourth)\s+quarter\s+of)\s?$")
_H_BEFORE = re.compile(r"(?:h([12])|(first|second)\s+half\s+of)\s?$")
_AFTER = re.compile(
    r"\s?(?:(?P<fy>财年)|年?\s?第?(?P<q>[一二三四1-4])季度|年\s?(?P<h>[上下])半年"
    r"|q(?P<q2>[1-4])(?![a-z0-9])|h(?P<h2>[12])(?![a-z0-9])|(?P<ago>年前)|年?\s?(?P<since>以来))"
)
_NOT_YEAR_AFTER = re.compile(
    r"\s?(?:亿|万|千|百|%|美元|元|个|家|倍|(?:billion|million|trillion|thousand|percent)(?![a-z]))"
    r"|[\d%]|[.,]\d|\s?-\s?\d|[/:]\d"
)
# The leading lookahead (the first characters of every branch) rejects most
# positions before the branches are tried: ~1.4x faster on the seeds.
_REL_RE = re.compile(
    r"(?=[lnty去今明\dofse])"
    r"(?:(?P<rel>last\s+year|this\s+year|year-to-date|next\s+year|去年|今年|明年)"
    r"|(?P<ago>(?:\d{1,2}|one|two|three|four|five|six|seven|eight|nine|ten)\s?(?:years?\s+ago|年前)))"
)
_REL_TRIGGER_RE = re.compile("year|去年|今年|明年|年前")


def _year_period(low: str, m: re.Match[str]) -> tuple[int, int, str] | None:
    """The period a four-digit year names, with its span; "" for a comparison base
    ("10 年前", "2022 年以来"); None when the digits are not a year here."""
    s, e = m.span()
    prev = low[s - 1] if s else " "
    if prev.isdigit() or prev in "./:-" or (prev == "," and s > 1 and low[s - 2].isdigit()):
        return None
    if _NOT_YEAR_AFTER.match(low, e):
        return None
    year = m.group()
    after = _AFTER.match(low, e)
    if after:
        g = after.group
        if g("ago") or g("since"):
            return s, after.end(), ""
        if g("fy"):
            return s, after.end(), f"FY{year}"
        if g("q") or g("q2"):
            return s, after.end(), f"{year}-Q{_ORD[g('q') or g('q2')]}"
        if g("h") or g("h2"):
            return s, after.end(), f"{year}-H{_ORD[g('h') or g('h2')]}"
    window = low[max(0, s - 24) : s]
    # Substring checks first: the anchored searches are only run when they can match.
    if ("fy" in window or "fiscal" in window) and (b := _FY_BEFORE.search(window)):
        return s - len(window) + b.start(), e, f"FY{year}"
    if ("q" in window or "quarter" in window) and (b := _Q_BEFORE.search(window)):
        return s - len(window) + b.start(), e, f"{year}-Q{_ORD[b.group(1) or b.group(2)]}"
    if ("h1" in window or "h2" in window or "half" in window) and (
        b := _H_BEFORE.search(window)
    ):
        return s - len(window) + b.start(), e, f"{year}-H{_ORD[b.group(1) or b.group(2)]}"
    return s, e, year


def _relative(m: re.Match[str], ref: dt.date | None) -> str | None:
    if m.group("ago"):
        return ""
    if ref is None:
        return None
    word = m.group("rel")
    delta = -1 if word in ("last year", "去年") else (1 if word in ("next year", "明年") else 0)
    return str(ref.year + delta)


# Comparison bases ("down from 2022", "较 2021 年") and full dates ("July 28, 2024")
# are not the figure's reporting period.
# Every way `_BASE_BEFORE_RE` can end (before its trailing spaces): a window that
# ends otherwise ("in 2022", "在 2023 年") is settled by one `endswith`.
_BASE_ENDINGS = ("from", "than", "since", "to", "with", "vs", "vs.", "versus", "over", "较",
                 "比", "与", "自", ",")
_BASE_BEFORE_RE = re.compile(
    r"(?:\b(?:from|than|since|compared\s+(?:to|with)|vs\.?|versus|over|down\s+from|up\s+from"
    r")|较|比|相比|与|自"
    r"|\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d{1,2},)\s*$"
)


class Mention(NamedTuple):
    """Something named in a sentence: an entity, metric terms or a period.

    (A NamedTuple: sentences create many and a frozen dataclass is slow to build.)
    """

    start: int
    end: int
    value: str
    rank: int = 0  # entity kind priority (+1 when possessive); -1 for a comparison base
    metrics: tuple[Metric, ...] = ()


# `Mention(...)` runs a Python-level __new__ (for the defaults); sentences build
# many, so they are built from a full tuple in C instead (same object).
_new_mention = tuple.__new__


@dataclass(slots=True)
class SentenceMentions:
    """All mentions in one sentence, and its clause boundaries."""

    entities: list[Mention]
    metrics: list[Mention]
    periods: list[Mention]
    clause_cuts: list[int]
    segment_cuts: list[int]
    text: str = ""


def _periods(sentence: str, low: str, ref: dt.date | None) -> list[Mention]:
    found: list[tuple[int, int, str]] = []
    for m in _YEAR_RE.finditer(low):
        hit = _year_period(low, m)
        if hit is not None:
            found.append(hit)
    trigger = _REL_TRIGGER_RE.search(low)
    if trigger:
        for m in _REL_RE.finditer(low, _rel_from(low, trigger.start())):
            value = _relative(m, ref)
            if value is not None:
                found.append((m.start(), m.end(), value))
    if not found:
        return []
    periods: list[Mention] = []
    for start, end, value in sorted(found):
        # "three years ago", "10 年前", "2022 年以来" mark a comparison base: they are
        # kept as empty candidates so that a figure next to one gets no period.
        possessive = sentence.startswith(("'s", "’s"), end)  # "2022's $5.5 billion"
        if (
            value and not possessive
            and low[max(0, start - 16) : start].rstrip().endswith(_BASE_ENDINGS)
            and _BASE_BEFORE_RE.search(low, max(0, start - 16), start)
        ):
            # A base period still labels a figure right after it: "较 2022 年的 55%".
            periods.append(_new_mention(Mention, (start, end, value, -1, ())))
            continue
        periods.append(_new_mention(Mention, (start, end, value, 0, ())))
    return periods


def _rel_from(low: str, trigger: int) -> int:
    """Where `_REL_RE` can first match, given the first trigger word in `low`.

    Every match holds a trigger word ("year", 去年, 年前...), preceded at most by
    the spaces right before it and, before those, a number ("10", "three") or
    last/this/next: five characters at most.  Later triggers come later.  So no
    match starts before this, and searching from here finds the same matches
    without trying every earlier position.
    """
    i = trigger
    while i and low[i - 1].isspace():
        i -= 1
    return max(0, i - 5)


def find_mentions(sentence: str, lexicon: Lexicon, ref: dt.date | None) -> SentenceMentions:
    """Entities, metric terms, periods and clause cuts of `sentence`."""
    mt = matchers(lexicon)
    entities: list[Mention] = []
    for start, end, ent in mt.find_entities(sentence):
        possessive = sentence.startswith(("'s", "’s", "的"), end)
        rank = KIND_PRIORITY[ent.kind] * 2 + possessive
        entities.append(_new_mention(Mention, (start, end, ent.name, rank, ())))
    low = ascii_lower(sentence)
    metrics = [_new_mention(Mention, (s, e, "", 0, found)) for s, e, found in mt.find_metrics(low)]
    periods = _periods(sentence, low, ref)
    cuts = [m.start() for m in _CLAUSE_RE.finditer(sentence)]
    segments = (
        [m.start() for m in _SEGMENT_RE.finditer(sentence)]
        if ";" in sentence or "；" in sentence
        else []
    )
    return SentenceMentions(entities, metrics, periods, cuts, segments, sentence)


# Where a mention sits relative to the figure: before it in its clause (0), before
# it in its segment (1, segments end at ";"), after it in its clause (2), after it
# in its segment (3), in an earlier segment (4), anywhere later (5).  The tier
# tables are indexed by that place (None: never used from there).
_ENTITY_ORDER: tuple[int | None, ...] = (0, 1, 2, None, 3, None)
_ENTITY_ORDER_ZH: tuple[int | None, ...] = (0, 1, 2, 4, 3, None)
# A metric term or period in the figure's own clause wins by distance, either side.
_NEAREST_ORDER: tuple[int | None, ...] = (0, 1, 0, None, 2, None)


def _where(c_start: int, c_end: int, start: int, end: int, lo: int, hi: int, slo: int,
           shi: int) -> int:
    if c_end <= start:
        return 0 if c_start >= lo else (1 if c_start >= slo else 4)
    if c_start >= end:
        return 2 if c_end <= hi else (3 if c_end <= shi else 5)
    return 5


def _clause(cuts: Sequence[int], start: int, end: int, length: int) -> tuple[int, int]:
    """[lo, hi): from after the last cut before `start` to the first cut at or after
    `end` (`cuts` ascend; cuts inside the figure, "1,151", are not cuts of it)."""
    i = bisect_left(cuts, start)
    j = bisect_left(cuts, end, i)
    return (cuts[i - 1] + 1 if i else 0), (cuts[j] if j < len(cuts) else length)


def attribute(
    sm: SentenceMentions, start: int, end: int, unit: str, length: int, lang: str
) -> tuple[str | None, str | None, str | None]:
    """(entity, metric, period) for a figure at [start, end) of the sentence.

    Entities: the first place in `_ENTITY_ORDER` with a mention wins; there, a
    name right before the number ("Europe (24%)"), then kind and possessive
    rank, then the earliest (the subject).  Chinese puts an adverbial clause
    before the subject ("在筹集 100 亿美元资金时，OpenAI ..."), so there a later
    mention in the segment is a last resort.  A mention later in an English
    sentence, outside the figure's clause, is usually the object of a comparison
    ("second only to ByteDance") and is never used.
    """
    lo, hi = _clause(sm.clause_cuts, start, end, length) if sm.clause_cuts else (0, length)
    slo, shi = (
        _clause(sm.segment_cuts, start, end, length) if sm.segment_cuts else (0, length)
    )
    order = _ENTITY_ORDER_ZH if lang == "zh" else _ENTITY_ORDER
    entity = metric = period = None
    best_key: tuple[int, ...] | None = None
    for c_start, c_end, value, rank, _ in sm.entities:
        tier = order[_where(c_start, c_end, start, end, lo, hi, slo, shi)]
        if tier is None:
            continue
        key = (tier, not 0 <= start - c_end <= 3, -rank, c_start)
        if best_key is None or key < best_key:
            best_key, entity = key, value
    near_key: tuple[int, int] | None = None
    for c_start, c_end, _, _, metrics in sm.metrics:
        tier = _NEAREST_ORDER[_where(c_start, c_end, start, end, lo, hi, slo, shi)]
        if tier is None:
            continue
        near = (tier, start - c_end if c_end <= start else c_start - end)
        if near_key is not None and near >= near_key:
            continue  # cannot win: skip the unit check
        for mm in metrics:
            if mm.accepts(unit):
                near_key, metric = near, mm.name
                break
    near_key = None
    for c_start, c_end, value, rank, _ in sm.periods:
        if rank < 0:
            # A comparison base labels only a figure right after it: "较 2022 年的 55%".
            if 0 <= start - c_end <= 6 and _ADJACENT_RE.fullmatch(sm.text, c_end, start):
                return entity, metric, value
            continue
        tier = _NEAREST_ORDER[_where(c_start, c_end, start, end, lo, hi, slo, shi)]
        if tier is None:
            continue
        near = (tier, start - c_end if c_end <= start else c_start - end)
        if near_key is None or near < near_key:
            near_key, period = near, value or None
    return entity, metric, period
