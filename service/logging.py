"""Structured logs for `figwatch run`: JSON lines when stderr is not a terminal.

Every record becomes one JSON object with `ts`, `level`, `logger` and `msg`,
plus the fields a caller passed with `extra=` (`source`, `url`, `alert`,
`replica`, ...), so a log pipeline can filter one source's history without
parsing text.  On a terminal the same records are printed as readable lines
with the extra fields appended as `key=value`.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

__all__ = ["JsonFormatter", "TextFormatter", "configure_logging"]

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName"}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    """One JSON object per line; values that are not JSON types are written with str()."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(_extras(record))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`time level logger: message key=value ...` for people at a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = " ".join(f"{k}={v}" for k, v in _extras(record).items())
        return f"{line} {extra}" if extra else line


def configure_logging(level: str | int = "INFO", *, stream: TextIO | None = None,
                      json_lines: bool | None = None) -> None:
    """Send all logging to `stream` (stderr): JSON lines unless it is a terminal."""
    out = stream if stream is not None else sys.stderr
    if json_lines is None:
        json_lines = not (hasattr(out, "isatty") and out.isatty())
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    # Per-request lines from the HTTP stack would drown the service's own.
    for noisy in ("httpx", "httpcore", "uvicorn.access", "apscheduler", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
