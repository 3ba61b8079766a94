"""Column types that keep money exact and time zone-aware on every dialect."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from core.shared import exact_json


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """Stores UTC; returns timezone-aware UTC datetimes on SQLite and Postgres alike.

    Naive datetimes are refused: a time without a zone is a bug, not a value.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime: store timezone-aware values only")
        utc = value.astimezone(UTC)
        # SQLite has no zone storage: keep the UTC wall time and restore the zone on read.
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class DecimalText(sa.types.TypeDecorator[Decimal]):
    """An exact ``Decimal`` stored as its text. Floats are refused."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Decimal | int | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, Decimal | int):
            raise TypeError(f"expected a Decimal, got {type(value).__name__}")
        return str(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


class IntegerText(sa.types.TypeDecorator[int]):
    """An integer of any size (token supplies exceed int64) stored as decimal digits."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: int | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected an int, got {type(value).__name__}")
        return str(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> int | None:
        return None if value is None else int(value)


class ExactJson(sa.types.TypeDecorator[Any]):
    """Free-form JSON stored as its text, numbers exactly as given (``Decimal`` stays
    ``Decimal``: ``0.95`` is written ``0.95`` and read back as ``Decimal("0.95")``).

    A driver's JSON column would go through ``float`` on the way back (asyncpg decodes JSONB
    with the engine's deserializer). Floats and other non-JSON values are refused on write,
    as the memory adapter refuses them.
    """

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        exact_json.check(value)
        return exact_json.dumps(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else exact_json.loads(value)
