"""Short human wordings of alerts, shared by the mail subject, mail body and stdout.

Alerts arrive as the webhook contract's `data` (values as strings), so these
functions work on plain dicts and never fail on a missing or odd field: a
summary that raises would turn a cosmetic problem into an undelivered alert.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from ..alerts import PendingAlert

_SCALES = ((Decimal(10) ** 12, "T"), (Decimal(10) ** 9, "B"), (Decimal(10) ** 6, "M"))
_THOUSANDTH = Decimal("0.001")
_VERBS = {
    "changed": "changed",
    "series_update": "updated",
    "reverted": "reverted",
    "new": "new",
    "removed": "removed",
    "conflict": "sources disagree",
}


def number(value: Any, unit: str | None) -> str:
    """"1790000000000" → "1.79T"; "38.5" with unit "%" → "38.5%"; None → "-"."""
    if value is None or value == "":
        return "-"
    try:
        dec = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    suffix = {"%": "%", "x": "x"}.get(unit or "", "")
    if unit not in ("%", "x", "count"):
        for scale, letter in _SCALES:
            if abs(dec) >= scale:  # three decimals at most: 1.785T, not 1.7850000000001T
                return _plain((dec / scale).quantize(_THOUSANDTH)) + letter
    return _plain(dec) + suffix


def _plain(dec: Decimal) -> str:
    text = f"{dec:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _unit_tail(unit: str | None) -> str:
    return f" {unit}" if unit and unit not in ("%", "x", "count") else ""


def subject_of(data: dict[str, Any]) -> str:
    """What changed, e.g. "NVIDIA market_cap (2024)"; falls back to the source name."""
    what = [data.get("entity") or data.get("source") or "figure", data.get("metric") or "figure"]
    if data.get("period"):
        what.append(f"({data['period']})")
    return " ".join(str(w) for w in what)


def change_line(data: dict[str, Any]) -> str:
    """One change's data → "NVIDIA market_cap changed: 1.79T → 1.85T USD"."""
    kind = str(data.get("kind") or "changed")
    unit = data.get("unit")
    old, new = number(data.get("old_value"), unit), number(data.get("new_value"), unit)
    if old == new and data.get("old_value") != data.get("new_value"):
        old, new = str(data.get("old_value")), str(data.get("new_value"))  # rounding hid the move
    tail = _unit_tail(unit)
    verb = _VERBS.get(kind, kind)
    if kind == "new":
        return f"{subject_of(data)} new: {new}{tail}"
    if kind == "removed":
        return f"{subject_of(data)} removed: {old}{tail}"
    if kind == "conflict":
        return (f"{subject_of(data)} {verb}: {old}{tail} ({data.get('other_source') or '?'}) "
                f"vs {new}{tail} ({data.get('source') or '?'})")
    return f"{subject_of(data)} {verb}: {old} → {new}{tail}"


def ops_line(alert_type: str, data: dict[str, Any]) -> str:
    """An operations alert → "source tmtpost: source_error: timeout"."""
    what = alert_type.removeprefix("ops.")
    detail = data.get("error") or data.get("reason") or data.get("url") or ""
    line = f"source {data.get('source') or '?'}: {what}"
    return f"{line}: {detail}" if detail else line


def changes_of(alert: PendingAlert) -> list[dict[str, Any]]:
    """The change data an alert carries: one for a single change, all for a digest."""
    if alert.type == "figure.digest":
        return [c for c in alert.data.get("changes", []) if isinstance(c, dict)]
    if alert.type.startswith("figure."):
        return [alert.data]
    return []


def headline(alert: PendingAlert) -> str:
    """One line for any alert; a digest reads "3 changes"."""
    if alert.type == "figure.digest":
        n = len(changes_of(alert))
        return f"{n} change" if n == 1 else f"{n} changes"
    if alert.type.startswith("ops."):
        return ops_line(alert.type, alert.data)
    if alert.type.startswith("figure."):
        return change_line(alert.data)
    return alert.type
