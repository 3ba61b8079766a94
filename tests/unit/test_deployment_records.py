"""One market, one contract (DESIGN §4): the deploy-token job records every transaction of the
market's T-REX suite before sending it, and every later attempt follows those records.

The chain is ``MemoryChain`` with its nonce rules (a used nonce is refused, no gaps) and its
model of the T-REX contracts; where a crash between send and receipt is played, mining is held
back (``auto_mine=False``).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import attrs

from adapters.outbound.custody.hd_keys import BipUtilsKeyDerivation
from adapters.outbound.permissions.local import LocalPolicyPermissions
from adapters.outbound.storage.memory import MemoryStorage
from core.ledger.model import AccountRef
from core.markets.chain_state import ChainStateGuard
from core.markets.deployment import (
    RetryPolicy,
    TokenDeployment,
    activation_mint_key,
)
from core.markets.model import Market, MarketStatus
from core.markets.queries import MarketQueries
from core.markets.registration import RegisterMarket
from core.markets.stablecoin import EmbeddedStablecoin
from core.markets.use_cases import MarketUseCases
from core.ports.chain import MINT_STEP, PLATFORM_STEPS, TOKEN_STEP, suite_steps
from core.ports.clock import Clock
from core.ports.custody import KeyDerivation
from core.ports.deployments import PLATFORM_SUBJECT, DeploymentRecord, DeploymentState
from core.ports.jobs import DeployTokenJob, TokenPauseJob
from core.shared.authorization import Authorizer
from core.shared.errors import ServiceUnavailable
from core.shared.events import Actor
from core.tokens.identities import identity_subject
from core.tokens.model import TokenType
from settings import DEV_CUSTODY_MNEMONIC
from tests.unit.doubles import FlakyChain, RecordingJobQueue

ADMIN = Actor(id="admin-1", roles=("admin",))
ISSUER = Actor(id="issuer-1", roles=("issuer",))
SUPPLY = 1000 * 10**18
KEYS = BipUtilsKeyDerivation(DEV_CUSTODY_MNEMONIC)


class FixedClock(Clock):
    def now(self) -> datetime:
        return datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)


class World:
    def __init__(self, chain: FlakyChain, keys: KeyDerivation = KEYS) -> None:
        self.storage = MemoryStorage()
        self.chain = chain
        self.jobs = RecordingJobQueue()
        clock = FixedClock()
        self.uc = MarketUseCases(self.storage, Authorizer(LocalPolicyPermissions()), clock)
        self.deployment = TokenDeployment(
            self.storage, chain, self.jobs, clock, RetryPolicy(max_attempts=5), custody=keys
        )

    async def approved(
        self, symbol: str, *, countries: tuple[str, ...] = (), accredited: bool = False
    ) -> str:
        market = await self.uc.register(
            ISSUER,
            RegisterMarket(
                name=f"{symbol} Tower",
                asset_type="real_estate",
                token_symbol=symbol,
                token_name=f"{symbol} Token",
                total_supply=1000,
                allowed_countries=countries,
                accredited_investors_only=accredited,
            ),
        )
        await self.uc.decide(ADMIN, market.id, "approve")
        return market.id

    async def run(self, market_id: str, attempt: int = 1) -> None:
        await self.deployment.handle(DeployTokenJob(market_id=market_id, attempt=attempt))

    async def market(self, market_id: str) -> Market:
        async with self.storage.unit_of_work() as uow:
            market = await uow.markets.get(market_id)
        assert market is not None
        return market

    async def records(self, subject: str) -> list[DeploymentRecord]:
        async with self.storage.unit_of_work() as uow:
            return await uow.deployments.for_subject(subject)

    async def all_records(self, *subjects: str) -> list[DeploymentRecord]:
        found = await self.records(PLATFORM_SUBJECT)
        found += await self.records(identity_subject(ISSUER.id))  # the issuer's one identity
        for subject in subjects:
            found += await self.records(subject)
        return found

    async def issuer_balance(self, market_id: str) -> int:
        async with self.storage.unit_of_work() as uow:
            token = await uow.tokens.by_market(market_id)
            assert token is not None
            return (await uow.ledger.balance(AccountRef.user(ISSUER.id, token.id))).available


def mined_steps(records: list[DeploymentRecord]) -> list[str]:
    return [r.step for r in records if r.state is DeploymentState.MINED]


async def test_activation_deploys_the_suite_and_credits_the_issuer_in_one_go() -> None:
    world = World(FlakyChain())
    market_id = await world.approved("REC")
    seen: list[bool] = []
    send = world.chain.send_raw_transaction

    async def spy(raw: str) -> str:
        # what storage holds at the moment of each send: this transaction, recorded, signed
        records = await world.all_records(market_id)
        seen.append(
            any(r.raw_transaction == raw and r.state is DeploymentState.SIGNED for r in records)
        )
        return await send(raw)

    world.chain.send_raw_transaction = spy  # type: ignore[method-assign,assignment]
    await world.run(market_id)
    market = await world.market(market_id)
    records = await world.records(market_id)
    platform = await world.records(PLATFORM_SUBJECT)
    [identity] = await world.records(identity_subject(ISSUER.id))
    assert market.status is MarketStatus.ACTIVE, market.activation_error
    assert len(seen) == len(records) + len(platform) + 1 and all(seen)
    assert identity.step == "identity" and identity.state is DeploymentState.MINED
    assert [r.step for r in platform] == list(PLATFORM_STEPS)
    by_step = {r.step: r for r in records}
    assert mined_steps(records) == list(by_step) and len(by_step) == len(records)
    assert "compliance.add_module" not in by_step and "topics.add:2" not in by_step
    assert market.contract_address == by_step[TOKEN_STEP].contract_address
    assert market.deployment_tx_hash == by_step[TOKEN_STEP].tx_hash
    issuer = KEYS.address_for(1)  # the issuer's user number: the first wallet
    assert by_step[MINT_STEP].holder == issuer
    token = market.contract_address
    assert token is not None
    assert await world.chain.balance_of(token, issuer) == SUPPLY
    assert await world.chain.total_supply(token) == SUPPLY
    assert not await world.chain.is_paused(token)
    assert await world.chain.is_verified(token, issuer)
    held = await world.chain.registered_identity(token, issuer)
    assert held is not None and held.identity == identity.contract_address
    assert "identity" not in by_step  # not a step of the market: the issuer's own
    async with world.storage.unit_of_work() as uow:
        registered = await uow.tokens.by_market(market_id)
        applied = await uow.ledger.get(activation_mint_key(market_id))
    assert registered is not None and registered.type is TokenType.RWA
    assert registered.contract_address == token and registered.symbol == "REC"
    assert applied is not None
    assert await world.issuer_balance(market_id) == SUPPLY


async def test_countries_and_accreditation_add_their_steps() -> None:
    world = World(FlakyChain())
    market_id = await world.approved("CTRY", countries=("DE", "FR"), accredited=True)
    await world.run(market_id)
    market = await world.market(market_id)
    assert market.status is MarketStatus.ACTIVE, market.activation_error
    steps = [r.step for r in await world.records(market_id)]
    for step in ("compliance.add_module", "compliance.allow_countries", "topics.add:2"):
        assert step in steps
    assert "identity.claim:2" in steps
    issuer = KEYS.address_for(1)
    assert market.contract_address is not None
    assert await world.chain.balance_of(market.contract_address, issuer) == SUPPLY


async def test_the_platform_contracts_are_deployed_once_per_chain() -> None:
    world = World(FlakyChain())
    first = await world.approved("ONE")
    second = await world.approved("TWO")
    await world.run(first)
    await world.run(second)
    platform = await world.records(PLATFORM_SUBJECT)
    assert [r.step for r in platform] == list(PLATFORM_STEPS)
    assert (await world.market(first)).contract_address != (
        await world.market(second)
    ).contract_address


async def test_two_markets_of_one_issuer_share_one_identity() -> None:
    world = World(FlakyChain())
    first = await world.approved("ONE", accredited=True)
    second = await world.approved("TWO", countries=("PT",))
    await world.run(first)
    await world.run(second)
    [identity] = await world.records(identity_subject(ISSUER.id))  # deployed once
    assert identity.contract_address is not None
    issuer = KEYS.address_for(1)
    for market_id in (first, second):
        market = await world.market(market_id)
        assert market.status is MarketStatus.ACTIVE, market.activation_error
        assert "identity" not in [r.step for r in await world.records(market_id)]
        token = market.contract_address or ""
        held = await world.chain.registered_identity(token, issuer)
        assert held is not None and held.identity == identity.contract_address
        assert await world.chain.is_verified(token, issuer)
    assert "identity" not in world.chain.signed  # no suite step deployed another one


async def test_a_job_that_died_after_sending_reuses_the_receipt() -> None:
    world = World(FlakyChain(auto_mine=False))
    market_id = await world.approved("SENT")
    await world.run(market_id)  # sent, then no receipt: the attempt fails (a worker dying)
    assert (await world.market(market_id)).status is MarketStatus.ACTIVATING
    [record] = await world.records(PLATFORM_SUBJECT)
    assert record.state is DeploymentState.SENT
    world.chain.auto_mine = True
    world.chain.mine()
    await world.run(market_id, attempt=2)  # the redelivered job
    market = await world.market(market_id)
    assert market.status is MarketStatus.ACTIVE, market.activation_error
    records = await world.all_records(market_id)
    assert world.chain.sent == [r.tx_hash for r in records]  # each sent once, in order
    assert world.chain.signed == list(suite_steps(await spec_of(world, market_id)))
    assert await world.chain.confirmed_nonce(record.signer) == len(records)


async def spec_of(world: World, market_id: str):  # type: ignore[no-untyped-def]
    market = await world.market(market_id)
    platform = await world.deployment.platform_contracts()
    [identity] = await world.records(identity_subject(ISSUER.id))
    spec = world.deployment.suite_spec(market, platform, KEYS.address_for(1))
    return attrs.evolve(spec, issuer_identity=identity.contract_address)


async def test_a_crash_before_the_mint_reached_the_chain_mints_once() -> None:
    world = World(FlakyChain())
    market_id = await world.approved("MINT")
    world.chain.fail_send_of = MINT_STEP  # the process died between record and send
    await world.run(market_id)
    market = await world.market(market_id)
    assert market.status is MarketStatus.ACTIVATING
    [mint] = [r for r in await world.records(market_id) if r.step == MINT_STEP]
    assert mint.state is DeploymentState.SIGNED and mint.tx_hash not in world.chain.sent
    await world.run(market_id, attempt=2)
    market = await world.market(market_id)
    assert market.status is MarketStatus.ACTIVE, market.activation_error
    assert market.contract_address is not None
    assert world.chain.signed.count(MINT_STEP) == 1  # the recorded bytes, not a new signature
    assert world.chain.sent.count(mint.tx_hash) == 1
    assert await world.chain.total_supply(market.contract_address) == SUPPLY
    assert await world.issuer_balance(market_id) == SUPPLY


async def test_a_duplicate_job_after_success_changes_nothing() -> None:
    world = World(FlakyChain())
    market_id = await world.approved("DUP")
    await world.run(market_id)
    sent = list(world.chain.sent)
    await world.run(market_id)
    await world.run(market_id, attempt=2)
    assert world.chain.sent == sent and world.chain.deploy_calls == 1
    assert await world.issuer_balance(market_id) == SUPPLY


async def test_two_first_jobs_of_one_market_at_once_sign_once() -> None:
    world = World(FlakyChain())
    market_id = await world.approved("BOTH")
    await asyncio.gather(world.run(market_id), world.run(market_id))
    records = await world.all_records(market_id)
    assert world.chain.sent == [r.tx_hash for r in records]
    assert len(world.chain.signed) == len(set(world.chain.signed))
    market = await world.market(market_id)
    assert market.status is MarketStatus.ACTIVE and market.activation_error is None
    assert await world.issuer_balance(market_id) == SUPPLY


async def test_two_jobs_of_one_market_at_once_follow_one_transaction() -> None:
    """The relay's job and the start-up resume of the same market, running side by side."""
    world = World(FlakyChain())
    market_id = await world.approved("TWICE")
    world.chain.fail_send_of = "token.init"
    await world.run(market_id)  # recorded, never sent
    await asyncio.gather(world.run(market_id, attempt=2), world.run(market_id, attempt=2))
    records = await world.records(market_id)
    assert all(r.state is DeploymentState.MINED for r in records)
    assert len(world.chain.signed) == len(set(world.chain.signed)) == len(records)
    market = await world.market(market_id)
    assert market.status is MarketStatus.ACTIVE
    assert market.contract_address == {r.step: r for r in records}[TOKEN_STEP].contract_address


async def test_another_deployment_sends_a_waiting_recorded_transaction_first() -> None:
    """A recorded, unsent transaction keeps its nonce: a later deployment sends it before
    signing its own, so neither leaves a gap nor takes that nonce."""
    world = World(FlakyChain())
    first = await world.approved("FIRST")
    second = await world.approved("SECOND")
    world.chain.fail_send_of = TOKEN_STEP
    await world.run(first)  # the token recorded, never sent
    [waiting] = [r for r in await world.records(first) if r.step == TOKEN_STEP]
    await world.run(second)
    [storage] = [r for r in await world.records(second) if r.step == "storage"]
    assert storage.nonce == waiting.nonce + 1
    assert waiting.tx_hash in world.chain.sent
    await world.run(first, attempt=2)  # finds its receipt, goes on
    assert (await world.market(first)).contract_address == waiting.contract_address
    assert (await world.market(second)).status is MarketStatus.ACTIVE
    assert world.chain.deploy_calls == 2
    assert len(world.chain.sent) == len(set(world.chain.sent))


async def test_a_transaction_whose_nonce_was_taken_is_superseded_then_signed_again() -> None:
    world = World(FlakyChain())
    market_id = await world.approved("TAKEN")
    world.chain.fail_send_of = TOKEN_STEP
    await world.run(market_id)
    [lost] = [r for r in await world.records(market_id) if r.step == TOKEN_STEP]
    # someone else (another tool with the same key) uses that nonce meanwhile
    await world.chain.deploy_platform()
    await world.run(market_id, attempt=2)
    old, new = [r for r in await world.records(market_id) if r.step == TOKEN_STEP]
    assert old.tx_hash == lost.tx_hash and old.state is DeploymentState.SUPERSEDED
    assert new.state is DeploymentState.MINED and new.nonce > lost.nonce
    market = await world.market(market_id)
    assert market.status is MarketStatus.ACTIVE and market.contract_address == new.contract_address
    assert lost.tx_hash not in world.chain.sent  # the lost one never reached the chain


async def test_pause_and_resume_pause_the_token_on_chain_once_per_event() -> None:
    world = World(FlakyChain())
    market_id = await world.approved("PAUSE")
    await world.run(market_id)
    market = await world.market(market_id)
    assert market.contract_address is not None
    token = market.contract_address
    await world.uc.pause(ADMIN, market_id, reason="audit")
    pause = TokenPauseJob(market_id=market_id, event_id="ev-1", paused=True)
    await world.deployment.handle_pause(pause)
    assert await world.chain.is_paused(token)
    sent = list(world.chain.sent)
    await world.deployment.handle_pause(pause)  # redelivered: the record is followed
    assert world.chain.sent == sent
    async with world.storage.unit_of_work() as uow:
        found = await uow.tokens.by_market(market_id)
    assert found is not None and found.paused
    await world.uc.resume(ADMIN, market_id)
    await world.deployment.handle_pause(
        TokenPauseJob(market_id=market_id, event_id="ev-2", paused=False)
    )
    assert not await world.chain.is_paused(token)
    steps = [r.step for r in await world.records(market_id)]
    assert steps[-2:] == ["pause:ev-1", "pause:ev-2"]
    # a late job of an older pause does not undo the resume
    sent = list(world.chain.sent)
    await world.deployment.handle_pause(
        TokenPauseJob(market_id=market_id, event_id="ev-0", paused=True)
    )
    assert world.chain.sent == sent and not await world.chain.is_paused(token)


async def test_the_embedded_stablecoin_is_deployed_once() -> None:
    world = World(FlakyChain())
    coin = EmbeddedStablecoin(world.storage, world.chain, FixedClock(), symbol="USDC")
    address = await coin.ensure()
    assert address is not None
    again = EmbeddedStablecoin(world.storage, world.chain, FixedClock(), symbol="USDC")
    assert await again.ensure() == address
    assert len(world.chain.sent) == 1
    metadata = await world.chain.token_metadata(address)
    assert (metadata.symbol, metadata.decimals) == ("USDC", 6)


async def test_a_chain_that_lost_the_recorded_deployments_is_refused() -> None:
    world = World(FlakyChain())
    market_id = await world.approved("GONE")
    await world.run(market_id)
    # the chain is replaced by an empty one (a removed chain file, a restarted dev node)
    empty = FlakyChain()
    guard = ChainStateGuard(world.storage, empty)
    problem = await guard.verify()
    assert problem is not None and "head is block 0" in problem
    queries = MarketQueries(world.storage, empty, guard)
    try:
        await queries.on_chain(market_id)
    except ServiceUnavailable as exc:
        assert exc.code == "chain_state_mismatch"
    else:
        raise AssertionError("on_chain served a chain that lost the market's token")
    deployment = TokenDeployment(
        world.storage, empty, world.jobs, FixedClock(), RetryPolicy(), guard=guard, custody=KEYS
    )
    other = await world.approved("NEXT")
    await deployment.handle(DeployTokenJob(market_id=other))
    assert empty.sent == [] and empty.signed == []  # nothing deployed on a wrong chain
    failed = await world.market(other)
    assert failed.status is MarketStatus.ACTIVATING
    assert failed.activation_error and "chain does not match" in failed.activation_error


async def test_a_matching_chain_passes_and_serves_its_token() -> None:
    world = World(FlakyChain())
    market_id = await world.approved("OK")
    await world.run(market_id)
    guard = ChainStateGuard(world.storage, world.chain)
    assert await guard.verify() is None
    token = await MarketQueries(world.storage, world.chain, guard).on_chain(market_id)
    assert token.symbol == "OK" and token.total_supply == SUPPLY
    assert token.issuer_address == KEYS.address_for(1) and token.issuer_balance == SUPPLY
    assert token.paused is False and token.decimals == 18
