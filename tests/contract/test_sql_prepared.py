"""``Prepared`` statements (``sql/prepared.py``): on a loop-thread SQLite connection they run
on the ``sqlite3`` cursor with the column types' own processors, and must store and read
exactly what SQLAlchemy's ``execute`` stores and reads, for every column type the schema
uses; refuse what it refuses, with the same errors; and never drop a parameter."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from adapters.outbound.storage.sql.loop_thread import LoopThreadConnection, loop_thread_writer
from adapters.outbound.storage.sql.prepared import Prepared
from adapters.outbound.storage.sql.types import DecimalText, ExactJson, IntegerText, UtcDateTime
from adapters.outbound.storage.sql.uint import Uint256

metadata = sa.MetaData()


def _columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("at", UtcDateTime, nullable=True),
        sa.Column("amount", IntegerText, nullable=True),
        sa.Column("price", DecimalText, nullable=True),
        sa.Column("doc", ExactJson, nullable=True),
        sa.Column("big", Uint256, nullable=True),
        sa.Column("flag", sa.Boolean, nullable=True),
        sa.Column("n", sa.Integer, nullable=True),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    ]


fast = sa.Table("fast", metadata, *_columns())
slow = sa.Table("slow", metadata, *_columns())

ROWS: list[dict[str, Any]] = [
    {
        "id": "a",
        "at": datetime(2026, 11, 23, 22, 30, 1, 123456, tzinfo=UTC),
        "amount": 10**40 + 7,
        "price": Decimal("123.4500"),
        "doc": {"x": [1, "é", None, {"y": "z"}], "n": 10**30},
        "big": 2**256 - 1,
        "flag": True,
        "n": -5,
    },
    {
        "id": "b",
        "at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=5))),
        "amount": 0,
        "price": Decimal("0"),
        "doc": [],
        "big": 0,
        "flag": False,
        "n": 0,
    },
    {
        "id": "c",
        "at": None,
        "amount": None,
        "price": None,
        "doc": None,
        "big": None,
        "flag": None,
        "n": None,
    },
]


@pytest.fixture
async def conns(tmp_path: Path) -> AsyncIterator[tuple[AsyncConnection, AsyncConnection, Path]]:
    path = tmp_path / "p.db"
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as setup:
        await setup.run_sync(metadata.create_all)
    writer = loop_thread_writer(engine)
    assert writer is not None
    sync = writer.connect()
    sync.begin()
    loop_conn = cast(AsyncConnection, LoopThreadConnection(sync))
    async with engine.connect() as async_conn:
        yield loop_conn, async_conn, path
    sync.rollback()
    sync.close()
    writer.dispose()
    await engine.dispose()


def _stored(path: Path, table: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as raw:
        return raw.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()


async def test_stores_and_reads_exactly_what_sqlalchemy_does(
    conns: tuple[AsyncConnection, AsyncConnection, Path],
) -> None:
    loop_conn, _, path = conns
    assert await Prepared.insert(fast).run(loop_conn, ROWS) == len(ROWS)
    assert await Prepared.insert(fast).run(loop_conn, []) == 0
    await loop_conn.execute(sa.insert(slow), ROWS)
    loop_conn.sync_connection.commit()
    assert _stored(path, "fast") == _stored(path, "slow")

    by_id = Prepared(sa.select(fast).where(fast.c.id == sa.bindparam("key")))
    for row in ROWS:
        expected = (
            (await loop_conn.execute(sa.select(slow).where(slow.c.id == row["id"])))
            .mappings()
            .one()
        )
        got = await by_id.rows(loop_conn, {"key": row["id"]})
        assert got == [dict(expected)]
    assert await by_id.rows(loop_conn, {"key": "missing"}) == []


async def test_an_update_counts_its_rows_on_both_paths(
    conns: tuple[AsyncConnection, AsyncConnection, Path],
) -> None:
    loop_conn, async_conn, path = conns
    update = Prepared(
        sa.update(fast)
        .where(fast.c.id == sa.bindparam("k_id"), fast.c.version == sa.bindparam("k_version"))
        .values(amount=sa.bindparam("amount", type_=IntegerText), version=fast.c.version + 1)
    )
    await Prepared.insert(fast).run(loop_conn, ROWS)
    changes = [
        {"k_id": "a", "k_version": 1, "amount": 5},
        {"k_id": "b", "k_version": 9, "amount": 6},
    ]
    assert await update.run(loop_conn, changes) == 1  # b's version does not match
    assert await update.run(loop_conn, {"k_id": "a", "k_version": 2, "amount": 2**70}) == 1
    loop_conn.sync_connection.commit()
    assert _stored(path, "fast")[0][2] == str(2**70)

    async with async_conn.begin():  # the ordinary path: the same statement through execute
        assert await update.run(async_conn, {"k_id": "a", "k_version": 3, "amount": 1}) == 1
        assert await update.run(async_conn, {"k_id": "a", "k_version": 3, "amount": 1}) == 0
        assert await Prepared.insert(slow).run(async_conn, ROWS[:1]) == 1
        rows = await Prepared(sa.select(slow.c.id, slow.c.amount)).rows(async_conn, {})
        assert rows == [{"id": "a", "amount": 10**40 + 7}]


async def test_a_constraint_is_refused_with_sqlalchemys_error(
    conns: tuple[AsyncConnection, AsyncConnection, Path],
) -> None:
    loop_conn, _, _ = conns
    insert = Prepared.insert(fast)
    await insert.run(loop_conn, ROWS[:1])
    with pytest.raises(IntegrityError, match="UNIQUE"):
        await insert.run(loop_conn, ROWS[:1])
    with pytest.raises(IntegrityError):
        await insert.run(loop_conn, ROWS[1])  # one set, not many
        await insert.run(loop_conn, ROWS[1])


async def test_a_parameter_set_must_name_exactly_the_statements_parameters(
    conns: tuple[AsyncConnection, AsyncConnection, Path],
) -> None:
    loop_conn, _, _ = conns
    insert = Prepared.insert(fast)
    await insert.run(loop_conn, [{"id": "x", "n": 1}])  # compiled for (id, n)
    with pytest.raises(TypeError):
        await insert.run(loop_conn, [{"id": "y", "n": 1, "amount": 3}])  # amount never dropped
    with pytest.raises(KeyError):
        await insert.run(loop_conn, [{"id": "y", "amount": 3}])
    select = Prepared(sa.select(fast.c.id).where(fast.c.n == sa.bindparam("n")))
    with pytest.raises(TypeError):
        await select.rows(loop_conn, {"n": 1, "extra": 2})


async def test_savepoints_on_a_loop_thread_connection_nest_and_undo_only_their_own(
    conns: tuple[AsyncConnection, AsyncConnection, Path],
) -> None:
    """``begin_nested`` there is a savepoint sent straight to SQLite: released, rolled back
    (after a refused statement, too), nested, and dropped with the root transaction."""
    loop_conn, _, path = conns
    insert = Prepared.insert(fast)
    await insert.run(loop_conn, {"id": "root", "n": 0})
    async with loop_conn.begin_nested():
        await insert.run(loop_conn, {"id": "kept", "n": 1})
        with pytest.raises(IntegrityError):
            async with loop_conn.begin_nested():
                await insert.run(loop_conn, {"id": "undone", "n": 2})
                await insert.run(loop_conn, {"id": "kept", "n": 3})  # refused: all of it undone
        inner = await loop_conn.begin_nested()
        await insert.run(loop_conn, {"id": "inner", "n": 4})
        assert inner.is_active
        await inner.commit()
        assert not inner.is_active
    explicit = await loop_conn.begin_nested()
    await insert.run(loop_conn, {"id": "rolled", "n": 5})
    await explicit.rollback()
    loop_conn.sync_connection.commit()
    assert [row[0] for row in _stored(path, "fast")] == ["inner", "kept", "root"]
    dropped = await loop_conn.begin_nested()  # a new root transaction, begun first
    await insert.run(loop_conn, {"id": "never", "n": 6})
    assert dropped.is_active
    loop_conn.sync_connection.rollback()  # the root's rollback takes the savepoint with it
    assert [row[0] for row in _stored(path, "fast")] == ["inner", "kept", "root"]


async def test_an_in_list_cannot_be_prepared(
    conns: tuple[AsyncConnection, AsyncConnection, Path],
) -> None:
    loop_conn, _, _ = conns
    with pytest.raises(TypeError, match="IN list"):
        await Prepared(sa.select(fast.c.id).where(fast.c.n.in_([1, 2]))).rows(loop_conn, {})


@pytest.mark.parametrize(
    "statement",
    [
        "adapters.outbound.storage.sql.trading:_SAVE_PAIR",
        "adapters.outbound.storage.sql.trading:_SAVE_ORDER",
        "adapters.outbound.storage.sql.marketdata:_UPDATE_CANDLE",
    ],
)
def test_the_hot_updates_never_set_a_primary_key(statement: str) -> None:
    """SQLite checks every row referencing a key an UPDATE sets (a pair's every order and
    trade), even to the same value: saving a pair cost milliseconds per 100,000 orders."""
    import importlib

    module, name = statement.split(":")
    prepared: Prepared = getattr(importlib.import_module(module), name)
    update = prepared.statement
    table = update.table
    assert isinstance(update, sa.Update)
    set_columns = set(update._values)  # the statement's SET clause
    keys = {column.name for column in table.primary_key.columns}
    assert keys and not keys & {getattr(column, "name", column) for column in set_columns}
    assert {c.name for c in table.c} - keys <= {getattr(c, "name", c) for c in set_columns}


def test_saving_a_pair_does_not_grow_with_its_orders(tmp_path: Path) -> None:
    """The same as the above, counted in SQLite's virtual machine steps (not timed): the
    pair's UPDATE with 20,000 orders referencing it costs what it costs with none."""
    from adapters.outbound.storage.sql.trading import _SAVE_PAIR

    table = _SAVE_PAIR.statement.table
    compiled = _SAVE_PAIR.statement.compile(dialect=sa.dialects.sqlite.dialect())
    names = list(compiled.positiontup or ())
    params = [{"k_id": "p", "k_version": 1, "version": 1}.get(name) for name in names]
    raw = sqlite3.connect(tmp_path / "pairs.db", isolation_level=None)
    raw.execute("PRAGMA foreign_keys=ON")
    columns = ", ".join(f"{c.name} {'PRIMARY KEY' if c.primary_key else ''}" for c in table.c)
    raw.execute(f"CREATE TABLE trading_pairs ({columns})")
    raw.execute(
        "CREATE TABLE orders (id TEXT PRIMARY KEY,"
        " pair_id TEXT NOT NULL REFERENCES trading_pairs(id), seq INTEGER)"
    )
    raw.execute("CREATE UNIQUE INDEX uq_orders_pair_seq ON orders (pair_id, seq)")
    raw.execute("INSERT INTO trading_pairs (id, version) VALUES ('p', 1)")

    def steps() -> int:
        counted = 0

        def count() -> int:
            nonlocal counted
            counted += 1
            return 0

        raw.set_progress_handler(count, 100)
        assert raw.execute(compiled.string, params).rowcount == 1
        raw.set_progress_handler(None, 100)
        return counted

    alone = steps()
    raw.execute("BEGIN")
    raw.executemany("INSERT INTO orders VALUES (?, 'p', ?)", [(str(i), i) for i in range(20_000)])
    raw.execute("COMMIT")
    assert steps() <= alone + 2
    raw.close()


async def test_a_timestamp_repeated_across_rows_is_stored_exactly_each_time(
    conns: tuple[AsyncConnection, AsyncConnection, Path],
) -> None:
    """The timestamp processor remembers its last answer: the same object again, another
    equal one, another instant and None are each stored as SQLAlchemy stores them."""
    loop_conn, _, path = conns
    now = datetime(2026, 11, 23, 23, 40, 0, 1, tzinfo=UTC)
    other = datetime(2026, 11, 23, 18, 40, 0, 1, tzinfo=timezone(timedelta(hours=-5)))
    stamps = [now, now, other, None, now, datetime(2000, 1, 1, tzinfo=UTC), now]
    rows = [{"id": f"r{i}", "at": at} for i, at in enumerate(stamps)]
    await Prepared.insert(fast).run(loop_conn, rows)
    await loop_conn.execute(sa.insert(slow), rows)
    loop_conn.sync_connection.commit()
    assert _stored(path, "fast") == _stored(path, "slow")


async def test_a_savepoint_sqlite_already_dropped_fails_with_sqlalchemys_error(
    conns: tuple[AsyncConnection, AsyncConnection, Path],
) -> None:
    """(SQLite ends the whole transaction on some errors, a full disk among them.)"""
    from sqlalchemy.exc import OperationalError

    loop_conn, _, _ = conns
    savepoint = await loop_conn.begin_nested()
    raw = loop_conn.sync_connection.connection.dbapi_connection
    assert raw is not None
    raw.execute("ROLLBACK")  # what SQLite does by itself after such an error
    with pytest.raises(OperationalError, match="no such savepoint"):
        await savepoint.rollback()
    assert not savepoint.is_active
    raw.execute("BEGIN")  # for the fixture's own rollback
