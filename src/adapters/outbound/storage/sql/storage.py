"""``SqlStorage``: units of work over an async SQLAlchemy engine (SQLite or Postgres)."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from datetime import UTC, datetime
from typing import cast

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.outbound.storage.sql.audit import SqlAuditLog
from adapters.outbound.storage.sql.deployments import SqlDeploymentRepository
from adapters.outbound.storage.sql.engine import (
    SQLITE_BEGIN_OPTION,
    SQLITE_BUSY_TIMEOUT_MS,
    create_engine,
)
from adapters.outbound.storage.sql.ledger import SqlLedgerRepository
from adapters.outbound.storage.sql.loop_thread import (
    Checkpointer,
    LoopThreadConnection,
    begin_immediate,
    loop_thread_reader,
    loop_thread_writer,
    sqlite_file,
)
from adapters.outbound.storage.sql.marketdata import (
    SqlMarketDataRepository,
    SqlReferencePriceRepository,
    SqlValuationRepository,
)
from adapters.outbound.storage.sql.operations import (
    SqlDepositRepository,
    SqlMintRepository,
    SqlTransferRepository,
    SqlWithdrawalRepository,
)
from adapters.outbound.storage.sql.repositories import (
    SqlCursorRepository,
    SqlEventLog,
    SqlLeaseRepository,
    SqlMarketRepository,
    SqlOutbox,
    SqlProcessedEventRepository,
)
from adapters.outbound.storage.sql.settlement import SqlSettlementRepository
from adapters.outbound.storage.sql.tokens import SqlComplianceRepository, SqlTokenRepository
from adapters.outbound.storage.sql.trading import (
    SqlOrderRepository,
    SqlPairRepository,
    SqlTradeRepository,
)
from adapters.outbound.storage.sql.wallets import SqlWalletRepository
from adapters.outbound.storage.sql.write_gate import WriteGate
from core.ports.clock import Clock
from core.ports.storage import URGENT_WRITES, ReadOnlyUnitOfWork, Storage, UnitOfWork
from core.shared.errors import ServiceUnavailable


class UtcClock(Clock):
    """Wall-clock UTC, used to stamp ``published_at`` when no clock is injected."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class SqlUnitOfWork(UnitOfWork):
    """One connection and one transaction for the duration of an ``async with`` block.

    Read-write units start with ``BEGIN IMMEDIATE`` on SQLite (one writer at a time: the
    process's writers queue in a ``WriteGate``); read-only ones with a deferred ``BEGIN``,
    which takes no lock until the first read and never the write lock, so in WAL mode reads
    run side by side with each other and with the writer. On a SQLite file both run on plain
    ``sqlite3`` connections on the event loop's thread (``loop_thread``); an in-memory
    database keeps aiosqlite. On Postgres a read-only unit is a READ ONLY transaction.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        clock: Clock,
        *,
        read_only: bool = False,
        reader: Engine | None = None,
        writer: Engine | None = None,
        write_gate: Callable[[], WriteGate] | None = None,
        checkpointer: Checkpointer | None = None,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._read_only = read_only
        self._reader = reader if read_only else None
        self._writer = None if read_only else writer
        self._checkpointer = checkpointer
        self._write_gate = None if read_only else write_gate
        self._gate: WriteGate | None = None  # held from BEGIN until the unit ends
        self._conn: AsyncConnection | None = None
        self._sync: Connection | None = None

    def _begin_on_loop_thread(self, reader: Engine) -> AsyncConnection:
        """A read-only SQLite unit: a deferred transaction on the loop's thread (see
        ``loop_thread``), behind the part of ``AsyncConnection`` the repositories use."""
        try:
            sync = reader.connect()
        except sa_exc.OperationalError as exc:
            raise ServiceUnavailable(f"the database is unreachable: {type(exc).__name__}") from exc
        try:
            sync.begin()
        except BaseException as exc:
            sync.close()
            if isinstance(exc, sa_exc.OperationalError):
                raise ServiceUnavailable("the database is busy; try again") from exc
            raise
        self._sync = sync
        return cast(AsyncConnection, LoopThreadConnection(sync))

    async def _begin_writing_on_loop_thread(self, writer: Engine) -> AsyncConnection:
        """A read-write SQLite unit on the loop's thread (see ``loop_thread``): the process's
        turn from the ``WriteGate``, then ``BEGIN IMMEDIATE`` without blocking the loop."""
        await self._enter_gate()
        try:
            try:
                sync = writer.connect()
            except sa_exc.OperationalError as exc:
                raise ServiceUnavailable(
                    f"the database is unreachable: {type(exc).__name__}"
                ) from exc
            try:
                await begin_immediate(sync, timeout_s=SQLITE_BUSY_TIMEOUT_MS / 1000)
            except BaseException as exc:
                sync.close()
                if isinstance(exc, sa_exc.OperationalError):
                    raise ServiceUnavailable("the database is busy; try again") from exc
                raise
        except BaseException:
            self._leave_gate()
            raise
        if self._checkpointer is not None:
            self._checkpointer.start()
        self._sync = sync
        return cast(AsyncConnection, LoopThreadConnection(sync))

    async def _begin(self) -> None:
        if self._conn is not None or self._sync is not None:
            raise RuntimeError("this unit of work is already open")
        if self._reader is not None:
            conn = self._begin_on_loop_thread(self._reader)
        elif self._writer is not None:
            conn = await self._begin_writing_on_loop_thread(self._writer)
        else:
            conn = await self._begin_async()
        self.markets = SqlMarketRepository(conn)
        self.events = SqlEventLog(conn)
        self.outbox = SqlOutbox(conn, self._clock)
        self.processed_events = SqlProcessedEventRepository(conn)
        self.cursors = SqlCursorRepository(conn)
        self.deployments = SqlDeploymentRepository(conn)
        self.ledger = SqlLedgerRepository(conn)
        self.leases = SqlLeaseRepository(conn)
        self.audit = SqlAuditLog(conn)
        self.wallets = SqlWalletRepository(conn)
        self.tokens = SqlTokenRepository(conn)
        self.compliance = SqlComplianceRepository(conn)
        self.mints = SqlMintRepository(conn)
        self.transfers = SqlTransferRepository(conn)
        self.withdrawals = SqlWithdrawalRepository(conn)
        self.deposits = SqlDepositRepository(conn)
        self.pairs = SqlPairRepository(conn)
        self.orders = SqlOrderRepository(conn)
        self.trades = SqlTradeRepository(conn)
        self.settlements = SqlSettlementRepository(conn)
        self.market_data = SqlMarketDataRepository(conn)
        self.reference_prices = SqlReferencePriceRepository(conn)
        self.valuations = SqlValuationRepository(conn)

    async def _enter_gate(self) -> None:
        """SQLite: the process's writers queue in a ``WriteGate`` (urgent ones first)
        instead of in SQLite's busy handler. A unit that cannot enter within the busy
        timeout gets what SQLite would answer: 503, the database is busy."""
        if self._write_gate is None:
            return
        gate = self._write_gate()
        try:
            await gate.acquire(urgent=URGENT_WRITES.get(), timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
        except TimeoutError:
            raise ServiceUnavailable("the database is busy; try again") from None
        self._gate = gate

    def _leave_gate(self) -> None:
        gate, self._gate = self._gate, None
        if gate is not None:
            gate.release()

    async def _begin_async(self) -> AsyncConnection:
        await self._enter_gate()
        try:
            return await self._connect_and_begin()
        except BaseException:
            self._leave_gate()
            raise

    async def _connect_and_begin(self) -> AsyncConnection:
        try:
            conn = await self._engine.connect()
        except (OSError, sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
            raise ServiceUnavailable(f"the database is unreachable: {type(exc).__name__}") from exc
        try:
            if self._read_only:
                if conn.dialect.name == "sqlite":
                    await conn.execution_options(**{SQLITE_BEGIN_OPTION: "DEFERRED"})
                else:
                    await conn.execution_options(postgresql_readonly=True)
            await conn.begin()
        except BaseException as exc:
            await conn.close()
            if isinstance(exc, sa_exc.OperationalError):  # e.g. SQLite "database is locked"
                raise ServiceUnavailable("the database is busy; try again") from exc
            raise
        self._conn = conn
        return conn

    async def _end(self) -> None:
        sync, self._sync = self._sync, None
        if sync is not None:
            try:
                if sync.in_transaction():
                    sync.rollback()
            finally:
                try:
                    sync.close()
                finally:
                    self._leave_gate()  # held by a read-write unit only
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if conn.in_transaction():
                await conn.rollback()
        finally:
            try:
                await conn.close()
            finally:
                self._leave_gate()

    async def commit(self) -> None:
        if self._conn is None and self._sync is None:
            raise RuntimeError("commit() outside of the unit of work's async with block")
        if self._read_only:
            raise ReadOnlyUnitOfWork("commit() in a read-only unit of work")
        try:
            if self._sync is not None:
                self._sync.commit()
            else:
                assert self._conn is not None
                await self._conn.commit()
        except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
            raise ServiceUnavailable(f"the commit failed: {type(exc).__name__}") from exc


class SqlStorage(Storage):
    """Storage on SQLite (``sqlite+aiosqlite://``) or Postgres (``postgresql+asyncpg://``).

    Give it a URL and it owns (and ``close()`` disposes) its engine; give it an engine and
    the caller keeps ownership. The schema comes from the alembic migrations.
    """

    def __init__(self, url: str | URL | AsyncEngine, *, clock: Clock | None = None) -> None:
        if isinstance(url, AsyncEngine):
            self._engine, self._owns_engine = url, False
        else:
            self._engine, self._owns_engine = create_engine(url), True
        self._clock = clock or UtcClock()
        self._reader = loop_thread_reader(self._engine)
        self._writer = loop_thread_writer(self._engine)
        path = sqlite_file(self._engine)
        self._checkpointer = None if path is None else Checkpointer(path, self)
        # SQLite has one writer at a time: one queue of writers per event loop (its futures
        # belong to the loop; tests run one storage on several loops in turn)
        self._gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, WriteGate] | None
        sqlite = self._engine.dialect.name == "sqlite"
        self._gates = weakref.WeakKeyDictionary() if sqlite else None

    @classmethod
    def from_engine(cls, engine: AsyncEngine, *, clock: Clock | None = None) -> SqlStorage:
        return cls(engine, clock=clock)

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    def unit_of_work(self, *, read_only: bool = False) -> UnitOfWork:
        return SqlUnitOfWork(
            self._engine,
            self._clock,
            read_only=read_only,
            reader=self._reader,
            writer=self._writer,
            write_gate=None if self._gates is None else self._write_gate,
            checkpointer=self._checkpointer,
        )

    def _write_gate(self) -> WriteGate:
        assert self._gates is not None
        loop = asyncio.get_running_loop()
        gate = self._gates.get(loop)
        if gate is None:
            gate = self._gates[loop] = WriteGate()
        return gate

    async def ping(self) -> None:
        async with self._engine.connect() as conn:
            # On SQLite, answer without taking the write lock that BEGIN IMMEDIATE would.
            conn = await conn.execution_options(**{SQLITE_BEGIN_OPTION: None})
            await conn.execute(sa.text("SELECT 1"))

    async def close(self) -> None:
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.stop)
        if self._writer is not None:
            self._writer.dispose()
        if self._reader is not None:
            self._reader.dispose()
        if self._owns_engine:
            await self._engine.dispose()
