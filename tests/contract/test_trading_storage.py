"""The trading storage contract on memory, SQLite and Postgres."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from adapters.outbound.storage.memory import MemoryStorage
from adapters.outbound.storage.sql import SqlStorage
from adapters.outbound.storage.sql.migrate import upgrade, upgrade_async
from core.ports.storage import Storage
from tests.contract.trading_suite import TradingContract
from tests.harness.postgres import PostgresServer, unique_database_name


class TestMemoryTrading(TradingContract):
    @pytest.fixture
    async def storage(self) -> AsyncIterator[Storage]:
        storage = MemoryStorage()
        yield storage
        await storage.close()


class TestSqliteTrading(TradingContract):
    @pytest.fixture
    async def storage(self, tmp_path: Path) -> AsyncIterator[Storage]:
        url = f"sqlite+aiosqlite:///{tmp_path / 'trading.db'}"
        await upgrade_async(url)
        storage = SqlStorage(url)
        yield storage
        await storage.close()


@pytest.fixture(scope="session")
def trading_postgres_template(postgres_server: PostgresServer) -> str:
    name = unique_database_name("rwa_trading_template")
    upgrade(postgres_server.create_database(name))
    return name


@pytest.fixture
def trading_postgres_url(
    postgres_server: PostgresServer, trading_postgres_template: str
) -> Iterator[str]:
    name = unique_database_name()
    yield postgres_server.create_database(name, template=trading_postgres_template)
    postgres_server.drop_database(name)


@pytest.mark.postgres
class TestPostgresTrading(TradingContract):
    @pytest.fixture
    async def storage(self, trading_postgres_url: str) -> AsyncIterator[Storage]:
        storage = SqlStorage(trading_postgres_url)
        yield storage
        await storage.close()
