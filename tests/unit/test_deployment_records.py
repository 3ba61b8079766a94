"""One market, one contract (DESIGN §4): the deploy-token job records its transaction before
sending it and every later attempt follows that transaction.

The chain is ``MemoryChain`` with its nonce rules (a used nonce is refused, no gaps) and, where
a crash between send and receipt is played, with mining held back (``auto_mine=False``).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from adapters.outbound.permissions.local import LocalPolicyPermissions
from adapters.outbound.storage.memory import MemoryStorage
from core.markets.chain_state import ChainStateGuard
from core.markets.deployment import RetryPolicy, TokenDeployment
from core.markets.model import Market, MarketStatus
from core.markets.queries import MarketQueries
from core.markets.registration import RegisterMarket
from core.markets.use_cases import MarketUseCases
from core.ports.chain import TokenSpec
from core.ports.clock import Clock
from core.ports.deployments import DeploymentRecord, DeploymentState
from core.ports.jobs import DeployTokenJob
from core.shared.authorization import Authorizer
from core.shared.errors import ServiceUnavailable
from core.shared.events import Actor
from tests.unit.doubles import FlakyChain, RecordingJobQueue

ADMIN = Actor(id="admin-1", roles=("admin",))
ISSUER = Actor(id="issuer-1", roles=("issuer",))


class FixedClock(Clock):
    def now(self) -> datetime:
        return datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)


class World:
    def __init__(self, chain: FlakyChain) -> None:
        self.storage = MemoryStorage()
        self.chain = chain
        self.jobs = RecordingJobQueue()
        clock = FixedClock()
        self.uc = MarketUseCases(self.storage, Authorizer(LocalPolicyPermissions()), clock)
        self.deployment = TokenDeployment(
            self.storage, chain, self.jobs, clock, RetryPolicy(max_attempts=5)
        )

    async def approved(self, symbol: str) -> str:
        market = await self.uc.register(
            ISSUER,
            RegisterMarket(
                name=f"{symbol} Tower",
                asset_type="real_estate",
                token_symbol=symbol,
                token_name=f"{symbol} Token",
                total_supply=1000,
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

    async def records(self, market_id: str) -> list[DeploymentRecord]:
        async with self.storage.unit_of_work() as uow:
            return await uow.deployments.for_market(market_id)


async def test_the_transaction_is_recorded_before_it_is_sent() -> None:
    world = World(FlakyChain())
    market_id = await world.approved("REC")
    seen: list[list[DeploymentRecord]] = []
    send = world.chain.send_raw_transaction

    async def spy(raw: str) -> str:
        seen.append(await world.records(market_id))  # what storage holds at the moment of send
        return await send(raw)

    world.chain.send_raw_transaction = spy  # type: ignore[method-assign,assignment]
    await world.run(market_id)
    [at_send] = seen
    assert [r.state for r in at_send] == [DeploymentState.SIGNED]
    market = await world.market(market_id)
    [record] = await world.records(market_id)
    assert market.status is MarketStatus.ACTIVE
    assert market.contract_address == record.contract_address == at_send[0].contract_address
    assert market.deployment_tx_hash == record.tx_hash
    assert record.state is DeploymentState.MINED and record.block_number == 1


async def test_a_job_that_died_after_sending_reuses_the_receipt() -> None:
    world = World(FlakyChain(auto_mine=False))
    market_id = await world.approved("SENT")
    await world.run(market_id)  # sent, then no receipt: the attempt fails (a worker dying)
    assert (await world.market(market_id)).status is MarketStatus.ACTIVATING
    [record] = await world.records(market_id)
    assert record.state is DeploymentState.SENT
    world.chain.mine()
    await world.run(market_id, attempt=2)  # the redelivered job
    market = await world.market(market_id)
    assert market.status is MarketStatus.ACTIVE
    assert market.contract_address == record.contract_address
    assert world.chain.deploy_calls == 1  # signed once
    assert world.chain.sent == [record.tx_hash]  # one transaction, one contract
    assert await world.chain.confirmed_nonce(record.signer) == 1


async def test_a_duplicate_job_after_success_changes_nothing() -> None:
    world = World(FlakyChain())
    market_id = await world.approved("DUP")
    await world.run(market_id)
    await world.run(market_id)
    assert world.chain.deploy_calls == 1 and len(world.chain.sent) == 1


async def test_two_first_jobs_of_one_market_at_once_sign_once() -> None:
    world = World(FlakyChain())
    market_id = await world.approved("BOTH")
    await asyncio.gather(world.run(market_id), world.run(market_id))
    [record] = await world.records(market_id)
    assert world.chain.deploy_calls == 1 and world.chain.sent == [record.tx_hash]
    market = await world.market(market_id)
    assert market.status is MarketStatus.ACTIVE and market.activation_error is None


async def test_a_transaction_recorded_but_never_sent_is_sent_on_retry() -> None:
    world = World(FlakyChain())
    market_id = await world.approved("UNSENT")
    world.chain.send_failures = 1  # the process died between record and send
    await world.run(market_id)
    [record] = await world.records(market_id)
    assert record.state is DeploymentState.SIGNED and world.chain.sent == []
    await world.run(market_id, attempt=2)
    market = await world.market(market_id)
    assert market.status is MarketStatus.ACTIVE
    assert market.contract_address == record.contract_address
    assert world.chain.sent == [record.tx_hash]  # the recorded bytes, not a new signature
    assert world.chain.deploy_calls == 1
    [final] = await world.records(market_id)
    assert final.state is DeploymentState.MINED and final.block_number == 1


async def test_two_jobs_of_one_market_at_once_follow_one_transaction() -> None:
    """The relay's job and the start-up resume of the same market, running side by side."""
    world = World(FlakyChain())
    market_id = await world.approved("TWICE")
    world.chain.send_failures = 1
    await world.run(market_id)  # recorded, never sent
    await asyncio.gather(world.run(market_id, attempt=2), world.run(market_id, attempt=2))
    [record] = await world.records(market_id)
    assert record.state is DeploymentState.MINED
    assert world.chain.sent == [record.tx_hash] and world.chain.deploy_calls == 1
    market = await world.market(market_id)
    assert (
        market.status is MarketStatus.ACTIVE and market.contract_address == record.contract_address
    )


async def test_another_deployment_sends_a_waiting_recorded_transaction_first() -> None:
    """A recorded, unsent transaction keeps its nonce: a later deployment sends it before
    signing its own, so neither leaves a gap nor takes that nonce."""
    world = World(FlakyChain())
    first = await world.approved("FIRST")
    second = await world.approved("SECOND")
    world.chain.send_failures = 1
    await world.run(first)  # recorded with nonce 0, never sent
    [waiting] = await world.records(first)
    await world.run(second)
    [other] = await world.records(second)
    assert (waiting.nonce, other.nonce) == (0, 1)
    assert world.chain.sent == [waiting.tx_hash, other.tx_hash]
    await world.run(first, attempt=2)  # finds its receipt
    assert (await world.market(first)).contract_address == waiting.contract_address
    assert (await world.market(second)).contract_address == other.contract_address
    assert len(world.chain.sent) == 2 and world.chain.deploy_calls == 2


async def test_a_transaction_whose_nonce_was_taken_is_superseded_then_signed_again() -> None:
    world = World(FlakyChain())
    market_id = await world.approved("TAKEN")
    world.chain.send_failures = 1
    await world.run(market_id)
    [lost] = await world.records(market_id)
    # someone else (another tool with the same key) uses that nonce meanwhile
    await world.chain.deploy_token(TokenSpec("Other", "OTHER", 18, 1))
    await world.run(market_id, attempt=2)
    old, new = await world.records(market_id)
    assert old.tx_hash == lost.tx_hash and old.state is DeploymentState.SUPERSEDED
    assert new.state is DeploymentState.MINED and new.nonce == lost.nonce + 1
    market = await world.market(market_id)
    assert market.status is MarketStatus.ACTIVE and market.contract_address == new.contract_address
    assert lost.tx_hash not in world.chain.sent  # the lost one never reached the chain


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
        world.storage, empty, world.jobs, FixedClock(), RetryPolicy(), guard=guard
    )
    other = await world.approved("NEXT")
    await deployment.handle(DeployTokenJob(market_id=other))
    assert empty.sent == [] and empty.deploy_calls == 0  # nothing deployed on a wrong chain
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
    assert token.symbol == "OK" and token.total_supply == 1000 * 10**18
