"""The ``ticker`` and ``candles`` channels of ``/api/v1/ws`` through Quart's test client, on
a clock the test moves: each snapshot and update equals what the HTTP endpoints answer at that
moment (stats, best bid/ask from the REST book, candles), ``seq`` goes up by one per message,
and a new interval opens a new candle."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from dependency_injector import providers

import bootstrap
from bootstrap import Runtime, Settings
from core.ports.clock import Clock
from tests.unit.conftest import SECRET
from tests.unit.trading_helpers import ETH, TRADING, USD, fund, make_pair, place

WS = "/api/v1/ws"


class SetClock(Clock):
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


@pytest.fixture
def clock() -> SetClock:
    return SetClock(datetime(2026, 11, 23, 10, 0, 5, tzinfo=UTC))


@pytest.fixture
def runtime(clock: SetClock) -> Runtime:
    built = bootstrap.build(Settings(profile="test", jwt_secret=SECRET))
    built.container.clock.override(providers.Object(clock))
    return built


@pytest.fixture
async def app(runtime: Runtime) -> AsyncIterator[Any]:
    async with runtime.http_app().test_app() as test_app:
        yield test_app


async def recv(ws: Any, timeout: float = 5.0) -> dict[str, Any]:
    while True:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.receive(), timeout))
        if frame["type"] != "heartbeat":
            return frame


async def recv_channel(ws: Any, channel: str, timeout: float = 5.0) -> dict[str, Any]:
    while True:
        frame = await recv(ws, timeout)
        if frame.get("channel") == channel:
            return frame


async def get(client: Any, path: str) -> Any:
    response = await client.get(path)
    body = await response.get_json()
    assert response.status_code == 200, body
    return body["data"]


async def funded(client: Any, runtime: Runtime) -> None:
    await make_pair(client, runtime)
    pair = await get(client, f"{TRADING}/pairs/WETH-USDC")
    for user in ("ann", "ben"):
        await fund(runtime, user, pair["baseTokenId"], 100 * ETH)
        await fund(runtime, user, pair["quoteTokenId"], 1_000_000 * USD)


async def trade(client: Any, runtime: Runtime, price: str, quantity: str) -> None:
    sell = await place(
        client, runtime, "ann", side="SELL", type="LIMIT", price=price, quantity=quantity
    )
    assert sell.status_code == 201
    buy = await place(
        client, runtime, "ben", side="BUY", type="LIMIT", price=price, quantity=quantity
    )
    assert buy.status_code == 201


async def expect_ticker(client: Any, ticker: dict[str, Any]) -> None:
    """The ticker equals the HTTP stats and the REST book's best levels."""
    stats = await get(client, f"{TRADING}/pairs/WETH-USDC/stats")
    for key, value in stats.items():
        assert ticker[key] == value, key
    book = await get(client, f"{TRADING}/pairs/WETH-USDC/orderbook?depth=1")
    best_bid = book["bids"][0] if book["bids"] else [None, None]
    best_ask = book["asks"][0] if book["asks"] else [None, None]
    assert [ticker["bid"], ticker["bidSize"]] == best_bid
    assert [ticker["ask"], ticker["askSize"]] == best_ask
    assert ticker["bookSeq"] == book["seq"]


async def test_ticker_snapshot_and_updates_equal_http(app: Any, runtime: Runtime) -> None:
    client = app.test_client()
    await funded(client, runtime)
    await trade(client, runtime, "100.00", "0.500")
    async with client.websocket(WS) as ws:
        await ws.send(json.dumps({"op": "subscribe", "channel": "ticker", "pair": "WETH-USDC"}))
        assert (await recv(ws))["type"] == "subscribed"
        snapshot = await recv(ws)
        assert snapshot["type"] == "snapshot" and snapshot["channel"] == "ticker"
        assert snapshot["pair"] == "WETH-USDC"
        seq = snapshot["seq"]
        ticker = snapshot["ticker"]
        assert (ticker["last"], ticker["volume"], ticker["quoteVolume"]) == (
            "100.00",
            "0.500",
            "50.00000",
        )
        assert ticker["referencePrice"] is None and ticker["valuation"] is None
        await expect_ticker(client, ticker)

        # a resting bid changes the best bid: an update, seq + 1
        bid = await place(
            client, runtime, "ben", side="BUY", type="LIMIT", price="99.50", quantity="2"
        )
        assert bid.status_code == 201
        update = await recv_channel(ws, "ticker")
        assert update["type"] == "update" and update["seq"] == seq + 1
        assert (update["ticker"]["bid"], update["ticker"]["bidSize"]) == ("99.50", "2.000")
        await expect_ticker(client, update["ticker"])

        # a trade moves last, high, volume and changePercent
        await trade(client, runtime, "110.00", "0.250")
        while True:
            update = await recv_channel(ws, "ticker")
            assert update["seq"] > seq
            seq = update["seq"]
            if update["ticker"]["last"] == "110.00":
                break
        ticker = update["ticker"]
        assert (ticker["high"], ticker["changePercent"], ticker["volume"]) == (
            "110.00",
            "10.00",
            "0.750",
        )
        await expect_ticker(client, ticker)


async def test_ticker_needs_a_pair(app: Any) -> None:
    async with app.test_client().websocket(WS) as ws:
        await ws.send(json.dumps({"op": "subscribe", "channel": "ticker"}))
        error = await recv(ws)
        assert (error["type"], error["code"]) == ("error", "invalid_params")


async def test_candles_snapshot_updates_and_rollover_equal_http(
    app: Any, runtime: Runtime, clock: SetClock
) -> None:
    client = app.test_client()
    await funded(client, runtime)
    await trade(client, runtime, "100.00", "1")
    clock.at += timedelta(minutes=1)
    await trade(client, runtime, "101.00", "0.5")
    candles_url = f"{TRADING}/pairs/WETH-USDC/candles?interval=1m"
    async with client.websocket(WS) as ws:
        frame = {"op": "subscribe", "channel": "candles", "pair": "WETH-USDC", "interval": "1m"}
        await ws.send(json.dumps(frame))
        assert (await recv(ws))["type"] == "subscribed"
        snapshot = await recv(ws)
        assert (snapshot["type"], snapshot["channel"], snapshot["interval"]) == (
            "snapshot",
            "candles",
            "1m",
        )
        assert snapshot["candles"] == await get(client, candles_url)
        assert len(snapshot["candles"]) == 2
        seq = snapshot["seq"]

        # a trade in the current minute: an update of the current candle
        await trade(client, runtime, "102.50", "0.25")
        update = await recv_channel(ws, "candles")
        assert (update["type"], update["seq"], update["interval"]) == ("update", seq + 1, "1m")
        http = await get(client, candles_url)
        assert update["candle"] == http[-1]
        assert (
            update["candle"]["high"],
            update["candle"]["close"],
            update["candle"]["volume"],
        ) == (
            "102.50",
            "102.50",
            "0.750",
        )

        # the next minute: a new candle
        clock.at += timedelta(minutes=1)
        await trade(client, runtime, "99.00", "2")
        update = await recv_channel(ws, "candles")
        assert update["seq"] == seq + 2
        http = await get(client, candles_url)
        assert len(http) == 3 and update["candle"] == http[-1]
        assert update["candle"]["openTime"] != snapshot["candles"][-1]["openTime"]
        assert (update["candle"]["open"], update["candle"]["volume"]) == ("99.00", "2.000")


async def test_candles_need_a_known_interval(app: Any) -> None:
    async with app.test_client().websocket(WS) as ws:
        frame = {"op": "subscribe", "channel": "candles", "pair": "WETH-USDC", "interval": "2m"}
        await ws.send(json.dumps(frame))
        error = await recv(ws)
        assert (error["type"], error["code"]) == ("error", "invalid_params")
