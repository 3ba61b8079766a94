"""The ledger contract on memory, SQLite (aiosqlite) and Postgres (asyncpg), and what the SQL
schema itself enforces."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from adapters.outbound.storage.memory import MemoryStorage
from adapters.outbound.storage.sql import SqlStorage
from adapters.outbound.storage.sql.migrate import upgrade, upgrade_async
from core.ledger import AccountRef
from core.ledger import operations as ops
from core.ports.storage import Storage
from core.shared.errors import ConcurrentModification
from tests.contract.ledger_suite import T0, TOKEN, LedgerContract, alice, bob, key
from tests.harness.postgres import PostgresServer, unique_database_name


class TestMemoryLedger(LedgerContract):
    @pytest.fixture
    async def storage(self) -> AsyncIterator[Storage]:
        storage = MemoryStorage()
        yield storage
        await storage.close()


class SqlLedgerChecks:
    """The database refuses a negative or oversized amount even from SQL written by hand."""

    async def _raw(self, storage: Storage, sql: str) -> None:
        assert isinstance(storage, SqlStorage)
        async with storage.engine.begin() as conn:
            await conn.execute(sa.text(sql))

    async def test_check_constraints_refuse_out_of_range_amounts(self, storage: Storage) -> None:
        async with storage.unit_of_work() as uow:
            await uow.ledger.apply(ops.mint(key(), T0, alice(), 5))
            await uow.commit()
        assert isinstance(storage, SqlStorage)
        sqlite = storage.engine.dialect.name == "sqlite"
        negative = "'-" + "0" * 76 + "1'" if sqlite else "-1"
        too_big = "'" + "9" * 78 + "'" if sqlite else "9" * 78
        for column in ("available", "locked"):
            for value in (negative, too_big):
                with pytest.raises(sa.exc.IntegrityError):
                    await self._raw(storage, f"UPDATE ledger_accounts SET {column} = {value}")
        with pytest.raises(sa.exc.IntegrityError):
            await self._raw(storage, f"UPDATE ledger_supply SET minted = {negative}")
        async with storage.unit_of_work() as uow:
            assert (await uow.ledger.balance(alice())).available == 5

    async def test_amounts_are_stored_exactly(self, storage: Storage) -> None:
        amount = 123_456_789_012_345_678_901_234_567_890_123_456_789
        async with storage.unit_of_work() as uow:
            await uow.ledger.apply(ops.mint(key(), T0, alice(), amount))
            await uow.commit()
        assert isinstance(storage, SqlStorage)
        async with storage.engine.connect() as conn:
            stored = (await conn.execute(sa.text("SELECT available FROM ledger_accounts"))).scalar()
        assert isinstance(stored, str | Decimal)  # digits or NUMERIC, never a float
        assert int(stored) == amount and str(stored).lstrip("0") == str(amount)


class TestSqliteLedger(LedgerContract, SqlLedgerChecks):
    @pytest.fixture
    async def storage(self, tmp_path: Path) -> AsyncIterator[Storage]:
        url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
        await upgrade_async(url)
        storage = SqlStorage(url)
        yield storage
        await storage.close()


@pytest.fixture(scope="session")
def ledger_postgres_template(postgres_server: PostgresServer) -> str:
    """A database migrated to head once; each test gets a copy."""
    name = unique_database_name("rwa_ledger_template")
    upgrade(postgres_server.create_database(name))
    return name


@pytest.fixture
def ledger_postgres_url(
    postgres_server: PostgresServer, ledger_postgres_template: str
) -> Iterator[str]:
    name = unique_database_name()
    yield postgres_server.create_database(name, template=ledger_postgres_template)
    postgres_server.drop_database(name)


@pytest.mark.postgres
class TestPostgresLedger(LedgerContract, SqlLedgerChecks):
    @pytest.fixture
    async def storage(self, ledger_postgres_url: str) -> AsyncIterator[Storage]:
        storage = SqlStorage(ledger_postgres_url)
        yield storage
        await storage.close()

    async def test_a_deadlock_between_units_is_a_retryable_conflict(self, storage: Storage) -> None:
        """Two units that each hold one account and then need the other's: Postgres breaks
        the cycle; the victim gets ``ConcurrentModification`` and the other one commits."""
        for account in (alice(), bob()):
            async with storage.unit_of_work() as uow:
                await uow.ledger.apply(ops.mint(key(), T0, account, 10))
                await uow.commit()
        both_hold = asyncio.Barrier(2)

        async def crossing(first: AccountRef, second: AccountRef) -> str:
            receiver = AccountRef.user(f"shop-of-{first.owner}", first.token)  # one each
            try:
                async with storage.unit_of_work() as uow:
                    await uow.ledger.apply(ops.transfer_between(key(), T0, first, receiver, 1))
                    await asyncio.wait_for(both_hold.wait(), 10)
                    await uow.ledger.apply(ops.transfer_between(key(), T0, second, receiver, 1))
                    await uow.commit()
            except ConcurrentModification:
                return "retry"
            return "committed"

        outcomes = await asyncio.wait_for(
            asyncio.gather(crossing(alice(), bob()), crossing(bob(), alice())), 30
        )
        assert sorted(outcomes) == ["committed", "retry"]
        async with storage.unit_of_work() as uow:
            moved = [
                (await uow.ledger.balance(AccountRef.user(f"shop-of-{a.owner}", TOKEN))).available
                for a in (alice(), bob())
            ]
            total = await uow.ledger.total(TOKEN)
        assert sorted(moved) == [0, 2] and total.total == 20
