"""The Figure model: one number the text states, with what it is about."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any, Literal

Qualifier = Literal["exact", "approx", "over", "under"]


@dataclass(frozen=True, slots=True)
class Conversion:
    """The same amount restated in another unit: "$2 billion (approximately 14.25 billion yuan)"."""

    value: Decimal
    unit: str
    qualifier: Qualifier = "exact"


@dataclass(frozen=True, slots=True)
class Figure:
    """A figure found in text.

    `value` is in base units (dollars, not billions; 38 for 38%).  For a range
    `low`/`high` are set and `value` is their midpoint.  `start`/`end` index
    the text given to `extract`; `sentence` is the sentence around it.
    """

    value: Decimal
    unit: str  # ISO 4217 code, "%", "count" or "x"
    start: int
    end: int
    surface: str
    sentence: str
    lang: str
    low: Decimal | None = None
    high: Decimal | None = None
    qualifier: Qualifier = "exact"
    entity: str | None = None
    metric: str | None = None
    period: str | None = None
    conversion: Conversion | None = None
    footnote: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; Decimals become strings so no precision is lost."""
        out = asdict(self)
        for key in ("value", "low", "high"):
            if out[key] is not None:
                out[key] = str(out[key])
        if self.conversion is not None:
            out["conversion"] = {
                "value": str(self.conversion.value),
                "unit": self.conversion.unit,
                "qualifier": self.conversion.qualifier,
            }
        return out


# A frozen dataclass's __init__ sets each field through object.__setattr__ (by
# name, 15 times); `extract` builds one Figure per figure found, so it sets the
# slots directly instead (same object: Figure has no __post_init__ or validation).
# ~3x faster to build.  Arguments in field order, all positional.
(_s_value, _s_unit, _s_start, _s_end, _s_surface, _s_sentence, _s_lang, _s_low, _s_high,
 _s_qualifier, _s_entity, _s_metric, _s_period, _s_conversion, _s_footnote) = (
    getattr(Figure, name).__set__
    for name in ("value", "unit", "start", "end", "surface", "sentence", "lang", "low", "high",
                 "qualifier", "entity", "metric", "period", "conversion", "footnote")
)
_new = object.__new__


def make_figure(
    value: Decimal, unit: str, start: int, end: int, surface: str, sentence: str, lang: str,
    low: Decimal | None, high: Decimal | None, qualifier: Qualifier, entity: str | None,
    metric: str | None, period: str | None, conversion: Conversion | None,
    footnote: str | None,
) -> Figure:
    """`Figure(...)` with every field given, in field order, built without __init__."""
    f = _new(Figure)
    _s_value(f, value)
    _s_unit(f, unit)
    _s_start(f, start)
    _s_end(f, end)
    _s_surface(f, surface)
    _s_sentence(f, sentence)
    _s_lang(f, lang)
    _s_low(f, low)
    _s_high(f, high)
    _s_qualifier(f, qualifier)
    _s_entity(f, entity)
    _s_metric(f, metric)
    _s_period(f, period)
    _s_conversion(f, conversion)
    _s_footnote(f, footnote)
    return f
