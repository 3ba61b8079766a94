"""The audit log and wallet contracts on memory, SQLite (aiosqlite) and Postgres (asyncpg),
and what the SQL schema itself enforces: no UPDATE or DELETE of an audit entry, whoever
sends it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from adapters.outbound.storage.memory import MemoryStorage
from adapters.outbound.storage.sql import SqlStorage
from adapters.outbound.storage.sql.migrate import upgrade, upgrade_async
from core.ports.audit import AuditFilter
from core.ports.storage import Storage
from tests.contract.audit_suite import AuditContract, entry
from tests.contract.wallet_suite import ADDRESS_A, WalletContract
from tests.harness.postgres import PostgresServer, unique_database_name


class TestMemoryAuditAndWallets(AuditContract, WalletContract):
    @pytest.fixture
    async def storage(self) -> AsyncIterator[Storage]:
        storage = MemoryStorage()
        yield storage
        await storage.close()

    async def test_units_committing_out_of_order_keep_seq_order(self, storage: Storage) -> None:
        async with storage.unit_of_work() as first:
            early = await first.audit.append(entry(action="first.drawn"))
            async with storage.unit_of_work() as second:
                late = await second.audit.append(entry(action="second.drawn"))
                await second.commit()
            await first.commit()
        async with storage.unit_of_work(read_only=True) as uow:
            assert await uow.audit.query(AuditFilter(), limit=10) == [late, early]


class SqlAppendOnlyChecks:
    """The table refuses changes to entries even from SQL written by hand."""

    async def _raw(self, storage: Storage, sql: str) -> None:
        assert isinstance(storage, SqlStorage)
        async with storage.engine.begin() as conn:
            await conn.execute(sa.text(sql))

    @pytest.mark.parametrize(
        "statement",
        [
            "UPDATE audit_log SET action = 'forged'",
            "UPDATE audit_log SET after = NULL",
            "DELETE FROM audit_log",
            "DELETE FROM audit_log WHERE action = 'market.approve'",
        ],
    )
    async def test_raw_updates_and_deletes_fail(self, storage: Storage, statement: str) -> None:
        async with storage.unit_of_work() as uow:
            stored = await uow.audit.append(entry())
            await uow.commit()
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            await self._raw(storage, statement)
        async with storage.unit_of_work(read_only=True) as uow:
            assert await uow.audit.query(AuditFilter(), limit=10) == [stored]

    async def test_truncate_removes_nothing(self, storage: Storage) -> None:
        """Postgres: the trigger refuses TRUNCATE. SQLite has no TRUNCATE statement at all (its
        DELETE is refused above): the statement fails there too, and nothing is removed."""
        assert isinstance(storage, SqlStorage)
        async with storage.unit_of_work() as uow:
            stored = await uow.audit.append(entry())
            await uow.commit()
        refusal = "append-only" if storage.engine.dialect.name == "postgresql" else "syntax error"
        with pytest.raises(sa.exc.DBAPIError, match=refusal):
            await self._raw(storage, "TRUNCATE audit_log")
        async with storage.unit_of_work(read_only=True) as uow:
            assert await uow.audit.query(AuditFilter(), limit=10) == [stored]

    async def test_inserting_by_hand_still_works(self, storage: Storage) -> None:
        await self._raw(
            storage,
            "INSERT INTO audit_log (id, actor_id, actor_type, action, subject, at)"
            " VALUES ('x', 'ops', 'user', 'ops.note', 'system', CURRENT_TIMESTAMP)",
        )
        async with storage.unit_of_work(read_only=True) as uow:
            (found,) = await uow.audit.query(AuditFilter(action="ops.note"), limit=10)
        assert found.actor_id == "ops"

    async def test_the_database_refuses_a_second_holder_of_an_address(
        self, storage: Storage
    ) -> None:
        async with storage.unit_of_work() as uow:
            await uow.wallets.get_or_create("alice", now=entry().at)
            await uow.wallets.get_or_create("bob", now=entry().at)
            await uow.wallets.set_external("alice", ADDRESS_A, now=entry().at)
            await uow.commit()
        with pytest.raises(sa.exc.IntegrityError):
            await self._raw(
                storage,
                f"UPDATE wallets SET external_address = '{ADDRESS_A}' WHERE user_id = 'bob'",
            )


class TestSqliteAuditAndWallets(AuditContract, WalletContract, SqlAppendOnlyChecks):
    @pytest.fixture
    async def storage(self, tmp_path: Path) -> AsyncIterator[Storage]:
        url = f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}"
        await upgrade_async(url)
        storage = SqlStorage(url)
        yield storage
        await storage.close()


@pytest.fixture(scope="session")
def audit_postgres_template(postgres_server: PostgresServer) -> str:
    """A database migrated to head once; each test gets a copy."""
    name = unique_database_name("rwa_audit_template")
    upgrade(postgres_server.create_database(name))
    return name


@pytest.fixture
def audit_postgres_url(
    postgres_server: PostgresServer, audit_postgres_template: str
) -> Iterator[str]:
    name = unique_database_name()
    yield postgres_server.create_database(name, template=audit_postgres_template)
    postgres_server.drop_database(name)


@pytest.mark.postgres
class TestPostgresAuditAndWallets(AuditContract, WalletContract, SqlAppendOnlyChecks):
    @pytest.fixture
    async def storage(self, audit_postgres_url: str) -> AsyncIterator[Storage]:
        storage = SqlStorage(audit_postgres_url)
        yield storage
        await storage.close()
