"""Mint, withdrawal and deposit flows on SQL storage (SQLite, Postgres) with the memory
chain: the amounts survive the database exactly, and a deposit scanner started again on the
same database (a restart) re-reads the same blocks and credits nothing twice."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.outbound.chain.memory import MemoryChain
from adapters.outbound.custody.eth_signatures import EthAccountSignatureVerifier
from adapters.outbound.custody.hd_keys import BipUtilsKeyDerivation
from adapters.outbound.jobs.memory import MemoryJobQueue
from adapters.outbound.permissions.local import LocalPolicyPermissions
from adapters.outbound.storage.sql import SqlStorage
from adapters.outbound.storage.sql.migrate import upgrade, upgrade_async
from core.ledger.model import AccountRef
from core.ports.chain import TokenCall, TokenCallKind
from core.ports.clock import Clock
from core.shared.authorization import Authorizer
from core.shared.events import Actor
from core.tokens.chain_mirror import ChainMirror
from core.tokens.compliance_use_cases import ComplianceUseCases, SetCompliance
from core.tokens.deposits import DepositUseCases, cursor_key
from core.tokens.jobs import MintTokenJob, ProcessWithdrawalJob
from core.tokens.mint import MintUseCases
from core.tokens.model import Token, TokenType
from core.tokens.operations import OperationStatus, WithdrawalStatus
from core.tokens.withdrawals import WithdrawalUseCases
from settings import DEV_CUSTODY_MNEMONIC
from tests.harness.postgres import PostgresServer, unique_database_name

T0 = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
ADMIN = Actor(id="admin-1", roles=("admin",))
ALICE = Actor(id="alice", roles=("trader",))
TO = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"  # an outside address
BIG = "123456789012345678901234567890.123456"  # beyond 64 bits in base units


class StepClock(Clock):
    def __init__(self) -> None:
        self.at = T0

    def now(self) -> datetime:
        self.at += timedelta(milliseconds=1)
        return self.at


class TokenFlowsContract:
    @pytest.fixture
    def url(self) -> str:
        raise NotImplementedError

    async def test_mint_withdraw_and_deposits_across_a_restart(self, url: str) -> None:
        chain = MemoryChain()
        keys = BipUtilsKeyDerivation(DEV_CUSTODY_MNEMONIC)
        clock = StepClock()
        storage = SqlStorage(url)
        jobs = MemoryJobQueue()
        authorizer = Authorizer(LocalPolicyPermissions())
        mirror = ChainMirror(storage, chain, clock, keys)
        mints = MintUseCases(storage, authorizer, clock, jobs, mirror)
        withdrawals = WithdrawalUseCases(
            storage, authorizer, clock, jobs, mirror, EthAccountSignatureVerifier()
        )
        jobs.register(MintTokenJob, mints.handle)
        jobs.register(ProcessWithdrawalJob, withdrawals.handle)
        await jobs.start()
        try:
            async with chain.signing_lock:
                prepared = await chain.prepare_stablecoin("USD Coin", "USDC")
                await chain.execute(prepared)
            usdc = Token(
                symbol="USDC",
                name="USD Coin",
                type=TokenType.STABLE,
                decimals=6,
                created_at=T0,
                contract_address=prepared.contract_address,
            )
            async with storage.unit_of_work() as uow:
                await uow.tokens.add(usdc)
                await uow.commit()
            await ComplianceUseCases(storage, authorizer, clock).set(
                ADMIN,
                "alice",
                SetCompliance(
                    kyc_status="APPROVED",
                    whitelisted=True,
                    accredited=False,
                    jurisdiction="PT",
                    expires_at="2099-01-01T00:00:00Z",
                ),
            )
            minted = await mints.request(ADMIN, "USDC", "big", "alice", BIG)
            await jobs.join(10)
            assert (await mints.get(ADMIN, "USDC", minted.id)).status is OperationStatus.COMPLETED
            units = 123456789012345678901234567890_123456
            withdrawal = await withdrawals.request(ALICE, "USDC", "0.5", TO)
            await withdrawals.approve(ADMIN, withdrawal.id)
            await jobs.join(10)
            done = await withdrawals.get(ALICE, withdrawal.id)
            assert done.status is WithdrawalStatus.COMPLETED
            async with storage.unit_of_work(read_only=True) as uow:
                row = await uow.ledger.balance(AccountRef.user("alice", usdc.id))
            assert (row.available, row.locked) == (units - 500_000, 0)

            alice = await mirror.user_address("alice")
            token = usdc.contract_address or ""
            await chain.call_token(TokenCall(TokenCallKind.TRANSFER, token, alice, None, 7))
            first = DepositUseCases(storage, chain, clock, keys, confirmations=0)
            assert [r.credited for r in await first.sync()] == [1]
        finally:
            await jobs.stop()
            await storage.close()

        # a restart: a new storage and scanner on the same database, the cursor moved back
        again = SqlStorage(url)
        try:
            async with again.unit_of_work() as uow:
                await uow.cursors.set(cursor_key(usdc.id), "-1", T0)
                await uow.commit()
            second = DepositUseCases(again, chain, StepClock(), keys, confirmations=0)
            assert [r.credited for r in await second.sync()] == [0]
            async with again.unit_of_work(read_only=True) as uow:
                row = await uow.ledger.balance(AccountRef.user("alice", usdc.id))
                deposits = await uow.deposits.for_user("alice", limit=10)
                supply = await uow.ledger.supply(usdc.id)
            assert row.available == units - 500_000 + 7
            assert [(d.amount, d.log_index) for d in deposits] == [(7, 0)]
            assert (supply.minted, supply.deposited, supply.withdrawn) == (units, 7, 500_000)
        finally:
            await again.close()


class TestSqliteTokenFlows(TokenFlowsContract):
    @pytest.fixture
    async def url(self, tmp_path: Path) -> AsyncIterator[str]:
        url = f"sqlite+aiosqlite:///{tmp_path / 'flows.db'}"
        await upgrade_async(url)
        yield url


@pytest.fixture
def flows_postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    name = unique_database_name("rwa_flows")
    url = postgres_server.create_database(name)
    upgrade(url)
    yield url
    postgres_server.drop_database(name)


@pytest.mark.postgres
class TestPostgresTokenFlows(TokenFlowsContract):
    @pytest.fixture
    def url(self, flows_postgres_url: str) -> str:
        return flows_postgres_url
