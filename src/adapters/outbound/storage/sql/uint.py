"""Exact unsigned 256-bit integers in SQL: NUMERIC(78, 0) on Postgres, digits on SQLite.

Ledger amounts reach 2**256 - 1 (78 digits), beyond any native integer column. Postgres
computes on NUMERIC exactly. SQLite has no such type (NUMERIC affinity would turn large
values into floats), so there a value is stored as its 78 decimal digits, zero-padded: equal
widths make text comparison numeric comparison (``available >= :needed`` works in SQL), and
additions run in ``rwa_uint_add(a, b)``, a deterministic SQL function registered on each
connection. The arithmetic thus stays inside the UPDATE statement: the database checks and
writes in one step, never Python reading and then writing.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from core.shared.money import MAX_UINT256

UINT_DIGITS = len(str(MAX_UINT256))  # 78
SQLITE_ADD = "rwa_uint_add"
_INSTALLED = "rwa_uint_functions"


def pad(value: int) -> str:
    return f"{value:0{UINT_DIGITS}d}"


class Uint256(sa.types.TypeDecorator[int]):
    """A non-negative ``int`` up to ``2**256 - 1``; floats, bools and negatives are refused."""

    impl = sa.String(UINT_DIGITS)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(sa.Numeric(UINT_DIGITS, 0))
        return dialect.type_descriptor(sa.String(UINT_DIGITS))

    def process_bind_param(self, value: int | None, dialect: Dialect) -> Decimal | str | None:
        if value is None:
            return None
        if type(value) is not int:
            raise TypeError(f"expected an int, got {type(value).__name__}")
        if not 0 <= value <= MAX_UINT256:
            raise ValueError("out of the range 0 .. 2**256 - 1")
        return Decimal(value) if dialect.name == "postgresql" else pad(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        return None if value is None else int(value)


def uint_checks(column: str) -> list[sa.CheckConstraint]:
    """``0 <= column <= 2**256 - 1`` as a CHECK constraint named ``<column>_range``:
    numeric on Postgres, on the digits on SQLite (exactly 78 of them, no sign)."""
    return [
        sa.CheckConstraint(postgres_range(column), name=f"{column}_range").ddl_if(
            dialect="postgresql"
        ),
        sa.CheckConstraint(sqlite_range(column), name=f"{column}_range").ddl_if(dialect="sqlite"),
    ]


def postgres_range(column: str) -> str:
    return f"{column} >= 0 AND {column} <= {MAX_UINT256}"


def sqlite_range(column: str) -> str:
    return (
        f"length({column}) = {UINT_DIGITS} AND {column} NOT GLOB '*[^0-9]*'"
        f" AND {column} <= '{pad(MAX_UINT256)}'"
    )


def _add(left: Any, right: Any) -> str:
    """``left + right`` of decimal texts; out of range it is left unpadded (CHECKs refuse it)."""
    total = int(left) + int(right)
    return pad(total) if 0 <= total <= MAX_UINT256 else str(total)


async def install_sqlite_functions(connection: AsyncConnection) -> None:
    """Register ``rwa_uint_add`` on this SQLite connection once (the pool keeps it)."""
    if connection.dialect.name != "sqlite" or connection.info.get(_INSTALLED):
        return

    def install(sync_connection: sa.Connection) -> None:
        dbapi = sync_connection.connection.dbapi_connection
        assert dbapi is not None
        dbapi.create_function(SQLITE_ADD, 2, _add, deterministic=True)

    await connection.run_sync(install)
    connection.info[_INSTALLED] = True


def add_columns(
    dialect: Dialect, column: sa.ColumnElement[Any], other: sa.ColumnElement[Any]
) -> sa.ColumnElement[Any]:
    """SQL for ``column + other`` of two stored values (an upsert's ``excluded`` row)."""
    return add_columns_in(dialect.name, column, other)


def add_columns_in(
    dialect: str, column: sa.ColumnElement[Any], other: sa.ColumnElement[Any]
) -> sa.ColumnElement[Any]:
    """``add_columns`` for the dialect named ``dialect``."""
    if dialect == "postgresql":
        return sa.type_coerce(column, sa.Numeric()) + sa.type_coerce(other, sa.Numeric())
    return sa.func.rwa_uint_add(column, other)
