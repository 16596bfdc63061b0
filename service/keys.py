"""The two identities of a figure: its page key and its series key.

- **page key**: the same figure on the same page across fetches.  It is the
  figure's sentence with every number masked and whitespace normalised, plus
  the figure's occurrence index among the figures that share that masked
  sentence (two figures in one sentence, or one sentence repeated, get 0, 1, ...).
  A page that is only re-wrapped or reordered keeps its page keys; a lightly
  edited sentence does not, so the diff pairs leftovers by `similarity`.
- **series key**: the same fact across pages and sources, `(entity, metric, period)`.
"""

from __future__ import annotations

import hashlib
import re
from difflib import SequenceMatcher
from functools import lru_cache

# Digits in any script, with thousands separators and decimals: 1,234.5 / 1.234,5 / ２０２４.
_NUMBER = re.compile(r"\d+(?:[.,'\u00a0\u202f]\d+)*")
_SPACE = re.compile(r"\s+")
_CJK = r"\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
# A line break inside Chinese text is an artefact of wrapping, not a word boundary.
_SPACE_NEXT_TO_CJK = re.compile(rf"(?<=[{_CJK}])\s+|\s+(?=[{_CJK}])")
MASK = "#"

SeriesKey = tuple[str, str, str | None]


def normalise(text: str) -> str:
    """Whitespace collapsed (and dropped next to CJK characters), case folded."""
    text = _SPACE.sub(" ", text).strip()
    return _SPACE_NEXT_TO_CJK.sub("", text).casefold()


@lru_cache(maxsize=8192)  # a page states many figures per sentence, and again every fetch
def mask_sentence(sentence: str) -> str:
    """The sentence with numbers replaced by `#`, whitespace normalised.

    >>> mask_sentence("Revenue rose  to $3.39\\ntrillion in 2024.")
    'revenue rose to $# trillion in #.'
    """
    return normalise(_NUMBER.sub(MASK, sentence))


def page_key(masked: str, occurrence: int) -> str:
    """A short stable key: a digest of the masked sentence and the occurrence index."""
    return f"{_digest(masked)}:{occurrence}"


@lru_cache(maxsize=8192)
def _digest(masked: str) -> str:
    return hashlib.sha1(masked.encode("utf-8"), usedforsecurity=False).hexdigest()[:16]


def similarity(a: str, b: str) -> float:
    """0..1 similarity of two masked sentences (character-level matching ratio).

    Character level rather than word level so that one edited word in a short
    sentence ("rose to" for "was") still scores about 0.8, and so that Chinese,
    which has no spaces, is handled the same way.
    """
    if a == b:
        return 1.0
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    # The quick ratios are upper bounds; skip the expensive one when they already fail.
    if matcher.real_quick_ratio() < 0.5 or matcher.quick_ratio() < 0.5:
        return matcher.quick_ratio()
    return matcher.ratio()


def series_key(entity: str | None, metric: str | None, period: str | None) -> SeriesKey | None:
    """`(entity, metric, period)`, or None when the figure does not say what it is about."""
    if not entity or not metric:
        return None
    return (entity, metric, period or None)
