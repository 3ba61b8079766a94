"""Activation creates the market's pair (DESIGN 4), the pair follows the market, and archive
pauses the token on chain like pause does; on the test profile, over HTTP."""

from __future__ import annotations

from typing import Any

from bootstrap import Runtime
from core.markets.deployment import TokenDeployment
from core.ports.deployments import DeploymentState
from core.ports.jobs import DeployTokenJob, TokenPauseJob
from core.trading.service import create_pair_for_market
from tests.unit.conftest import bearer
from tests.unit.doubles import FlakyChain
from tests.unit.test_deployment_records import ADMIN, World
from tests.unit.test_http_markets import REGISTER, body

TRADING = "/api/v1/trading"


async def settle(runtime: Runtime) -> None:
    """Every committed event relayed and reacted to, every job it queued done."""
    await runtime.container.relay().pump()
    await runtime.container.jobs().join(timeout=10)
    await runtime.container.relay().pump()


async def activated(client: Any, runtime: Runtime, **overrides: Any) -> dict[str, Any]:
    """A registered, approved and activated market (its JSON)."""
    issuer = bearer(runtime, "iss-pair", "issuer")
    admin = bearer(runtime, "adm", "admin")
    created = await client.post(REGISTER, json=body(**overrides), headers=issuer)
    assert created.status_code == 201, await created.get_json()
    market_id = (await created.get_json())["data"]["market"]["id"]
    approved = await client.post(
        f"/api/v1/markets/{market_id}/approve", json={"decision": "approve"}, headers=admin
    )
    assert approved.status_code == 200, await approved.get_json()
    await settle(runtime)
    market: dict[str, Any] = (await (await client.get(f"/api/v1/markets/{market_id}")).get_json())[
        "data"
    ]
    assert market["status"] == "active", market
    return market


async def pair_of(client: Any, symbol: str) -> dict[str, Any]:
    response = await client.get(f"{TRADING}/pairs/{symbol}-USDC")
    assert response.status_code == 200, await response.get_json()
    pair: dict[str, Any] = (await response.get_json())["data"]
    return pair


async def test_activation_creates_the_pair_that_follows_the_market(
    client: Any, runtime: Runtime
) -> None:
    market = await activated(client, runtime, tokenSymbol="HVP", tickSize="0.05", lotSize="10")
    pair = await pair_of(client, "HVP")
    listed = (await (await client.get("/api/v1/tokens")).get_json())["data"]
    tokens = {t["symbol"]: t for t in listed}
    assert pair["status"] == "trading"
    assert pair["symbol"] == "HVP-USDC" and pair["marketId"] == market["id"]
    assert pair["baseTokenId"] == tokens["HVP"]["id"]
    assert pair["quoteTokenId"] == tokens["USDC"]["id"]
    assert (pair["tickSize"], pair["lotSize"]) == ("0.05", "10")
    assert (pair["minQuantity"], pair["maxQuantity"]) == ("10", str(10 * 10**12))
    settings = runtime.settings
    assert (pair["makerFeeBps"], pair["takerFeeBps"]) == (
        settings.maker_fee_bps,
        settings.taker_fee_bps,
    )
    audit = await client.get(
        "/api/v1/audit?action=pair.create", headers=bearer(runtime, "adm", "admin")
    )
    entries = (await audit.get_json())["data"]
    assert [e["subject"] for e in entries] == [f"pair:{pair['id']}"], entries

    admin = bearer(runtime, "adm", "admin")
    address = market["contractAddress"]
    chain = runtime.container.chain()
    for action, status, token_paused in [
        ("pause", "halted", True),
        ("resume", "trading", False),
        ("archive", "closed", True),  # archive pauses the token on chain too
    ]:
        response = await client.post(f"/api/v1/markets/{market['id']}/{action}", headers=admin)
        assert response.status_code == 200, await response.get_json()
        await settle(runtime)
        assert (await pair_of(client, "HVP"))["status"] == status, action
        assert await chain.is_paused(address) is token_paused, action
        token = (await (await client.get("/api/v1/tokens/HVP")).get_json())["data"]
        assert token["paused"] is token_paused, (action, token)

    # one recorded transaction per pause event, archive included
    events = (
        await (await client.get(f"/api/v1/markets/{market['id']}/events?order=asc")).get_json()
    )["data"]
    lifecycle = [e for e in events if e["eventType"] in ("market.paused", "market.archived")]
    async with runtime.container.storage().unit_of_work(read_only=True) as uow:
        records = await uow.deployments.for_subject(market["id"])
        again = await create_pair_for_market(
            uow,
            await uow.markets.get(market["id"]),  # type: ignore[arg-type]
            await uow.tokens.by_symbol("HVP"),  # type: ignore[arg-type]
            await uow.tokens.by_symbol("USDC"),  # type: ignore[arg-type]
            runtime.container.trading().defaults,
        )
    steps = {r.step: r for r in records}
    for event in lifecycle:
        assert steps[f"pause:{event['id']}"].state is DeploymentState.MINED, event
    assert again.id == pair["id"]  # idempotent: the existing pair comes back


async def test_a_market_without_tick_and_lot_gets_a_cent_and_one_token(
    client: Any, runtime: Runtime
) -> None:
    extra = body()
    extra.pop("tickSize")
    extra.pop("lotSize")
    created = await client.post(REGISTER, json=extra, headers=bearer(runtime, "iss", "issuer"))
    market_id = (await created.get_json())["data"]["market"]["id"]
    await client.post(
        f"/api/v1/markets/{market_id}/approve",
        json={"decision": "approve"},
        headers=bearer(runtime, "adm", "admin"),
    )
    await settle(runtime)
    pair = await pair_of(client, "HVO")
    assert (pair["tickSize"], pair["lotSize"], pair["status"]) == ("0.01", "1", "trading")
    # a redelivered deploy-token job changes nothing: still one pair, the same one
    deployment: TokenDeployment = runtime.container.deployment()
    await deployment.handle(DeployTokenJob(market_id=market_id, attempt=1))
    pairs = (await (await client.get(f"{TRADING}/pairs")).get_json())["data"]
    assert [p["id"] for p in pairs] == [pair["id"]]


async def test_an_archive_job_pauses_the_token_and_a_late_resume_does_not_undo_it() -> None:
    world = World(FlakyChain())
    market_id = await world.approved("ARCH")
    await world.run(market_id)
    market = await world.market(market_id)
    assert market.contract_address is not None
    token = market.contract_address
    await world.uc.archive(ADMIN, market_id, reason="wound up")
    archive = TokenPauseJob(market_id=market_id, event_id="ev-archive", paused=True)
    await world.deployment.handle_pause(archive)
    assert await world.chain.is_paused(token)
    sent = list(world.chain.sent)
    await world.deployment.handle_pause(archive)  # redelivered: follows its record
    assert world.chain.sent == sent
    assert [r.step for r in await world.records(market_id)][-1] == "pause:ev-archive"
    # a resume job that arrives after the archive leaves the token paused
    await world.deployment.handle_pause(
        TokenPauseJob(market_id=market_id, event_id="ev-late-resume", paused=False)
    )
    assert world.chain.sent == sent and await world.chain.is_paused(token)
    async with world.storage.unit_of_work() as uow:
        found = await uow.tokens.by_market(market_id)
    assert found is not None and found.paused
