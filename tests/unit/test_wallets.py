"""Wallets in the core with the real adapters (memory storage, bip-utils keys, eth-account
signatures): custodial addresses by user number, and external addresses proven by a signed,
single-use, expiring challenge, each registration audited with it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from adapters.outbound.custody.eth_signatures import EthAccountSignatureVerifier
from adapters.outbound.custody.hd_keys import BipUtilsKeyDerivation, InvalidMnemonic
from adapters.outbound.storage.memory import MemoryStorage
from adapters.outbound.storage.sql import SqlStorage
from adapters.outbound.storage.sql.migrate import upgrade_async
from core.ports.audit import AuditFilter
from core.ports.clock import Clock
from core.ports.custody import derivation_path
from core.ports.storage import Storage
from core.shared.errors import PermissionDenied
from core.shared.events import Actor
from core.tokens.wallets import (
    ChallengeExpired,
    ChallengeNotFound,
    ChallengeUsed,
    SignatureMismatch,
    WalletUseCases,
)
from settings import DEV_CUSTODY_MNEMONIC

ALICE = Actor(id="alice", roles=("trader",))
BOB = Actor(id="bob", roles=("trader",))
ADMIN = Actor(id="admin-1", roles=("admin",))
# Hardhat's accounts 1 and 2 of the public DEVELOPMENT-ONLY mnemonic (m/44'/60'/0'/0/1 and /2)
ACCOUNT_1 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
ACCOUNT_2 = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
OUTSIDE_KEY = Account.from_key("0x" + "11" * 32)
OTHER_KEY = Account.from_key("0x" + "22" * 32)


class StepClock(Clock):
    def __init__(self) -> None:
        self.at = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at


def sign(key: object, message: str) -> str:
    signed = key.sign_message(encode_defunct(text=message))  # type: ignore[attr-defined]
    return "0x" + bytes(signed.signature).hex()


@pytest.fixture
def clock() -> StepClock:
    return StepClock()


@pytest.fixture(params=["memory", "sqlite"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    if request.param == "memory":
        found: Storage = MemoryStorage()
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'wallets.db'}"
        await upgrade_async(url)
        found = SqlStorage(url)
    yield found
    await found.close()


@pytest.fixture
def wallets(storage: Storage, clock: StepClock) -> WalletUseCases:
    keys = BipUtilsKeyDerivation(DEV_CUSTODY_MNEMONIC)
    return WalletUseCases(
        storage, keys, EthAccountSignatureVerifier(), clock, challenge_ttl_seconds=60
    )


def test_the_derivation_follows_bip44_and_matches_the_known_accounts() -> None:
    keys = BipUtilsKeyDerivation(DEV_CUSTODY_MNEMONIC)
    assert keys.address_for(0) == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    assert keys.address_for(1) == ACCOUNT_1
    assert keys.address_for(2) == ACCOUNT_2
    assert derivation_path(7) == "m/44'/60'/0'/0/7"
    signer = keys.signer_for(2)
    assert signer.address == ACCOUNT_2
    signature = signer.sign_message("hello")
    assert EthAccountSignatureVerifier().recover_signer("hello", signature) == ACCOUNT_2
    payload = signer.sign_transaction(
        {
            "to": ACCOUNT_1,
            "value": 1,
            "nonce": 0,
            "gas": 21_000,
            "maxFeePerGas": 10**9,
            "maxPriorityFeePerGas": 1,
            "chainId": 31337,
        }
    )
    recovered = Account.recover_transaction(payload.raw_transaction)
    assert recovered == ACCOUNT_2
    assert payload.tx_hash.startswith("0x") and len(payload.tx_hash) == 66
    other = BipUtilsKeyDerivation("abandon " * 11 + "about")
    assert other.address_for(1) != ACCOUNT_1
    assert "test" not in repr(keys)
    for bad in (-1, 2**31, True):
        with pytest.raises(ValueError):
            keys.address_for(bad)


def test_an_invalid_mnemonic_is_refused() -> None:
    with pytest.raises(InvalidMnemonic):
        BipUtilsKeyDerivation("test test test test test test test test test test test test")


async def test_users_get_custodial_addresses_by_number_once(wallets: WalletUseCases) -> None:
    first = await wallets.wallet(ALICE, "alice")
    second = await wallets.wallet(BOB, "bob")
    assert (first.address, first.custody, first.verified_on_chain) == (
        ACCOUNT_1,
        "platform",
        False,
    )
    assert second.address == ACCOUNT_2
    assert await wallets.wallet(ALICE, "alice") == first
    assert await wallets.wallet(ADMIN, "bob") == second


async def test_racing_first_reads_give_one_address(wallets: WalletUseCases) -> None:
    found = await asyncio.gather(*(wallets.wallet(ALICE, "alice") for _ in range(5)))
    assert {w.address for w in found} == {ACCOUNT_1}


async def test_a_trader_acts_only_on_their_own_wallet(wallets: WalletUseCases) -> None:
    with pytest.raises(PermissionDenied):
        await wallets.wallet(ALICE, "bob")
    with pytest.raises(PermissionDenied):
        await wallets.challenge(ALICE, "bob")
    challenge = await wallets.challenge(BOB, "bob")
    with pytest.raises(PermissionDenied):
        await wallets.register_external(
            ALICE, "bob", OUTSIDE_KEY.address, sign(OUTSIDE_KEY, challenge.message)
        )
    nobody = Actor(id="bob", roles=())
    with pytest.raises(PermissionDenied):
        await wallets.wallet(nobody, "bob")


async def test_a_signed_challenge_registers_the_address_and_audits_it(
    wallets: WalletUseCases, storage: Storage, clock: StepClock
) -> None:
    custodial = await wallets.wallet(ALICE, "alice")
    challenge = await wallets.challenge(ALICE, "alice")
    assert "User: alice" in challenge.message and challenge.id in challenge.message
    assert challenge.expires_at == clock.at + timedelta(seconds=60)
    registered = await wallets.register_external(
        ALICE, "alice", OUTSIDE_KEY.address.lower(), sign(OUTSIDE_KEY, challenge.message)
    )
    assert (registered.address, registered.custody) == (OUTSIDE_KEY.address, "external")
    assert await wallets.wallet(ALICE, "alice") == registered
    async with storage.unit_of_work(read_only=True) as uow:
        (entry,) = await uow.audit.query(AuditFilter(action="wallet.register_external"), limit=5)
    assert (entry.actor_id, entry.subject, entry.at) == ("alice", "user:alice", clock.at)
    assert entry.before == {"address": custodial.address, "custody": "platform"}
    assert entry.after == {
        "address": OUTSIDE_KEY.address,
        "custody": "external",
        "challengeId": challenge.id,
    }


async def test_a_challenge_is_used_once(wallets: WalletUseCases) -> None:
    challenge = await wallets.challenge(ALICE, "alice")
    signature = sign(OUTSIDE_KEY, challenge.message)
    await wallets.register_external(ALICE, "alice", OUTSIDE_KEY.address, signature)
    with pytest.raises(ChallengeUsed):
        await wallets.register_external(ALICE, "alice", OUTSIDE_KEY.address, signature)
    with pytest.raises(ChallengeUsed):
        await wallets.register_external(
            ALICE, "alice", OUTSIDE_KEY.address, signature, challenge_id=challenge.id
        )


async def test_two_registrations_racing_with_one_challenge(
    wallets: WalletUseCases, storage: Storage
) -> None:
    challenge = await wallets.challenge(ALICE, "alice")
    attempts = [
        wallets.register_external(
            ALICE, "alice", key.address, sign(key, challenge.message), challenge_id=challenge.id
        )
        for key in (OUTSIDE_KEY, OTHER_KEY)
    ]
    outcomes = await asyncio.gather(*attempts, return_exceptions=True)
    assert sum(not isinstance(o, BaseException) for o in outcomes) == 1
    async with storage.unit_of_work(read_only=True) as uow:
        entries = await uow.audit.query(AuditFilter(), limit=5)
    assert len(entries) == 1


async def test_a_wrong_signer_is_refused_and_the_challenge_stays_usable(
    wallets: WalletUseCases, storage: Storage
) -> None:
    challenge = await wallets.challenge(ALICE, "alice")
    with pytest.raises(SignatureMismatch):
        await wallets.register_external(
            ALICE, "alice", OUTSIDE_KEY.address, sign(OTHER_KEY, challenge.message)
        )
    with pytest.raises(SignatureMismatch):  # the right key, but another text
        await wallets.register_external(
            ALICE, "alice", OUTSIDE_KEY.address, sign(OUTSIDE_KEY, challenge.message + ".")
        )
    async with storage.unit_of_work(read_only=True) as uow:
        assert await uow.audit.query(AuditFilter(), limit=5) == []
    registered = await wallets.register_external(
        ALICE, "alice", OUTSIDE_KEY.address, sign(OUTSIDE_KEY, challenge.message)
    )
    assert registered.custody == "external"


async def test_an_expired_challenge_is_refused(wallets: WalletUseCases, clock: StepClock) -> None:
    challenge = await wallets.challenge(ALICE, "alice")
    clock.at += timedelta(seconds=60)
    with pytest.raises(ChallengeExpired):
        await wallets.register_external(
            ALICE, "alice", OUTSIDE_KEY.address, sign(OUTSIDE_KEY, challenge.message)
        )


async def test_a_missing_or_foreign_challenge_is_not_found(
    wallets: WalletUseCases, storage: Storage
) -> None:
    with pytest.raises(ChallengeNotFound):
        await wallets.register_external(ALICE, "alice", OUTSIDE_KEY.address, "0x" + "00" * 65)
    async with storage.unit_of_work(read_only=True) as uow:
        assert await uow.wallets.get("alice") is None  # a refused registration stores nothing
    bobs = await wallets.challenge(BOB, "bob")
    with pytest.raises(ChallengeNotFound):
        await wallets.register_external(
            ALICE,
            "alice",
            OUTSIDE_KEY.address,
            sign(OUTSIDE_KEY, bobs.message),
            challenge_id=bobs.id,
        )
