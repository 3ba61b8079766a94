"""One contract suite for the Chain port, run by every adapter: memory, in-process EVM, RPC."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.outbound.chain.artifact import rwa_token_artifact
from adapters.outbound.chain.evm import EvmChain
from adapters.outbound.chain.memory import MemoryChain
from adapters.outbound.chain.validation import ZERO_ADDRESS
from adapters.outbound.chain.web3_rpc import Web3Chain
from core.ports.chain import Chain, TokenSpec
from core.shared.errors import ChainError
from tests.harness.common import free_port
from tests.harness.hardhat import HARDHAT_DEV_KEY

SUPPLY = 1_000_000 * 10**18  # far beyond 64 bits: no silent int overflow anywhere
OTHER = "0x1111111111111111111111111111111111111111"
NOBODY = "0xabababababababababababababababababababab"
CHECKSUMMED = re.compile(r"^0x[0-9a-fA-F]{40}$")


def spec(symbol: str = "RWA", *, holder: str | None = None, supply: int = SUPPLY) -> TokenSpec:
    return TokenSpec(
        name=f"{symbol} Token", symbol=symbol, decimals=18, initial_supply=supply, holder=holder
    )


class ChainContract:
    """The behaviour every ``Chain`` adapter must show. Subclasses provide the ``chain`` fixture."""

    @pytest.fixture
    async def chain(self) -> AsyncIterator[Chain]:
        raise NotImplementedError
        yield  # pragma: no cover

    async def test_deploy_returns_an_address_with_the_token_code(self, chain: Chain) -> None:
        deployed = await chain.deploy_token(spec(holder=OTHER))
        assert CHECKSUMMED.match(deployed.contract_address)
        assert re.match(r"^0x[0-9a-f]{64}$", deployed.tx_hash)
        assert deployed.holder == OTHER
        assert await chain.code_at(deployed.contract_address) == rwa_token_artifact().runtime_code

    async def test_initial_supply_goes_to_the_holder(self, chain: Chain) -> None:
        deployed = await chain.deploy_token(spec(holder=OTHER))
        assert await chain.total_supply(deployed.contract_address) == SUPPLY
        assert await chain.balance_of(deployed.contract_address, OTHER) == SUPPLY
        assert await chain.balance_of(deployed.contract_address, NOBODY) == 0

    async def test_addresses_are_accepted_in_any_letter_case(self, chain: Chain) -> None:
        deployed = await chain.deploy_token(spec(holder=OTHER))
        token = deployed.contract_address.lower()
        assert await chain.total_supply(token) == SUPPLY
        assert await chain.balance_of(token, OTHER.upper().replace("0X", "0x")) == SUPPLY

    async def test_custody_address_is_a_checksummed_address(self, chain: Chain) -> None:
        custody = await chain.custody_address()
        assert CHECKSUMMED.match(custody)
        assert custody != custody.lower()  # EIP-55 mixes letter case

    async def test_default_holder_is_the_custody_address(self, chain: Chain) -> None:
        custody = await chain.custody_address()
        deployed = await chain.deploy_token(spec())
        assert deployed.holder == custody
        assert await chain.balance_of(deployed.contract_address, custody) == SUPPLY

    async def test_two_deployments_get_different_addresses(self, chain: Chain) -> None:
        first = await chain.deploy_token(spec("ONE"))
        second = await chain.deploy_token(spec("ONE"))
        assert first.contract_address != second.contract_address
        assert first.tx_hash != second.tx_hash

    async def test_concurrent_deployments_all_succeed(self, chain: Chain) -> None:
        supplies = [SUPPLY + i for i in range(6)]
        deployed = await asyncio.gather(
            *(chain.deploy_token(spec(f"C{i}", supply=s)) for i, s in enumerate(supplies))
        )
        assert len({d.contract_address for d in deployed}) == len(supplies)
        for token, supply in zip(deployed, supplies, strict=True):
            assert await chain.total_supply(token.contract_address) == supply

    async def test_block_number_increases_with_deployments(self, chain: Chain) -> None:
        before = await chain.block_number()
        deployed = await chain.deploy_token(spec())
        assert deployed.block_number > before
        assert await chain.block_number() >= deployed.block_number

    async def test_code_at_an_unknown_address_is_empty(self, chain: Chain) -> None:
        assert await chain.code_at(NOBODY) == b""

    async def test_reading_a_token_where_there_is_none_is_a_chain_error(self, chain: Chain) -> None:
        with pytest.raises(ChainError):
            await chain.total_supply(NOBODY)
        with pytest.raises(ChainError):
            await chain.balance_of(NOBODY, OTHER)

    async def test_a_reverting_deployment_is_a_chain_error(self, chain: Chain) -> None:
        with pytest.raises(ChainError, match="ZeroAddress"):
            await chain.deploy_token(spec(holder=ZERO_ADDRESS))
        with pytest.raises(ChainError, match="ZeroAddress"):
            await chain.prepare_deployment(spec(holder=ZERO_ADDRESS))
        # the adapter recovers: the next deployment gets a correct nonce
        assert await chain.deploy_token(spec())

    async def test_invalid_input_is_a_chain_error(self, chain: Chain) -> None:
        with pytest.raises(ChainError):
            await chain.code_at("not-an-address")
        with pytest.raises(ChainError):
            await chain.deploy_token(spec(holder="0x1234"))
        with pytest.raises(ChainError):
            await chain.deploy_token(spec(supply=2**256))
        with pytest.raises(ChainError):
            await chain.deploy_token(
                TokenSpec(name="Six", symbol="SIX", decimals=6, initial_supply=1)
            )

    # -- prepare, send, follow (the split the service records between) -----------------------

    async def test_a_prepared_deployment_changes_nothing_until_sent(self, chain: Chain) -> None:
        custody = await chain.custody_address()
        before_block = await chain.block_number()
        before_nonce = await chain.confirmed_nonce(custody)
        prepared = await chain.prepare_deployment(spec("PREP", holder=OTHER))
        tx = prepared.transaction
        assert tx.signer == custody and tx.nonce == before_nonce
        assert re.match(r"^0x[0-9a-f]{64}$", tx.tx_hash)
        assert tx.raw_transaction.startswith("0x") and len(tx.raw_transaction) > 2
        assert CHECKSUMMED.match(prepared.contract_address) and prepared.holder == OTHER
        assert await chain.block_number() == before_block
        assert await chain.confirmed_nonce(custody) == before_nonce
        assert await chain.code_at(prepared.contract_address) == b""
        assert await chain.transaction_receipt(tx.tx_hash) is None

    async def test_sending_mines_the_predicted_contract(self, chain: Chain) -> None:
        custody = await chain.custody_address()
        prepared = await chain.prepare_deployment(spec("SEND", holder=OTHER))
        tx = prepared.transaction
        assert await chain.send_raw_transaction(tx.raw_transaction) == tx.tx_hash
        receipt = await chain.wait_for_receipt(tx.tx_hash)
        assert receipt.succeeded and receipt.tx_hash == tx.tx_hash
        assert receipt.contract_address == prepared.contract_address
        assert await chain.transaction_receipt(tx.tx_hash) == receipt
        assert await chain.confirmed_nonce(custody) == tx.nonce + 1
        assert await chain.total_supply(prepared.contract_address) == SUPPLY
        assert await chain.balance_of(prepared.contract_address, OTHER) == SUPPLY
        metadata = await chain.token_metadata(prepared.contract_address)
        assert (metadata.name, metadata.symbol, metadata.decimals) == ("SEND Token", "SEND", 18)

    async def test_sending_the_same_bytes_again_answers_the_same_hash(self, chain: Chain) -> None:
        custody = await chain.custody_address()
        prepared = await chain.prepare_deployment(spec("AGAIN"))
        raw = prepared.transaction.raw_transaction
        first = await chain.send_raw_transaction(raw)
        await chain.wait_for_receipt(first)
        block, nonce = await chain.block_number(), await chain.confirmed_nonce(custody)
        assert await chain.send_raw_transaction(raw) == first
        assert await chain.block_number() == block  # nothing new was mined
        assert await chain.confirmed_nonce(custody) == nonce

    async def test_a_used_nonce_is_refused_for_another_transaction(self, chain: Chain) -> None:
        one = await chain.prepare_deployment(spec("NONCE1"))
        two = await chain.prepare_deployment(spec("NONCE2"))  # same pending nonce: not sent yet
        assert one.transaction.nonce == two.transaction.nonce
        assert one.contract_address == two.contract_address
        await chain.wait_for_receipt(
            await chain.send_raw_transaction(one.transaction.raw_transaction)
        )
        with pytest.raises(ChainError):
            await chain.send_raw_transaction(two.transaction.raw_transaction)
        assert await chain.transaction_receipt(two.transaction.tx_hash) is None
        metadata = await chain.token_metadata(one.contract_address)
        assert metadata.symbol == "NONCE1"  # one contract at that address, the first one

    async def test_unknown_and_malformed_transactions(self, chain: Chain) -> None:
        assert await chain.transaction_receipt("0x" + "ab" * 32) is None
        with pytest.raises(ChainError):
            await chain.transaction_receipt("0x1234")
        with pytest.raises(ChainError):
            await chain.send_raw_transaction("0xdeadbeef")
        with pytest.raises(ChainError):
            await chain.send_raw_transaction("not hex")

    async def test_token_metadata_where_there_is_no_token_is_a_chain_error(
        self, chain: Chain
    ) -> None:
        with pytest.raises(ChainError):
            await chain.token_metadata(NOBODY)

    async def test_a_closed_adapter_refuses_work(self, chain: Chain) -> None:
        await chain.close()
        with pytest.raises(ChainError):
            await chain.block_number()


class TestMemoryChain(ChainContract):
    @pytest.fixture
    async def chain(self) -> AsyncIterator[Chain]:
        adapter = MemoryChain()
        yield adapter
        await adapter.close()


class TestEvmChain(ChainContract):
    @pytest.fixture
    async def chain(self) -> AsyncIterator[Chain]:
        adapter = EvmChain()
        yield adapter
        await adapter.close()

    async def test_a_missing_receipt_times_out_as_a_chain_error(self) -> None:
        adapter = EvmChain(receipt_timeout=0.3)
        adapter.ethereum_tester.disable_auto_mine_transactions()
        try:
            with pytest.raises(ChainError, match="no receipt"):
                await adapter.deploy_token(spec())
        finally:
            await adapter.close()


class TestDurableEvmChain(ChainContract):
    """The embedded profile's chain: the same contract with its state in a SQLite file."""

    @pytest.fixture
    async def chain(self, tmp_path: Path) -> AsyncIterator[Chain]:
        adapter = EvmChain(data_dir=tmp_path)
        yield adapter
        await adapter.close()


@pytest.mark.hardhat
class TestWeb3ChainOnHardhat(ChainContract):
    @pytest.fixture
    async def chain(self, hardhat_url: str) -> AsyncIterator[Chain]:
        adapter = Web3Chain(hardhat_url, HARDHAT_DEV_KEY, chain_id=31337, receipt_timeout=30)
        yield adapter
        await adapter.close()

    async def test_a_chain_id_mismatch_is_a_chain_error(self, hardhat_url: str) -> None:
        adapter = Web3Chain(hardhat_url, HARDHAT_DEV_KEY, chain_id=23294)
        try:
            with pytest.raises(ChainError, match="31337"):
                await adapter.deploy_token(spec())
        finally:
            await adapter.close()


class TestWeb3ChainUnreachable:
    """A node that is not there fails fast, as ``ChainError``, without leaking the URL path."""

    @pytest.fixture
    async def chain(self) -> AsyncIterator[Web3Chain]:
        url = f"http://127.0.0.1:{free_port()}/secret-api-key"
        adapter = Web3Chain(url, HARDHAT_DEV_KEY, request_timeout=2.0)
        yield adapter
        await adapter.close()

    async def test_deploy_token_raises_chain_error(self, chain: Web3Chain) -> None:
        started = time.monotonic()
        with pytest.raises(ChainError, match="cannot reach") as caught:
            await chain.deploy_token(spec())
        assert time.monotonic() - started < 5
        assert "secret-api-key" not in caught.value.message

    async def test_block_number_raises_chain_error(self, chain: Web3Chain) -> None:
        started = time.monotonic()
        with pytest.raises(ChainError, match="cannot reach"):
            await chain.block_number()
        assert time.monotonic() - started < 5

    def test_a_bad_private_key_is_a_chain_error_that_hides_the_key(self) -> None:
        with pytest.raises(ChainError) as caught:
            Web3Chain("http://127.0.0.1:1", "0xnot-a-key-deadbeef")
        assert "deadbeef" not in str(caught.value)
