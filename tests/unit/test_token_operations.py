"""Mint, transfer and withdrawal use cases and their jobs on the memory storage and the
memory chain: what reaches the ledger, the chain and the audit log, and what a refusal
leaves behind (nothing)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import attrs
import pytest
from rich.console import Console

from adapters.inbound.pollers.token_jobs import TokenJobScheduler
from adapters.inbound.reconcile_cli import run_reconcile
from adapters.outbound.chain.memory import MemoryChain
from adapters.outbound.clock.system import SystemClock
from adapters.outbound.custody.eth_signatures import EthAccountSignatureVerifier
from adapters.outbound.custody.hd_keys import BipUtilsKeyDerivation
from adapters.outbound.jobs.memory import MemoryJobQueue
from adapters.outbound.permissions.local import LocalPolicyPermissions
from adapters.outbound.storage.memory import MemoryStorage
from core.ledger.model import AccountRef, InsufficientFunds
from core.ports.audit import AuditFilter
from core.ports.chain import TOKEN_STEP, SuiteSpec, TokenCall, TokenCallKind
from core.ports.clock import Clock
from core.ports.custody import MalformedAddress
from core.ports.deployments import DeploymentRecord, DeploymentState
from core.ports.jobs import Job
from core.shared.authorization import Authorizer
from core.shared.errors import ChainError, PermissionDenied, ValidationFailed
from core.shared.events import Actor
from core.shared.lease import StorageLease
from core.tokens.chain_mirror import ChainMirror
from core.tokens.compliance import ComplianceDenied
from core.tokens.compliance_use_cases import ComplianceUseCases, SetCompliance
from core.tokens.custodial_addresses import WithdrawalToPlatformAddress
from core.tokens.deposits import DepositUseCases, cursor_key
from core.tokens.jobs import (
    MintTokenJob,
    ProcessTransferJob,
    ProcessWithdrawalJob,
    SweepDepositJob,
)
from core.tokens.mint import MintUseCases
from core.tokens.model import Token, TokenType, UserNotFound
from core.tokens.operations import (
    Deposit,
    DepositStatus,
    IdempotencyKeyReused,
    Mint,
    OperationStatus,
    SelfTransfer,
    TokenNotOnChain,
    WithdrawalNotPending,
    WithdrawalStatus,
)
from core.tokens.reconcile import Reconciliation
from core.tokens.sweeps import DepositSweeper, sweep_subject
from core.tokens.transfers import TransferUseCases
from core.tokens.withdrawals import WithdrawalUseCases
from settings import DEV_CUSTODY_MNEMONIC

T0 = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
ADMIN = Actor(id="admin-1", roles=("admin",))
ALICE = Actor(id="alice", roles=("trader",))
BOB = Actor(id="bob", roles=("trader",))
OUTSIDE = "0x00000000000000000000000000000000000000Aa".lower()


class StepClock(Clock):
    def __init__(self) -> None:
        self.at = T0

    def now(self) -> datetime:
        self.at += timedelta(milliseconds=1)
        return self.at


def approved(**overrides: object) -> SetCompliance:
    fields: dict[str, object] = {
        "kyc_status": "APPROVED",
        "whitelisted": True,
        "accredited": False,
        "jurisdiction": "PT",
        "expires_at": "2027-01-01T00:00:00Z",
    }
    fields.update(overrides)
    return SetCompliance(**fields)


@attrs.define
class Env:
    storage: MemoryStorage
    chain: MemoryChain
    jobs: MemoryJobQueue
    mirror: ChainMirror
    mints: MintUseCases
    transfers: TransferUseCases
    withdrawals: WithdrawalUseCases
    compliance: ComplianceUseCases
    usdc: Token
    gold: Token  # RWA, 2 decimals; alice is its verified holder on chain

    async def balance(self, user: str, token: Token) -> tuple[int, int]:
        async with self.storage.unit_of_work(read_only=True) as uow:
            row = await uow.ledger.balance(AccountRef.user(user, token.id))
        return row.available, row.locked

    async def audit_actions(self) -> list[str]:
        async with self.storage.unit_of_work(read_only=True) as uow:
            entries = await uow.audit.query(AuditFilter(), limit=100)
        return [e.action for e in reversed(entries)]

    async def mint(self, user: str, token: Token, amount: str, key: str) -> None:
        await self.mints.request(ADMIN, token.symbol, key, user, amount)
        await self.jobs.join(5)


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    storage = MemoryStorage()
    chain = MemoryChain()
    clock = StepClock()
    jobs = MemoryJobQueue()
    keys = BipUtilsKeyDerivation(DEV_CUSTODY_MNEMONIC)
    authorizer = Authorizer(LocalPolicyPermissions())
    mirror = ChainMirror(storage, chain, clock, keys)
    mints = MintUseCases(storage, authorizer, clock, jobs, mirror)
    transfers = TransferUseCases(storage, authorizer, clock, jobs, mirror)
    withdrawals = WithdrawalUseCases(
        storage, authorizer, clock, jobs, mirror, EthAccountSignatureVerifier()
    )
    jobs.register(MintTokenJob, mints.handle)
    jobs.register(ProcessTransferJob, transfers.handle)
    jobs.register(ProcessWithdrawalJob, withdrawals.handle)
    await jobs.start()

    async with chain.signing_lock:
        prepared = await chain.prepare_stablecoin("USD Coin", "USDC")
        await chain.execute(prepared)
    assert prepared.contract_address is not None
    platform = await chain.deploy_platform()
    alice_address = await mirror.user_address("alice")
    spec = SuiteSpec(
        name="Gold",
        symbol="GOLD",
        decimals=2,
        supply=1,
        issuer=alice_address,
        issuer_country="PT",
        platform=platform,
    )
    gold_address = (await chain.deploy_suite(spec))[TOKEN_STEP]
    usdc = Token(
        symbol="USDC",
        name="USD Coin",
        type=TokenType.STABLE,
        decimals=6,
        created_at=T0,
        contract_address=prepared.contract_address,
    )
    gold = Token(
        symbol="GOLD",
        name="Gold",
        type=TokenType.RWA,
        decimals=2,
        created_at=T0,
        contract_address=gold_address,
    )
    async with storage.unit_of_work() as uow:
        await uow.tokens.add(usdc)
        await uow.tokens.add(gold)
        await uow.commit()
    compliance = ComplianceUseCases(storage, authorizer, clock)
    await compliance.set(ADMIN, "alice", approved())
    await compliance.set(ADMIN, "bob", approved())
    yield Env(storage, chain, jobs, mirror, mints, transfers, withdrawals, compliance, usdc, gold)
    await jobs.stop()


# -- mint --------------------------------------------------------------------------------------


async def test_a_stablecoin_mint_lands_in_the_omnibus_and_credits_the_user(env: Env) -> None:
    mint = await env.mints.request(ADMIN, "USDC", "k-1", "alice", "12.5")
    assert mint.status is OperationStatus.PENDING and mint.amount == 12_500_000
    await env.jobs.join(5)
    done = await env.mints.get(ADMIN, "USDC", mint.id)
    assert done.status is OperationStatus.COMPLETED and done.tx_hash is not None
    omnibus = await env.chain.custody_address()
    assert await env.chain.balance_of(env.usdc.contract_address or "", omnibus) == 12_500_000
    assert await env.balance("alice", env.usdc) == (12_500_000, 0)
    assert (await env.audit_actions())[-2:] == ["token.mint", "token.mint.complete"]


async def test_the_same_key_gives_the_same_mint_once_and_another_body_is_409(env: Env) -> None:
    first = await env.mints.request(ADMIN, "USDC", "same", "alice", "1")
    await env.jobs.join(5)
    sent = len(env.chain.sent)
    again = await env.mints.request(ADMIN, env.usdc.id, "same", "alice", "1.000")
    await env.jobs.join(5)
    assert again.id == first.id and again.status is OperationStatus.COMPLETED
    assert len(env.chain.sent) == sent
    assert await env.balance("alice", env.usdc) == (1_000_000, 0)
    with pytest.raises(IdempotencyKeyReused):
        await env.mints.request(ADMIN, "USDC", "same", "alice", "2")
    with pytest.raises(IdempotencyKeyReused):
        await env.mints.request(ADMIN, "USDC", "same", "bob", "1")


async def test_an_rwa_mint_goes_to_the_holders_own_address(env: Env) -> None:
    await env.mint("alice", env.gold, "3.25", "g-1")
    address = await env.mirror.user_address("alice")
    assert await env.chain.balance_of(env.gold.contract_address or "", address) == 1 + 325
    assert await env.balance("alice", env.gold) == (325, 0)


async def test_a_mint_the_chain_refuses_fails_and_credits_nothing(env: Env) -> None:
    # bob is compliant off chain, but his address has no identity in the token's registry
    await env.mint("bob", env.gold, "1", "g-bob")
    async with env.storage.unit_of_work(read_only=True) as uow:
        mint = await uow.mints.by_key(env.gold.id, "g-bob")
        assert await uow.ledger.get("mint:" + (mint.id if mint else "")) is None
    assert mint is not None and mint.status is OperationStatus.FAILED
    assert mint.error and "verified" in mint.error
    assert await env.balance("bob", env.gold) == (0, 0)
    assert (await env.audit_actions())[-1] == "token.mint.fail"


@pytest.mark.parametrize(
    "amount",
    ["1.234", "0", "0.00", "-1", 1.5, "1e3", "+1", " 1", "", True, None, "1.", "0x10"],
)
async def test_bad_mint_amounts_are_422_and_store_nothing(env: Env, amount: object) -> None:
    before = await env.audit_actions()
    with pytest.raises(ValidationFailed) as caught:
        await env.mints.request(ADMIN, "GOLD", "bad", "alice", amount)
    assert caught.value.code == "invalid_amount"
    assert await env.audit_actions() == before
    async with env.storage.unit_of_work(read_only=True) as uow:
        assert await uow.mints.by_key(env.gold.id, "bad") is None


async def test_mint_refusals_name_their_reason_and_store_nothing(env: Env) -> None:
    before = await env.audit_actions()
    with pytest.raises(UserNotFound):
        await env.mints.request(ADMIN, "USDC", "k", "stranger", "1")
    await env.compliance.set(ADMIN, "carol", approved(whitelisted=False))
    with pytest.raises(ComplianceDenied) as denied:
        await env.mints.request(ADMIN, "GOLD", "k", "carol", "1")
    assert denied.value.code == "not_whitelisted"
    with pytest.raises(PermissionDenied):
        await env.mints.request(ALICE, "USDC", "k", "alice", "1")
    with pytest.raises(ValidationFailed):
        await env.mints.request(ADMIN, "USDC", "", "alice", "1")
    async with env.storage.unit_of_work() as uow:
        await uow.tokens.add(
            Token(symbol="WETH", name="Wrapped", type=TokenType.CRYPTO, decimals=18, created_at=T0)
        )
        await uow.commit()
    with pytest.raises(TokenNotOnChain):
        await env.mints.request(ADMIN, "WETH", "k", "alice", "1")
    assert (await env.audit_actions())[len(before) :] == ["compliance.update"]


# -- transfer ----------------------------------------------------------------------------------


async def test_a_stablecoin_transfer_moves_the_ledger_at_once(env: Env) -> None:
    await env.mint("alice", env.usdc, "10", "k")
    transfer = await env.transfers.transfer(ALICE, "USDC", "bob", "2.5")
    assert transfer.status is OperationStatus.COMPLETED and transfer.tx_hash is None
    assert await env.balance("alice", env.usdc) == (7_500_000, 0)
    assert await env.balance("bob", env.usdc) == (2_500_000, 0)
    assert (await env.audit_actions())[-1] == "token.transfer"


async def test_transfer_refusals_write_no_posting(env: Env) -> None:
    await env.mint("alice", env.usdc, "1", "k")
    with pytest.raises(InsufficientFunds):
        await env.transfers.transfer(ALICE, "USDC", "bob", "1.000001")
    with pytest.raises(SelfTransfer):
        await env.transfers.transfer(ALICE, "USDC", "alice", "1")
    with pytest.raises(UserNotFound):
        await env.transfers.transfer(ALICE, "USDC", "stranger", "1")
    with pytest.raises(PermissionDenied):
        await env.transfers.transfer(BOB, "USDC", "bob", "1", from_user_id="alice")
    with pytest.raises(ValidationFailed):
        await env.transfers.transfer(ALICE, "USDC", "bob", "0.0000001")
    assert await env.balance("alice", env.usdc) == (1_000_000, 0)
    assert await env.balance("bob", env.usdc) == (0, 0)
    async with env.storage.unit_of_work(read_only=True) as uow:
        assert await uow.transfers.pending(limit=10) == []
    assert (await env.audit_actions())[-1] == "token.mint.complete"


async def test_an_admin_moves_another_users_funds(env: Env) -> None:
    await env.mint("alice", env.usdc, "1", "k")
    await env.transfers.transfer(ADMIN, "USDC", "bob", "1", from_user_id="alice")
    assert await env.balance("bob", env.usdc) == (1_000_000, 0)


async def test_an_rwa_transfer_is_mirrored_by_a_forced_transfer(env: Env) -> None:
    await env.mint("alice", env.gold, "5", "g")
    bob_address = await env.mirror.user_address("bob")
    transfer = await env.transfers.transfer(ALICE, "GOLD", "bob", "1")
    assert transfer.status is OperationStatus.PENDING
    await env.jobs.join(5)
    # bob's address is not verified in the token's identity registry: the chain refuses
    failed = await env.transfers.get(ALICE, transfer.id)
    assert failed.status is OperationStatus.FAILED and failed.error
    assert await env.chain.balance_of(env.gold.contract_address or "", bob_address) == 0
    assert await env.balance("bob", env.gold) == (100, 0)  # the ledger moved: drift to report
    assert (await env.audit_actions())[-1] == "token.transfer.mirror_fail"


async def test_a_non_compliant_receiver_stops_an_rwa_transfer(env: Env) -> None:
    await env.mint("alice", env.gold, "5", "g")
    await env.compliance.set(ADMIN, "bob", approved(kyc_status="REJECTED"))
    with pytest.raises(ComplianceDenied) as denied:
        await env.transfers.transfer(ALICE, "GOLD", "bob", "1")
    assert denied.value.code == "kyc_not_approved"
    assert await env.balance("alice", env.gold) == (500, 0)


# -- withdrawals -------------------------------------------------------------------------------


async def test_a_withdrawal_locks_then_completes_on_chain(env: Env) -> None:
    await env.mint("alice", env.usdc, "10", "k")
    target = EthAccountSignatureVerifier().checksum_address(OUTSIDE)
    withdrawal = await env.withdrawals.request(ALICE, "USDC", "4", OUTSIDE)
    assert withdrawal.status is WithdrawalStatus.PENDING_APPROVAL
    assert withdrawal.to_address == target
    assert await env.balance("alice", env.usdc) == (6_000_000, 4_000_000)
    approved_ = await env.withdrawals.approve(ADMIN, withdrawal.id)
    assert approved_.status is WithdrawalStatus.APPROVED
    await env.jobs.join(5)
    done = await env.withdrawals.get(ALICE, withdrawal.id)
    assert done.status is WithdrawalStatus.COMPLETED and done.tx_hash
    assert await env.balance("alice", env.usdc) == (6_000_000, 0)
    assert await env.chain.balance_of(env.usdc.contract_address or "", target) == 4_000_000
    async with env.storage.unit_of_work(read_only=True) as uow:
        supply = await uow.ledger.supply(env.usdc.id)
    assert supply.withdrawn == 4_000_000
    assert (await env.audit_actions())[-3:] == [
        "withdrawal.request",
        "withdrawal.approve",
        "withdrawal.completed",
    ]
    page = await env.withdrawals.for_user(ALICE, "alice")
    assert [w.id for w in page.items] == [withdrawal.id]
    with pytest.raises(PermissionDenied):
        await env.withdrawals.get(BOB, withdrawal.id)
    with pytest.raises(WithdrawalNotPending):
        await env.withdrawals.reject(ADMIN, withdrawal.id)


async def test_a_rejected_withdrawal_unlocks(env: Env) -> None:
    await env.mint("alice", env.usdc, "10", "k")
    withdrawal = await env.withdrawals.request(ALICE, "USDC", "4", OUTSIDE)
    rejected = await env.withdrawals.reject(ADMIN, withdrawal.id)
    assert rejected.status is WithdrawalStatus.REJECTED and rejected.decided_by == "admin-1"
    assert await env.balance("alice", env.usdc) == (10_000_000, 0)
    with pytest.raises(WithdrawalNotPending):
        await env.withdrawals.approve(ADMIN, withdrawal.id)
    with pytest.raises(PermissionDenied):
        await env.withdrawals.approve(ALICE, withdrawal.id)


async def test_a_withdrawal_the_chain_refuses_fails_and_unlocks(env: Env) -> None:
    # an RWA token can only go to a verified address: this one has no identity
    await env.mint("alice", env.gold, "5", "g")
    withdrawal = await env.withdrawals.request(ALICE, "GOLD", "2", OUTSIDE)
    assert await env.balance("alice", env.gold) == (300, 200)
    await env.withdrawals.approve(ADMIN, withdrawal.id)
    await env.jobs.join(5)
    failed = await env.withdrawals.get(ADMIN, withdrawal.id)
    assert failed.status is WithdrawalStatus.FAILED and failed.error
    assert await env.balance("alice", env.gold) == (500, 0)
    assert (await env.audit_actions())[-1] == "withdrawal.failed"


async def test_withdrawal_refusals_leave_no_lock(env: Env) -> None:
    await env.mint("alice", env.usdc, "1", "k")
    with pytest.raises(MalformedAddress):
        await env.withdrawals.request(ALICE, "USDC", "1", "0x1234")
    with pytest.raises(ValidationFailed) as caught:
        await env.withdrawals.request(ALICE, "USDC", "0.0000001", OUTSIDE)
    assert caught.value.code == "invalid_amount"
    with pytest.raises(InsufficientFunds):
        await env.withdrawals.request(ALICE, "USDC", "2", OUTSIDE)
    await env.compliance.set(ADMIN, "alice", approved(kyc_status="EXPIRED"))
    with pytest.raises(ComplianceDenied):
        await env.withdrawals.request(ALICE, "GOLD", "0.01", OUTSIDE)
    assert await env.balance("alice", env.usdc) == (1_000_000, 0)
    assert (await env.withdrawals.for_user(ALICE, "alice")).items == []


async def test_a_withdrawal_to_a_platform_address_is_refused(env: Env) -> None:
    await env.mint("alice", env.usdc, "10", "k")
    await env.mirror.user_address("bob")  # bob's custodial deposit address exists
    keys = BipUtilsKeyDerivation(DEV_CUSTODY_MNEMONIC)
    async with env.storage.unit_of_work(read_only=True) as uow:
        alice_number = (await uow.wallets.get("alice")).user_number  # type: ignore[union-attr]
        bob_number = (await uow.wallets.get("bob")).user_number  # type: ignore[union-attr]
    platform = [await env.chain.custody_address(), keys.address_for(0)]
    custodial = [keys.address_for(alice_number), keys.address_for(bob_number)]
    before = await env.audit_actions()
    for address in [*platform, *custodial, custodial[1].lower()]:
        for token in ("USDC", "GOLD"):
            with pytest.raises(WithdrawalToPlatformAddress) as refused:
                await env.withdrawals.request(ALICE, token, "1", address)
            assert refused.value.code == "withdrawal_to_platform_address"
            assert refused.value.fields == {"toAddress": refused.value.fields["toAddress"]}
    # a user given a number after the book was first read is refused too
    carol = keys.address_for(bob_number + 1)
    await env.mirror.user_address("carol")
    with pytest.raises(WithdrawalToPlatformAddress):
        await env.withdrawals.request(ALICE, "USDC", "1", carol)
    # nothing locked, no posting, no record, no audit entry
    assert await env.balance("alice", env.usdc) == (10_000_000, 0)
    assert (await env.withdrawals.for_user(ALICE, "alice")).items == []
    assert await env.audit_actions() == before
    async with env.storage.unit_of_work(read_only=True) as uow:
        assert await uow.ledger.balance(AccountRef.user("alice", env.gold.id)) is not None
    # an outside address is still fine
    accepted = await env.withdrawals.request(ALICE, "USDC", "1", OUTSIDE)
    assert accepted.status is WithdrawalStatus.PENDING_APPROVAL


async def test_a_withdrawal_in_flight_is_followed_not_sent_again(env: Env) -> None:
    await env.mint("alice", env.usdc, "10", "k")
    withdrawal = await env.withdrawals.request(ALICE, "USDC", "3", OUTSIDE)
    await env.withdrawals.approve(ADMIN, withdrawal.id)
    await env.jobs.join(5)
    done = await env.withdrawals.get(ALICE, withdrawal.id)
    assert done.status is WithdrawalStatus.COMPLETED
    # the job again (a redelivery): it is finished, nothing is signed or sent
    sent = len(env.chain.sent)
    await env.withdrawals.handle(ProcessWithdrawalJob(withdrawal_id=withdrawal.id))
    assert len(env.chain.sent) == sent

    # a transaction broadcast but not mined when the worker stopped: SENT, then followed
    second = await env.withdrawals.request(ALICE, "USDC", "2", OUTSIDE)
    env.chain.auto_mine = False
    await env.withdrawals.approve(ADMIN, second.id)
    await env.jobs.join(5)
    in_flight = await env.withdrawals.get(ALICE, second.id)
    assert in_flight.status is WithdrawalStatus.SENT and in_flight.tx_hash
    assert await env.balance("alice", env.usdc) == (5_000_000, 2_000_000)
    env.chain.mine()
    env.chain.auto_mine = True
    await env.withdrawals.handle(ProcessWithdrawalJob(withdrawal_id=second.id))
    finished = await env.withdrawals.get(ALICE, second.id)
    assert finished.status is WithdrawalStatus.COMPLETED
    assert finished.tx_hash == in_flight.tx_hash
    assert env.chain.sent.count(in_flight.tx_hash) == 1
    target = EthAccountSignatureVerifier().checksum_address(OUTSIDE)
    assert await env.chain.balance_of(env.usdc.contract_address or "", target) == 5_000_000
    assert await env.balance("alice", env.usdc) == (5_000_000, 0)


async def test_unfinished_operations_are_queued_again_after_a_restart(env: Env) -> None:
    await env.mint("alice", env.usdc, "10", "k")
    withdrawal = await env.withdrawals.request(ALICE, "USDC", "1", OUTSIDE)
    # stored by a process whose in-process queue died before their jobs ran
    stranded = Mint(
        token_id=env.usdc.id,
        user_id="bob",
        amount=5,
        idempotency_key="lost",
        actor_id="admin-1",
        created_at=T0,
        updated_at=T0,
    )
    async with env.storage.unit_of_work() as uow:
        approved_ = attrs.evolve(withdrawal, status=WithdrawalStatus.APPROVED, version=2)
        await uow.withdrawals.update(approved_)
        await uow.mints.add(stranded)
        await uow.commit()
    assert await env.mints.resume_interrupted() == 1
    assert await env.withdrawals.resume_interrupted() == 1
    assert await env.transfers.resume_interrupted() == 0
    await env.jobs.join(5)
    assert (await env.mints.get(ADMIN, "USDC", stranded.id)).status is OperationStatus.COMPLETED
    assert await env.balance("bob", env.usdc) == (5, 0)
    done = await env.withdrawals.get(ALICE, withdrawal.id)
    assert done.status is WithdrawalStatus.COMPLETED
    assert await env.balance("alice", env.usdc) == (9_000_000, 0)


# -- deposits ----------------------------------------------------------------------------------


async def _outside_transfer(env: Env, to: str, amount: int) -> None:
    """USDC arriving from outside: the chain's own tool calls, recorded nowhere."""
    usdc = env.usdc.contract_address or ""
    omnibus = await env.chain.custody_address()
    await env.chain.call_token(TokenCall(TokenCallKind.MINT, usdc, account=omnibus, amount=amount))
    await env.chain.call_token(TokenCall(TokenCallKind.TRANSFER, usdc, account=to, amount=amount))


async def test_deposits_count_after_the_confirmations_once_across_rereads(env: Env) -> None:
    clock = StepClock()
    keys = BipUtilsKeyDerivation(DEV_CUSTODY_MNEMONIC)
    scanner = DepositUseCases(env.storage, env.chain, clock, keys, confirmations=2)
    alice = await env.mirror.user_address("alice")
    await _outside_transfer(env, alice, 7_000_000)
    await scanner.sync()
    assert await env.balance("alice", env.usdc) == (0, 0)  # not yet 2 blocks deep

    await _outside_transfer(env, OUTSIDE, 1)  # two more blocks (mint and transfer)
    results = await scanner.sync()
    assert [r.credited for r in results if r.token_id == env.usdc.id] == [1]
    assert await env.balance("alice", env.usdc) == (7_000_000, 0)
    page = await scanner.deposits(ALICE, "alice")
    [deposit] = [d for d in page.items if d.token_id == env.usdc.id]
    assert deposit.amount == 7_000_000 and deposit.status is DepositStatus.CREDITED
    assert deposit.address == alice and deposit.credited_at is not None
    with pytest.raises(PermissionDenied):
        await scanner.deposits(BOB, "alice")

    # the same blocks read again, by a new scanner (a restart) from a cursor moved back
    async with env.storage.unit_of_work() as uow:
        await uow.cursors.set(cursor_key(env.usdc.id), "-1", T0)
        await uow.commit()
    restarted = DepositUseCases(env.storage, env.chain, StepClock(), keys, confirmations=0)
    again = await restarted.sync()
    assert [r.credited for r in again if r.token_id == env.usdc.id] == [0]
    assert await env.balance("alice", env.usdc) == (7_000_000, 0)
    async with env.storage.unit_of_work(read_only=True) as uow:
        supply = await uow.ledger.supply(env.usdc.id)
    assert supply.deposited == 7_000_000
    assert (await env.audit_actions()).count("deposit.credit") >= 1


async def test_the_platforms_own_transactions_are_not_deposits(env: Env) -> None:
    keys = BipUtilsKeyDerivation(DEV_CUSTODY_MNEMONIC)
    scanner = DepositUseCases(env.storage, env.chain, StepClock(), keys, confirmations=0)
    await env.mint("alice", env.gold, "2", "g")  # minted to alice's address, recorded first
    await scanner.sync()
    async with env.storage.unit_of_work(read_only=True) as uow:
        mine = await uow.deposits.for_user("alice", limit=10)
    assert [d.amount for d in mine if d.token_id == env.gold.id] == [1]  # the untracked supply
    assert await env.balance("alice", env.gold) == (201, 0)


def _sweeping(env: Env) -> tuple[DepositUseCases, DepositSweeper]:
    keys = BipUtilsKeyDerivation(DEV_CUSTODY_MNEMONIC)
    sweeper = DepositSweeper(env.storage, env.chain, StepClock(), keys, env.jobs)
    env.jobs.register(SweepDepositJob, sweeper.handle)
    scanner = DepositUseCases(
        env.storage, env.chain, StepClock(), keys, confirmations=0, sweeper=sweeper
    )
    return scanner, sweeper


async def _usdc_deposits(env: Env, scanner: DepositUseCases) -> list[Deposit]:
    page = await scanner.deposits(ADMIN, "alice")
    return [d for d in page.items if d.token_id == env.usdc.id]


async def _sweep_records(env: Env, deposit_id: str) -> dict[str, DeploymentRecord]:
    async with env.storage.unit_of_work(read_only=True) as uow:
        records = await uow.deployments.for_subject(sweep_subject(deposit_id))
    return {r.step: r for r in records}


async def test_a_stablecoin_deposit_is_swept_to_the_omnibus_once(env: Env) -> None:
    scanner, _ = _sweeping(env)
    usdc = env.usdc.contract_address or ""
    omnibus = await env.chain.custody_address()
    alice = await env.mirror.user_address("alice")
    await _outside_transfer(env, alice, 7_000_000)
    before = await env.chain.balance_of(usdc, omnibus)
    await scanner.sync()
    await env.jobs.join(5)

    [deposit] = await _usdc_deposits(env, scanner)
    assert deposit.status is DepositStatus.CREDITED and deposit.sweep_tx_hash is not None
    assert await env.balance("alice", env.usdc) == (7_000_000, 0)  # the ledger: unchanged
    assert await env.chain.balance_of(usdc, alice) == 0
    assert await env.chain.balance_of(usdc, omnibus) == before + 7_000_000
    records = await _sweep_records(env, deposit.id)
    assert set(records) == {"fund#0", "sweep"}
    assert all(r.state is DeploymentState.MINED for r in records.values())
    assert (records["fund#0"].signer, records["sweep"].signer) == (omnibus, alice)
    assert records["sweep"].tx_hash == deposit.sweep_tx_hash and records["sweep"].nonce == 0
    assert "deposit.sweep" in await env.audit_actions()
    async with env.storage.unit_of_work(read_only=True) as uow:
        supply = await uow.ledger.supply(env.usdc.id)
    assert supply.deposited == 7_000_000

    # the same blocks read again: nothing credited, nothing swept, nothing sent
    async with env.storage.unit_of_work() as uow:
        await uow.cursors.set(cursor_key(env.usdc.id), "-1", T0)
        await uow.commit()
    sent = len(env.chain.sent)
    again = await scanner.sync()
    await env.jobs.join(5)
    assert [r.credited for r in again if r.token_id == env.usdc.id] == [0]
    await env.jobs.enqueue(SweepDepositJob(deposit_id=deposit.id))  # a redelivery
    await env.jobs.join(5)
    assert len(env.chain.sent) == sent
    assert await env.balance("alice", env.usdc) == (7_000_000, 0)

    # a second deposit at the same address: its own funding and the address's next nonce
    await _outside_transfer(env, alice, 2_000_000)
    await scanner.sync()
    await env.jobs.join(5)
    second = next(d for d in await _usdc_deposits(env, scanner) if d.id != deposit.id)
    assert (await _sweep_records(env, second.id))["sweep"].nonce == 1
    assert await env.chain.balance_of(usdc, omnibus) == before + 9_000_000
    report = await Reconciliation(
        env.storage, env.chain, StepClock(), BipUtilsKeyDerivation(DEV_CUSTODY_MNEMONIC)
    ).run()
    assert report.drifts == []


async def test_an_rwa_deposit_is_not_swept(env: Env) -> None:
    scanner, sweeper = _sweeping(env)
    await scanner.sync()  # the untracked supply of GOLD at alice's address is a deposit
    await env.jobs.join(5)
    [deposit] = (await scanner.deposits(ADMIN, "alice")).items
    assert deposit.token_id == env.gold.id and deposit.sweep_tx_hash is None
    assert await sweeper.enqueue_unswept(env.gold) == 0
    assert await _sweep_records(env, deposit.id) == {}


async def test_a_sweep_in_flight_is_followed_not_sent_again(env: Env) -> None:
    scanner, sweeper = _sweeping(env)
    usdc = env.usdc.contract_address or ""
    alice = await env.mirror.user_address("alice")
    await _outside_transfer(env, alice, 4_000_000)
    env.chain.auto_mine = False  # the funding and the sweep wait in the mempool
    await scanner.sync()
    await env.jobs.join(5)  # the job stops: no receipt for the funding
    [deposit] = await _usdc_deposits(env, scanner)
    assert deposit.sweep_tx_hash is None
    # reconcile meanwhile counts the deposit address (a deposit not swept yet)
    reconcile = Reconciliation(
        env.storage, env.chain, StepClock(), BipUtilsKeyDerivation(DEV_CUSTODY_MNEMONIC)
    )
    assert (await reconcile.run()).drifts == []
    env.chain.mine()
    with pytest.raises(ChainError):  # the funding is mined now; the sweep is sent, pending
        await sweeper.handle(SweepDepositJob(deposit_id=deposit.id))
    sweep = (await _sweep_records(env, deposit.id))["sweep"]
    assert sweep.state in (DeploymentState.SIGNED, DeploymentState.SENT)
    env.chain.drop_pending()  # and the node lost it: the recorded bytes are sent again
    env.chain.auto_mine = True
    assert await sweeper.resume_interrupted() == 1
    await env.jobs.join(5)
    [done] = await _usdc_deposits(env, scanner)
    assert done.sweep_tx_hash == sweep.tx_hash
    assert env.chain.sent.count(sweep.tx_hash) == 2  # the same bytes, mined once
    assert await env.chain.balance_of(usdc, alice) == 0
    assert await env.chain.confirmed_nonce(alice) == 1
    assert set(await _sweep_records(env, deposit.id)) == {"fund#0", "sweep"}
    assert (await reconcile.run()).drifts == []


# -- reconciliation ----------------------------------------------------------------------------


async def test_reconciliation_reports_drift_per_address_and_in_total(env: Env) -> None:
    keys = BipUtilsKeyDerivation(DEV_CUSTODY_MNEMONIC)
    reconciliation = Reconciliation(env.storage, env.chain, StepClock(), keys)
    await env.mint("alice", env.usdc, "10", "k")
    clean = await reconciliation.run()
    assert clean.drifts == [] and clean.tokens == 2
    assert "reconcile.drift" not in await env.audit_actions()

    await env.mint("alice", env.gold, "2", "g")  # alice's address also holds the untracked 1
    bob = await env.mirror.user_address("bob")
    await _outside_transfer(env, bob, 5)  # at bob's deposit address, not synced: not counted
    omnibus = await env.chain.custody_address()
    usdc = env.usdc.contract_address or ""
    await env.chain.call_token(TokenCall(TokenCallKind.MINT, usdc, account=omnibus, amount=3))
    seen: list[tuple[str, int]] = []
    report = await reconciliation.run(progress=lambda symbol, n: seen.append((symbol, n)))
    alice = await env.mirror.user_address("alice")
    assert {(d.symbol, d.scope, d.owner, d.address, d.ledger, d.chain) for d in report.drifts} == {
        ("GOLD", "address", "alice", alice, 200, 201),
        ("USDC", "total", "*", await env.chain.custody_address(), 10_000_000, 10_000_003),
    }
    assert {symbol for symbol, _ in seen} == {"GOLD", "USDC"}
    assert (await env.audit_actions()).count("reconcile.drift") == 2

    console = Console(record=True, width=200)
    assert await run_reconcile(reconciliation, console) == 1
    printed = console.export_text()
    assert "Drift at" in printed and "GOLD" in printed and "+1" in printed and "+3" in printed


async def test_the_scheduler_enqueues_sync_and_reconcile_when_due(env: Env) -> None:
    queued: list[str] = []

    class Recording(MemoryJobQueue):
        async def enqueue(self, job: Job, *, delay_seconds: float = 0.0) -> None:
            queued.append(job.name)

    scheduler = TokenJobScheduler(Recording(), sync_seconds=10, reconcile_seconds=60)
    assert await scheduler.tick(0.0) == ["sync-blockchain", "reconcile"]
    assert await scheduler.tick(5.0) == []
    assert await scheduler.tick(10.0) == ["sync-blockchain"]
    assert await scheduler.tick(60.0) == ["sync-blockchain", "reconcile"]
    assert not TokenJobScheduler(Recording(), sync_seconds=0, reconcile_seconds=0).enabled


async def test_a_job_slower_than_the_lease_term_keeps_its_lease_across_processes() -> None:
    """Two API processes share the lease. A job whose interval is longer than the lease term
    (a daily valuation fetch, here 1 s against a 0.6 s lease) must not let the lease lapse
    between runs: the holder ticks three times per term, so the other process never gets the
    lease and never enqueues (each run once, not once per process)."""
    storage = MemoryStorage()
    queued: dict[str, list[str]] = {"api-1": [], "api-2": []}

    def scheduler(holder: str) -> TokenJobScheduler:
        class Recording(MemoryJobQueue):
            async def enqueue(self, job: Job, *, delay_seconds: float = 0.0) -> None:
                queued[holder].append(job.name)

        lease = StorageLease(
            storage, SystemClock(), name="token-jobs", holder=holder, ttl_seconds=0.6
        )
        return TokenJobScheduler(
            Recording(), sync_seconds=0, reconcile_seconds=0, valuations_seconds=1.0, lease=lease
        )

    first, second = scheduler("api-1"), scheduler("api-2")
    assert first.step_seconds == pytest.approx(0.2)  # not 1: the lease is renewed in time
    first.start()
    await asyncio.sleep(0.7)  # after a lease term: a holder ticking only per job would lapse
    second.start()
    await asyncio.sleep(1.5)
    await first.stop()
    await second.stop()
    assert queued["api-2"] == []
    assert queued["api-1"] == ["update-token-metadata"] * len(queued["api-1"])
    assert 2 <= len(queued["api-1"]) <= 3  # at 0, 1 and 2 s
