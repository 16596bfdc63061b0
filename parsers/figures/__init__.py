"""Figure extraction: text in, figures (value, unit, entity, metric, period) out.

`extract(text, lang=None, reference_date=None, lexicon=None)` is pure: no I/O
beyond reading the bundled lexicon once, no clock, no globals that change.
"""

from __future__ import annotations

from .extract import extract
from .lexicon import Lexicon, default_lexicon
from .model import Conversion, Figure

__all__ = ["Conversion", "Figure", "Lexicon", "default_lexicon", "extract"]
