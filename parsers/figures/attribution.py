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
from collections.abc import Sequence
from dataclasses import dataclass

from .lexicon import KIND_PRIORITY, Lexicon, Metric, finditer, matchers
from .numbers import ascii_lower

_ADJACENT_RE = re.compile(r"\s*年?\s*(?:的|为|是|:)?\s*")
_SINCE_AFTER_RE = re.compile(r"\s?年?\s?以来")
_SEGMENT_RE = re.compile(r"[;；]")
_CLAUSE_RE = re.compile(r"[;；，。：、]|,(?!\d{3}(?!\d))|\s[-–—]\s")
_ORD = {"first": 1, "second": 2, "third": 3, "fourth": 4, "一": 1, "二": 2, "三": 3, "四": 4,
        "1": 1, "2": 2, "3": 3, "4": 4, "上": 1, "下": 2}
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
_REL_RE = re.compile(
    r"(?P<rel>last\s+year|this\s+year|year-to-date|next\s+year|去年|今年|明年)"
    r"|(?P<ago>(?:\d{1,2}|one|two|three|four|five|six|seven|eight|nine|ten)\s?(?:years?\s+ago|年前))"
)
_REL_TRIGGERS = ("year", "去年", "今年", "明年", "年前")


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
    if b := _FY_BEFORE.search(window):
        return s - len(window) + b.start(), e, f"FY{year}"
    if b := _Q_BEFORE.search(window):
        return s - len(window) + b.start(), e, f"{year}-Q{_ORD[b.group(1) or b.group(2)]}"
    if b := _H_BEFORE.search(window):
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
_BASE_BEFORE_RE = re.compile(
    r"(?:\b(?:from|than|since|compared\s+(?:to|with)|vs\.?|versus|over|down\s+from|up\s+from"
    r")|较|比|相比|与|自"
    r"|\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d{1,2},)\s*$"
)


@dataclass(frozen=True, slots=True)
class Mention:
    """Something named in a sentence: an entity, metric terms or a period."""

    start: int
    end: int
    value: str
    rank: int = 0  # entity kind priority (+1 when possessive)
    metrics: tuple[Metric, ...] = ()


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
    if any(t in low for t in _REL_TRIGGERS):
        for m in _REL_RE.finditer(low):
            value = _relative(m, ref)
            if value is not None:
                found.append((m.start(), m.end(), value))
    periods: list[Mention] = []
    for start, end, value in sorted(found):
        # "three years ago", "10 年前", "2022 年以来" mark a comparison base: they are
        # kept as empty candidates so that a figure next to one gets no period.
        possessive = sentence.startswith(("'s", "’s"), end)  # "2022's $5.5 billion"
        if value and not possessive and _BASE_BEFORE_RE.search(low, max(0, start - 16), start):
            # A base period still labels a figure right after it: "较 2022 年的 55%".
            periods.append(Mention(start, end, value, rank=-1))
            continue
        periods.append(Mention(start, end, value))
    return periods


def find_mentions(sentence: str, lexicon: Lexicon, ref: dt.date | None) -> SentenceMentions:
    """Entities, metric terms, periods and clause cuts of `sentence`."""
    mt = matchers(lexicon)
    entities: list[Mention] = []
    if mt.entity_re is not None:
        for m in finditer(mt.entity_re, sentence):
            ent = mt.entity_of[m.group()]
            tail = sentence[m.end() : m.end() + 2]
            possessive = tail.startswith(("'s", "’s", "的"))
            rank = KIND_PRIORITY[ent.kind] * 2 + possessive
            entities.append(Mention(m.start(), m.end(), ent.name, rank))
    low = ascii_lower(sentence)
    metrics = [Mention(s, e, "", 0, found) for s, e, found in mt.find_metrics(low)]
    periods = _periods(sentence, low, ref)
    cuts = [m.start() for m in _CLAUSE_RE.finditer(sentence)]
    segments = [m.start() for m in _SEGMENT_RE.finditer(sentence)]
    return SentenceMentions(entities, metrics, periods, cuts, segments, sentence)


def _tiers(
    items: Sequence[Mention], start: int, end: int, clause: tuple[int, int], seg: tuple[int, int]
) -> list[list[Mention]]:
    """Before in clause, before in segment (;), after in clause, after in segment, before.

    Callers skip the fourth: a mention later in the sentence, outside the
    figure's clause, is usually the object of a comparison ("second only to
    ByteDance"), not the figure's subject.
    """
    (lo, hi), (slo, shi) = clause, seg
    return [
        [c for c in items if lo <= c.start and c.end <= start],
        [c for c in items if slo <= c.start < lo and c.end <= start],
        [c for c in items if c.start >= end and c.end <= hi],
        [c for c in items if c.start >= end and hi < c.end <= shi],
        [c for c in items if c.start < slo],
    ]


def _clause(cuts: Sequence[int], start: int, end: int, length: int) -> tuple[int, int]:
    lo, hi = 0, length
    for c in cuts:
        if c < start:
            lo = c + 1
        elif c >= end:
            hi = c
            break
    return lo, hi


def attribute(
    sm: SentenceMentions, start: int, end: int, unit: str, length: int, lang: str
) -> tuple[str | None, str | None, str | None]:
    """(entity, metric, period) for a figure at [start, end) of the sentence."""
    clause = _clause(sm.clause_cuts, start, end, length)
    seg = _clause(sm.segment_cuts, start, end, length)
    entity = metric = period = None
    e_tiers = _tiers(sm.entities, start, end, clause, seg)
    # Chinese puts an adverbial clause before the subject ("在筹集 100 亿美元资金时，
    # OpenAI ..."), so a later mention in the segment is a fallback there.
    e_tiers = _pick(e_tiers) + ([e_tiers[3]] if lang == "zh" else [])
    for tier in e_tiers:
        if tier:
            # A name right before the number ("Europe (24%)") beats the clause subject.
            best = max(tier, key=lambda c: (0 <= start - c.end <= 3, c.rank, -c.start))
            entity = best.value
            break
    m_tiers = _tiers(sm.metrics, start, end, clause, seg)
    # In its own clause the closest metric term wins, whichever side it is on.
    m_tiers = [m_tiers[0] + m_tiers[2], m_tiers[1], m_tiers[4]]
    for tier in m_tiers:
        fits = [(c, mm) for c in tier for mm in c.metrics if mm.accepts(unit)]
        if fits:
            c, mm = min(fits, key=lambda p: _distance(p[0], start, end))
            metric = mm.name
            break
    adjacent = [c for c in sm.periods if c.rank < 0 and 0 <= start - c.end <= 6
                and _ADJACENT_RE.fullmatch(sentence_gap(sm, c.end, start))]
    p_tiers = _tiers(_plain(sm.periods), start, end, clause, seg)
    # Like metrics, a period in the figure's own clause wins by distance ("up from 55% in 2022").
    for tier in [adjacent, p_tiers[0] + p_tiers[2], p_tiers[1], p_tiers[4]]:
        if tier:
            period = min(tier, key=lambda c: _distance(c, start, end)).value or None
            break
    return entity, metric, period


def sentence_gap(sm: SentenceMentions, a: int, b: int) -> str:
    """The sentence text between two offsets."""
    return sm.text[a:b]


def _plain(items: Sequence[Mention]) -> list[Mention]:
    return [c for c in items if c.rank >= 0]


def _pick(tiers: list[list[Mention]]) -> list[list[Mention]]:
    return [tiers[0], tiers[1], tiers[2], tiers[4]]


def _distance(c: Mention, start: int, end: int) -> int:
    return start - c.end if c.end <= start else c.start - end
