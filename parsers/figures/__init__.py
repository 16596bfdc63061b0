"""Figure extraction: text in, figures (value, unit, entity, metric, period) out."""

from __future__ import annotations

from .model import Conversion, Figure

__all__ = ["Conversion", "Figure", "extract"]


def extract(text: str, lang: str | None = None, reference_date: object = None) -> list[Figure]:
    """Placeholder until the extractor lands (issue 4)."""
    return []
