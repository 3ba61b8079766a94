"""``verify-compliance`` on the memory chain and on the in-process EVM (real T-REX and
ONCHAINID contracts): a compliance record mirrored in a token's identity registry.

The issuer of the test token is the platform's own address, so an ERC-20 ``transfer`` it
signs (no agent function) is what an ordinary holder's transfer is: T-REX lets it through
only to an address its identity registry verifies.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import attrs
import pytest

from adapters.inbound.pollers.token_jobs import TokenJobScheduler
from adapters.outbound.chain.evm import EvmChain
from adapters.outbound.chain.memory import MemoryChain
from adapters.outbound.custody.hd_keys import BipUtilsKeyDerivation
from adapters.outbound.jobs.memory import MemoryJobQueue
from adapters.outbound.permissions.local import LocalPolicyPermissions
from adapters.outbound.storage.memory import MemoryStorage
from core.ports.audit import AuditFilter
from core.ports.chain import (
    TOKEN_STEP,
    Chain,
    PlatformContracts,
    SuiteSpec,
    TokenCall,
    TokenCallKind,
)
from core.ports.clock import Clock
from core.ports.deployments import DeploymentState
from core.shared.authorization import Authorizer
from core.shared.errors import ChainError
from core.shared.events import Actor, DomainEvent
from core.tokens.chain_mirror import ChainMirror
from core.tokens.compliance import ComplianceDenied, KycStatus
from core.tokens.compliance_chain import (
    ComplianceVerifier,
    VerifyComplianceJob,
    compliance_subject,
)
from core.tokens.compliance_use_cases import CHANGED, ComplianceUseCases, SetCompliance
from core.tokens.jobs import MintTokenJob
from core.tokens.mint import MintUseCases
from core.tokens.model import Token, TokenType
from core.tokens.transfers import TransferUseCases
from settings import DEV_CUSTODY_MNEMONIC

T0 = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
EXPIRY = "2026-08-01T00:00:00Z"
ADMIN = Actor(id="admin-1", roles=("admin",))


class SetClock(Clock):
    def __init__(self) -> None:
        self.at = T0

    def now(self) -> datetime:
        self.at += timedelta(milliseconds=1)
        return self.at


def record(**overrides: object) -> SetCompliance:
    fields: dict[str, object] = {
        "kyc_status": "APPROVED",
        "whitelisted": True,
        "accredited": False,
        "jurisdiction": "PT",
        "expires_at": EXPIRY,
    }
    fields.update(overrides)
    return SetCompliance(**fields)


@attrs.define
class Env:
    storage: MemoryStorage
    chain: Chain
    clock: SetClock
    jobs: MemoryJobQueue
    mirror: ChainMirror
    compliance: ComplianceUseCases
    verifier: ComplianceVerifier
    transfers: TransferUseCases
    mints: MintUseCases
    gold: Token
    platform: PlatformContracts

    @property
    def token(self) -> str:
        assert self.gold.contract_address is not None
        return self.gold.contract_address

    async def send_to(self, user: str, amount: int = 5) -> None:
        """An ERC-20 transfer signed by the issuer (the platform's address), no agent."""
        address = await self.mirror.user_address(user)
        await self.chain.call_token(
            TokenCall(TokenCallKind.TRANSFER, self.token, account=address, amount=amount)
        )

    async def verified(self, user: str) -> bool:
        return await self.chain.is_verified(self.token, await self.mirror.user_address(user))

    async def wallet_verified(self, user: str) -> bool:
        async with self.storage.unit_of_work(read_only=True) as uow:
            wallet = await uow.wallets.get(user)
        assert wallet is not None
        return wallet.verified_on_chain

    async def actions(self) -> list[str]:
        async with self.storage.unit_of_work(read_only=True) as uow:
            entries = await uow.audit.query(AuditFilter(), limit=200)
        return [e.action for e in reversed(entries)]

    def sent(self) -> int:
        if isinstance(self.chain, MemoryChain):
            return len(self.chain.sent)
        assert isinstance(self.chain, EvmChain)
        return int(self.chain.ethereum_tester.get_block_by_number("latest")["number"])


async def build(chain: Chain) -> Env:
    storage = MemoryStorage()
    clock = SetClock()
    jobs = MemoryJobQueue()
    keys = BipUtilsKeyDerivation(DEV_CUSTODY_MNEMONIC)
    authorizer = Authorizer(LocalPolicyPermissions())
    mirror = ChainMirror(storage, chain, clock, keys)
    platform = await chain.deploy_platform()

    async def platform_contracts() -> PlatformContracts:
        return platform

    spec = SuiteSpec(
        name="Gold",
        symbol="GOLD",
        decimals=0,
        supply=1_000,
        issuer=await chain.custody_address(),
        issuer_country="PT",
        platform=platform,
    )
    gold = Token(
        symbol="GOLD",
        name="Gold",
        type=TokenType.RWA,
        decimals=0,
        created_at=T0,
        contract_address=(await chain.deploy_suite(spec))[TOKEN_STEP],
    )
    async with storage.unit_of_work() as uow:
        await uow.tokens.add(gold)
        await uow.commit()
    verifier = ComplianceVerifier(storage, mirror, clock, jobs, platform_contracts)
    transfers = TransferUseCases(storage, authorizer, clock, jobs, mirror)
    mints = MintUseCases(storage, authorizer, clock, jobs, mirror)
    jobs.register(VerifyComplianceJob, verifier.handle)
    jobs.register(MintTokenJob, mints.handle)
    await jobs.start()
    compliance = ComplianceUseCases(storage, authorizer, clock)
    return Env(
        storage, chain, clock, jobs, mirror, compliance, verifier, transfers, mints, gold, platform
    )


@pytest.fixture(params=["memory", "evm"])
async def env(request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    chain: Chain = MemoryChain() if request.param == "memory" else EvmChain()
    built = await build(chain)
    yield built
    await built.jobs.stop()
    await chain.close()


async def approve_and_verify(env: Env, user: str, **fields: object) -> None:
    await env.compliance.set(ADMIN, user, record(**fields))
    await env.verifier.verify(user)


async def test_an_approved_user_can_receive_a_transfer_on_chain(env: Env) -> None:
    address = await env.mirror.user_address("alice")
    with pytest.raises(ChainError):  # unverified: T-REX refuses the transfer
        await env.send_to("alice")
    await approve_and_verify(env, "alice")
    assert await env.verified("alice")
    assert await env.wallet_verified("alice")
    await env.send_to("alice", 7)
    assert await env.chain.balance_of(env.token, address) == 7
    registered = await env.chain.registered_identity(env.token, address)
    assert registered is not None and registered.country == "PT"
    actions = await env.actions()
    assert actions.count("compliance.chain") == 2  # registered, KYC claim added
    assert "wallet.verified_on_chain" in actions


async def test_rerunning_the_job_sends_nothing_new(env: Env) -> None:
    await approve_and_verify(env, "alice")
    before = env.sent()
    audited = len(await env.actions())
    assert await env.verifier.verify("alice")
    await env.verifier.handle(VerifyComplianceJob(user_id="alice"))
    assert env.sent() == before
    assert len(await env.actions()) == audited


async def test_an_expired_record_stops_the_operation_off_chain_and_on_chain(env: Env) -> None:
    await approve_and_verify(env, "alice")
    await approve_and_verify(env, "bob", expires_at="2027-01-01T00:00:00Z")
    await env.send_to("alice", 10)
    env.clock.at = datetime(2026, 8, 1, 0, 0, 1, tzinfo=UTC)  # past alice's expiry
    # off chain at once: a mint or a transfer to her is refused
    with pytest.raises(ComplianceDenied) as refused:
        await env.mints.request(ADMIN, "GOLD", "k-1", "alice", "1")
    assert refused.value.code == "compliance_expired"
    with pytest.raises(ComplianceDenied) as refused:
        await env.transfers.transfer(ADMIN, "GOLD", "alice", "1", "bob")
    assert refused.value.code == "compliance_expired"
    assert await env.verified("alice")  # the chain still lets her receive until the job
    # the scheduled run marks the record EXPIRED and removes her on chain
    await env.verifier.handle(VerifyComplianceJob())
    async with env.storage.unit_of_work(read_only=True) as uow:
        expired = await uow.compliance.get("alice", None)
    assert expired is not None and expired.kyc_status is KycStatus.EXPIRED
    assert not await env.verified("alice")
    assert not await env.wallet_verified("alice")
    with pytest.raises(ChainError):
        await env.send_to("alice")
    assert await env.verified("bob")  # bob's record did not expire
    await env.send_to("bob")
    actions = await env.actions()
    assert "compliance.expire" in actions
    # the next sweep finds nothing to expire and sends nothing
    before = env.sent()
    await env.verifier.handle(VerifyComplianceJob())
    assert env.sent() == before


async def test_a_revocation_removes_and_a_new_approval_restores(env: Env) -> None:
    await approve_and_verify(env, "alice")
    address = await env.mirror.user_address("alice")
    for revoked in ({"kyc_status": "REJECTED"}, {"whitelisted": False}):
        await approve_and_verify(env, "alice", **revoked)
        assert not await env.verified("alice")
        assert await env.chain.registered_identity(env.token, address) is None
        with pytest.raises(ChainError):
            await env.send_to("alice")
        await approve_and_verify(env, "alice", jurisdiction="ES")
        assert await env.verified("alice")
        registered = await env.chain.registered_identity(env.token, address)
        assert registered is not None and registered.country == "ES"
        await env.send_to("alice")
    # one identity for the user, deployed once
    async with env.storage.unit_of_work(read_only=True) as uow:
        records = await uow.deployments.for_subject(compliance_subject("alice"))
    assert [r.step for r in records].count("identity") == 1
    assert {r.state for r in records} == {DeploymentState.MINED}


async def test_a_compliance_change_enqueues_the_job(env: Env) -> None:
    await env.compliance.set(ADMIN, "alice", record())
    event = DomainEvent(
        type=CHANGED,
        aggregate_id="user:alice",
        actor_id=ADMIN.id,
        actor_type=ADMIN.type,
        occurred_at=env.clock.now(),
        metadata={"userId": "alice"},
    )
    await env.verifier.on_compliance_changed(event)
    await env.jobs.join(60)
    assert await env.verified("alice")


async def test_the_scheduler_enqueues_the_sweep() -> None:
    jobs = MemoryJobQueue()
    seen: list[VerifyComplianceJob] = []

    async def handle(job: VerifyComplianceJob) -> None:
        seen.append(job)

    jobs.register(VerifyComplianceJob, handle)
    await jobs.start()
    scheduler = TokenJobScheduler(jobs, sync_seconds=0, reconcile_seconds=0, compliance_seconds=5)
    assert await scheduler.tick(100.0) == ["verify-compliance"]
    assert await scheduler.tick(101.0) == []
    await jobs.join(5)
    await jobs.stop()
    assert seen == [VerifyComplianceJob()]


async def test_a_crash_between_send_and_record_sends_nothing_twice() -> None:
    chain = MemoryChain(auto_mine=False)
    env = await build_paused(chain)
    await env.compliance.set(ADMIN, "alice", record())
    start = len(chain.sent)
    with pytest.raises(ChainError):  # the identity is sent, but its receipt never came
        await env.verifier.verify("alice")
    sent = chain.sent[start:]
    assert len(sent) == 1
    chain.mine()  # it was mined meanwhile; the worker died before recording it
    chain.auto_mine = True
    assert await env.verifier.verify("alice")
    assert chain.sent.count(sent[0]) == 1
    assert len(set(chain.sent)) == len(chain.sent)
    # a job that dies after sending a claim: the rerun follows the record, signs nothing new
    await env.compliance.set(ADMIN, "alice", record(kyc_status="REJECTED"))
    chain.auto_mine = False
    with pytest.raises(ChainError):
        await env.verifier.verify("alice")
    pending = chain.sent[-1]
    chain.drop_pending()  # and the node lost it: the same bytes are sent again
    chain.auto_mine = True
    assert not await env.verifier.verify("alice")
    assert chain.sent.count(pending) == 2  # the recorded bytes, sent again: one transaction
    assert not await env.verifier.verify("alice")
    await env.jobs.stop()


async def build_paused(chain: MemoryChain) -> Env:
    chain.auto_mine = True
    env = await build(chain)
    chain.auto_mine = False
    return env


async def add_accredited_token(env: Env) -> Token:
    """A second RWA token whose market is for accredited investors only (claim topics 1, 2)."""
    from tests.contract.storage_suite import make_asset, make_market

    market = make_market(accredited_investors_only=True, token_symbol="BOND")
    spec = SuiteSpec(
        name="Bond",
        symbol="BOND",
        decimals=0,
        supply=1_000,
        issuer=await env.chain.custody_address(),
        issuer_country="PT",
        platform=env.platform,
        accredited_only=True,
    )
    bond = Token(
        symbol="BOND",
        name="Bond",
        type=TokenType.RWA,
        decimals=0,
        created_at=T0,
        contract_address=(await env.chain.deploy_suite(spec))[TOKEN_STEP],
        market_id=market.id,
    )
    async with env.storage.unit_of_work() as uow:
        await uow.markets.add(market, make_asset(market))
        await uow.tokens.add(bond)
        await uow.commit()
    return bond


async def test_the_accreditation_claim_follows_the_accredited_market(env: Env) -> None:
    bond = await add_accredited_token(env)
    assert bond.contract_address is not None
    address = await env.mirror.user_address("alice")
    await approve_and_verify(env, "alice")  # not accredited: GOLD only
    assert await env.verified("alice")
    assert not await env.chain.is_verified(bond.contract_address, address)
    assert await env.chain.registered_identity(bond.contract_address, address) is None
    await approve_and_verify(env, "alice", accredited=True)
    assert await env.chain.is_verified(bond.contract_address, address)
    registered = await env.chain.registered_identity(bond.contract_address, address)
    assert registered is not None
    assert registered == await env.chain.registered_identity(env.token, address)  # one identity
    await env.chain.call_token(
        TokenCall(TokenCallKind.TRANSFER, bond.contract_address, account=address, amount=3)
    )
    await approve_and_verify(env, "alice", accredited=False)
    assert not await env.chain.is_verified(bond.contract_address, address)
    assert await env.verified("alice")  # GOLD needs no accreditation
    async with env.storage.unit_of_work(read_only=True) as uow:
        steps = [r.step for r in await uow.deployments.for_subject(compliance_subject("alice"))]
    assert "claim:2#0" in steps and "unclaim:2#0" in steps
