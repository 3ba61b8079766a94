"""Book depth 25 and 100 exact on a real ``rwa-market serve`` with real ``websockets`` clients:
books more than 100 levels deep a side, three users sending random orders over
``order.submit``/``order.cancel`` (limits anywhere in the book, cancels deep in it, market
orders sweeping several levels); after every round the depth-25 and depth-100 clients hold
exactly ``GET .../orderbook?depth=25|100`` at the same ``seq``, with every checksum right."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.e2e.server import RwaServer, start_server
from tests.e2e.test_websocket_trading import Book, checksum, fund, recv

TRADING = "/api/v1/trading"
USERS = ("ws-ann", "ws-ben", "ws-cat")  # the names test_websocket_trading.fund funds
DEEP = 130


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RwaServer]:
    running = start_server(
        Path(tmp_path_factory.mktemp("rwa-ws-depth")),
        env={
            "RWA_WS_RATE_PER_SECOND": "1000",
            "RWA_WS_RATE_BURST": "1000",
            "RWA_HTTP_RATE_LIMIT": "0",
            "RWA_ORDER_RATE_LIMIT": "0",
        },
    )
    try:
        yield running
    finally:
        running.stop()


class Trader:
    def __init__(self, ws: ClientConnection, user: str) -> None:
        self.ws, self.user = ws, user
        self.n = 0
        self.resting: list[str] = []

    async def op(self, frame: dict[str, Any]) -> dict[str, Any]:
        self.n += 1
        await self.ws.send(json.dumps({**frame, "reqId": self.n}))
        while True:
            answer = await recv(self.ws)
            if answer.get("reqId") == self.n:
                return answer

    async def submit(self, **body: Any) -> None:
        answer = await self.op({"op": "order.submit", "tradingPairId": "WETH-USDC", **body})
        assert answer["type"] in ("ack", "error"), answer
        if answer["type"] == "ack" and answer["order"]["status"] in ("OPEN", "PARTIALLY_FILLED"):
            self.resting.append(answer["order"]["id"])

    async def cancel_one(self, rng: random.Random) -> None:
        if self.resting:
            order_id = self.resting.pop(rng.randrange(len(self.resting)))
            answer = await self.op({"op": "order.cancel", "orderId": order_id})
            assert answer["type"] in ("ack", "error"), answer


async def test_depth_25_and_100_equal_the_rest_book_over_real_connections(
    server: RwaServer,
) -> None:
    url = f"ws://127.0.0.1:{server.port}/api/v1/ws"
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        admin = {"Authorization": f"Bearer {server.token('admin-1', 'admin')}"}
        weth = {"symbol": "WETH", "name": "Wrapped Ether", "type": "CRYPTO", "decimals": 18}
        assert (await http.post("/api/v1/tokens", json=weth, headers=admin)).status_code == 201
        created = await http.post(
            f"{TRADING}/pairs",
            json={
                "baseToken": "WETH",
                "quoteToken": "USDC",
                "tickSize": "0.01",
                "lotSize": "0.001",
            },
            headers=admin,
        )
        assert created.status_code == 201, created.text
        pair = created.json()["data"]
        await fund(server, pair["baseTokenId"], pair["quoteTokenId"])

        async def rest(depth: int) -> dict[str, Any]:
            response = await http.get(f"{TRADING}/pairs/WETH-USDC/orderbook?depth={depth}")
            body: dict[str, Any] = response.json()["data"]
            return body

        books = {25: Book(), 100: Book()}
        stop = asyncio.Event()

        async def reader(ws: ClientConnection, book: Book) -> None:
            while not stop.is_set():
                try:
                    book.on(json.loads(await asyncio.wait_for(ws.recv(), 0.5)))
                except TimeoutError:
                    continue

        async with (
            connect(url) as ws25,
            connect(url) as ws100,
            connect(url) as a,
            connect(url) as b,
            connect(url) as c,
        ):
            traders = [Trader(ws, user) for ws, user in zip((a, b, c), USERS, strict=True)]
            for trader in traders:
                await trader.op({"op": "auth", "token": server.token(trader.user, "trader")})
            for i in range(DEEP):  # bids from 99.00 down, asks from 101.00 up, a cent apart
                await traders[0].submit(
                    side="BUY", type="LIMIT", price=f"{99 - i / 100:.2f}", quantity="0.002"
                )
                await traders[1].submit(
                    side="SELL", type="LIMIT", price=f"{101 + i / 100:.2f}", quantity="0.002"
                )
            readers = []
            for ws, depth in ((ws25, 25), (ws100, 100)):
                frame = {"op": "subscribe", "channel": "book", "pair": "WETH-USDC", "depth": depth}
                await ws.send(json.dumps(frame))
                assert (await recv(ws))["type"] == "subscribed"
                readers.append(asyncio.create_task(reader(ws, books[depth])))
            start = await rest(100)
            assert len(start["bids"]) == 100 and len(start["asks"]) == 100

            async def flow(trader: Trader, rng: random.Random) -> None:
                for _ in range(6):
                    roll = rng.random()
                    side = rng.choice(["BUY", "SELL"])
                    if roll < 0.35:
                        await trader.cancel_one(rng)
                    elif roll < 0.5:
                        lots = rng.randint(2, 12) * 2
                        await trader.submit(side=side, type="MARKET", quantity=f"{lots / 1000:.3f}")
                    else:
                        centre = 99 if side == "BUY" else 101
                        offset = rng.randint(0, 150) / 100
                        price = centre - offset if side == "BUY" else centre + offset
                        await trader.submit(
                            side=side, type="LIMIT", price=f"{price:.2f}", quantity="0.002"
                        )

            rngs = [random.Random(seed) for seed in (1, 2, 3)]
            for _ in range(8):  # rounds: three users at once, then a quiet comparison
                await asyncio.gather(*(flow(t, r) for t, r in zip(traders, rngs, strict=True)))
                want = {depth: await rest(depth) for depth in books}
                assert want[25]["seq"] == want[100]["seq"]
                for _ in range(100):
                    if all(book.seq == want[100]["seq"] for book in books.values()):
                        break
                    await asyncio.sleep(0.05)
                for depth, book in books.items():
                    assert book.bad == 0, depth
                    assert book.seq == want[depth]["seq"], depth
                    assert book.top(depth) == (want[depth]["bids"], want[depth]["asks"]), depth
                    assert checksum(book.bids, book.asks) == want[depth]["checksum"], depth
            stop.set()
            await asyncio.gather(*readers)
