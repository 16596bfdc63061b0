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

_ADJACENT_RE = re.compile(r"\s*年?\s*(?:的|为|是|:)?\s*")
_SINCE_AFTER_RE = re.compile(r"\s?年?\s?以来")
_SEGMENT_RE = re.compile(r"[;；]")
_CLAUSE_RE = re.compile(r"[;；，。：、]|,(?!\d{3}(?!\d))|\s[-–—]\s")
_ORD = {"first": 1, "second": 2, "third": 3, "fourth": 4, "一": 1, "二": 2, "三": 3, "四": 4,
        "1": 1, "2": 2, "3": 3, "4": 4, "上": 1, "下": 2}
_EN_NUM = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
           "eight": 8, "nine": 9, "ten": 10}
_YEAR = r"(?:19|20)\d\d"
PERIOD_RE = re.compile(
    rf"""
      (?P<fy>(?i:fiscal(?:\s+year)?|FY)\s?'?(?P<fyy>{_YEAR}|\d\d)\b|(?P<fyz>{_YEAR})\s?财年)
    | (?P<q>\bQ(?P<qn>[1-4])\s?(?P<qy>{_YEAR})\b|(?P<qy2>{_YEAR})\s?Q(?P<qn2>[1-4])\b
        |(?i:(?P<qw>first|second|third|fourth)\s+quarter\s+of\s+)(?P<qy3>{_YEAR})
        |(?P<qy4>{_YEAR})\s?年\s?第?(?P<qn4>[一二三四1-4])季度)
    | (?P<h>\bH(?P<hn>[12])\s?(?P<hy>{_YEAR})\b|(?P<hy2>{_YEAR})\s?H(?P<hn2>[12])\b
        |(?i:(?P<hw>first|second)\s+half\s+of\s+)(?P<hy3>{_YEAR})
        |(?P<hy4>{_YEAR})\s?年\s?(?P<hn4>[上下])半年)
    | (?P<rel>(?i:\blast\s+year\b|\bthis\s+year\b|\byear-to-date\b|\bnext\s+year\b)
        |去年|今年|明年)
    | (?P<ago>(?P<agon>\d{{1,2}}|(?i:one|two|three|four|five|six|seven|eight|nine|ten))
        \s?(?:(?i:years?\s+ago)|年前))
    | (?P<y>(?<![\d./:-])(?<!\d,)(?P<yy>{_YEAR})(?!\s?年前)
        (?!\s?(?:亿|万|千|百|%|美元|元|个|家|倍|(?i:billion|million|trillion|thousand|percent)))(?![\d%.,]\d|\s?-\s?\d|[/:]\d)(?=\s?年|\b|[^\d]))
    """,
    re.VERBOSE,
)
# Comparison bases ("down from 2022", "较 2021 年") and full dates ("July 28, 2024")
# are not the figure's reporting period.
_BASE_BEFORE_RE = re.compile(
    r"(?:\b(?:from|than|since|compared\s+(?:to|with)|vs\.?|versus|over|down\s+from|up\s+from"
    r")|较|比|相比|与|自"
    r"|\b(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d{1,2},)\s*$",
    re.IGNORECASE,
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


def _period_value(m: re.Match[str], ref: dt.date | None) -> str | None:
    g = m.group
    if g("fy"):
        year = g("fyy") or g("fyz")
        return f"FY{'20' + year if len(year) == 2 else year}"
    if g("q"):
        year = g("qy") or g("qy2") or g("qy3") or g("qy4")
        n = g("qn") or g("qn2") or (g("qw") or "").lower() or g("qn4")
        return f"{year}-Q{_ORD[n]}"
    if g("h"):
        year = g("hy") or g("hy2") or g("hy3") or g("hy4")
        n = g("hn") or g("hn2") or (g("hw") or "").lower() or g("hn4")
        return f"{year}-H{_ORD[n]}"
    if g("rel") or g("ago"):
        if ref is None:
            return None
        if g("ago"):
            n = g("agon").lower()
            return str(ref.year - int(_EN_NUM.get(n, n)))
        word = g("rel").lower()
        delta = -1 if ("last" in word or word == "去年") else (
            1 if ("next" in word or word == "明年") else 0)
        return str(ref.year + delta)
    return g("yy")


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
    metrics: list[Mention] = []
    if mt.metric_re is not None:
        for m in finditer(mt.metric_re, sentence):
            metrics.append(Mention(m.start(), m.end(), "", 0, mt.metrics_of[m.group().lower()]))
    periods: list[Mention] = []
    for m in PERIOD_RE.finditer(sentence):
        # "three years ago", "10 年前", "2022 年以来" mark a comparison base: they are
        # kept as empty candidates so that a figure next to one gets no period.
        since = _SINCE_AFTER_RE.match(sentence, m.end()) is not None
        value = "" if m.group("ago") or since else _period_value(m, ref)
        if value is None:
            continue
        possessive = sentence.startswith(("'s", "’s"), m.end())  # "2022's $5.5 billion"
        if value and not possessive and _BASE_BEFORE_RE.search(sentence, max(0, m.start() - 16), m.start()):
            # A base period still labels a figure right after it: "较 2022 年的 55%".
            periods.append(Mention(m.start(), m.end(), value, rank=-1))
            continue
        periods.append(Mention(m.start(), m.end(), value))
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
