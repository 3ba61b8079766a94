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

    for i in range(15):  # a book deeper than 10 levels a side, then random orders
        for user, side, price in (("ann", "BUY", 97 - i / 10), ("ben", "SELL", 104 + i / 10)):
            response = await place(
                client,
                runtime,
                user,
                side=side,
                type="LIMIT",
                price=f"{price:.2f}",
                quantity="0.050",
            )
            assert response.status_code == 201
    for _ in range(20):
        await random_order()
    async with client.websocket(WS) as deep, client.websocket(WS) as top:
        books = [await LocalBook.subscribe(deep, 100), await LocalBook.subscribe(top, 10)]
        rest = await rest_book(client)
        assert len(rest["bids"]) > 10 and len(rest["asks"]) > 10
        for book in books:
            assert (book.seq, book.snapshot["checksum"]) == (rest["seq"], rest["checksum"])
        assert books[0].snapshot["bids"] == rest["bids"]
        assert books[0].snapshot["asks"] == rest["asks"]
        assert books[1].snapshot["bids"] == rest["bids"][:10]
        for _ in range(80):
            await random_order()
            rest = await rest_book(client)
            for book in books:
                await book.catch_up(rest["seq"])
                assert checksum(book.bids, book.asks) == rest["checksum"]
            # depth 100 holds the whole book; depth 10 the top 10 levels the checksum covers
            assert books[0].levels() == (rest["bids"], rest["asks"])
            assert books[1].levels(10) == (rest["bids"][:10], rest["asks"][:10])
        assert all(book.updates >= 40 for book in books)


class LocalBook:
    """A client's book: the snapshot, then every update applied (docs/websocket.md)."""

    def __init__(self, ws: Any, snapshot: dict[str, Any]) -> None:
        self.ws = ws
        self.snapshot = snapshot
        self.seq: int = snapshot["seq"]
        self.bids = {p: s for p, s in snapshot["bids"]}
        self.asks = {p: s for p, s in snapshot["asks"]}
        self.updates = 0
        assert checksum(self.bids, self.asks) == snapshot["checksum"]

    @classmethod
    async def subscribe(cls, ws: Any, depth: int) -> LocalBook:
        frame = {"op": "subscribe", "channel": "book", "pair": "WETH-USDC", "depth": depth}
        sub = await ask(ws, frame)
        assert sub["type"] == "subscribed" and sub["depth"] == depth
        snapshot = await recv(ws)
        assert snapshot["type"] == "snapshot" and snapshot["channel"] == "book"
        assert snapshot["pair"] == "WETH-USDC"
        return cls(ws, snapshot)

    async def catch_up(self, seq: int) -> None:
        while self.seq < seq:
            update = await recv(self.ws)
            assert update["type"] == "update" and update["channel"] == "book"
            assert update.get("fromSeq", update["seq"]) == self.seq + 1
            self.seq = update["seq"]
            apply(self.bids, update["bids"])
            apply(self.asks, update["asks"])
            assert checksum(self.bids, self.asks) == update["checksum"]
            self.updates += 1
        assert self.seq == seq

    def levels(self, n: int = 1000) -> tuple[list[list[str]], list[list[str]]]:
        bids = sorted(self.bids.items(), key=lambda kv: Decimal(kv[0]), reverse=True)[:n]
        asks = sorted(self.asks.items(), key=lambda kv: Decimal(kv[0]))[:n]
        return [list(kv) for kv in bids], [list(kv) for kv in asks]


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


async def test_ack_and_orders_channel_pad_average_price(app: Any, runtime: Runtime) -> None:
    """``averagePrice`` on the WebSocket has the pair's price precision, like ``price``."""
    client = app.test_client()
    await funded_pair(client, runtime)
    await place(client, runtime, "ben", side="SELL", type="LIMIT", price="10.00", quantity="1")
    async with client.websocket(WS) as ws:
        await auth(ws, runtime, "ann")
        assert (await ask(ws, {"op": "subscribe", "channel": "orders"}))["type"] == "subscribed"
        assert (await recv(ws))["type"] == "snapshot"
        body = {"tradingPairId": "WETH-USDC", "side": "BUY", "type": "LIMIT", "quantity": "1"}
        ack = await ask(ws, {"op": "order.submit", "reqId": "a", **body, "price": "10.00"})
        while ack["type"] != "ack":  # the orders channel may come first
            assert ack["channel"] == "orders"
            ack = await recv(ws)
        assert ack["order"]["status"] == "FILLED"
        assert ack["order"]["averagePrice"] == "10.00" and ack["order"]["price"] == "10.00"
        for _ in range(5):
            frame = await recv(ws)
            if frame.get("channel") == "orders" and frame["order"]["status"] == "FILLED":
                assert frame["order"]["averagePrice"] == "10.00"
                break
        else:
            raise AssertionError("no FILLED order on the orders channel")


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


def test_conflated_book_updates_apply_like_each_one() -> None:
    from adapters.inbound.ws.trading import merge_book

    first = {
        "seq": 5,
        "bids": [["10.00", "1"], ["9.00", "2"]],
        "asks": [["11.00", "3"]],
        "checksum": 1,
    }
    second = {"seq": 6, "bids": [["10.00", "0"]], "asks": [["11.50", "4"]], "checksum": 2}
    third = {"seq": 7, "bids": [["10.00", "5"]], "asks": [["11.00", "0"]], "checksum": 3}
    merged = merge_book(merge_book(first, second), third)
    assert (merged["fromSeq"], merged["seq"], merged["checksum"]) == (5, 7, 3)
    one_by_one: tuple[dict[str, str], dict[str, str]] = ({}, {})
    for update in (first, second, third):
        apply(one_by_one[0], update["bids"])  # type: ignore[arg-type]
        apply(one_by_one[1], update["asks"])  # type: ignore[arg-type]
    at_once: tuple[dict[str, str], dict[str, str]] = ({}, {})
    apply(at_once[0], merged["bids"])
    apply(at_once[1], merged["asks"])
    assert at_once == one_by_one == ({"10.00": "5", "9.00": "2"}, {"11.50": "4"})
