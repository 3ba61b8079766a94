"""SQLite units of work on the event loop's own thread.

aiosqlite runs every call of a connection on a thread of its own and hands each result back
through the event loop: a primary-key read costs some eight thread hops (cursor, execute,
fetch, close, BEGIN, ROLLBACK), and a pair writer's batch of 30 orders some 60 to 80. Under
load each hop waits for the loop's current turn (parsing frames, relaying events), so a batch
spent most of its time waiting for the loop between statements that each take tens of
microseconds. Here units of work run on plain ``sqlite3`` connections on the loop's thread:
every statement completes at once, and a unit costs its statements' CPU time, nothing more.

- **Reads** (``loop_thread_reader``): ``query_only`` connections from a small pool,
  ``BEGIN DEFERRED``; in WAL they never wait for the writer. A short busy timeout
  (``READ_BUSY_MS``) covers the rare waits (a checkpoint truncating the WAL, recovery after a
  crash): the unit then fails with ``ServiceUnavailable`` rather than stall the loop.
- **Writes** (``loop_thread_writer``): ``BEGIN IMMEDIATE`` with a busy timeout of 0; the
  process's writers already queue in a ``WriteGate``, so the lock is only ever busy because of
  another process, and then ``begin_immediate`` retries with asynchronous sleeps (the loop
  keeps running) until ``SQLITE_BUSY_TIMEOUT_MS``. In WAL mode a transaction holding the write
  lock never waits again, and with ``synchronous=NORMAL`` a commit appends to the WAL without
  an fsync. The WAL's automatic checkpoint (which would fsync on the loop, inside a commit) is
  off on these connections: ``Checkpointer`` runs it on a thread of its own.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Generator
from types import TracebackType
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.engine.cursor import FullyBufferedCursorFetchStrategy
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

READ_BUSY_MS = 250
_BEGUN = "rwa_sqlite_begun"  # connection.info: BEGIN IMMEDIATE already sent
CHECKPOINT_EVERY_S = 0.25  # how often the checkpointer looks at the WAL
CHECKPOINT_BUSY_MS = 1_000

T = TypeVar("T")


def sqlite_file(engine: AsyncEngine) -> str | None:
    """The path of ``engine``'s SQLite file, or None when it is not SQLite on a file (an
    in-memory database is private to its connection)."""
    url = engine.url
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        return None
    return database


def _sync_engine(engine: AsyncEngine, pool_size: int, max_overflow: int) -> Engine:
    return sa.create_engine(
        engine.url.set(drivername="sqlite+pysqlite"),
        poolclass=QueuePool,
        pool_size=pool_size,
        max_overflow=max_overflow,
        connect_args={"check_same_thread": False},
    )


def loop_thread_reader(engine: AsyncEngine) -> Engine | None:
    """A synchronous engine of read-only connections to ``engine``'s SQLite file, or None."""
    if sqlite_file(engine) is None:
        return None
    reader = _sync_engine(engine, pool_size=4, max_overflow=12)

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
        _dbapi(connection).execute("BEGIN DEFERRED")  # exec_driver_sql costs ten times more

    return reader


def loop_thread_writer(engine: AsyncEngine) -> Engine | None:
    """A synchronous engine of read-write connections to ``engine``'s SQLite file, or None.
    Start their transactions with ``begin_immediate``."""
    if sqlite_file(engine) is None:
        return None
    writer = _sync_engine(engine, pool_size=2, max_overflow=8)

    @event.listens_for(writer, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # BEGIN IMMEDIATE is ours to send
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=0")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        finally:
            cursor.close()

    @event.listens_for(writer, "begin")
    def _on_begin(connection: Connection) -> None:
        if not connection.info.pop(_BEGUN, False):
            _dbapi(connection).execute("BEGIN IMMEDIATE")

    return writer


def translated(sql: str, params: Any, exc: sqlite3.Error) -> sa_exc.StatementError:
    """The SQLAlchemy error ``execute`` would raise for a driver error (``IntegrityError``
    for a constraint, ``OperationalError``...)."""
    return sa_exc.DBAPIError.instance(sql, params, exc, sqlite3.Error)


def _dbapi(connection: Connection) -> sqlite3.Connection:
    raw = connection.connection.dbapi_connection
    assert isinstance(raw, sqlite3.Connection)
    return raw


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    return exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


async def begin_immediate(connection: Connection, *, timeout_s: float) -> None:
    """``BEGIN IMMEDIATE`` without blocking the loop: while another process holds the write
    lock, retry after growing asynchronous sleeps (1 to 50 ms) for up to ``timeout_s``; then
    the ``OperationalError`` of a busy database. (A transaction begun again after a commit in
    the same unit, rarer, gets its ``BEGIN IMMEDIATE`` from the engine's ``begin`` event.)"""
    dbapi = _dbapi(connection)
    deadline = time.monotonic() + timeout_s
    delay = 0.001
    while True:
        try:
            dbapi.execute("BEGIN IMMEDIATE")
            break
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() + delay > deadline:
                raise sa_exc.OperationalError("BEGIN IMMEDIATE", None, exc) from exc
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)
    connection.info[_BEGUN] = True  # the ``begin`` event: SQLite's transaction is open
    try:
        connection.begin()
    finally:
        connection.info.pop(_BEGUN, None)  # the pool keeps ``info``: never for the next unit


class Checkpointer:
    """Copies the WAL back into the database file on a thread of its own (a PASSIVE
    checkpoint: it never waits for readers or the writer), so that commits on the loop's
    thread never pay a checkpoint's fsyncs. It stops with ``stop()`` or once its owner is
    garbage collected."""

    def __init__(self, path: str, owner: object) -> None:
        self._path = path
        self._owner = weakref.ref(owner)
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._thread is not None or self._stopped.is_set():
                return
            self._thread = threading.Thread(
                target=self._run, name="sqlite-checkpointer", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def checkpoint(self, connection: sqlite3.Connection) -> None:
        connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        try:
            while not self._stopped.wait(CHECKPOINT_EVERY_S) and self._owner() is not None:
                try:
                    if connection is None:
                        connection = sqlite3.connect(
                            self._path, isolation_level=None, check_same_thread=False
                        )
                        connection.execute(f"PRAGMA busy_timeout={CHECKPOINT_BUSY_MS}")
                    self.checkpoint(connection)
                except sqlite3.Error:
                    pass  # busy or gone (tests delete their files): try again next time
            if connection is not None and self._owner() is not None:
                self.checkpoint(connection)  # a clean stop leaves a short WAL
        except sqlite3.Error:
            pass
        finally:
            if connection is not None:
                connection.close()


class _Savepoint:
    """``AsyncConnection.begin_nested()``'s answer (awaited, or used as ``async with``): a
    savepoint sent straight to SQLite (SQLAlchemy's nested transaction cost ten times the
    statements; the root transaction stays SQLAlchemy's, and SQLite drops open savepoints
    with it)."""

    def __init__(self, raw: sqlite3.Connection, name: str) -> None:
        self._raw, self._name, self._active = raw, name, True
        self._send(f"SAVEPOINT {name}")

    def _send(self, sql: str) -> None:
        try:
            self._raw.execute(sql)
        except sqlite3.Error as exc:
            raise translated(sql, (), exc) from exc

    def __await__(self) -> Generator[Any, None, _Savepoint]:
        return self._itself().__await__()

    async def _itself(self) -> _Savepoint:
        return self

    async def __aenter__(self) -> _Savepoint:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._active:
            return
        if exc_type is None:
            await self.commit()
        else:
            await self.rollback()

    @property
    def is_active(self) -> bool:
        return self._active

    async def commit(self) -> None:
        self._active = False
        self._send(f"RELEASE SAVEPOINT {self._name}")

    async def rollback(self) -> None:
        self._active = False
        self._send(f"ROLLBACK TO SAVEPOINT {self._name}")
        self._send(f"RELEASE SAVEPOINT {self._name}")


class LoopThreadConnection:
    """What the repositories use of an ``AsyncConnection`` (``execute``, ``run_sync``,
    ``begin_nested``, ``dialect``, ``info``), over a synchronous connection: every call
    completes at once."""

    def __init__(self, connection: Connection) -> None:
        self.sync_connection = connection
        self._savepoints = 0  # numbers this connection's savepoint names

    @property
    def dialect(self) -> Dialect:
        return self.sync_connection.dialect

    @property
    def info(self) -> dict[Any, Any]:
        return self.sync_connection.info

    async def execute(self, statement: Any, parameters: Any = None, **kwargs: Any) -> Any:
        result = self.sync_connection.execute(statement, parameters, **kwargs)
        strategy = getattr(result, "cursor_strategy", None)
        if result.returns_rows and not isinstance(strategy, FullyBufferedCursorFetchStrategy):
            # fetched at once, as aiosqlite does: an open cursor would keep its statement in
            # progress, and SQLite then refuses to release a savepoint or to commit. (The
            # strategy SQLAlchemy itself uses for such results; ``Result.freeze`` would copy
            # every row twice.)
            result.cursor_strategy = FullyBufferedCursorFetchStrategy(
                result.cursor, strategy.alternate_cursor_description if strategy else None
            )
        return result

    async def run_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return fn(self.sync_connection, *args, **kwargs)

    def begin_nested(self) -> _Savepoint:
        if not self.sync_connection.in_transaction():
            self.sync_connection.begin()  # as SQLAlchemy's would: BEGIN first
        self._savepoints += 1
        return _Savepoint(_dbapi(self.sync_connection), f"rwa_sp_{self._savepoints}")
