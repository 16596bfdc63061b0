"""Human-readable renderings of figures and changes for the terminal."""

from __future__ import annotations

from decimal import Decimal

from parsers.figures import Figure

from .alerts import Change

_SCALES = ((Decimal(10) ** 12, "T"), (Decimal(10) ** 9, "B"), (Decimal(10) ** 6, "M"),
           (Decimal(10) ** 3, "K"))


def human_amount(value: Decimal | None, unit: str) -> str:
    """1790000000000 USD → "1.79T USD"; 38 % → "38%"."""
    if value is None:
        return "-"
    if unit == "%":
        return f"{value.normalize():f}%"
    if unit == "x":
        return f"{value.normalize():f}x"
    for scale, suffix in _SCALES:
        if abs(value) >= scale and unit != "count":
            return f"{(value / scale).normalize():f}{suffix} {unit}"
    text = f"{value.normalize():f}"
    return text if unit == "count" else f"{text} {unit}"


def format_figure(fig: Figure) -> str:
    amount = human_amount(fig.value, fig.unit)
    if fig.low is not None and fig.high is not None:
        amount = f"{human_amount(fig.low, fig.unit)} to {human_amount(fig.high, fig.unit)}"
    if fig.conversion is not None:
        amount += f" (≈ {human_amount(fig.conversion.value, fig.conversion.unit)})"
    qual = "" if fig.qualifier == "exact" else f" [{fig.qualifier}]"
    about = " ".join(x for x in (fig.entity, fig.metric, fig.period) if x)
    return f"  {fig.surface!r:32} {amount}{qual}  {about}"


def format_change(change: Change) -> str:
    about = " ".join(x for x in (change.entity, change.metric, change.period) if x) or "figure"
    old = human_amount(change.old_value, change.unit)
    new = human_amount(change.new_value, change.unit)
    other = f" (vs {change.other_source})" if change.other_source else ""
    return f"{change.kind:13} {change.source}: {about}: {old} → {new}{other}"
