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
