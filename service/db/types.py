"""Column types that behave the same on SQLite and PostgreSQL.

- `UTCDateTime`: timezone-aware UTC datetimes in, timezone-aware UTC datetimes
  out.  SQLite has no time zones, so values are stored as naive UTC text there
  (in one format, so text comparison is time comparison).
- `ExactDecimal`: `NUMERIC` on PostgreSQL; canonical decimal text on SQLite,
  whose NUMERIC affinity would round through a float.  No precision is lost
  on either backend.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine


class UTCDateTime(TypeDecorator[datetime]):
    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass timezone-aware UTC times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """`process_bind_param` and the dialect's own processing, remembering the last value.

        A write path binds one `at` to every row of an executemany (first and last seen
        times): the same object is converted once, not once per row.  (One processor
        serves every column of this type: `at` recurs across them too.)  The memo is one
        (value, result) tuple, replaced whole, so threads sharing it stay consistent.
        """
        convert = super().bind_processor(dialect)
        if convert is None:  # pragma: no cover - process_bind_param is defined
            return None
        memo: tuple[Any, Any] = (object(), None)

        def process(value: Any) -> Any:
            nonlocal memo
            if value is None:  # NULLs interleave with the times of a row: not remembered
                return None
            last = memo
            if value is last[0]:
                return last[1]
            out = convert(value)
            memo = (value, out)
            return out

        return process



class ExactDecimal(TypeDecorator[Decimal]):
    impl = sa.Numeric
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String(96))
        return dialect.type_descriptor(sa.Numeric(asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError(f"expected Decimal, got {type(value).__name__}: {value!r}")
        if not value.is_finite():
            raise ValueError(f"cannot store non-finite decimal {value}")
        return format(value, "f") if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(str(value))
