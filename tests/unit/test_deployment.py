"""The deploy-token job through the real in-memory queue and outbox relay: retries, backoff,
the final failure, and the manual retry."""

from __future__ import annotations

from collections.abc import AsyncIterator

import attrs
import pytest

import bootstrap
from bootstrap import Runtime, Settings
from core.markets.deployment import RetryPolicy
from core.markets.model import MarketStatus
from core.markets.registration import RegisterMarket
from core.ports.jobs import DeployTokenJob
from core.shared.events import Actor
from tests.unit.doubles import FlakyChain

ADMIN = Actor(id="admin-1", roles=("admin",))
ISSUER = Actor(id="issuer-1", roles=("issuer",))
REGISTRATION = RegisterMarket(
    name="Gold Vault",
    asset_type="commodity",
    token_symbol="GLD1",
    token_name="Vaulted Gold",
    total_supply="250000",
)


@pytest.fixture
async def runtime() -> AsyncIterator[Runtime]:
    rt = bootstrap.build(Settings(profile="test", jwt_secret="x" * 40, deploy_backoff_seconds=0.01))
    rt.container.chain.override(FlakyChain())  # type: ignore[attr-defined]
    await rt.start()
    yield rt
    await rt.stop()


async def settle(rt: Runtime) -> None:
    """Let the relay and the job queue run until nothing is left to do."""
    for _ in range(20):
        await rt.container.relay().pump()
        await rt.container.jobs().join(timeout=10)
        async with rt.container.storage().unit_of_work() as uow:
            if not await uow.outbox.pending(1):
                return


async def test_approval_deploys_the_token(runtime: Runtime) -> None:
    uc = runtime.container.market_use_cases()
    market = await uc.register(ISSUER, REGISTRATION)
    await uc.decide(ADMIN, market.id, "approve")
    await settle(runtime)
    active = await runtime.container.market_queries().get(market.id)
    assert active.status is MarketStatus.ACTIVE
    chain = runtime.container.chain()
    assert await chain.total_supply(active.contract_address) == 250000 * 10**18
    assert active.activation_attempts == 1


async def test_two_failures_then_success(runtime: Runtime) -> None:
    chain = runtime.container.chain()
    chain.failures = 2
    uc = runtime.container.market_use_cases()
    market = await uc.register(ISSUER, REGISTRATION)
    await uc.decide(ADMIN, market.id, "approve")
    await settle(runtime)
    done = await runtime.container.market_queries().get(market.id)
    assert done.status is MarketStatus.ACTIVE
    assert done.activation_attempts == 3
    assert chain.deploy_calls == 3
    events = [e.type for e in await runtime.container.market_queries().events(market.id)]
    assert events.count("market.activation_failed") == 0
    assert events[-1] == "market.activated"


async def test_five_failures_return_the_market_to_approved_then_manual_retry(
    runtime: Runtime,
) -> None:
    chain = runtime.container.chain()
    chain.failures = 5
    uc = runtime.container.market_use_cases()
    queries = runtime.container.market_queries()
    market = await uc.register(ISSUER, REGISTRATION)
    await uc.decide(ADMIN, market.id, "approve")
    await settle(runtime)
    failed = await queries.get(market.id)
    assert failed.status is MarketStatus.APPROVED
    assert failed.activation_attempts == 5
    assert failed.activation_error and "node unreachable" in failed.activation_error
    assert chain.deploy_calls == 5
    events = await queries.events(market.id)
    last = events[-1]
    assert last.type == "market.activation_failed"
    assert last.reason == failed.activation_error and last.metadata["attempts"] == 5

    await uc.activate(ISSUER, market.id)  # the owning issuer may retry by hand
    await settle(runtime)
    active = await queries.get(market.id)
    assert active.status is MarketStatus.ACTIVE and active.activation_error is None
    assert [e.type for e in await queries.events(market.id)][-2:] == [
        "market.activation_started",
        "market.activated",
    ]


async def test_a_duplicate_job_deploys_only_once(runtime: Runtime) -> None:
    uc = runtime.container.market_use_cases()
    market = await uc.register(ISSUER, REGISTRATION)
    await uc.decide(ADMIN, market.id, "approve")
    await settle(runtime)
    chain = runtime.container.chain()
    calls = chain.deploy_calls
    await runtime.container.deployment().handle(DeployTokenJob(market_id=market.id))
    assert chain.deploy_calls == calls


def test_backoff_doubles_and_is_capped() -> None:
    policy = RetryPolicy(max_attempts=5, base_delay_seconds=2, max_delay_seconds=10)
    assert [policy.delay_after(n) for n in range(1, 5)] == [2, 4, 8, 10]
    assert attrs.evolve(policy, factor=3).delay_after(2) == 6


async def test_interrupted_deployments_are_resumed_at_start() -> None:
    rt = bootstrap.build(Settings(profile="test", jwt_secret="x" * 40))
    uc = rt.container.market_use_cases()
    market = await uc.register(ISSUER, REGISTRATION)
    await uc.decide(ADMIN, market.id, "approve")
    # The process "died" after approval: mark the outbox done so only the resume can help.
    async with rt.container.storage().unit_of_work() as uow:
        pending = await uow.outbox.pending(100)
        await uow.outbox.mark_published([m.position for m in pending])
        await uow.commit()
    await rt.start()
    try:
        await settle(rt)
        assert (await rt.container.market_queries().get(market.id)).status is MarketStatus.ACTIVE
    finally:
        await rt.stop()
