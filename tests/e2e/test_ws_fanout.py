"""Fan-out across API processes (DESIGN §13): two `rwa-market serve` processes of the production
profile on loopback share Postgres, the Redis event bus and one `rwa-market engine` (the pair's
writer). Orders go through the first; a client of the second receives the same `book`,
`trades` and `markets` messages as a client of the first, in the same order, with the same
`seq`, and both end on the REST book of either process; a late subscriber of the second
process starts from that book."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from adapters.outbound.storage.sql import SqlStorage
from core.ledger.model import AccountRef
from core.ledger.operations import mint
from core.shared.ids import new_id
from tests.e2e.server import API, RwaServer, start_server
from tests.e2e.test_websocket_trading import Book, checksum, recv
from tests.harness.common import missing_service
from tests.harness.hardhat import hardhat_unavailable
from tests.harness.postgres import find_bin_dir
from tests.harness.redis import redis_binary
from tests.harness.topology import Topology, start_topology

TRADING = "/api/v1/trading"
USERS = ("fan-ann", "fan-ben", "fan-cat")
CHANNELS = (
    {"channel": "book", "pair": "WETH-USDC", "depth": 100},
    {"channel": "trades", "pair": "WETH-USDC"},
    {"channel": "markets"},
)


@pytest.fixture(scope="module")
def two_apis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Topology, RwaServer]]:
    if find_bin_dir() is None:
        missing_service("PostgreSQL (initdb/pg_ctl)")
    if redis_binary() is None:
        missing_service("redis-server")
    reason = hardhat_unavailable()
    if reason is not None:
        missing_service(f"Hardhat: {reason}")
    work = tmp_path_factory.mktemp("ws-fanout")
    limits = {"RWA_ORDER_RATE_LIMIT": "0", "RWA_HTTP_RATE_LIMIT": "0"}
    topology = start_topology(work / "one", workers=0, engines=1, extra_env=limits)
    try:
        env = {k: v for k, v in topology.env.items() if k != "RWA_PORT"}
        second = start_server(work / "two", env=env)
        try:
            yield topology, second
        finally:
            second.stop()
    finally:
        topology.stop()


async def fund(database_url: str, base: str, quote: str) -> None:
    storage = SqlStorage(database_url)
    try:
        async with storage.unit_of_work() as uow:
            for user in USERS:
                for token, amount in ((base, 1_000 * 10**18), (quote, 10_000_000 * 10**6)):
                    await uow.ledger.apply(
                        mint(
                            f"fan:{new_id()}",
                            datetime.now(UTC),
                            AccountRef.user(user, token),
                            amount,
                        )
                    )
            await uow.commit()
    finally:
        await storage.close()


def ws_url(server: RwaServer) -> str:
    return f"ws://127.0.0.1:{server.port}/api/v1/ws"


async def subscribe_all(ws: ClientConnection, book: Book) -> None:
    for frame in CHANNELS:
        await ws.send(json.dumps({"op": "subscribe", **frame}))
        assert (await recv(ws))["type"] == "subscribed"
        snapshot = await recv(ws)
        assert snapshot["type"] == "snapshot"
        book.on(snapshot)


def key(msg: dict[str, Any]) -> tuple[Any, ...]:
    """What must be equal between the two processes' clients."""
    if msg["channel"] == "book":
        return ("book", msg["seq"], msg.get("fromSeq"), msg["bids"], msg["asks"], msg["checksum"])
    if msg["channel"] == "trades":
        return ("trades", msg["stream"], msg["seq"], msg["trade"])
    return ("markets", msg["stream"], msg["seq"], msg["event"]["id"], msg["event"]["eventType"])


async def test_a_client_of_either_process_sees_the_same_streams(
    two_apis: tuple[Topology, RwaServer],
) -> None:
    topology, second = two_apis
    first = topology.api
    assert first is not None
    admin = {"Authorization": f"Bearer {first.token('admin-1', 'admin')}"}
    async with httpx.AsyncClient(base_url=first.base_url, timeout=30) as http:
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
        await fund(topology.env["RWA_DATABASE_URL"], pair["baseTokenId"], pair["quoteTokenId"])

        received: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
        books = {1: Book(), 2: Book()}
        stop = asyncio.Event()

        async def reader(n: int, ws: ClientConnection) -> None:
            while not stop.is_set():
                try:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
                except TimeoutError:
                    continue
                if msg["type"] == "update":
                    received[n].append(msg)
                books[n].on(msg)

        async with connect(ws_url(first)) as one, connect(ws_url(second)) as two:
            await subscribe_all(one, books[1])
            await subscribe_all(two, books[2])
            readers = [asyncio.create_task(reader(1, one)), asyncio.create_task(reader(2, two))]

            # lifecycle events: a market registered on the first process
            issuer = {"Authorization": f"Bearer {first.token('issuer-fan', 'issuer')}"}
            registered = await http.post(
                f"{API}/register",
                json={
                    "name": "Fan Plaza",
                    "assetType": "real_estate",
                    "tokenSymbol": "FANP",
                    "tokenName": "Fan Plaza Token",
                    "totalSupply": 1000,
                    "entityId": "entity-fan",
                    "assetDetails": {"valuation": "1000000", "currency": "USD"},
                },
                headers=issuer,
            )
            assert registered.status_code == 201, registered.text

            async def trade(user: str, seed: int) -> None:
                rng = random.Random(seed)
                async with connect(ws_url(first)) as ws:
                    await ws.send(json.dumps({"op": "auth", "token": first.token(user, "trader")}))
                    assert (await recv(ws))["type"] == "authenticated"
                    for n in range(30):
                        side = rng.choice(["BUY", "SELL"])
                        centre = 100 if side == "BUY" else 101
                        body = {
                            "tradingPairId": "WETH-USDC",
                            "side": side,
                            "type": "LIMIT",
                            "price": f"{centre + rng.randint(-30, 30) / 10:.2f}",
                            "quantity": f"{rng.randint(1, 30) / 1000:.3f}",
                        }
                        await ws.send(json.dumps({"op": "order.submit", "reqId": n, **body}))
                        answer = await recv(ws)
                        assert answer["type"] == "ack", answer

            await asyncio.gather(*(trade(u, i) for i, u in enumerate(USERS)))
            rest = (await http.get(f"{TRADING}/pairs/WETH-USDC/orderbook?depth=100")).json()["data"]
            for _ in range(200):
                if all(b.seq == rest["seq"] for b in books.values()):
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)  # the last trades and market events, if any
            # a late subscriber of the second process starts from the same book
            async with connect(ws_url(second)) as late:
                await late.send(json.dumps({"op": "subscribe", **CHANNELS[0]}))
                assert (await recv(late))["type"] == "subscribed"
                snapshot = await recv(late)
                assert (snapshot["seq"], snapshot["bids"], snapshot["asks"]) == (
                    rest["seq"],
                    rest["bids"],
                    rest["asks"],
                )
                assert snapshot["checksum"] == rest["checksum"]
            stop.set()
            await asyncio.gather(*readers)

        async with httpx.AsyncClient(base_url=second.base_url, timeout=30) as http_two:
            rest_two = (
                await http_two.get(f"{TRADING}/pairs/WETH-USDC/orderbook?depth=100")
            ).json()["data"]

    assert rest["seq"] >= 60
    assert (rest_two["seq"], rest_two["bids"], rest_two["asks"]) == (
        rest["seq"],
        rest["bids"],
        rest["asks"],
    )  # the second process's REST book, read from storage
    one_keys = [key(m) for m in received[1]]
    two_keys = [key(m) for m in received[2]]
    assert one_keys == two_keys  # same messages, same order, same seq
    kinds = {k[0] for k in one_keys}
    assert kinds == {"book", "trades", "markets"}
    for n, book in books.items():
        assert book.bad == 0 and book.seq == rest["seq"], n
        assert checksum(book.bids, book.asks) == rest["checksum"], n
        assert book.top(100) == (rest["bids"], rest["asks"]), n
