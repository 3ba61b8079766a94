"""The storage contract, run against memory, SQLite (aiosqlite) and Postgres (asyncpg)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from adapters.outbound.storage.memory import MemoryStorage
from adapters.outbound.storage.sql import SqlMarketRepository, SqlStorage
from adapters.outbound.storage.sql.engine import normalize_url
from adapters.outbound.storage.sql.migrate import upgrade, upgrade_async
from core.ports.storage import Storage
from core.shared.errors import DuplicateSymbol, ServiceUnavailable
from tests.contract.storage_suite import StorageContract, make_asset, make_market
from tests.harness.common import free_port
from tests.harness.postgres import PostgresServer, unique_database_name


class TestMemoryStorage(StorageContract):
    @pytest.fixture
    async def storage(self) -> AsyncIterator[Storage]:
        storage = MemoryStorage()
        yield storage
        await storage.close()


class SqlStorageChecks:
    """What the SQL adapter adds beyond the port: the database itself guards the rules."""

    async def test_the_index_enforces_live_symbols_without_the_precheck(
        self, storage: Storage, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        async def never_taken(self: SqlMarketRepository, symbol: str) -> bool:
            return False

        monkeypatch.setattr(SqlMarketRepository, "live_symbol_taken", never_taken)
        first, second = make_market(token_symbol="IDX"), make_market(token_symbol="IDX")
        async with storage.unit_of_work() as uow:
            await uow.markets.add(first, make_asset(first))
            await uow.commit()
        with pytest.raises(DuplicateSymbol):
            async with storage.unit_of_work() as uow:
                await uow.markets.add(second, make_asset(second))

    async def test_money_and_supply_are_stored_as_text(self, storage: Storage) -> None:
        market = make_market(total_supply=10**40, tick_size=Decimal("0.010"))
        async with storage.unit_of_work() as uow:
            await uow.markets.add(market, make_asset(market, valuation=Decimal("0.1")))
            await uow.commit()
        assert isinstance(storage, SqlStorage)
        async with storage.engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.text(
                        "SELECT m.total_supply, m.tick_size, a.valuation FROM markets m"
                        " JOIN market_assets a ON a.market_id = m.id"
                    )
                )
            ).one()
        assert tuple(row) == (str(10**40), "0.010", "0.1")

    async def test_a_read_only_unit_cannot_write(self, storage: Storage) -> None:
        """SQLite: a query_only connection; Postgres: a READ ONLY transaction."""
        market = make_market()
        with pytest.raises(sa.exc.DBAPIError):
            async with storage.unit_of_work(read_only=True) as uow:
                await uow.markets.add(market, make_asset(market))
        async with storage.unit_of_work(read_only=True) as uow:
            assert await uow.markets.get(market.id) is None

    async def test_naive_datetimes_are_refused(self, storage: Storage) -> None:
        market = make_market(created_at=datetime(2026, 1, 1))
        with pytest.raises(sa.exc.StatementError, match="naive"):
            async with storage.unit_of_work() as uow:
                await uow.markets.add(market, make_asset(market))

    async def test_storage_over_a_borrowed_engine_leaves_it_open(self, storage: Storage) -> None:
        assert isinstance(storage, SqlStorage)
        borrowed = SqlStorage.from_engine(storage.engine)
        market = make_market()
        async with borrowed.unit_of_work() as uow:
            await uow.markets.add(market, make_asset(market))
            await uow.commit()
        await borrowed.close()
        await storage.ping()
        async with storage.unit_of_work() as uow:
            assert await uow.markets.get(market.id) == market


def test_urls_without_an_async_driver_get_one() -> None:
    assert normalize_url("sqlite:///x.db").drivername == "sqlite+aiosqlite"
    assert normalize_url("postgresql://u@h/db").drivername == "postgresql+asyncpg"
    assert normalize_url("postgres://u@h/db").drivername == "postgresql+asyncpg"
    assert normalize_url("postgresql+asyncpg://u@h/db").drivername == "postgresql+asyncpg"


class TestSqliteStorage(StorageContract, SqlStorageChecks):
    @pytest.fixture
    async def storage(self, tmp_path: Path) -> AsyncIterator[Storage]:
        url = f"sqlite+aiosqlite:///{tmp_path / 'rwa.db'}"
        await upgrade_async(url)
        storage = SqlStorage(url)
        yield storage
        await storage.close()


@pytest.fixture(scope="session")
def migrated_postgres_template(postgres_server: PostgresServer) -> str:
    """A database migrated to head once; each test gets a copy (much faster than migrating)."""
    name = unique_database_name("rwa_template")
    upgrade(postgres_server.create_database(name))
    return name


@pytest.fixture
def postgres_storage_url(
    postgres_server: PostgresServer, migrated_postgres_template: str
) -> Iterator[str]:
    name = unique_database_name()
    yield postgres_server.create_database(name, template=migrated_postgres_template)
    postgres_server.drop_database(name)


@pytest.mark.postgres
class TestPostgresStorage(StorageContract, SqlStorageChecks):
    @pytest.fixture
    async def storage(self, postgres_storage_url: str) -> AsyncIterator[Storage]:
        storage = SqlStorage(postgres_storage_url)
        yield storage
        await storage.close()


async def test_an_unreachable_database_is_service_unavailable() -> None:
    storage = SqlStorage(f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/none")
    try:
        with pytest.raises(ServiceUnavailable):
            async with storage.unit_of_work():
                pass
    finally:
        await storage.close()
