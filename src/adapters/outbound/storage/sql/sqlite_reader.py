"""SQLite reads on the event loop's own thread.

aiosqlite runs every call of a connection on a thread of its own and hands each result back
through the event loop: a primary-key read costs some eight thread hops (cursor, execute,
fetch, close, BEGIN, ROLLBACK), and with 32 clients the handoffs of the GIL between those
threads cost more than the reads themselves. A read of a few rows from a WAL database takes
tens of microseconds and never waits for the writer, so read-only units of work run on a
plain ``sqlite3`` connection on the loop's thread instead, from a small pool of their own.
The connections are ``query_only``: a read-only unit cannot write by mistake. Writes keep
their aiosqlite connections and ``BEGIN IMMEDIATE``.

A reader could still wait on SQLite's busy handler in rare cases (a checkpoint that
truncates the WAL, recovery after a crash): its busy timeout is short (``READ_BUSY_MS``)
and the unit of work then fails with ``ServiceUnavailable`` rather than stall the loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

READ_BUSY_MS = 250

T = TypeVar("T")


def loop_thread_reader(engine: AsyncEngine) -> Engine | None:
    """A synchronous engine of read-only connections to ``engine``'s SQLite file, or None
    when ``engine`` is not SQLite on a file (an in-memory database is private to its
    connection)."""
    url = engine.url
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        return None
    reader = sa.create_engine(
        url.set(drivername="sqlite+pysqlite"),
        poolclass=QueuePool,
        pool_size=4,
        max_overflow=12,
        connect_args={"check_same_thread": False},
    )

    @event.listens_for(reader, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # the driver no longer emits BEGIN itself
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={READ_BUSY_MS}")
            cursor.execute("PRAGMA query_only=ON")
        finally:
            cursor.close()

    @event.listens_for(reader, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN DEFERRED")

    return reader


class LoopThreadConnection:
    """What the repositories use of an ``AsyncConnection`` (``execute``, ``run_sync``,
    ``dialect``, ``info``), over a synchronous connection: every call completes at once."""

    def __init__(self, connection: Connection) -> None:
        self.sync_connection = connection

    @property
    def dialect(self) -> Dialect:
        return self.sync_connection.dialect

    @property
    def info(self) -> dict[Any, Any]:
        return self.sync_connection.info

    async def execute(self, statement: Any, parameters: Any = None, **kwargs: Any) -> Any:
        return self.sync_connection.execute(statement, parameters, **kwargs)

    async def run_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return fn(self.sync_connection, *args, **kwargs)
