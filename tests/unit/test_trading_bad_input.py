"""Bad orders over HTTP: each refusal is a 4xx with its own code, leaves no order, no lock and
nothing in the book. Pairs halted and closed by PATCH and by their market's events."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from bootstrap import Runtime
from core.markets.model import AssetType, Market, MarketStatus
from core.shared.events import DomainEvent
from core.trading.pairs import PairDefaults
from core.trading.service import create_pair_for_market
from tests.unit.conftest import bearer
from tests.unit.trading_helpers import (
    ETH,
    TRADING,
    USD,
    admin,
    assert_no_trace,
    balance,
    data,
    error,
    fund,
    make_pair,
    place,
    totals,
    trader,
)

NOW = datetime.now(UTC)


async def setup(client: Any, runtime: Runtime) -> dict[str, Any]:
    """tick 0.05, lot 0.05, quantities 0.10 to 5.00."""
    pair = await make_pair(
        client, runtime, tickSize="0.05", lotSize="0.05", minQuantity="0.1", maxQuantity="5"
    )
    await fund(runtime, "alice", pair["baseTokenId"], 10 * ETH)
    await fund(runtime, "alice", pair["quoteTokenId"], 1_000 * USD)
    return pair


LIMIT = {"side": "BUY", "type": "LIMIT", "price": "10.05", "quantity": "1.00"}
BAD_ORDERS = [
    ({"price": "10.03"}, 422, "price_off_tick"),
    ({"price": "10.001"}, 422, "too_many_decimals"),
    ({"quantity": "0.12"}, 422, "quantity_off_lot"),
    ({"quantity": "1.001"}, 422, "too_many_decimals"),
    ({"quantity": "0.05"}, 422, "quantity_below_min"),
    ({"quantity": "5.05"}, 422, "quantity_above_max"),
    ({"quantity": "0"}, 422, "validation_failed"),
    ({"price": "0"}, 422, "validation_failed"),
    ({"quantity": "-1"}, 422, "validation_failed"),
    ({"price": "-10.05"}, 422, "validation_failed"),
    ({"price": "1e3"}, 422, "validation_failed"),
    ({"price": 10}, 422, "validation_failed"),
    ({"price": None}, 422, "price_required"),
    ({"type": "MARKET"}, 422, "price_not_allowed"),
    ({"type": "STOP_LIMIT"}, 422, "stop_price_required"),
    ({"stopPrice": "9.00"}, 422, "stop_price_not_allowed"),
    ({"side": "HOLD"}, 422, "validation_failed"),
    ({"timeInForce": "GTD"}, 422, "validation_failed"),
    ({"postOnly": True, "timeInForce": "IOC"}, 422, "post_only_not_gtc"),
    (
        {"type": "MARKET", "price": None, "quoteAmount": "5", "quantity": None, "side": "SELL"},
        422,
        "quote_amount_not_allowed",
    ),
    ({"tradingPairId": "NOPE-USDC"}, 404, "pair_not_found"),
    ({"price": "100000.00"}, 409, "insufficient_funds"),
    ({"side": "SELL", "quantity": "5.00", "price": "10.00"}, 201, None),  # within funds
]


@pytest.mark.parametrize(("change", "status", "code"), BAD_ORDERS)
async def test_each_bad_order_is_refused_without_a_trace(
    client: Any, runtime: Runtime, change: dict[str, Any], status: int, code: str | None
) -> None:
    pair = await setup(client, runtime)
    body = {k: v for k, v in {**LIMIT, **change}.items() if v is not None}
    response = await place(client, runtime, "alice", **body)
    assert response.status_code == status, await response.get_json()
    if code is None:
        order = await data(response)
        assert order["status"] == "OPEN"
        cancelled = await client.delete(
            f"{TRADING}/orders/{order['id']}", headers=trader(runtime, "alice")
        )
        assert cancelled.status_code == 200
    else:
        assert (await error(response))["code"] == code
    await assert_no_trace(client, runtime, pair)


async def test_the_order_of_checks(client: Any, runtime: Runtime) -> None:
    await setup(client, runtime)
    body = {"tradingPairId": "WETH-USDC", **LIMIT}
    no_token = await client.post(f"{TRADING}/orders", json=body)
    assert no_token.status_code == 401
    penniless = await client.post(f"{TRADING}/orders", json=body, headers=trader(runtime, "x"))
    assert penniless.status_code == 409
    assert (await error(penniless))["code"] == "insufficient_funds"
    wrong_role = await client.post(
        f"{TRADING}/orders", json={"nonsense": 1}, headers=bearer(runtime, "i-1", "issuer")
    )
    assert wrong_role.status_code == 403  # before the body is looked at
    unknown_field = await place(client, runtime, "alice", **LIMIT, colour="red")
    assert unknown_field.status_code == 422


async def test_cancels_refused_for_others_and_ended_orders(client: Any, runtime: Runtime) -> None:
    pair = await setup(client, runtime)
    await fund(runtime, "bob", pair["quoteTokenId"], 1_000 * USD)
    sell = await data(
        await place(
            client, runtime, "alice", side="SELL", type="LIMIT", price="10.00", quantity="1"
        )
    )
    foreign = await client.delete(f"{TRADING}/orders/{sell['id']}", headers=trader(runtime, "bob"))
    assert foreign.status_code == 403 and (await error(foreign))["code"] == "forbidden"
    await place(client, runtime, "bob", side="BUY", type="LIMIT", price="10.00", quantity="1")
    filled = await client.delete(f"{TRADING}/orders/{sell['id']}", headers=trader(runtime, "alice"))
    assert filled.status_code == 409 and (await error(filled))["code"] == "order_not_open"
    missing = await client.delete(f"{TRADING}/orders/nope", headers=trader(runtime, "alice"))
    assert missing.status_code == 404
    assert (await balance(runtime, "alice", pair["baseTokenId"])).locked == 0
    assert (await balance(runtime, "bob", pair["quoteTokenId"])).locked == 0


async def test_halted_takes_cancels_not_orders_and_closed_unlocks_everything(
    client: Any, runtime: Runtime
) -> None:
    pair = await setup(client, runtime)
    await fund(runtime, "bob", pair["quoteTokenId"], 1_000 * USD)
    first = await data(
        await place(
            client, runtime, "alice", side="SELL", type="LIMIT", price="10.00", quantity="1"
        )
    )
    await place(client, runtime, "alice", side="SELL", type="LIMIT", price="11.00", quantity="1")
    await place(client, runtime, "bob", side="BUY", type="LIMIT", price="9.00", quantity="2")
    url = f"{TRADING}/pairs/WETH-USDC"
    halted = await client.patch(url, json={"status": "halted"}, headers=admin(runtime))
    assert halted.status_code == 200 and (await data(halted))["status"] == "halted"
    refused = await place(
        client, runtime, "bob", side="BUY", type="LIMIT", price="10.00", quantity="1"
    )
    assert refused.status_code == 409 and (await error(refused))["code"] == "pair_halted"
    cancel = await client.delete(
        f"{TRADING}/orders/{first['id']}", headers=trader(runtime, "alice")
    )
    assert cancel.status_code == 200
    by_trader = await client.patch(url, json={"status": "trading"}, headers=trader(runtime, "bob"))
    assert by_trader.status_code == 403
    fees = await client.patch(
        url, json={"takerFeeBps": 30, "minQuantity": "0.2"}, headers=admin(runtime)
    )
    changed = await data(fees)
    assert changed["takerFeeBps"] == 30 and changed["minQuantity"] == "0.20"
    bad = await client.patch(url, json={"maxQuantity": "0.13"}, headers=admin(runtime))
    assert bad.status_code == 422
    closed = await client.patch(url, json={"status": "closed"}, headers=admin(runtime))
    assert closed.status_code == 200 and (await data(closed))["status"] == "closed"
    for user in ("alice", "bob"):
        for token in (pair["baseTokenId"], pair["quoteTokenId"]):
            assert (await balance(runtime, user, token)).locked == 0
        orders = await data(
            await client.get(f"{TRADING}/users/{user}/orders", headers=trader(runtime, user))
        )
        assert {o["status"] for o in orders} == {"CANCELLED"}
    book = await data(await client.get(f"{url}/orderbook"))
    assert book["bids"] == [] and book["asks"] == []
    reopen = await client.patch(url, json={"status": "trading"}, headers=admin(runtime))
    assert reopen.status_code == 409 and (await error(reopen))["code"] == "pair_closed"
    late = await place(
        client, runtime, "bob", side="BUY", type="LIMIT", price="10.00", quantity="1"
    )
    assert late.status_code == 409 and (await error(late))["code"] == "pair_closed"


async def test_the_pair_follows_its_market(client: Any, runtime: Runtime) -> None:
    await client.post(
        "/api/v1/tokens",
        json={"symbol": "LUXAPT", "name": "Lux", "type": "CRYPTO", "decimals": 0},
        headers=admin(runtime),
    )
    market = Market(
        id="m-lux",
        name="Lux",
        asset_type=AssetType.REAL_ESTATE,
        issuer_id="issuer-1",
        token_symbol="LUXAPT",
        token_name="Lux",
        total_supply=1000,
        status=MarketStatus.ACTIVE,
        created_at=NOW,
        updated_at=NOW,
        decimals=0,
        tick_size=Decimal("0.05"),
        lot_size=Decimal("1"),
        maker_fee_bps=None,
        taker_fee_bps=5,
    )
    storage = runtime.container.storage()
    async with storage.unit_of_work() as uow:
        base = await uow.tokens.by_symbol("LUXAPT")
        quote = await uow.tokens.by_symbol("USDC")
        assert base is not None and quote is not None
        pair = await create_pair_for_market(
            uow, market, base, quote, PairDefaults(maker_fee_bps=7, taker_fee_bps=9), NOW
        )
        again = await create_pair_for_market(uow, market, base, quote, PairDefaults())
        assert again == pair
        await uow.commit()
    assert (pair.symbol, pair.tick_size, pair.lot_size) == ("LUXAPT-USDC", "0.05", "1")
    assert (pair.maker_fee_bps, pair.taker_fee_bps) == (7, 5)
    await fund(runtime, "alice", base.id, 10)
    await fund(runtime, "bob", quote.id, 1_000 * USD)
    await place(
        client,
        runtime,
        "alice",
        tradingPairId="LUXAPT-USDC",
        side="SELL",
        type="LIMIT",
        price="3.05",
        quantity="4",
    )
    trading = runtime.container.trading()

    def event(kind: str) -> DomainEvent:
        return DomainEvent(
            type=kind,
            aggregate_id=market.id,
            actor_id="admin-1",
            actor_type="user",
            occurred_at=NOW,
        )

    await trading.on_market_event(event("market.paused"))
    await trading.on_market_event(event("market.paused"))  # a repeat changes nothing
    assert (await trading.get_pair("LUXAPT-USDC")).status.value == "halted"
    await trading.on_market_event(event("market.resumed"))
    bought = await place(
        client,
        runtime,
        "bob",
        tradingPairId="LUXAPT-USDC",
        side="BUY",
        type="LIMIT",
        price="3.05",
        quantity="1",
    )
    assert (await data(bought))["status"] == "FILLED"
    await trading.on_market_event(event("market.archived"))
    closed = await trading.get_pair("LUXAPT-USDC")
    assert closed.status.value == "closed"
    assert (await balance(runtime, "alice", base.id)).locked == 0
    assert (await balance(runtime, "alice", base.id)).available == 9
    for token in (base.id, quote.id):
        total, outstanding = await totals(runtime, token)
        assert total == outstanding


async def test_an_rwa_pair_needs_a_compliant_trader(client: Any, runtime: Runtime) -> None:
    created = await client.post(
        "/api/v1/tokens",
        json={"symbol": "GOLD", "name": "Gold bars", "type": "RWA", "decimals": 0},
        headers=admin(runtime),
    )
    gold = await data(created)
    pair = await client.post(
        f"{TRADING}/pairs",
        json={"baseToken": "GOLD", "quoteToken": "USDC", "tickSize": "0.01", "lotSize": "1"},
        headers=admin(runtime),
    )
    quote = (await data(pair))["quoteTokenId"]
    await fund(runtime, "alice", quote, 1_000 * USD)
    order = {"tradingPairId": "GOLD-USDC", "side": "BUY", "type": "LIMIT", "price": "5.00"}
    refused = await place(client, runtime, "alice", **order, quantity="2")
    assert refused.status_code == 403 and (await error(refused))["code"] == "kyc_not_approved"
    assert (await balance(runtime, "alice", quote)).locked == 0
    record = {
        "kycStatus": "APPROVED",
        "whitelisted": True,
        "accredited": False,
        "jurisdiction": "PT",
        "expiresAt": "2099-12-31T23:59:59Z",
    }
    saved = await client.post(
        "/api/v1/tokens/compliance/alice", json=record, headers=admin(runtime)
    )
    assert saved.status_code == 200
    accepted = await place(client, runtime, "alice", **order, quantity="2")
    assert accepted.status_code == 201 and (await data(accepted))["status"] == "OPEN"
    assert (await balance(runtime, "alice", quote)).locked == 10_020_000
    assert gold["type"] == "RWA"
