"""One contract suite for the Chain port, run by every adapter: memory, in-process EVM, RPC.

The T-REX flows the service relies on: a market's suite deployed step by step (the supply
minted to a verified issuer, the token unpaused), the agent's pause, mint, burn, freeze and
forced transfer, and the refusals: a transfer to an unverified address, a forced transfer
from an address to itself (our code, before signing), pausing a paused token.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import pytest

from adapters.outbound.chain.evm import EvmChain
from adapters.outbound.chain.memory import MemoryChain
from adapters.outbound.chain.trex.artifacts import TrexContract, trex_artifact
from adapters.outbound.chain.web3_rpc import Web3Chain
from adapters.outbound.custody.eth_signatures import EthAccountTransactionSigner
from core.ports.chain import (
    PLATFORM_STEPS,
    TOKEN_STEP,
    Chain,
    IdentityCall,
    IdentityCallKind,
    PlatformContracts,
    SuiteSpec,
    TokenCall,
    TokenCallKind,
    suite_steps,
)
from core.shared.errors import ChainError
from tests.harness.common import free_port
from tests.harness.hardhat import HARDHAT_DEV_KEY

SUPPLY = 1_000_000 * 10**18  # far beyond 64 bits: no silent int overflow anywhere
ISSUER = "0x1111111111111111111111111111111111111111"
NOBODY = "0xabababababababababababababababababababab"
CHECKSUMMED = re.compile(r"^0x[0-9a-fA-F]{40}$")
TX_HASH = re.compile(r"^0x[0-9a-f]{64}$")


def suite(
    platform: PlatformContracts,
    symbol: str = "RWA",
    *,
    countries: tuple[str, ...] = (),
    accredited: bool = False,
    country: str = "DE",
) -> SuiteSpec:
    return SuiteSpec(
        name=f"{symbol} Token",
        symbol=symbol,
        decimals=18,
        supply=SUPPLY,
        issuer=ISSUER,
        issuer_country=country,
        platform=platform,
        accredited_only=accredited,
        allowed_countries=countries,
    )


async def deployed(chain: Chain, symbol: str = "RWA", **options: object) -> str:
    """A market's token, its whole suite deployed; the token's address."""
    platform = await chain.deploy_platform()
    created = await chain.deploy_suite(suite(platform, symbol, **options))  # type: ignore[arg-type]
    return created[TOKEN_STEP]


async def call(chain: Chain, kind: TokenCallKind, token: str, *args: str, amount: int = 0) -> None:
    account = args[0] if args else None
    receiver = args[1] if len(args) > 1 else None
    await chain.call_token(TokenCall(kind, token, account, receiver, amount))


class ChainContract:
    """The behaviour every ``Chain`` adapter must show. Subclasses provide the ``chain`` fixture."""

    @pytest.fixture
    async def chain(self) -> AsyncIterator[Chain]:
        raise NotImplementedError
        yield  # pragma: no cover

    # -- a market's suite ------------------------------------------------------------------

    async def test_a_suite_mints_the_supply_to_its_verified_issuer_and_runs(
        self, chain: Chain
    ) -> None:
        token = await deployed(chain, "TWR")
        assert CHECKSUMMED.match(token)
        assert await chain.code_at(token) == trex_artifact(TrexContract.TOKEN).runtime_code
        assert await chain.total_supply(token) == SUPPLY
        assert await chain.balance_of(token, ISSUER) == SUPPLY
        assert await chain.balance_of(token, NOBODY) == 0
        assert await chain.is_verified(token, ISSUER)
        assert not await chain.is_verified(token, NOBODY)
        assert not await chain.is_paused(token)
        metadata = await chain.token_metadata(token)
        assert (metadata.name, metadata.symbol, metadata.decimals) == ("TWR Token", "TWR", 18)

    async def test_two_suites_register_the_issuers_one_identity(self, chain: Chain) -> None:
        platform = await chain.deploy_platform()
        async with chain.signing_lock:
            deploy = await chain.prepare_identity_call(IdentityCall(kind=IdentityCallKind.DEPLOY))
            identity = (await chain.execute(deploy)).contract_address
        assert identity is not None
        for symbol in ("ONE", "TWO"):
            spec = attrs.evolve(suite(platform, symbol), issuer_identity=identity)
            assert "identity" not in suite_steps(spec)
            created = await chain.deploy_suite(spec)
            token = created[TOKEN_STEP]
            held = await chain.registered_identity(token, ISSUER)
            assert held is not None and held.identity == identity
            assert await chain.is_verified(token, ISSUER)
            assert await chain.balance_of(token, ISSUER) == SUPPLY

    async def test_addresses_are_accepted_in_any_letter_case(self, chain: Chain) -> None:
        token = (await deployed(chain)).lower()
        assert await chain.total_supply(token) == SUPPLY
        assert await chain.balance_of(token, ISSUER.upper().replace("0X", "0x")) == SUPPLY

    async def test_restricted_countries_and_accreditation(self, chain: Chain) -> None:
        platform = await chain.deploy_platform()
        spec = suite(platform, "ACC", countries=("DE", "FR"), accredited=True)
        steps = suite_steps(spec)
        assert "compliance.allow_countries" in steps and "identity.claim:2" in steps
        token = (await chain.deploy_suite(spec))[TOKEN_STEP]
        assert await chain.is_verified(token, ISSUER)
        assert await chain.balance_of(token, ISSUER) == SUPPLY
        # an issuer from a country the market does not allow is refused before signing
        with pytest.raises(ChainError, match="not allowed"):
            await chain.prepare_suite_step(
                suite(platform, "NO", countries=("FR",), country="DE"), "storage", {}
            )

    async def test_a_step_before_its_contracts_exist_is_a_chain_error(self, chain: Chain) -> None:
        platform = await chain.deploy_platform()
        with pytest.raises(ChainError, match="not created"):
            await chain.prepare_suite_step(suite(platform), "storage.init", {})
        with pytest.raises(ChainError):
            await chain.prepare_suite_step(suite(platform), "no-such-step", {})
        with pytest.raises(ChainError):
            await chain.prepare_platform_step("country_module.init", {})

    # -- the agent's functions and what the token refuses ----------------------------------

    async def test_a_forced_transfer_to_an_unverified_address_reverts(self, chain: Chain) -> None:
        token = await deployed(chain)
        custody = await chain.custody_address()
        nonce = await chain.confirmed_nonce(custody)
        with pytest.raises(ChainError):
            await call(chain, TokenCallKind.FORCED_TRANSFER, token, ISSUER, NOBODY, amount=1)
        with pytest.raises(ChainError):
            await call(chain, TokenCallKind.MINT, token, NOBODY, amount=1)
        assert await chain.confirmed_nonce(custody) == nonce  # refused before it was signed
        assert await chain.balance_of(token, NOBODY) == 0

    async def test_a_forced_transfer_to_oneself_is_refused_by_our_code(self, chain: Chain) -> None:
        token = await deployed(chain)
        with pytest.raises(ChainError, match="itself"):
            await call(chain, TokenCallKind.FORCED_TRANSFER, token, ISSUER, ISSUER, amount=1)
        with pytest.raises(ChainError, match="itself"):
            await chain.prepare_token_call(
                TokenCall(TokenCallKind.FORCED_TRANSFER, token, ISSUER, ISSUER.lower(), 1)
            )
        assert await chain.balance_of(token, ISSUER) == SUPPLY

    async def test_pause_and_unpause_by_the_agent(self, chain: Chain) -> None:
        token = await deployed(chain)
        await call(chain, TokenCallKind.PAUSE, token)
        assert await chain.is_paused(token)
        with pytest.raises(ChainError):  # a paused token cannot be paused again
            await call(chain, TokenCallKind.PAUSE, token)
        await call(chain, TokenCallKind.UNPAUSE, token)
        assert not await chain.is_paused(token)
        with pytest.raises(ChainError):
            await call(chain, TokenCallKind.UNPAUSE, token)

    async def test_mint_burn_and_freeze_by_the_agent(self, chain: Chain) -> None:
        token = await deployed(chain)
        await call(chain, TokenCallKind.MINT, token, ISSUER, amount=5)
        assert await chain.total_supply(token) == SUPPLY + 5
        await call(chain, TokenCallKind.BURN, token, ISSUER, amount=SUPPLY)
        assert await chain.balance_of(token, ISSUER) == 5
        with pytest.raises(ChainError):
            await call(chain, TokenCallKind.BURN, token, ISSUER, amount=6)
        await call(chain, TokenCallKind.FREEZE, token, ISSUER)
        await call(chain, TokenCallKind.UNFREEZE, token, ISSUER)
        assert await chain.total_supply(token) == 5

    async def test_amounts_outside_uint256_are_refused(self, chain: Chain) -> None:
        token = await deployed(chain)
        for amount in (0, -1, 2**256):
            with pytest.raises(ChainError):
                await call(chain, TokenCallKind.MINT, token, ISSUER, amount=amount)

    async def test_the_stablecoin_has_six_decimals(self, chain: Chain) -> None:
        async with chain.signing_lock:
            receipt = await chain.execute(await chain.prepare_stablecoin("USD Coin", "USDC"))
        assert receipt.contract_address is not None
        metadata = await chain.token_metadata(receipt.contract_address)
        assert (metadata.name, metadata.symbol, metadata.decimals) == ("USD Coin", "USDC", 6)
        assert await chain.total_supply(receipt.contract_address) == 0

    async def test_the_stablecoin_mints_to_and_transfers_from_the_omnibus(
        self, chain: Chain
    ) -> None:
        async with chain.signing_lock:
            receipt = await chain.execute(await chain.prepare_stablecoin("USD Coin", "USDC"))
        coin = receipt.contract_address
        assert coin is not None
        omnibus = await chain.custody_address()
        await call(chain, TokenCallKind.MINT, coin, omnibus, amount=10)
        sent = await chain.call_token(TokenCall(TokenCallKind.TRANSFER, coin, NOBODY, None, 4))
        assert await chain.balance_of(coin, omnibus) == 6
        assert await chain.balance_of(coin, NOBODY) == 4
        with pytest.raises(ChainError):  # more than the omnibus holds
            await chain.call_token(TokenCall(TokenCallKind.TRANSFER, coin, NOBODY, None, 7))
        head = await chain.block_number()
        [to_nobody] = await chain.transfer_logs(coin, 0, head, frozenset({NOBODY}))
        assert (to_nobody.sender, to_nobody.receiver.lower(), to_nobody.amount) == (
            omnibus,
            NOBODY,
            4,
        )
        assert (to_nobody.tx_hash, to_nobody.block_number) == (sent.tx_hash, sent.block_number)
        assert TX_HASH.match(to_nobody.tx_hash) and to_nobody.log_index >= 0
        [minted] = await chain.transfer_logs(coin, 0, head, frozenset({omnibus}))
        assert (int(minted.sender, 16), minted.amount) == (0, 10)
        assert (
            await chain.transfer_logs(coin, sent.block_number + 1, head, frozenset({NOBODY})) == []
        )

    async def test_a_custodial_key_sweeps_its_deposit_once_funded_with_gas(
        self, chain: Chain
    ) -> None:
        async with chain.signing_lock:
            receipt = await chain.execute(await chain.prepare_stablecoin("USD Coin", "USDC"))
        coin = receipt.contract_address
        assert coin is not None
        omnibus = await chain.custody_address()
        signer = EthAccountTransactionSigner(secrets.token_bytes(32))  # a fresh deposit key
        deposit = signer.address
        await call(chain, TokenCallKind.MINT, coin, omnibus, amount=10)
        await chain.call_token(TokenCall(TokenCallKind.TRANSFER, coin, deposit, None, 7))
        assert await chain.native_balance(deposit) == 0
        with pytest.raises(ChainError):  # no native coin for its gas: refused before signing
            await chain.prepare_custodial_transfer(signer, coin, omnibus, 7)

        fee = await chain.custodial_transfer_fee(coin, deposit, omnibus, 7)
        assert fee > 0
        async with chain.signing_lock:
            funding = await chain.prepare_native_transfer(deposit, fee)
            assert funding.transaction.signer == omnibus and funding.contract_address is None
            await chain.execute(funding)
        assert await chain.native_balance(deposit) == fee
        with pytest.raises(ChainError):  # more than the address holds
            await chain.prepare_custodial_transfer(signer, coin, omnibus, 8)

        prepared = await chain.prepare_custodial_transfer(signer, coin, omnibus, 7)
        tx = prepared.transaction
        assert (tx.signer, tx.nonce, prepared.contract_address) == (deposit, 0, None)
        assert await chain.balance_of(coin, deposit) == 7  # nothing moves until it is sent
        assert await chain.send_raw_transaction(tx.raw_transaction) == tx.tx_hash
        swept = await chain.wait_for_receipt(tx.tx_hash)
        assert swept.succeeded
        assert await chain.send_raw_transaction(tx.raw_transaction) == tx.tx_hash  # no-op
        assert await chain.balance_of(coin, deposit) == 0
        assert await chain.balance_of(coin, omnibus) == 10
        assert await chain.confirmed_nonce(deposit) == 1
        assert 0 <= await chain.native_balance(deposit) < fee  # it paid its own gas
        head = await chain.block_number()
        logs = await chain.transfer_logs(coin, swept.block_number, head, frozenset({omnibus}))
        assert [(log.sender, log.amount, log.tx_hash) for log in logs] == [(deposit, 7, tx.tx_hash)]
        with pytest.raises(ChainError):  # value outside 1 .. 2**256 - 1
            await chain.prepare_native_transfer(deposit, 0)

    async def test_transfer_logs_of_a_t_rex_mint_name_their_receiver(self, chain: Chain) -> None:
        token = await deployed(chain)
        head = await chain.block_number()
        [supply] = await chain.transfer_logs(token, 0, head, frozenset({ISSUER}))
        assert supply.amount == SUPPLY and supply.token == token
        await call(chain, TokenCallKind.MINT, token, ISSUER, amount=5)
        later = await chain.transfer_logs(
            token, head + 1, await chain.block_number(), frozenset({ISSUER})
        )
        assert [log.amount for log in later] == [5]

    # -- reads ---------------------------------------------------------------------------------

    async def test_custody_address_is_a_checksummed_address(self, chain: Chain) -> None:
        custody = await chain.custody_address()
        assert CHECKSUMMED.match(custody)
        assert custody != custody.lower()  # EIP-55 mixes letter case

    async def test_code_at_an_unknown_address_is_empty(self, chain: Chain) -> None:
        assert await chain.code_at(NOBODY) == b""

    async def test_reading_a_token_where_there_is_none_is_a_chain_error(self, chain: Chain) -> None:
        for read in (
            chain.total_supply(NOBODY),
            chain.balance_of(NOBODY, ISSUER),
            chain.token_metadata(NOBODY),
            chain.is_paused(NOBODY),
        ):
            with pytest.raises(ChainError):
                await read
        with pytest.raises(ChainError):
            await chain.code_at("not-an-address")

    # -- prepare, send, follow (the split the service records between) -----------------------

    async def test_a_prepared_transaction_changes_nothing_until_sent(self, chain: Chain) -> None:
        custody = await chain.custody_address()
        before_block = await chain.block_number()
        before_nonce = await chain.confirmed_nonce(custody)
        prepared = await chain.prepare_platform_step(PLATFORM_STEPS[0], {})
        tx = prepared.transaction
        assert tx.signer == custody and tx.nonce == before_nonce
        assert TX_HASH.match(tx.tx_hash)
        assert tx.raw_transaction.startswith("0x") and len(tx.raw_transaction) > 2
        assert prepared.contract_address is not None
        assert CHECKSUMMED.match(prepared.contract_address)
        assert await chain.block_number() == before_block
        assert await chain.confirmed_nonce(custody) == before_nonce
        assert await chain.code_at(prepared.contract_address) == b""
        assert await chain.transaction_receipt(tx.tx_hash) is None

    async def test_sending_mines_the_predicted_contract(self, chain: Chain) -> None:
        custody = await chain.custody_address()
        prepared = await chain.prepare_platform_step(PLATFORM_STEPS[0], {})
        tx = prepared.transaction
        assert await chain.send_raw_transaction(tx.raw_transaction) == tx.tx_hash
        receipt = await chain.wait_for_receipt(tx.tx_hash)
        assert receipt.succeeded and receipt.tx_hash == tx.tx_hash
        assert receipt.contract_address == prepared.contract_address
        assert receipt.contract_address is not None
        assert await chain.transaction_receipt(tx.tx_hash) == receipt
        assert await chain.confirmed_nonce(custody) == tx.nonce + 1
        expected = trex_artifact(TrexContract.CLAIM_ISSUER).runtime_code
        assert await chain.code_at(receipt.contract_address) == expected

    async def test_a_call_creates_no_contract(self, chain: Chain) -> None:
        token = await deployed(chain)
        prepared = await chain.prepare_token_call(TokenCall(TokenCallKind.PAUSE, token))
        assert prepared.contract_address is None
        async with chain.signing_lock:
            receipt = await chain.execute(prepared)
        assert receipt.contract_address is None and receipt.succeeded

    async def test_sending_the_same_bytes_again_answers_the_same_hash(self, chain: Chain) -> None:
        custody = await chain.custody_address()
        prepared = await chain.prepare_platform_step(PLATFORM_STEPS[0], {})
        raw = prepared.transaction.raw_transaction
        first = await chain.send_raw_transaction(raw)
        await chain.wait_for_receipt(first)
        block, nonce = await chain.block_number(), await chain.confirmed_nonce(custody)
        assert await chain.send_raw_transaction(raw) == first
        assert await chain.block_number() == block  # nothing new was mined
        assert await chain.confirmed_nonce(custody) == nonce

    async def test_a_used_nonce_is_refused_for_another_transaction(self, chain: Chain) -> None:
        one = await chain.prepare_platform_step("claim_issuer", {})
        two = await chain.prepare_platform_step("country_module", {})  # same pending nonce
        assert one.transaction.nonce == two.transaction.nonce
        assert one.contract_address == two.contract_address
        await chain.wait_for_receipt(
            await chain.send_raw_transaction(one.transaction.raw_transaction)
        )
        with pytest.raises(ChainError):
            await chain.send_raw_transaction(two.transaction.raw_transaction)
        assert await chain.transaction_receipt(two.transaction.tx_hash) is None
        assert one.contract_address is not None
        code = await chain.code_at(one.contract_address)  # one contract there, the first one
        assert code == trex_artifact(TrexContract.CLAIM_ISSUER).runtime_code

    async def test_unknown_and_malformed_transactions(self, chain: Chain) -> None:
        assert await chain.transaction_receipt("0x" + "ab" * 32) is None
        with pytest.raises(ChainError):
            await chain.transaction_receipt("0x1234")
        with pytest.raises(ChainError):
            await chain.send_raw_transaction("0xdeadbeef")
        with pytest.raises(ChainError):
            await chain.send_raw_transaction("not hex")

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

    async def test_a_transaction_is_sent_only_with_its_senders_signature(self) -> None:
        chain = MemoryChain()
        async with chain.signing_lock:
            receipt = await chain.execute(await chain.prepare_stablecoin("USD Coin", "USDC"))
        coin = receipt.contract_address or ""
        holder, thief = (EthAccountTransactionSigner(secrets.token_bytes(32)) for _ in range(2))
        omnibus = await chain.custody_address()
        await call(chain, TokenCallKind.MINT, coin, omnibus, amount=5)
        await chain.call_token(TokenCall(TokenCallKind.TRANSFER, coin, holder.address, None, 5))
        for who in (holder, thief):
            async with chain.signing_lock:
                fee = await chain.custodial_transfer_fee(coin, who.address, omnibus, 5)
                await chain.execute(await chain.prepare_native_transfer(who.address, fee))
        prepared = await chain.prepare_custodial_transfer(holder, coin, omnibus, 5)
        raw = bytes.fromhex(prepared.transaction.raw_transaction[2:]).decode()
        # the thief's signature on the holder's transaction, or the holder's bytes claimed
        # for the platform: both refused
        body = json.loads(raw[raw.index("{") :])
        signature = body.pop("signature")
        forged = {**body, "signature": thief.sign_message(json.dumps(body, sort_keys=True))}
        platform = {**body, "from": omnibus}
        for wrong in (
            forged,
            platform,
            {
                **body,
                "signature": signature[:10]
                + ("0" if signature[10] != "0" else "1")
                + signature[11:],
            },
        ):
            text = raw[: raw.index("{")] + json.dumps(wrong, sort_keys=True)
            with pytest.raises(ChainError):
                await chain.send_raw_transaction("0x" + text.encode().hex())
        assert await chain.balance_of(coin, holder.address) == 5
        await chain.send_raw_transaction(prepared.transaction.raw_transaction)
        assert await chain.balance_of(coin, omnibus) == 5


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
                await adapter.deploy_platform()
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
                await adapter.prepare_platform_step(PLATFORM_STEPS[0], {})
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

    async def test_preparing_raises_chain_error(self, chain: Web3Chain) -> None:
        started = time.monotonic()
        with pytest.raises(ChainError, match="cannot reach") as caught:
            await chain.prepare_platform_step(PLATFORM_STEPS[0], {})
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
