"""The embedded chain keeps its state in ``RWA_DATA_DIR`` across restarts (DESIGN §3).

Close and reopen from the same directory: contracts keep code and balances, the signer's
nonce goes on counting (a new deployment never reuses an address), and a second process
cannot open a directory that is in use. A child process killed with SIGKILL right after a
deployment leaves a chain that reopens with that deployment in it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from adapters.outbound.chain.artifact import rwa_token_artifact
from adapters.outbound.chain.durable_store import CHAIN_FILE, ChainStore
from adapters.outbound.chain.evm import EvmChain
from core.ports.chain import TokenSpec
from core.shared.errors import ChainError

REPO = Path(__file__).resolve().parents[2]
HOLDER = "0x1111111111111111111111111111111111111111"


def spec(symbol: str, supply: int) -> TokenSpec:
    return TokenSpec(f"{symbol} Token", symbol, 18, supply, holder=HOLDER)


async def test_contracts_survive_a_restart_and_addresses_are_never_reused(tmp_path: Path) -> None:
    chain = EvmChain(data_dir=tmp_path)
    assert chain.created_fresh
    deployed = [await chain.deploy_token(spec(f"D{i}", (i + 1) * 10**18)) for i in range(3)]
    head = await chain.block_number()
    custody = await chain.custody_address()
    await chain.close()

    again = EvmChain(data_dir=tmp_path)
    try:
        assert not again.created_fresh
        assert await again.block_number() == head
        assert await again.custody_address() == custody
        assert await again.confirmed_nonce(custody) == 3
        for i, token in enumerate(deployed):
            assert await again.code_at(token.contract_address) == rwa_token_artifact().runtime_code
            assert await again.total_supply(token.contract_address) == (i + 1) * 10**18
            assert await again.balance_of(token.contract_address, HOLDER) == (i + 1) * 10**18
            assert (await again.token_metadata(token.contract_address)).symbol == f"D{i}"
            receipt = await again.transaction_receipt(token.tx_hash)
            assert receipt is not None and receipt.contract_address == token.contract_address
        newer = await again.deploy_token(spec("NEW", 1))
        assert newer.contract_address not in {t.contract_address for t in deployed}
        assert newer.block_number == head + 1
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
    mined = await chain.deploy_token(spec("KEEP", 5))
    chain.ethereum_tester.disable_auto_mine_transactions()
    prepared = await chain.prepare_deployment(spec("LOST", 7))
    await chain.send_raw_transaction(prepared.transaction.raw_transaction)
    assert chain.store is not None
    await chain.close()  # the pending block was never committed

    again = EvmChain(data_dir=tmp_path)
    try:
        assert await again.total_supply(mined.contract_address) == 5
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
    from core.ports.chain import TokenSpec

    async def main() -> None:
        chain = EvmChain(data_dir=Path(sys.argv[1]))
        token = await chain.deploy_token(TokenSpec("Kill", "KILL", 18, 42, holder=sys.argv[2]))
        print(token.contract_address, token.tx_hash, flush=True)
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
    address, tx_hash = done.stdout.split()
    assert (tmp_path / CHAIN_FILE).exists()

    async def reopen() -> None:
        chain = EvmChain(data_dir=tmp_path)
        try:
            assert await chain.total_supply(address) == 42
            assert await chain.balance_of(address, HOLDER) == 42
            receipt = await chain.transaction_receipt(tx_hash)
            assert receipt is not None and receipt.contract_address == address
        finally:
            await chain.close()

    asyncio.run(reopen())
