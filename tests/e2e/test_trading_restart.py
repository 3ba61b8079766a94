"""Books rebuilt from storage by the real embedded server (durable SQLite).

Random orders from several users at once over HTTP; then a clean restart must give the same
book (levels, seq, checksum), the same open orders and the same balances; then orders keep
coming while the server is killed with SIGKILL: after the restart every acknowledged order is
there, the book is exactly the aggregate of the stored open orders, every token is conserved
(fees included) and no lock outlives its order.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from adapters.outbound.storage.sql import SqlStorage
from core.ledger.model import AccountRef
from core.ledger.operations import mint
from core.shared.ids import new_id
from tests.e2e.server import RwaServer, start_server

TRADING = "/api/v1/trading"
USERS = [f"trader-{i}" for i in range(8)]
ORDERS = 600


def bearer(server: RwaServer, sub: str, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.token(sub, role)}"}


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()["data"]


def db_url(server: RwaServer) -> str:
    return f"sqlite+aiosqlite:///{(server.data_dir / 'rwa.sqlite3').resolve()}"


async def _fund(url: str, base: str, quote: str) -> None:
    storage = SqlStorage(url)
    try:
        async with storage.unit_of_work() as uow:
            for user in USERS:
                for token, amount in ((base, 1_000 * 10**18), (quote, 10_000_000 * 10**6)):
                    account = AccountRef.user(user, token)
                    await uow.ledger.apply(
                        mint(f"e2e:{new_id()}", datetime.now(UTC), account, amount)
                    )
            await uow.commit()
    finally:
        await storage.close()


async def _ledger(url: str, pair: dict[str, Any]) -> dict[str, Any]:
    """Balances, conservation and the lock of every live order, read from the database."""
    storage = SqlStorage(url)
    try:
        async with storage.unit_of_work(read_only=True) as uow:
            out: dict[str, Any] = {}
            for token in (pair["baseTokenId"], pair["quoteTokenId"]):
                total = await uow.ledger.total(token)
                supply = await uow.ledger.supply(token)
                assert total.available + total.locked == supply.outstanding
            for user in USERS:
                live = await uow.orders.for_user(
                    user, statuses=[], pair_id=pair["id"], limit=100_000
                )
                for token, side in ((pair["quoteTokenId"], "BUY"), (pair["baseTokenId"], "SELL")):
                    held = await uow.ledger.balance(AccountRef.user(user, token))
                    expected = sum(o.locked for o in live if o.side == side and o.is_live)
                    assert held.locked == expected, (user, side)
                    assert all(o.locked == 0 for o in live if not o.is_live)
                    out[f"{user}:{side}"] = (held.available, held.locked)
            return out
    finally:
        await storage.close()


def random_order(rng: random.Random) -> dict[str, Any]:
    side = rng.choice(["BUY", "SELL"])
    quantity = f"{rng.randint(1, 50) / 100:.2f}"
    if rng.random() < 0.1:
        return {"side": side, "type": "MARKET", "quantity": quantity}
    price = f"{rng.randint(95, 105)}.{rng.choice(['0', '5'])}"
    tif = rng.choices(["GTC", "IOC"], [9, 1])[0]
    return {"side": side, "type": "LIMIT", "price": price, "quantity": quantity, "timeInForce": tif}


def place_many(
    server: RwaServer, count: int, seed: int, stop: threading.Event | None = None
) -> list[str]:
    """``count`` random orders from every user at once; the ids acknowledged (201)."""
    headers = {user: bearer(server, user, "trader") for user in USERS}
    acknowledged: list[str] = []
    lock = threading.Lock()

    def one_user(index: int) -> None:
        rng = random.Random(seed * 100 + index)
        user = USERS[index]
        with httpx.Client(base_url=server.base_url, timeout=15) as http:
            for _ in range(count // len(USERS)):
                if stop is not None and stop.is_set():
                    return
                body = {"tradingPairId": "WETH-USDC", **random_order(rng)}
                try:
                    response = http.post(f"{TRADING}/orders", json=body, headers=headers[user])
                except httpx.HTTPError:
                    return  # the server went away
                if response.status_code == 201:
                    with lock:
                        acknowledged.append(response.json()["data"]["id"])
                else:
                    assert response.status_code in (409, 503), response.text

    with ThreadPoolExecutor(len(USERS)) as pool:
        list(pool.map(one_user, range(len(USERS))))
    return acknowledged


def open_orders(http: httpx.Client, server: RwaServer) -> dict[str, tuple[str, str, str]]:
    found: dict[str, tuple[str, str, str]] = {}
    for user in USERS:
        cursor = None
        while True:
            query = "status=OPEN,PARTIALLY_FILLED&pair=WETH-USDC&limit=100"
            if cursor:
                query += f"&cursor={cursor}"
            response = http.get(
                f"{TRADING}/users/{user}/orders?{query}", headers=bearer(server, user, "trader")
            )
            body = response.json()
            for order in body["data"]:
                found[order["id"]] = (order["side"], order["price"], order["remainingQuantity"])
            cursor = body["pagination"]["nextCursor"]
            if not cursor:
                break
    return found


def state(server: RwaServer) -> dict[str, Any]:
    with server.client() as http:
        book = ok(http.get(f"{TRADING}/pairs/WETH-USDC/orderbook?depth=500"))
        orders = open_orders(http, server)
    levels: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for side, price, remaining in orders.values():
        levels[(side, price)] += Decimal(remaining)
    bids = sorted(
        ((p, s) for (side, p), s in levels.items() if side == "BUY"),
        key=lambda level: -Decimal(level[0]),
    )
    asks = sorted(
        ((p, s) for (side, p), s in levels.items() if side == "SELL"),
        key=lambda level: Decimal(level[0]),
    )
    # the served book is exactly the aggregate of the stored open orders
    assert [(p, Decimal(s)) for p, s in book["bids"]] == bids
    assert [(p, Decimal(s)) for p, s in book["asks"]] == asks
    return {"book": book, "orders": orders}


def test_books_survive_a_clean_restart_and_kill_9(tmp_path: Path) -> None:
    server = start_server(tmp_path / "one")
    try:
        with server.client() as http:
            admin = bearer(server, "admin-1", "admin")
            ok(
                http.post(
                    "/api/v1/tokens",
                    json={
                        "symbol": "WETH",
                        "name": "Wrapped Ether",
                        "type": "CRYPTO",
                        "decimals": 18,
                    },
                    headers=admin,
                ),
                201,
            )
            pair = ok(
                http.post(
                    f"{TRADING}/pairs",
                    json={
                        "baseToken": "WETH",
                        "quoteToken": "USDC",
                        "tickSize": "0.5",
                        "lotSize": "0.01",
                    },
                    headers=admin,
                ),
                201,
            )
        asyncio.run(_fund(db_url(server), pair["baseTokenId"], pair["quoteTokenId"]))
        started = time.monotonic()
        placed = place_many(server, ORDERS, seed=1)
        elapsed = time.monotonic() - started
        assert len(placed) > ORDERS // 2
        before = state(server)
        ledger_before = asyncio.run(_ledger(db_url(server), pair))
        assert before["book"]["bids"] and before["book"]["asks"]
    finally:
        server.stop()
    print(f"{len(placed)} orders acknowledged in {elapsed:.1f}s over HTTP (8 clients)")

    again = start_server(tmp_path / "two", data_dir=server.data_dir)
    try:
        assert state(again) == before
        assert asyncio.run(_ledger(db_url(again), pair)) == ledger_before
        stop = threading.Event()
        result: list[list[str]] = []
        worker = threading.Thread(
            target=lambda: result.append(place_many(again, 100_000, seed=2, stop=stop))
        )
        worker.start()
        time.sleep(2.0)
        again.kill()  # SIGKILL mid-stream
        stop.set()
        worker.join(timeout=60)
    finally:
        again.kill()
    acknowledged = result[0]
    assert acknowledged, "orders were placed before the kill"

    third = start_server(tmp_path / "three", data_dir=server.data_dir)
    try:
        after_kill = state(third)  # book == aggregate of the stored open orders
        asyncio.run(_ledger(db_url(third), pair))  # conserved, no stray lock
        with third.client() as http:
            for order_id in acknowledged:
                response = http.get(
                    f"{TRADING}/orders/{order_id}", headers=bearer(third, "admin-1", "admin")
                )
                assert response.status_code == 200, order_id
        ledger_after_kill = asyncio.run(_ledger(db_url(third), pair))
    finally:
        third.stop()
    fourth = start_server(tmp_path / "four", data_dir=server.data_dir)
    try:
        assert state(fourth) == after_kill
        assert asyncio.run(_ledger(db_url(fourth), pair)) == ledger_after_kill
    finally:
        fourth.stop()
    print(f"kill -9 after {len(acknowledged)} more acknowledged orders: all found after restart")
