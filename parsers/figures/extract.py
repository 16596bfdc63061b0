"""`extract(text)`: the figures a text states, with entity, metric and period.

The pipeline, in one pass over the text:
  1. width-normalise (full-width digits and signs → ASCII, 1:1 so offsets hold)
     and blank out URLs;
  2. `grammar.scan` finds every number with its unit;
  3. neighbours merge: ranges ("0.68 billion yuan to 0.72 billion yuan", "$2-3
     billion", "15%-30%", "6.8亿元至7.2亿元") and conversions ("$2 billion
     (approximately 14.25 billion yuan)" is one figure);
  4. unit-less numbers left over become counts ("1,151 deals", "the number of
     deals was about 232") or are dropped;
  5. each figure gets its sentence, language and attribution.

Machine-translation repairs (documented choices):
  * a doubled scale word is read once: "31 billion billion US dollars" = $31e9;
  * a range whose first bound lacks its own scale and comes out larger than the
    second by a decimal shift ("6.45-0.73 billion yuan", from 6.45-7.3亿元 with
    only the upper bound converted) is read with the first bound divided by ten.
"""

from __future__ import annotations

import bisect
import datetime as dt
import re

from . import sentences
from .attribution import SentenceMentions, attribute, find_mentions
from .grammar import Amount, resolve_bare, scan
from .lexicon import Lexicon, default_lexicon, matchers
from .model import Conversion, Figure, make_figure
from .numbers import normalise, to_ascii_width
from .units import is_currency

# Cheap gate before the amount grammar: a digit or Chinese numeral, else (on the
# lower-cased text; case-insensitive regexes are slow) a word that can carry a
# spelled-out amount.
_PREFILTER_DIGIT_RE = re.compile(r"[0-9０-９零〇一二两三四五六七八九十百千万亿]")
_PREFILTER_WORD_RE = re.compile(
    r"per\s?cent|times|twice|doubl|tripl|quadrupl|illion|hundred|thousand|dozen|fold"
)
_URL_RE = re.compile(r"(?:https?://|www\.)[^\s<>\"'，。）)]+")
_RANGE_GAP_RE = re.compile(r"\s*(?:-|–|—|~|～|至|到|to|and|through)\s*")
# Case-insensitive words behind a lookahead on their first letters (in either case;
# no other character case-folds to b, r, e, f, g or p): a case-insensitive
# alternation alone is tried in full at every position, ~3x slower on a window.
_RANGE_CONTEXT_RE = re.compile(
    r"(?=[bBrReEfFgGpP预区])"
    r"(?i:between|rang(?:e|ing)|expect|estimate|forecast|guidance|project|预计|预期|预测|区间)"
)
_CHANGE_WORDS = (
    "by|from|added|adds|add|up|down|rose|risen|fell|fallen|increased|decreased|grew"
    "|gained|jumped|climbed|dropped|declined|surged|soared|shrunk|shrank|plunged"
)
_CHANGE_BEFORE_RE = re.compile(
    rf"\b(?:{_CHANGE_WORDS})\b[^,;，；]{{0,40}}$", re.IGNORECASE
)
# A match of `_CHANGE_BEFORE_RE` starts at most this far before the end of the
# text it is searched in (a word, 40 characters, and a final newline "$" allows),
# so the search starts there instead of trying every earlier position.
_CHANGE_REACH = max(map(len, _CHANGE_WORDS.split("|"))) + 40 + 1
_BETWEEN_RE = re.compile(r"between\s*(?:\S+\s*)?$", re.IGNORECASE)
_EXPLICIT_RANGE_RE = re.compile(
    r"(?:between|ranging\s+from|range\s+of|从)\s*(?:\S+\s*)?$", re.IGNORECASE
)
_CONVERSION_GAP_RE = re.compile(
    r"\s*(?:[(（]\s*(?:(?:about|approximately|approx\.|around|roughly|or|i\.e\.|约合|约|大约|折合|合)\s*)?"
    r"|(?:equals|equal\s+to|is\s+equal\s+to|is\s+about|=|≈|约合|折合)\s*)",
    re.IGNORECASE,
)
MAX_SENTENCE = 2000
# "number of" (any case), 数量, 数目, 总数.  Written to start with a character class,
# so the search skips ahead in C; a case-insensitive alternation tries every
# position (~3x slower).  (No other character case-folds to a letter of "number of".)
_COUNT_CONTEXT_RE = re.compile(r"[nN数总](?:(?<=[nN])(?i:umber of)|(?<=数)[量目]|(?<=总)数)")
_CJK_RE = re.compile(r"[\u3400-\u9fff]+")  # runs: fewer strings to count
_LATIN_RE = re.compile(r"[A-Za-z]+")


def _working_text(text: str) -> str:
    work = to_ascii_width(text)
    if "http" in work or "www." in work:
        work = _URL_RE.sub(lambda m: " " * len(m.group()), work)
    return work


def _is_range(work: str, a: Amount, b: Amount, gap: str) -> bool:
    """Whether "A <gap> B" is one range.  "-", "~", "至" always join; "and" only
    after "between"; "to"/"到" join unless the clause says the amount changed
    ("rose by $9.6 billion to $129.5 billion", "from a peak of HK$320 billion to
    HK$53.7 billion") — except where it speaks of an estimate ("expected to lose
    0.756 billion yuan to 0.924 billion yuan")."""
    if b.unit is None and (a.unit is None or b.kind != "bare" or gap.strip() not in "-–~～至"):
        return False  # only "$2-3 billion" lends the first unit to a bare second bound
    if a.unit is not None and b.unit is not None and a.unit != b.unit:
        return False
    word = gap.strip()
    window = work[max(0, a.start - 160) : a.start].rsplit("\n", 1)[-1]
    if word in ("and", "through"):
        return _BETWEEN_RE.search(window) is not None
    if word in ("to", "到"):
        # `_RANGE_CONTEXT_RE` finds every explicit range word but 从, so the explicit
        # test is needed only with one (the cheapest order, same answer).
        if _RANGE_CONTEXT_RE.search(window) or (
            "从" in window and _EXPLICIT_RANGE_RE.search(window)
        ):
            return True
        reach = max(0, len(window) - _CHANGE_REACH)
        return _CHANGE_BEFORE_RE.search(window, reach) is None
    return True


def _merge_range(a: Amount, b: Amount) -> Amount:
    low = a.value
    if not a.scaled and b.scaled:  # "26.47 to 39.84 percent", "$2-3 billion"
        low = normalise(low * b.scale)
    high = b.value
    if low > high and not a.scaled and low / 10 <= high:
        low = normalise(low / 10)  # MT damage: only the upper bound was converted from 亿
    low, high = min(low, high), max(low, high)
    qualifier = a.qualifier if a.qualifier != "exact" else b.qualifier
    merged = Amount(a.start, b.end, normalise((low + high) / 2), b.unit or a.unit, "figure",
                    scaled=True, qualifier=qualifier, footnote=b.footnote, noun=b.noun,
                    low=low, high=high)
    return merged


def _combine(work: str, amounts: list[Amount]) -> list[tuple[Amount, Conversion | None]]:
    out: list[tuple[Amount, Conversion | None]] = []
    i, n = 0, len(amounts)
    while i < n:
        a = amounts[i]
        b = amounts[i + 1] if i + 1 < n else None
        if a.kind != "drop" and b is not None and b.kind != "drop" and b.start - a.end < 40:
            gap = work[a.end : b.start]
            if _RANGE_GAP_RE.fullmatch(gap) and _is_range(work, a, b, gap):
                amounts[i + 1] = _merge_range(a, b)
                i += 1
                continue
            if (
                is_currency(a.unit) and is_currency(b.unit) and a.unit != b.unit
                and _CONVERSION_GAP_RE.fullmatch(gap)
            ):
                close = re.match(r"\s*[)）]", work[b.end : b.end + 3])
                if close or ("(" not in gap and "（" not in gap):
                    a.end = b.end + (close.end() if close else 0)
                    out.append((a, Conversion(b.value, b.unit, b.qualifier)))  # type: ignore[arg-type]
                    i += 2
                    continue
        out.append((a, None))
        i += 1
    return out


def _lang_of(sentence: str) -> str:
    """"zh" when there are at least as many CJK characters as Latin words."""
    if sentence.isascii() or not _CJK_RE.search(sentence):  # isascii() is O(1)
        return "en"
    cjk = sum(map(len, _CJK_RE.findall(sentence)))
    return "zh" if cjk >= len(_LATIN_RE.findall(sentence)) else "en"


def extract(
    text: str,
    lang: str | None = None,
    reference_date: dt.date | None = None,
    lexicon: Lexicon | None = None,
) -> list[Figure]:
    """The figures stated in `text` (see the module docstring for the pipeline)."""
    if not text or not (
        _PREFILTER_DIGIT_RE.search(text) or _PREFILTER_WORD_RE.search(text.lower())
    ):
        return []
    work = _working_text(text)
    amounts = scan(work)
    if not amounts:
        return []
    lex = lexicon if lexicon is not None else default_lexicon()
    metrics_of = matchers(lex).metrics_of
    spans = sentences.split(text)
    starts = [s for s, _ in spans]
    # Per sentence (keyed by its index, or by a window's own key): the sentence,
    # its mentions and its language, worked out once for all its figures.
    context: dict[int, tuple[str, SentenceMentions, str]] = {}
    figures: list[Figure] = []
    for a, conversion in _combine(work, amounts):
        if a.kind == "drop":
            continue
        k = bisect.bisect_right(starts, a.start) - 1
        if k < 0:
            k = 0
        s_start, s_end = spans[k] if spans else (0, len(text))
        if s_end - s_start > MAX_SENTENCE:
            # Text without sentence punctuation (tables, garbage): attribute from a
            # window around the figure, so work and memory stay linear.
            s_start = max(s_start, a.start - MAX_SENTENCE // 8)
            s_end = min(s_end, a.end + MAX_SENTENCE // 8)
            k = -1 - a.start  # a window of its own, not shared
        if a.kind == "bare":
            context_from = max(s_start, a.start - 120)
            if _COUNT_CONTEXT_RE.search(work, context_from, a.start) and a.value >= 2:
                a.unit, a.kind = "count", "figure"
            else:
                resolve_bare(work, a)
            if a.kind != "figure":
                continue
        unit = a.unit
        assert unit is not None
        seen = context.get(k)
        if seen is None:
            sentence = text[s_start:s_end]
            seen = context[k] = (
                sentence, find_mentions(sentence, lex, reference_date), lang or _lang_of(sentence)
            )
        sentence, mentions, f_lang = seen
        entity, metric, period = attribute(
            mentions, a.start - s_start, a.end - s_start, unit, s_end - s_start, f_lang
        )
        if a.noun and a.noun != "of":
            for m in metrics_of.get(a.noun.lower(), ()):
                if m.accepts(unit):
                    metric = m.name
                    break
        figures.append(
            make_figure(  # Figure(...) without the frozen dataclass's slow __init__
                a.value, unit, a.start, a.end, text[a.start : a.end], sentence, f_lang,
                a.low, a.high, a.qualifier,  # type: ignore[arg-type]
                entity, metric, period, conversion, a.footnote,
            )
        )
    return figures
