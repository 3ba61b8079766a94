"""The embedded chain keeps its state in ``RWA_DATA_DIR`` across restarts (DESIGN §3).

Close and reopen from the same directory: T-REX suites keep their code, balances and
verified holders, the signer's nonce goes on counting (a new deployment never reuses an
address), and a second process cannot open a directory that is in use. A child process
killed with SIGKILL right after a suite deployment leaves a chain that reopens with it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from adapters.outbound.chain.durable_store import CHAIN_FILE, ChainStore
from adapters.outbound.chain.evm import EvmChain
from adapters.outbound.chain.trex.artifacts import TrexContract, trex_artifact
from adapters.outbound.clock.system import SystemClock
from adapters.outbound.jobs.memory import MemoryJobQueue
from adapters.outbound.permissions.local import LocalPolicyPermissions
from adapters.outbound.storage.memory import MemoryStorage
from core.markets.chain_state import ChainStateGuard
from core.markets.deployment import TokenDeployment
from core.markets.registration import RegisterMarket
from core.markets.use_cases import MarketUseCases
from core.ports.chain import TOKEN_STEP, PlatformContracts, SuiteSpec, suite_steps
from core.ports.deployments import DeploymentState
from core.ports.jobs import DeployTokenJob
from core.shared.authorization import Authorizer
from core.shared.errors import ChainError
from core.shared.events import Actor
from tests.unit.test_deployment_records import KEYS

REPO = Path(__file__).resolve().parents[2]
HOLDER = "0x1111111111111111111111111111111111111111"
ADMIN = Actor(id="admin-1", roles=("admin",))
ISSUER = Actor(id="issuer-1", roles=("issuer",))


def spec(platform: PlatformContracts, symbol: str, supply: int) -> SuiteSpec:
    return SuiteSpec(f"{symbol} Token", symbol, 18, supply, HOLDER, "DE", platform)


async def test_contracts_survive_a_restart_and_addresses_are_never_reused(tmp_path: Path) -> None:
    chain = EvmChain(data_dir=tmp_path)
    assert chain.created_fresh
    platform = await chain.deploy_platform()
    tokens = [
        (await chain.deploy_suite(spec(platform, f"D{i}", (i + 1) * 10**18)))[TOKEN_STEP]
        for i in range(2)
    ]
    head = await chain.block_number()
    custody = await chain.custody_address()
    sent = await chain.confirmed_nonce(custody)
    assert sent == 3 + 2 * len(suite_steps(spec(platform, "X", 1)))
    await chain.close()

    again = EvmChain(data_dir=tmp_path)
    try:
        assert not again.created_fresh
        assert await again.block_number() == head
        assert await again.custody_address() == custody
        assert await again.confirmed_nonce(custody) == sent
        for i, token in enumerate(tokens):
            code = trex_artifact(TrexContract.TOKEN).runtime_code
            assert await again.code_at(token) == code
            assert await again.total_supply(token) == (i + 1) * 10**18
            assert await again.balance_of(token, HOLDER) == (i + 1) * 10**18
            assert await again.is_verified(token, HOLDER)
            assert not await again.is_paused(token)
            assert (await again.token_metadata(token)).symbol == f"D{i}"
        newer = (await again.deploy_suite(spec(platform, "NEW", 1)))[TOKEN_STEP]
        assert newer not in tokens
        assert await again.confirmed_nonce(custody) > sent
    finally:
        await again.close()


async def test_a_second_process_cannot_open_a_directory_in_use(tmp_path: Path) -> None:
    chain = EvmChain(data_dir=tmp_path)
    try:
        with pytest.raises(ChainError, match="in use by another process"):
            ChainStore(tmp_path)
    finally:
        await chain.close()
    ChainStore(tmp_path).close()  # free again once closed


async def test_an_unmined_transaction_is_all_a_crash_loses(tmp_path: Path) -> None:
    chain = EvmChain(data_dir=tmp_path)
    platform = await chain.deploy_platform()
    mined = (await chain.deploy_suite(spec(platform, "KEEP", 5)))[TOKEN_STEP]
    chain.ethereum_tester.disable_auto_mine_transactions()
    prepared = await chain.prepare_stablecoin("Lost Coin", "LOST")
    assert prepared.contract_address is not None
    await chain.send_raw_transaction(prepared.transaction.raw_transaction)
    assert chain.store is not None
    await chain.close()  # the pending block was never committed

    again = EvmChain(data_dir=tmp_path)
    try:
        assert await again.total_supply(mined) == 5
        assert await again.transaction_receipt(prepared.transaction.tx_hash) is None
        assert await again.code_at(prepared.contract_address) == b""
        # the recorded bytes can still be sent: same nonce, same address
        await again.send_raw_transaction(prepared.transaction.raw_transaction)
        receipt = await again.wait_for_receipt(prepared.transaction.tx_hash)
        assert receipt.contract_address == prepared.contract_address
    finally:
        await again.close()


CHILD = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from pathlib import Path
    from adapters.outbound.chain.evm import EvmChain
    from core.ports.chain import TOKEN_STEP, SuiteSpec

    async def main() -> None:
        chain = EvmChain(data_dir=Path(sys.argv[1]))
        platform = await chain.deploy_platform()
        spec = SuiteSpec("Kill", "KILL", 18, 42, sys.argv[2], "DE", platform)
        created = await chain.deploy_suite(spec)
        print(created[TOKEN_STEP], created["identity"], flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    asyncio.run(main())
    """
)


def test_a_deployment_survives_sigkill_of_the_process(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path), HOLDER],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    address, identity = done.stdout.split()
    assert (tmp_path / CHAIN_FILE).exists()

    async def reopen() -> None:
        chain = EvmChain(data_dir=tmp_path)
        try:
            assert await chain.total_supply(address) == 42
            assert await chain.balance_of(address, HOLDER) == 42
            assert await chain.is_verified(address, HOLDER)
            assert not await chain.is_paused(address)
            assert (
                await chain.code_at(identity) == trex_artifact(TrexContract.IDENTITY).runtime_code
            )
        finally:
            await chain.close()

    asyncio.run(reopen())


async def test_an_older_copy_of_the_chain_file_is_a_mismatch(tmp_path: Path) -> None:
    """A chain file restored from before the last recorded deployment: the database knows a
    block the chain has not reached, and the guard refuses."""
    chain_dir, backup = tmp_path / "chain", tmp_path / "backup"
    storage = MemoryStorage()
    uc = MarketUseCases(storage, Authorizer(LocalPolicyPermissions()), SystemClock())

    async def deploy(chain: EvmChain, symbol: str) -> None:
        market = await uc.register(
            ISSUER, RegisterMarket(f"{symbol} Tower", "real_estate", symbol, f"{symbol} Token", 10)
        )
        await uc.decide(ADMIN, market.id, "approve")
        deployment = TokenDeployment(storage, chain, MemoryJobQueue(), SystemClock(), custody=KEYS)
        await deployment.handle(DeployTokenJob(market_id=market.id))
        async with storage.unit_of_work() as uow:
            records = await uow.deployments.for_market(market.id)
        assert records and all(r.state is DeploymentState.MINED for r in records)

    chain = EvmChain(data_dir=chain_dir)
    await deploy(chain, "OLD")
    old_head = await chain.block_number()
    await chain.close()
    shutil.copytree(chain_dir, backup)
    chain = EvmChain(data_dir=chain_dir)
    await deploy(chain, "NEW")
    assert await ChainStateGuard(storage, chain).verify() is None
    await chain.close()

    shutil.rmtree(chain_dir)
    shutil.copytree(backup, chain_dir)
    restored = EvmChain(data_dir=chain_dir)
    try:
        problem = await ChainStateGuard(storage, restored).verify()
        assert problem is not None and f"head is block {old_head}" in problem, problem
    finally:
        await restored.close()
