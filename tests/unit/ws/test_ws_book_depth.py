"""Depth 25 and 100 are exact: with books more than 100 levels deep on each side, clients
subscribed at depth 25 and 100 hold, after every order, exactly the REST book of their depth
at the same ``seq``, while random orders of three users cancel levels deep in the book, sweep
several levels at once and let levels from beyond the window surface into it."""

from __future__ import annotations

import random
from typing import Any

import pytest

import bootstrap
from bootstrap import Runtime, Settings
from tests.unit.conftest import SECRET
from tests.unit.trading_helpers import TRADING, place, trader
from tests.unit.ws.test_ws_trading import USERS, WS, LocalBook, app, funded_pair  # noqa: F401

DEEP = 150  # levels a side, more than the deepest window


@pytest.fixture
def runtime() -> Runtime:
    settings = Settings(profile="test", jwt_secret=SECRET, order_rate_limit=0, http_rate_limit=0)
    return bootstrap.build(settings)


async def rest(client: Any, depth: int) -> dict[str, Any]:
    response = await client.get(f"{TRADING}/pairs/WETH-USDC/orderbook?depth={depth}")
    body: dict[str, Any] = (await response.get_json())["data"]
    return body


async def test_depth_25_and_100_equal_the_rest_book_as_deep_levels_surface(
    app: Any,  # noqa: F811
    runtime: Runtime,
) -> None:
    client = app.test_client()
    await funded_pair(client, runtime)
    rng = random.Random(11)
    resting: list[tuple[str, str]] = []  # (user, order id) of orders that may still rest

    async def order(user: str, **body: Any) -> None:
        response = await place(client, runtime, user, **body)
        assert response.status_code in (201, 409, 422), await response.get_json()
        if response.status_code == 201:
            data = (await response.get_json())["data"]
            if data["status"] in ("OPEN", "PARTIALLY_FILLED"):
                resting.append((user, data["id"]))

    for i in range(DEEP):  # bids 99.00 down, asks 101.00 up, one cent apart
        await order("ann", side="BUY", type="LIMIT", price=f"{99 - i / 100:.2f}", quantity="0.002")
        await order(
            "ben", side="SELL", type="LIMIT", price=f"{101 + i / 100:.2f}", quantity="0.002"
        )

    async with client.websocket(WS) as ws25, client.websocket(WS) as ws100:
        books = {
            25: await LocalBook.subscribe(ws25, 25),
            100: await LocalBook.subscribe(ws100, 100),
        }
        start = await rest(client, 100)
        assert len(start["bids"]) == 100 and len(start["asks"]) == 100  # deeper than 100
        surfaced = 0
        for step in range(120):
            user = rng.choice(USERS)
            roll = rng.random()
            if roll < 0.35 and resting:  # cancel anything, often deep in the book
                owner, order_id = resting.pop(rng.randrange(len(resting)))
                await client.delete(f"{TRADING}/orders/{order_id}", headers=trader(runtime, owner))
            elif roll < 0.5:  # a market order sweeping several levels
                side = rng.choice(["BUY", "SELL"])
                await order(
                    user, side=side, type="MARKET", quantity=f"{rng.randint(2, 12) * 2 / 1000:.3f}"
                )
            else:  # a limit order anywhere within 1.50 of the middle
                side = rng.choice(["BUY", "SELL"])
                centre = 99 if side == "BUY" else 101
                offset = rng.randint(0, 150) / 100
                price = centre - offset if side == "BUY" else centre + offset
                await order(user, side=side, type="LIMIT", price=f"{price:.2f}", quantity="0.002")
            deep = await rest(client, 100)
            for depth, book in books.items():
                before = set(book.bids) | set(book.asks)
                await book.catch_up(deep["seq"])
                want = await rest(client, depth)
                assert want["seq"] == deep["seq"]
                assert book.levels(depth) == (want["bids"], want["asks"]), (step, depth)
                if depth == 100:
                    shown = {p for p, _ in want["bids"]} | {p for p, _ in want["asks"]}
                    surfaced += len(shown - before)
        assert surfaced > 10  # levels did come up from beyond the window
