"""The WebSocket trading channels on a real ``rwa-market serve`` with real ``websockets``
clients: three users place random orders over ``order.submit`` (acked after the commit) while
two clients keep local books at depth 10 and 100 from the ``book`` channel; at the end each
holds the REST book at the same ``seq`` with equal checksums, and each user's private
``orders`` channel showed only that user's orders."""

from __future__ import annotations

import asyncio
import json
import random
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from adapters.outbound.storage.sql import SqlStorage
from core.ledger.model import AccountRef
from core.ledger.operations import mint
from core.shared.ids import new_id
from tests.e2e.server import RwaServer, start_server

TRADING = "/api/v1/trading"
USERS = ("ws-ann", "ws-ben", "ws-cat")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RwaServer]:
    running = start_server(
        Path(tmp_path_factory.mktemp("rwa-ws-trading")),
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


def auth_header(server: RwaServer, sub: str, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.token(sub, role)}"}


async def fund(server: RwaServer, base: str, quote: str) -> None:
    storage = SqlStorage(f"sqlite+aiosqlite:///{(server.data_dir / 'rwa.sqlite3').resolve()}")
    try:
        async with storage.unit_of_work() as uow:
            for user in USERS:
                for token, amount in ((base, 1_000 * 10**18), (quote, 10_000_000 * 10**6)):
                    await uow.ledger.apply(
                        mint(
                            f"e2e:{new_id()}",
                            datetime.now(UTC),
                            AccountRef.user(user, token),
                            amount,
                        )
                    )
            await uow.commit()
    finally:
        await storage.close()


async def recv(ws: ClientConnection, timeout: float = 10.0) -> dict[str, Any]:
    while True:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if frame["type"] != "heartbeat":
            return frame


def part(n: str) -> str:
    return n.replace(".", "").lstrip("0")


def checksum(bids: dict[str, str], asks: dict[str, str]) -> int:
    a = sorted(asks, key=Decimal)[:10]
    b = sorted(bids, key=Decimal, reverse=True)[:10]
    text = "".join(part(p) + part(asks[p]) for p in a)
    text += "".join(part(p) + part(bids[p]) for p in b)
    return zlib.crc32(text.encode())


class Book:
    def __init__(self) -> None:
        self.bids: dict[str, str] = {}
        self.asks: dict[str, str] = {}
        self.seq = -1
        self.bad = 0  # seq jumps or checksum mismatches

    def on(self, msg: dict[str, Any]) -> None:
        if msg.get("channel") != "book":
            return
        if msg["type"] == "snapshot":
            self.bids = {p: s for p, s in msg["bids"]}
            self.asks = {p: s for p, s in msg["asks"]}
            self.seq = msg["seq"]
        elif msg["type"] == "update":
            if msg.get("fromSeq", msg["seq"]) != self.seq + 1:
                self.bad += 1
            self.seq = msg["seq"]
            for side, levels in ((self.bids, msg["bids"]), (self.asks, msg["asks"])):
                for price, size in levels:
                    if Decimal(size) == 0:
                        side.pop(price, None)
                    else:
                        side[price] = size
        else:
            return
        if checksum(self.bids, self.asks) != msg["checksum"]:
            self.bad += 1

    def top(self, n: int) -> tuple[list[list[str]], list[list[str]]]:
        bids = sorted(self.bids.items(), key=lambda kv: Decimal(kv[0]), reverse=True)[:n]
        asks = sorted(self.asks.items(), key=lambda kv: Decimal(kv[0]))[:n]
        return [list(kv) for kv in bids], [list(kv) for kv in asks]


async def test_books_orders_and_order_ops_over_real_connections(server: RwaServer) -> None:
    url = f"ws://127.0.0.1:{server.port}/api/v1/ws"
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        admin = auth_header(server, "admin-1", "admin")
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

        books = {10: Book(), 100: Book()}
        seen: dict[str, list[dict[str, Any]]] = {user: [] for user in USERS}
        stop = asyncio.Event()

        async def reader(ws: ClientConnection, sink: Any) -> None:
            while not stop.is_set():
                try:
                    sink(json.loads(await asyncio.wait_for(ws.recv(), 0.5)))
                except TimeoutError:
                    continue

        async with (
            connect(url) as deep,
            connect(url) as shallow,
        ):
            readers = []
            for ws, depth in ((deep, 100), (shallow, 10)):
                await ws.send(
                    json.dumps(
                        {"op": "subscribe", "channel": "book", "pair": "WETH-USDC", "depth": depth}
                    )
                )
                assert (await recv(ws))["type"] == "subscribed"
                readers.append(asyncio.create_task(reader(ws, books[depth].on)))

            async def trader(user: str, seed: int) -> list[dict[str, Any]]:
                rng = random.Random(seed)
                acks: list[dict[str, Any]] = []
                async with connect(url) as ws:
                    await ws.send(json.dumps({"op": "auth", "token": server.token(user, "trader")}))
                    assert (await recv(ws))["type"] == "authenticated"
                    await ws.send(json.dumps({"op": "subscribe", "channel": "orders"}))
                    assert (await recv(ws))["type"] == "subscribed"
                    for n in range(40):
                        side = rng.choice(["BUY", "SELL"])
                        centre = 100 if side == "BUY" else 101
                        body: dict[str, Any] = {
                            "tradingPairId": "WETH-USDC",
                            "side": side,
                            "type": "LIMIT",
                            "price": f"{centre + rng.randint(-40, 40) / 10:.2f}",
                            "quantity": f"{rng.randint(1, 30) / 1000:.3f}",
                        }
                        if rng.random() < 0.1:
                            body = {
                                "tradingPairId": "WETH-USDC",
                                "side": side,
                                "type": "MARKET",
                                "quantity": "0.010",
                            }
                        await ws.send(json.dumps({"op": "order.submit", "reqId": n, **body}))
                        while True:
                            msg = await recv(ws)
                            if msg.get("channel") == "orders":
                                seen[user].append(msg)
                            elif msg.get("reqId") == n:
                                break
                        assert msg["type"] == "ack", msg
                        assert msg["order"]["userId"] == user
                        acks.append(msg["order"])
                        if rng.random() < 0.2 and msg["order"]["status"] == "OPEN":
                            await ws.send(
                                json.dumps(
                                    {
                                        "op": "order.cancel",
                                        "reqId": f"c{n}",
                                        "orderId": msg["order"]["id"],
                                    }
                                )
                            )
                            while True:
                                answer = await recv(ws)
                                if answer.get("channel") == "orders":
                                    seen[user].append(answer)
                                elif answer.get("reqId") == f"c{n}":
                                    break
                            assert answer["type"] in ("ack", "error"), answer
                    # the rest of this user's order updates
                    try:
                        while True:
                            msg = await recv(ws, timeout=1.0)
                            if msg.get("channel") == "orders":
                                seen[user].append(msg)
                    except TimeoutError:
                        pass
                return acks

            results = await asyncio.gather(*(trader(u, i) for i, u in enumerate(USERS)))
            assert all(len(acks) == 40 for acks in results)
            rest = (await http.get(f"{TRADING}/pairs/WETH-USDC/orderbook?depth=100")).json()["data"]
            for _ in range(100):
                if all(b.seq == rest["seq"] for b in books.values()):
                    break
                await asyncio.sleep(0.1)
            stop.set()
            await asyncio.gather(*readers)

        assert rest["seq"] > 60
        for depth, book in books.items():
            assert book.bad == 0, depth
            assert book.seq == rest["seq"], depth
            assert checksum(book.bids, book.asks) == rest["checksum"], depth
        assert books[100].top(100) == (rest["bids"], rest["asks"])
        assert books[10].top(10) == (rest["bids"][:10], rest["asks"][:10])
        for user, messages in seen.items():
            updates = [m for m in messages if m["type"] == "update"]
            snapshots = [m for m in messages if m["type"] == "snapshot"]
            assert len(snapshots) == 1 and snapshots[0]["orders"] == []
            assert len(updates) >= 40, user  # at least each acked order once
            assert {m["order"]["userId"] for m in updates} == {user}
