"""Deposit sweeps end to end on real EVMs (the in-process py-evm chain and a Hardhat node),
on SQLite storage: a stablecoin transfer to a user's custodial deposit address is credited
once, then swept into the omnibus address by a transaction signed with the deposit
address's own key after the platform funded its gas; re-reading the same blocks (a restart)
credits nothing and sweeps nothing twice, and reconciliation finds no drift.

The custodial keys come from a fresh random mnemonic: Hardhat prefunds the development
mnemonic's addresses, which would hide the funding step."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from bip_utils import Bip39MnemonicGenerator, Bip39WordsNum  # type: ignore[import-untyped]

from adapters.outbound.chain.evm import EvmChain
from adapters.outbound.chain.web3_rpc import Web3Chain
from adapters.outbound.custody.hd_keys import BipUtilsKeyDerivation
from adapters.outbound.jobs.memory import MemoryJobQueue
from adapters.outbound.storage.sql import SqlStorage
from adapters.outbound.storage.sql.migrate import upgrade_async
from core.ledger.model import AccountRef
from core.ports.chain import Chain, TokenCall, TokenCallKind
from core.ports.clock import Clock
from core.ports.deployments import DeploymentState
from core.tokens.chain_mirror import ChainMirror
from core.tokens.deposits import DepositUseCases, cursor_key
from core.tokens.jobs import SweepDepositJob
from core.tokens.model import Token, TokenType
from core.tokens.reconcile import Reconciliation
from core.tokens.sweeps import DepositSweeper, sweep_subject
from tests.harness.hardhat import HARDHAT_DEV_KEY

T0 = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)


class StepClock(Clock):
    def __init__(self) -> None:
        self.at = T0

    def now(self) -> datetime:
        self.at += timedelta(milliseconds=1)
        return self.at


class SweepFlowContract:
    @pytest.fixture
    async def chain(self) -> AsyncIterator[Chain]:
        raise NotImplementedError
        yield  # pragma: no cover

    async def test_a_deposit_is_credited_once_and_swept_once(
        self, chain: Chain, tmp_path: Path
    ) -> None:
        url = f"sqlite+aiosqlite:///{tmp_path / 'sweeps.db'}"
        await upgrade_async(url)
        storage = SqlStorage(url)
        keys = BipUtilsKeyDerivation(
            str(Bip39MnemonicGenerator().FromWordsNumber(Bip39WordsNum.WORDS_NUM_12))
        )
        clock = StepClock()
        jobs = MemoryJobQueue()
        sweeper = DepositSweeper(storage, chain, clock, keys, jobs)
        scanner = DepositUseCases(storage, chain, clock, keys, confirmations=0, sweeper=sweeper)
        jobs.register(SweepDepositJob, sweeper.handle)
        await jobs.start()
        try:
            async with chain.signing_lock:
                prepared = await chain.prepare_stablecoin("USD Coin", "USDC")
                await chain.execute(prepared)
            coin = prepared.contract_address or ""
            usdc = Token(
                symbol="USDC",
                name="USD Coin",
                type=TokenType.STABLE,
                decimals=6,
                created_at=T0,
                contract_address=coin,
            )
            async with storage.unit_of_work() as uow:
                await uow.tokens.add(usdc)
                # no earlier block of a shared node is a deposit of this fresh token anyway
                await uow.cursors.set(cursor_key(usdc.id), str(await chain.block_number()), T0)
                await uow.commit()
            omnibus = await chain.custody_address()
            alice = await ChainMirror(storage, chain, clock, keys).user_address("alice")
            # USDC arriving from outside: the chain's own tool calls, recorded nowhere
            await chain.call_token(TokenCall(TokenCallKind.MINT, coin, omnibus, None, 7_000_000))
            await chain.call_token(TokenCall(TokenCallKind.TRANSFER, coin, alice, None, 7_000_000))
            assert await chain.native_balance(alice) == 0

            [result] = await scanner.sync()
            assert result.credited == 1
            await jobs.join(60)

            async with storage.unit_of_work(read_only=True) as uow:
                [deposit] = await uow.deposits.for_user("alice", limit=10)
                row = await uow.ledger.balance(AccountRef.user("alice", usdc.id))
                records = await uow.deployments.for_subject(sweep_subject(deposit.id))
            assert row.available == 7_000_000
            assert deposit.sweep_tx_hash is not None
            assert {r.step: r.state for r in records} == {
                "fund#0": DeploymentState.MINED,
                "sweep": DeploymentState.MINED,
            }
            sweep = next(r for r in records if r.step == "sweep")
            assert (sweep.signer, sweep.nonce, sweep.tx_hash) == (alice, 0, deposit.sweep_tx_hash)
            assert await chain.balance_of(coin, alice) == 0
            assert await chain.balance_of(coin, omnibus) == 7_000_000
            head = await chain.block_number()
            swept = await chain.transfer_logs(coin, 0, head, frozenset({omnibus}))
            assert [(log.sender, log.amount) for log in swept if log.sender == alice] == [
                (alice, 7_000_000)
            ]
            reconcile = Reconciliation(storage, chain, clock, keys)
            assert (await reconcile.run()).drifts == []

            # a restart re-reads the same blocks: nothing credited, nothing swept again
            async with storage.unit_of_work() as uow:
                await uow.cursors.set(cursor_key(usdc.id), str(result.from_block - 1), T0)
                await uow.commit()
            again = await DepositUseCases(
                storage, chain, StepClock(), keys, confirmations=0, sweeper=sweeper
            ).sync()
            assert [r.credited for r in again] == [0]
            assert await sweeper.resume_interrupted() == 0
            await jobs.enqueue(SweepDepositJob(deposit_id=deposit.id))  # a redelivery
            await jobs.join(60)
            assert await chain.block_number() == head  # nothing was sent
            assert await chain.confirmed_nonce(alice) == 1
            async with storage.unit_of_work(read_only=True) as uow:
                row = await uow.ledger.balance(AccountRef.user("alice", usdc.id))
                supply = await uow.ledger.supply(usdc.id)
            assert (row.available, supply.deposited) == (7_000_000, 7_000_000)
        finally:
            await jobs.stop()
            await storage.close()


class TestEvmSweeps(SweepFlowContract):
    @pytest.fixture
    async def chain(self) -> AsyncIterator[Chain]:
        adapter = EvmChain()
        yield adapter
        await adapter.close()


@pytest.mark.hardhat
class TestHardhatSweeps(SweepFlowContract):
    @pytest.fixture
    async def chain(self, hardhat_url: str) -> AsyncIterator[Chain]:
        adapter = Web3Chain(hardhat_url, HARDHAT_DEV_KEY, chain_id=31337, receipt_timeout=30)
        yield adapter
        await adapter.close()
