"""The trading channels and ops of ``/api/v1/ws`` through Quart's test client: a client that
applies the ``book`` snapshot and every update holds the REST book at that ``seq`` (checksums
equal) under random orders of three users; ``trades``; private ``orders``/``fills`` show a
user only their own; ``order.submit``/``order.cancel`` ack after the commit, refuse like
HTTP."""

from __future__ import annotations

import asyncio
import json
import random
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from bootstrap import Runtime
from core.shared.events import DomainEvent
from tests.unit.trading_helpers import ETH, TRADING, USD, fund, make_pair, place

WS = "/api/v1/ws"
USERS = ("ann", "ben", "cat")


@pytest.fixture
async def app(runtime: Runtime) -> AsyncIterator[Any]:
    async with runtime.http_app().test_app() as test_app:
        yield test_app


async def recv(ws: Any, timeout: float = 5.0) -> dict[str, Any]:
    while True:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.receive(), timeout))
        if frame["type"] != "heartbeat":
            return frame


async def ask(ws: Any, frame: dict[str, Any]) -> dict[str, Any]:
    await ws.send(json.dumps(frame))
    return await recv(ws)


async def auth(ws: Any, runtime: Runtime, user: str) -> None:
    tok = runtime.container.token_issuer().issue(user, ["trader"])
    assert (await ask(ws, {"op": "auth", "token": tok}))["type"] == "authenticated"


def _part(number: str) -> str:
    return number.replace(".", "").lstrip("0")


def checksum(bids: dict[str, str], asks: dict[str, str]) -> int:
    """The client's checksum, as docs/websocket.md gives it."""
    top_asks = sorted(asks, key=Decimal)[:10]
    top_bids = sorted(bids, key=Decimal, reverse=True)[:10]
    text = "".join(_part(p) + _part(asks[p]) for p in top_asks)
    text += "".join(_part(p) + _part(bids[p]) for p in top_bids)
    return zlib.crc32(text.encode("ascii"))


def apply(side: dict[str, str], levels: list[list[str]]) -> None:
    for price, size in levels:
        if Decimal(size) == 0:
            side.pop(price, None)
        else:
            side[price] = size


async def funded_pair(client: Any, runtime: Runtime) -> dict[str, Any]:
    pair = await make_pair(client, runtime)
    for user in USERS:
        await fund(runtime, user, pair["baseTokenId"], 100 * ETH)
        await fund(runtime, user, pair["quoteTokenId"], 1_000_000 * USD)
    return pair


async def rest_book(client: Any) -> dict[str, Any]:
    response = await client.get(f"{TRADING}/pairs/WETH-USDC/orderbook?depth=100")
    body: dict[str, Any] = (await response.get_json())["data"]
    return body


async def test_a_client_applying_the_book_holds_the_rest_book(app: Any, runtime: Runtime) -> None:
    client = app.test_client()
    await funded_pair(client, runtime)
    rng = random.Random(7)

    async def random_order() -> None:
        side = rng.choice(["BUY", "SELL"])
        order: dict[str, Any] = {"side": side, "quantity": f"{rng.randint(1, 40) / 1000:.3f}"}
        if rng.random() < 0.15:
            order["type"] = "MARKET"
        else:
            centre = 100 if side == "BUY" else 101
            order["type"] = "LIMIT"
            order["price"] = f"{centre + rng.randint(-30, 30) / 10:.2f}"
        response = await place(client, runtime, rng.choice(USERS), **order)
        assert response.status_code in (201, 409, 422), await response.get_json()

    for _ in range(20):  # a book before the subscription
        await random_order()
    async with client.websocket(WS) as ws:
        sub = await ask(
            ws,
            {"op": "subscribe", "channel": "book", "pair": "WETH-USDC", "depth": 100, "reqId": 1},
        )
        assert sub["type"] == "subscribed" and sub["depth"] == 100
        snapshot = await recv(ws)
        assert snapshot["type"] == "snapshot" and snapshot["channel"] == "book"
        assert snapshot["pair"] == "WETH-USDC"
        rest = await rest_book(client)
        assert (snapshot["seq"], snapshot["checksum"]) == (rest["seq"], rest["checksum"])
        assert snapshot["bids"] == rest["bids"] and snapshot["asks"] == rest["asks"]
        bids = {p: s for p, s in snapshot["bids"]}
        asks = {p: s for p, s in snapshot["asks"]}
        seq = snapshot["seq"]
        assert checksum(bids, asks) == snapshot["checksum"]
        updates = 0
        for _ in range(60):
            await random_order()
            rest = await rest_book(client)
            while seq < rest["seq"]:
                update = await recv(ws)
                assert update["type"] == "update" and update["channel"] == "book"
                assert update.get("fromSeq", update["seq"]) == seq + 1
                seq = update["seq"]
                apply(bids, update["bids"])
                apply(asks, update["asks"])
                assert checksum(bids, asks) == update["checksum"]
                updates += 1
            assert seq == rest["seq"]
            assert sorted(bids.items()) == sorted((p, s) for p, s in rest["bids"])
            assert sorted(asks.items()) == sorted((p, s) for p, s in rest["asks"])
            assert checksum(bids, asks) == rest["checksum"]
        assert updates >= 30


async def test_trades_snapshot_then_each_trade(app: Any, runtime: Runtime) -> None:
    client = app.test_client()
    await funded_pair(client, runtime)
    await place(client, runtime, "ann", side="SELL", type="LIMIT", price="100.00", quantity="1")
    await place(client, runtime, "ben", side="BUY", type="LIMIT", price="100.00", quantity="0.2")
    async with client.websocket(WS) as ws:
        assert (await ask(ws, {"op": "subscribe", "channel": "trades", "pair": "WETH-USDC"}))[
            "type"
        ] == "subscribed"
        snapshot = await recv(ws)
        assert snapshot["type"] == "snapshot" and len(snapshot["trades"]) == 1
        assert snapshot["trades"][0]["price"] == "100.00"
        await place(client, runtime, "cat", side="BUY", type="MARKET", quantity="0.3")
        update = await recv(ws)
        assert update["type"] == "update" and update["channel"] == "trades"
        trade = update["trade"]
        assert (trade["price"], trade["quantity"], trade["takerSide"]) == (
            "100.00",
            "0.300",
            "BUY",
        )
        assert "makerUserId" not in json.dumps(update)  # a public channel names no user


async def test_private_orders_and_fills_show_only_the_users_own(app: Any, runtime: Runtime) -> None:
    client = app.test_client()
    await funded_pair(client, runtime)
    async with client.websocket(WS) as ann, client.websocket(WS) as ben:
        for ws, user in ((ann, "ann"), (ben, "ben")):
            await auth(ws, runtime, user)
            for channel in ("orders", "fills"):
                assert (await ask(ws, {"op": "subscribe", "channel": channel}))[
                    "type"
                ] == "subscribed"
                snapshot = await recv(ws)
                assert snapshot["type"] == "snapshot" and snapshot["channel"] == channel
        await place(client, runtime, "cat", side="SELL", type="LIMIT", price="101.00", quantity="1")
        await place(client, runtime, "ann", side="SELL", type="LIMIT", price="100.00", quantity="1")
        await place(
            client, runtime, "ben", side="BUY", type="LIMIT", price="100.00", quantity="0.4"
        )
        ann_frames = [await recv(ann) for _ in range(3)]  # placed, filled in part, the fill
        ben_frames = [await recv(ben) for _ in range(2)]  # filled, the fill
        for frames, user in ((ann_frames, "ann"), (ben_frames, "ben")):
            orders = [f["order"] for f in frames if f["channel"] == "orders"]
            fills = [f["fill"] for f in frames if f["channel"] == "fills"]
            assert orders and all(o["userId"] == user for o in orders)
            assert len(fills) == 1 and fills[0]["quantity"] == "0.400"
            assert "cat" not in json.dumps(frames)
        assert [o["order"]["status"] for o in ann_frames if o["channel"] == "orders"] == [
            "OPEN",
            "PARTIALLY_FILLED",
        ]
        assert [f["fill"]["liquidity"] for f in ann_frames if f["channel"] == "fills"] == ["maker"]
        assert [f["fill"]["side"] for f in ben_frames if f["channel"] == "fills"] == ["BUY"]
        # nothing of cat's or the other's is waiting
        for ws in (ann, ben):
            await ws.send(json.dumps({"op": "ping", "reqId": "p"}))
            assert await recv(ws) == {"type": "pong", "reqId": "p"}


async def test_order_submit_and_cancel_ack_after_commit_and_refuse_like_http(
    app: Any, runtime: Runtime
) -> None:
    client = app.test_client()
    await funded_pair(client, runtime)
    async with client.websocket(WS) as ws:
        await auth(ws, runtime, "ann")
        body = {
            "tradingPairId": "WETH-USDC",
            "side": "BUY",
            "type": "LIMIT",
            "price": "99.00",
            "quantity": "0.5",
            "clientOrderId": "c-1",
        }
        ack = await ask(ws, {"op": "order.submit", "reqId": "s1", **body})
        assert ack["type"] == "ack" and ack["reqId"] == "s1"
        order = ack["order"]
        assert order["status"] == "OPEN" and order["userId"] == "ann"
        stored = await client.get(
            f"{TRADING}/orders/{order['id']}",
            headers={
                "Authorization": "Bearer "
                + runtime.container.token_issuer().issue("ann", ["trader"])
            },
        )
        assert (await stored.get_json())["data"]["status"] == "OPEN"  # committed before ack
        rest = await rest_book(client)
        assert rest["bids"] == [["99.00", "0.500"]]
        # the same checks and codes as HTTP
        off_tick = await ask(
            ws,
            {
                "op": "order.submit",
                "reqId": "s2",
                **body,
                "price": "99.001",
                "clientOrderId": "c-2",
            },
        )
        http = await place(
            client, runtime, "ann", side="BUY", type="LIMIT", price="99.001", quantity="0.5"
        )
        assert off_tick["type"] == "error" and off_tick["reqId"] == "s2"
        assert off_tick["code"] == (await http.get_json())["error"]["code"]
        poor = await ask(
            ws,
            {
                "op": "order.submit",
                "reqId": "s3",
                **body,
                "quantity": "999",
                "price": "99999.00",
                "clientOrderId": "c-3",
            },
        )
        http = await place(
            client, runtime, "ann", side="BUY", type="LIMIT", price="99999.00", quantity="999"
        )
        assert poor["type"] == "error"
        assert poor["code"] == (await http.get_json())["error"]["code"]
        bad = await ask(ws, {"op": "order.submit", "reqId": "s4", "side": "UP"})
        assert bad["type"] == "error" and bad["code"] == "validation_failed"
        # cancel by clientOrderId, then by id (already ended: the HTTP 409 code)
        cancelled = await ask(ws, {"op": "order.cancel", "reqId": "x1", "clientOrderId": "c-1"})
        assert cancelled["type"] == "ack" and cancelled["order"]["status"] == "CANCELLED"
        assert (await rest_book(client))["bids"] == []
        again = await ask(ws, {"op": "order.cancel", "reqId": "x2", "orderId": order["id"]})
        assert again["type"] == "error" and again["code"] == "order_not_open"
    async with client.websocket(WS) as other:
        await auth(other, runtime, "ben")
        theirs = await ask(other, {"op": "order.cancel", "reqId": 9, "orderId": order["id"]})
        assert theirs["type"] == "error" and theirs["reqId"] == 9
        assert theirs["code"] in ("forbidden", "permission_denied", "order_not_found")


async def test_a_book_seq_jump_seen_by_the_gateway_sends_a_fresh_snapshot(
    app: Any, runtime: Runtime
) -> None:
    client = app.test_client()
    pair = await funded_pair(client, runtime)
    await place(client, runtime, "ann", side="SELL", type="LIMIT", price="101.00", quantity="1")
    async with client.websocket(WS) as ws:
        await ask(ws, {"op": "subscribe", "channel": "book", "pair": "WETH-USDC", "depth": 10})
        snapshot = await recv(ws)
        assert snapshot["asks"] == [["101.00", "1.000"]]
        # a book event whose seq jumps (the ones before it lost on the way), routed as the
        # bus pump routes it (the bus itself would drop the pair's later events as older)
        runtime.container.ws_gateway().dispatch(
            DomainEvent(
                type="book.changed",
                aggregate_id=pair["id"],
                stream=f"pair:{pair['id']}",
                seq=999,
                actor_id="matching",
                actor_type="system",
                occurred_at=datetime.now(UTC),
                metadata={"seq": snapshot["seq"] + 5, "changes": [], "checksum": 0},
            )
        )
        gap = await recv(ws)
        assert gap["type"] == "gap" and gap["channel"] == "book"
        fresh = await recv(ws)
        assert fresh["type"] == "snapshot" and fresh["seq"] == snapshot["seq"]
        assert fresh["checksum"] == snapshot["checksum"]
        # the stream goes on from the fresh snapshot
        await place(client, runtime, "ben", side="BUY", type="LIMIT", price="99.00", quantity="2")
        update = await recv(ws)
        assert update["type"] == "update" and update["seq"] == fresh["seq"] + 1
        assert update["bids"] == [["99.00", "2.000"]] and update["asks"] == []
        assert update["checksum"] == (await rest_book(client))["checksum"]


async def test_order_submit_shares_the_http_per_user_order_limit() -> None:
    import bootstrap
    from settings import Settings
    from tests.unit.conftest import SECRET

    runtime = bootstrap.build(
        Settings(
            profile="test", jwt_secret=SECRET, order_rate_limit=2, order_rate_window_seconds=60
        )
    )
    async with runtime.http_app().test_app() as test_app:
        client = test_app.test_client()
        await funded_pair(client, runtime)
        first = await place(
            client, runtime, "ann", side="BUY", type="LIMIT", price="90.00", quantity="0.1"
        )
        assert first.status_code == 201
        async with client.websocket(WS) as ws:
            await auth(ws, runtime, "ann")
            body = {
                "tradingPairId": "WETH-USDC",
                "side": "BUY",
                "type": "LIMIT",
                "price": "90.00",
                "quantity": "0.1",
            }
            assert (await ask(ws, {"op": "order.submit", "reqId": 1, **body}))["type"] == "ack"
            over = await ask(ws, {"op": "order.submit", "reqId": 2, **body})
            assert over["type"] == "error" and over["code"] == "rate_limited"
            assert over["reqId"] == 2
            assert await ask(ws, {"op": "ping"}) == {"type": "pong"}  # the connection goes on
        http = await place(
            client, runtime, "ann", side="BUY", type="LIMIT", price="90.00", quantity="0.1"
        )
        assert http.status_code == 429
