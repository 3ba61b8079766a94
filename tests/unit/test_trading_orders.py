"""Pairs and orders over HTTP on the test profile: limit and market orders, fills settled on
the ledger with fees rounded up, cancels that unlock, idempotent clientOrderId, self-trade
prevention, post-only, FOK/IOC, stop-limit, the order book with seq and checksum, reads."""

from __future__ import annotations

from typing import Any

from bootstrap import Runtime
from core.ledger.model import AccountRef
from core.trading.book import checksum
from tests.unit.trading_helpers import (
    ETH,
    TRADING,
    USD,
    admin,
    balance,
    data,
    error,
    fund,
    make_pair,
    place,
    totals,
    trader,
)


async def setup(client: Any, runtime: Runtime) -> dict[str, Any]:
    pair = await make_pair(client, runtime)
    for user in ("alice", "bob", "carol"):
        await fund(runtime, user, pair["baseTokenId"], 100 * ETH)
        await fund(runtime, user, pair["quoteTokenId"], 1_000_000 * USD)
    return pair


async def test_pair_reads_by_id_and_symbol(client: Any, runtime: Runtime) -> None:
    pair = await make_pair(client, runtime)
    assert pair["symbol"] == "WETH-USDC" and pair["status"] == "trading"
    assert pair["tickSize"] == "0.01" and pair["lotSize"] == "0.001"
    assert pair["minQuantity"] == "0.001" and pair["maxQuantity"] == "1000.000"
    for reference in (pair["id"], "WETH-USDC", "weth-usdc"):
        got = await client.get(f"{TRADING}/pairs/{reference}")
        assert got.status_code == 200 and await data(got) == pair
    listed = await data(await client.get(f"{TRADING}/pairs"))
    assert [p["symbol"] for p in listed] == ["WETH-USDC"]
    missing = await client.get(f"{TRADING}/pairs/NOPE-USDC")
    assert missing.status_code == 404 and (await error(missing))["code"] == "pair_not_found"


async def test_a_limit_order_rests_and_locks_quote_plus_max_fee(
    client: Any, runtime: Runtime
) -> None:
    pair = await setup(client, runtime)
    response = await place(
        client, runtime, "alice", side="BUY", type="LIMIT", price="2000.00", quantity="1.500"
    )
    assert response.status_code == 201
    order = await data(response)
    assert order["status"] == "OPEN" and order["price"] == "2000.00"
    assert order["quantity"] == "1.500" and order["remainingQuantity"] == "1.500"
    assert order["filledQuantity"] == "0.000" and order["fee"] == "0"
    quote = await balance(runtime, "alice", pair["quoteTokenId"])
    # 3000 USDC + the larger fee (20 bps) = 3006
    assert quote.locked == 3006 * USD
    book = await data(await client.get(f"{TRADING}/pairs/WETH-USDC/orderbook?depth=5"))
    assert book["bids"] == [["2000.00", "1.500"]] and book["asks"] == []
    assert book["pair"] == "WETH-USDC" and book["seq"] == 1
    assert book["checksum"] == checksum([("2000.00", "1.500")], [])
    cancelled = await client.delete(
        f"{TRADING}/orders/{order['id']}", headers=trader(runtime, "alice")
    )
    assert cancelled.status_code == 200 and (await data(cancelled))["status"] == "CANCELLED"
    quote = await balance(runtime, "alice", pair["quoteTokenId"])
    assert quote.locked == 0 and quote.available == 1_000_000 * USD
    book = await data(await client.get(f"{TRADING}/pairs/WETH-USDC/orderbook"))
    assert book["bids"] == [] and book["seq"] == 2
    again = await client.delete(f"{TRADING}/orders/{order['id']}", headers=trader(runtime, "alice"))
    assert again.status_code == 409 and (await error(again))["code"] == "order_not_open"


async def test_a_cross_settles_with_fees_rounded_up(client: Any, runtime: Runtime) -> None:
    pair = await setup(client, runtime)
    base, quote = pair["baseTokenId"], pair["quoteTokenId"]
    maker = await data(
        await place(
            client, runtime, "alice", side="SELL", type="LIMIT", price="1999.99", quantity="0.003"
        )
    )
    taker_response = await place(
        client, runtime, "bob", side="BUY", type="LIMIT", price="2000.00", quantity="0.002"
    )
    taker = await data(taker_response)
    assert taker["status"] == "FILLED" and taker["filledQuantity"] == "0.002"
    assert taker["averagePrice"] == "1999.99"
    # notional 3.99998 USDC; taker fee 20 bps = 0.007999960 -> rounded up 0.008
    assert taker["fee"] == "0.008"
    notional = 3_999_980
    assert (await balance(runtime, "bob", quote)).available == 1_000_000 * USD - notional - 8_000
    assert (await balance(runtime, "bob", quote)).locked == 0
    assert (await balance(runtime, "bob", base)).available == 100 * ETH + 2 * 10**15
    # maker fee 10 bps = 0.003999980 -> 0.004
    alice_quote = await balance(runtime, "alice", quote)
    assert alice_quote.available == 1_000_000 * USD + notional - 4_000
    alice_base = await balance(runtime, "alice", base)
    assert alice_base.locked == 10**15 and alice_base.available == 100 * ETH - 3 * 10**15
    fees = await balance(runtime, "@fee", quote)
    assert fees.available == 12_000
    got = await data(
        await client.get(f"{TRADING}/orders/{maker['id']}", headers=trader(runtime, "alice"))
    )
    assert got["status"] == "PARTIALLY_FILLED" and got["remainingQuantity"] == "0.001"
    trades = await data(await client.get(f"{TRADING}/pairs/WETH-USDC/trades?limit=10"))
    assert [(t["price"], t["quantity"], t["takerSide"]) for t in trades] == [
        ("1999.99", "0.002", "BUY")
    ]
    mine = await client.get(f"{TRADING}/users/alice/trades", headers=trader(runtime, "alice"))
    assert [(t["liquidity"], t["side"], t["fee"]) for t in await data(mine)] == [
        ("MAKER", "SELL", "0.004")
    ]
    for token in (base, quote):
        total, outstanding = await totals(runtime, token)
        assert total == outstanding


async def test_market_orders_by_quantity_and_by_funds(client: Any, runtime: Runtime) -> None:
    pair = await setup(client, runtime)
    quote = pair["quoteTokenId"]
    for price in ("100.00", "101.00", "102.00"):
        await place(
            client, runtime, "alice", side="SELL", type="LIMIT", price=price, quantity="1.000"
        )
    bought = await data(
        await place(client, runtime, "bob", side="BUY", type="MARKET", quantity="1.500")
    )
    assert bought["status"] == "FILLED" and bought["filledQuantity"] == "1.500"
    assert bought["averagePrice"] == "100.333333"
    bob = await balance(runtime, "bob", quote)
    assert bob.locked == 0
    notional = 150_500_000  # 100 + 50.5
    assert bob.available == 1_000_000 * USD - notional - 301_000
    by_funds = await data(
        await place(client, runtime, "carol", side="BUY", type="MARKET", quoteAmount="60")
    )
    assert by_funds["status"] == "FILLED" and by_funds["quoteAmount"] == "60"
    carol = await balance(runtime, "carol", quote)
    assert carol.locked == 0
    spent = 1_000_000 * USD - carol.available
    assert 0 < spent <= 60 * USD
    sold = await data(
        await place(client, runtime, "carol", side="SELL", type="MARKET", quantity="1")
    )
    assert sold["status"] == "EXPIRED" and sold["rejectReason"] == "unfilled"
    assert (await balance(runtime, "carol", pair["baseTokenId"])).locked == 0
    for token in (pair["baseTokenId"], quote):
        total, outstanding = await totals(runtime, token)
        assert total == outstanding


async def test_average_price_has_the_pairs_price_precision(client: Any, runtime: Runtime) -> None:
    """``averagePrice`` is written like ``price`` ("10.00", not "10"), on the submit answer, the
    order read and the user's order list; an average between two ticks keeps its places."""
    await setup(client, runtime)
    await place(client, runtime, "alice", side="SELL", type="LIMIT", price="10.00", quantity="1")
    taker = await data(
        await place(client, runtime, "bob", side="BUY", type="LIMIT", price="10.00", quantity="1")
    )
    assert taker["status"] == "FILLED" and taker["averagePrice"] == "10.00"
    assert taker["price"] == "10.00"
    got = await data(
        await client.get(f"{TRADING}/orders/{taker['id']}", headers=trader(runtime, "bob"))
    )
    assert got["averagePrice"] == "10.00"
    listed = await data(
        await client.get(f"{TRADING}/users/bob/orders", headers=trader(runtime, "bob"))
    )
    assert [o["averagePrice"] for o in listed] == ["10.00"]
    # 1 at 10.00 and 1 at 10.10: 10.05, two places; 1 at 10.00 and 2 at 10.01: 10.006666
    await place(client, runtime, "alice", side="SELL", type="LIMIT", price="10.00", quantity="1")
    await place(client, runtime, "alice", side="SELL", type="LIMIT", price="10.10", quantity="1")
    two = await data(await place(client, runtime, "bob", side="BUY", type="MARKET", quantity="2"))
    assert two["averagePrice"] == "10.05"
    await place(client, runtime, "alice", side="SELL", type="LIMIT", price="10.00", quantity="1")
    await place(client, runtime, "alice", side="SELL", type="LIMIT", price="10.01", quantity="2")
    three = await data(await place(client, runtime, "bob", side="BUY", type="MARKET", quantity="3"))
    assert three["averagePrice"] == "10.006666"  # truncated to the quote's smallest unit
    # an order that never filled has none
    resting = await data(
        await place(client, runtime, "carol", side="BUY", type="LIMIT", price="1.00", quantity="1")
    )
    assert resting["averagePrice"] is None


async def test_client_order_id_is_idempotent(client: Any, runtime: Runtime) -> None:
    pair = await setup(client, runtime)
    first = await data(
        await place(
            client,
            runtime,
            "alice",
            side="BUY",
            type="LIMIT",
            price="10.00",
            quantity="1",
            clientOrderId="my-1",
        )
    )
    again = await place(
        client,
        runtime,
        "alice",
        side="BUY",
        type="LIMIT",
        price="10.00",
        quantity="1",
        clientOrderId="my-1",
    )
    assert again.status_code == 201 and (await data(again))["id"] == first["id"]
    assert (await balance(runtime, "alice", pair["quoteTokenId"])).locked == 10_020_000
    other = await data(
        await place(
            client,
            runtime,
            "bob",
            side="BUY",
            type="LIMIT",
            price="10.00",
            quantity="1",
            clientOrderId="my-1",
        )
    )
    assert other["id"] != first["id"]


async def test_self_trade_prevention_expires_the_taker(client: Any, runtime: Runtime) -> None:
    pair = await setup(client, runtime)
    resting = await data(
        await place(
            client, runtime, "alice", side="SELL", type="LIMIT", price="50.00", quantity="1"
        )
    )
    taker = await data(
        await place(client, runtime, "alice", side="BUY", type="LIMIT", price="50.00", quantity="1")
    )
    assert taker["status"] == "EXPIRED" and taker["rejectReason"] == "self_trade"
    assert (await balance(runtime, "alice", pair["quoteTokenId"])).locked == 0
    got = await data(
        await client.get(f"{TRADING}/orders/{resting['id']}", headers=trader(runtime, "alice"))
    )
    assert got["status"] == "OPEN"


async def test_post_only_fok_ioc_and_stop_limit(client: Any, runtime: Runtime) -> None:
    pair = await setup(client, runtime)
    quote, base = pair["quoteTokenId"], pair["baseTokenId"]
    await place(client, runtime, "alice", side="SELL", type="LIMIT", price="10.00", quantity="1")
    post = await data(
        await place(
            client,
            runtime,
            "bob",
            side="BUY",
            type="LIMIT",
            price="10.00",
            quantity="1",
            postOnly=True,
        )
    )
    assert post["status"] == "REJECTED" and post["rejectReason"] == "post_only_would_cross"
    fok = await data(
        await place(
            client,
            runtime,
            "bob",
            side="BUY",
            type="LIMIT",
            price="10.00",
            quantity="2",
            timeInForce="FOK",
        )
    )
    assert fok["status"] == "EXPIRED" and fok["filledQuantity"] == "0.000"
    ioc = await data(
        await place(
            client,
            runtime,
            "bob",
            side="BUY",
            type="LIMIT",
            price="10.00",
            quantity="2",
            timeInForce="IOC",
        )
    )
    assert ioc["status"] == "EXPIRED" and ioc["filledQuantity"] == "1.000"
    assert (await balance(runtime, "bob", quote)).locked == 0
    stop = await data(
        await place(
            client,
            runtime,
            "carol",
            side="SELL",
            type="STOP_LIMIT",
            price="8.00",
            stopPrice="9.00",
            quantity="1",
        )
    )
    assert stop["status"] == "PENDING_TRIGGER"
    assert (await balance(runtime, "carol", base)).locked == ETH
    await place(client, runtime, "bob", side="BUY", type="LIMIT", price="8.50", quantity="2")
    await place(client, runtime, "alice", side="SELL", type="LIMIT", price="9.00", quantity="1")
    await place(client, runtime, "bob", side="BUY", type="LIMIT", price="9.00", quantity="1")
    got = await data(
        await client.get(f"{TRADING}/orders/{stop['id']}", headers=trader(runtime, "carol"))
    )
    assert got["status"] == "FILLED" and got["averagePrice"] == "8.50"
    assert (await balance(runtime, "carol", base)).locked == 0
    for token in (base, quote):
        total, outstanding = await totals(runtime, token)
        assert total == outstanding


async def test_reads_are_owner_only_and_paginated(client: Any, runtime: Runtime) -> None:
    await setup(client, runtime)
    ids = []
    for price in ("1.00", "2.00", "3.00"):
        ids.append(
            (
                await data(
                    await place(
                        client,
                        runtime,
                        "alice",
                        side="BUY",
                        type="LIMIT",
                        price=price,
                        quantity="1",
                    )
                )
            )["id"]
        )
    page = await client.get(
        f"{TRADING}/users/alice/orders?limit=2&status=OPEN&pair=WETH-USDC",
        headers=trader(runtime, "alice"),
    )
    body = await page.get_json()
    assert [o["id"] for o in body["data"]] == ids[::-1][:2] and body["pagination"]["hasMore"]
    rest = await client.get(
        f"{TRADING}/users/alice/orders?limit=2&cursor={body['pagination']['nextCursor']}",
        headers=trader(runtime, "alice"),
    )
    assert [o["id"] for o in await data(rest)] == ids[:1]
    other = await client.get(f"{TRADING}/orders/{ids[0]}", headers=trader(runtime, "bob"))
    assert other.status_code == 403
    cancel = await client.delete(f"{TRADING}/orders/{ids[0]}", headers=trader(runtime, "bob"))
    assert cancel.status_code == 403
    listing = await client.get(f"{TRADING}/users/alice/orders", headers=trader(runtime, "bob"))
    assert listing.status_code == 403
    as_admin = await client.get(f"{TRADING}/orders/{ids[0]}", headers=admin(runtime))
    assert as_admin.status_code == 200
    missing = await client.get(f"{TRADING}/orders/nope", headers=trader(runtime, "alice"))
    assert missing.status_code == 404 and (await error(missing))["code"] == "order_not_found"
    assert (await balance(runtime, "alice", (await data(as_admin))["tradingPairId"])).locked == 0


async def test_balances_stay_conserved_in_the_fee_account(client: Any, runtime: Runtime) -> None:
    pair = await setup(client, runtime)
    await place(client, runtime, "alice", side="SELL", type="LIMIT", price="3.33", quantity="0.007")
    await place(client, runtime, "bob", side="BUY", type="MARKET", quantity="0.007")
    fee = await balance(runtime, AccountRef.fee(pair["quoteTokenId"]).owner, pair["quoteTokenId"])
    # notional 0.02331: maker 10 bps -> 0.000024 (rounded up), taker 20 bps -> 0.000047
    assert fee.available == 24 + 47
