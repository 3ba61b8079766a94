"""Hot statements compiled once and run straight on SQLite's own cursor.

On the loop-thread SQLite connections (``loop_thread.py``) a pair writer's batch runs some
twenty short statements, and SQLAlchemy's per-execution path (an execution context, the
statement's cache key and compiled-cache lookup, parameter processing, a result object, the
events) costs more than SQLite's work on most of them. A ``Prepared`` statement is compiled
once per dialect; on a loop-thread connection it runs on the ``sqlite3`` connection with the
column types' own bind and result processors and nothing else, in the unit of work's
transaction like any statement. Anywhere else (aiosqlite, asyncpg) it is an ordinary
``execute`` of the same statement. Driver errors come back as SQLAlchemy's (``IntegrityError``
...), so callers handle both paths alike.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.compiler import SQLCompiler

from adapters.outbound.storage.sql.loop_thread import LoopThreadConnection, translated
from adapters.outbound.storage.sql.types import UtcDateTime

Processor = Callable[[Any], Any] | None
Params = Mapping[str, Any]


@attrs.frozen
class _Compiled:
    sql: str
    binds: tuple[tuple[str, Processor], ...]  # the parameters in positional order
    fixed: dict[str, Any]  # parameters the statement holds a value for (``version + 1``)
    required: int  # how many a parameter set gives
    columns: tuple[str, ...]  # a SELECT's result keys
    results: tuple[Processor, ...]


class Prepared:
    """One Core statement (UPDATE or SELECT with named bind parameters, or an INSERT of the
    columns its first parameter set names). On the driver path every parameter set must give
    exactly the statement's parameters: one more or one less is an error, never a column
    silently left out (the contract suites run every caller on that path)."""

    def __init__(self, statement: Any) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    @classmethod
    def insert(cls, table: sa.Table) -> Prepared:
        """An INSERT into ``table`` of the columns the first parameter set names."""
        return cls(sa.insert(table))

    @classmethod
    def replace(cls, table: sa.Table) -> Prepared:
        """``UPDATE table SET <every column but the key> WHERE id = :k_id AND version =
        :k_version``: a versioned row replaced (its parameters: the columns, ``k_id``,
        ``k_version``)."""
        return cls(
            sa.update(table)
            .where(table.c.id == sa.bindparam("k_id"), table.c.version == sa.bindparam("k_version"))
            .values(settable(table))
        )

    def _compile(self, dialect: Dialect, sample: Params) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is not None:
            return found
        keys = list(sample) if isinstance(self.statement, sa.Insert) else None
        compiled = cast(SQLCompiler, self.statement.compile(dialect=dialect, column_keys=keys))
        if compiled.positiontup is None:
            raise TypeError(f"{dialect.name} is not a positional dialect")
        if any(bind.expanding for bind in compiled.binds.values()):
            raise TypeError("an IN list is expanded per execution: it cannot be prepared")
        names = tuple(compiled.positiontup)
        if len(set(names)) != len(names):
            raise TypeError("a parameter used twice in one statement")
        binds = tuple((name, _processor(compiled.binds[name].type, dialect)) for name in names)
        fixed = {
            name: compiled.binds[name].effective_value
            for name in names
            if not compiled.binds[name].required
        }
        selected = getattr(self.statement, "selected_columns", None)
        columns: tuple[str, ...] = ()
        results: tuple[Processor, ...] = ()
        if selected is not None and not isinstance(self.statement, sa.Insert | sa.Update):
            columns = tuple(column.key for column in selected)
            results = tuple(
                column.type.dialect_impl(dialect).result_processor(dialect, None)
                for column in selected
            )
        found = self._compiled[dialect.name] = _Compiled(
            compiled.string, binds, fixed, len(names) - len(fixed), columns, results
        )
        return found

    @staticmethod
    def _bind(compiled: _Compiled, params: Params) -> tuple[Any, ...]:
        if len(params) != compiled.required:
            raise TypeError(f"parameters {sorted(params)} for {compiled.sql!r}")
        if compiled.fixed:
            params = {**compiled.fixed, **params}
        return tuple(
            [
                params[name] if process is None else process(params[name])
                for name, process in compiled.binds
            ]
        )

    async def run(
        self, conn: AsyncConnection, params: Params | Sequence[Params], *, counted: bool = True
    ) -> int:
        """Execute (one parameter set, or many: executemany); the rows it changed. With
        ``counted=False`` the caller does not need the count, and a driver that cannot count
        an executemany's rows (asyncpg) still runs it as one (the answer is then -1)."""
        if not params:
            return 0
        if not isinstance(conn, LoopThreadConnection):
            if not counted and not isinstance(params, Mapping):
                await conn.execute(self.statement, params)
                return -1
            if isinstance(params, Mapping) or conn.dialect.supports_sane_multi_rowcount:
                return int((await conn.execute(self.statement, params)).rowcount)
            if isinstance(self.statement, sa.Insert):  # all of them, or an error
                await conn.execute(self.statement, params)
                return len(params)
            changed = 0  # asyncpg's executemany does not count the rows it changed
            for one in params:
                changed += int((await conn.execute(self.statement, one)).rowcount)
            return changed
        raw = conn.sync_connection.connection.dbapi_connection
        assert isinstance(raw, sqlite3.Connection)
        if isinstance(params, Mapping):
            compiled = self._compile(conn.dialect, params)
            bound: Any = self._bind(compiled, params)
            call = raw.execute
        else:
            compiled = self._compile(conn.dialect, params[0])
            bound = [self._bind(compiled, one) for one in params]
            call = raw.executemany
        try:
            return int(call(compiled.sql, bound).rowcount)
        except sqlite3.Error as exc:
            raise translated(compiled.sql, bound, exc) from exc

    async def insert_id(self, conn: AsyncConnection, params: Params) -> int:
        """An INSERT of one row; the integer primary key it was given."""
        if not isinstance(conn, LoopThreadConnection):
            key = (await conn.execute(self.statement, params)).inserted_primary_key
            assert key is not None
            return int(key[0])
        raw = conn.sync_connection.connection.dbapi_connection
        assert isinstance(raw, sqlite3.Connection)
        compiled = self._compile(conn.dialect, params)
        bound = self._bind(compiled, params)
        try:
            row_id = raw.execute(compiled.sql, bound).lastrowid
        except sqlite3.Error as exc:
            raise translated(compiled.sql, bound, exc) from exc
        assert row_id is not None
        return int(row_id)

    async def rows(self, conn: AsyncConnection, params: Params) -> list[dict[str, Any]]:
        """A SELECT's rows, each a dict keyed by column."""
        if not isinstance(conn, LoopThreadConnection):
            result = await conn.execute(self.statement, params)
            return [dict(row) for row in result.mappings().all()]
        raw = conn.sync_connection.connection.dbapi_connection
        assert isinstance(raw, sqlite3.Connection)
        compiled = self._compile(conn.dialect, params)
        bound = self._bind(compiled, params)
        try:
            fetched = raw.execute(compiled.sql, bound).fetchall()
        except sqlite3.Error as exc:
            raise translated(compiled.sql, bound, exc) from exc
        columns, results = compiled.columns, compiled.results
        return [
            {
                key: value if process is None else process(value)
                for key, value, process in zip(columns, row, results, strict=True)
            }
            for row in fetched
        ]


def _processor(type_: sa.types.TypeEngine[Any], dialect: Dialect) -> Processor:
    """The type's bind processor; for a timestamp, one that remembers its last answer (a
    batch writes the same ``now`` in most of its rows, and the same object)."""
    process = type_.dialect_impl(dialect).bind_processor(dialect)
    if process is None or not isinstance(type_, sa.DateTime | UtcDateTime):
        return process
    last: tuple[Any, Any] = (None, None)

    def remembered(value: Any) -> Any:
        nonlocal last
        seen, answer = last
        if value is seen and value is not None:
            return answer
        answer = process(value)
        last = (value, answer)
        return answer

    return remembered


def settable(table: sa.Table) -> dict[str, Any]:
    """An UPDATE's SET of every column but the primary key, each a parameter of its name.
    Never the key: SQLite checks every row that references a key it sees SET (a pair's every
    order and trade, milliseconds per 100,000 rows), and rewrites the key's index, even when
    the value is the same."""
    return {
        column.name: sa.bindparam(column.name, type_=column.type)
        for column in table.c
        if not column.primary_key
    }
