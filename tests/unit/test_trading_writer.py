"""The pair's single writer: group commit, a failing commit, concurrent users, a rebuild.

On memory, SQLite and Postgres: a storage wrapper fails the next commit; every caller of that batch
gets ``BatchFailed`` and none of its orders, locks or fills exist, and the live book equals
the book rebuilt from storage. Many users submitting at once: every token is conserved
(fees included), no lock outlives its order, every acknowledged order is stored, and a
fresh writer rebuilds the very same book.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest

from adapters.outbound.clock.system import SystemClock
from adapters.outbound.permissions.memory import MemoryPermissions
from adapters.outbound.storage.memory import MemoryStorage
from adapters.outbound.storage.sql import SqlStorage
from adapters.outbound.storage.sql.migrate import upgrade_async
from core.ledger.model import AccountRef
from core.ledger.operations import mint
from core.marketdata.candles import ALL_INTERVALS, apply_trade
from core.marketdata.model import Candle
from core.ports.storage import Storage, UnitOfWork
from core.shared.authorization import Authorizer
from core.shared.errors import DomainError, ServiceUnavailable
from core.shared.events import Actor
from core.shared.ids import new_id
from core.tokens.model import Token, TokenType
from core.trading.orders import LIVE_STATUSES, Order
from core.trading.pairs import Pair, make_pair
from core.trading.service import SubmitOrder, TradingService
from core.trading.writer import BatchFailed, PairWriter
from tests.harness.postgres import PostgresServer, unique_database_name

NOW = datetime.now(UTC)
ETH = 10**18
USD = 10**6


class _FlakyUnit(UnitOfWork):
    def __init__(self, owner: FlakyStorage, inner: UnitOfWork) -> None:
        self._owner = owner
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def _begin(self) -> None:
        await self._inner.__aenter__()

    async def _end(self) -> None:
        await self._inner.__aexit__(None, None, None)

    async def commit(self) -> None:
        self._owner.commits += 1
        number = self._owner.commits
        if self._owner.gate is not None:
            await self._owner.gate.wait()
        if number in self._owner.fail_on:
            raise ServiceUnavailable("injected: the disk is full")
        await self._inner.commit()


class FlakyStorage(Storage):
    """Fails the commits whose numbers are in ``fail_on`` (counted from 1), applying
    nothing; with ``gate`` set, every commit waits for it."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.commits = 0
        self.fail_on: set[int] = set()
        self.gate: asyncio.Event | None = None  # commits wait for it when set

    def unit_of_work(self, *, read_only: bool = False) -> UnitOfWork:
        return _FlakyUnit(self, self.inner.unit_of_work(read_only=read_only))

    async def ping(self) -> None:
        await self.inner.ping()

    async def close(self) -> None:
        await self.inner.close()


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FlakyStorage]:
    inner: Storage
    database: str | None = None
    if request.param == "memory":
        inner = MemoryStorage()
    elif request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'trading.db'}"
        await upgrade_async(url)
        inner = SqlStorage(url)
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        database = unique_database_name("rwa_trading_writer")
        url = server.create_database(database)
        await upgrade_async(url)
        inner = SqlStorage(url)
    flaky = FlakyStorage(inner)
    yield flaky
    await flaky.close()
    if database is not None:
        server.drop_database(database)


async def make_market(storage: Storage, users: list[str]) -> Pair:
    base = Token(
        symbol="WETH", name="Wrapped Ether", type=TokenType.CRYPTO, decimals=18, created_at=NOW
    )
    quote = Token(symbol="USDC", name="USD Coin", type=TokenType.STABLE, decimals=6, created_at=NOW)
    pair = make_pair(
        base_symbol="WETH",
        quote_symbol="USDC",
        base_token_id=base.id,
        quote_token_id=quote.id,
        base_decimals=18,
        quote_decimals=6,
        tick=10_000,  # 0.01
        lot=10**15,  # 0.001
        min_quantity=10**15,
        max_quantity=10**21,
        maker_fee_bps=10,
        taker_fee_bps=25,
        at=NOW,
    )
    async with storage.unit_of_work() as uow:
        await uow.tokens.add(base)
        await uow.tokens.add(quote)
        await uow.pairs.add(pair)
        for user in users:
            for token, amount in ((base.id, 50 * ETH), (quote.id, 200_000 * USD)):
                key = f"fund:{new_id()}"
                await uow.ledger.apply(mint(key, NOW, AccountRef.user(user, token), amount))
        await uow.commit()
    return pair


def service_on(storage: Storage) -> TradingService:
    return TradingService(storage, Authorizer(MemoryPermissions()), SystemClock())


def actor(user: str) -> Actor:
    return Actor(id=user, roles=("trader",))


def random_order(rng: random.Random) -> SubmitOrder:
    side = rng.choice(["BUY", "SELL"])
    kind = rng.choices(["LIMIT", "MARKET", "STOP_LIMIT"], [8, 1, 1])[0]
    quantity = f"{rng.randint(1, 400) / 1000:.3f}"
    price = f"{rng.randint(1990, 2010)}.{rng.choice(['00', '50'])}"
    if kind == "MARKET":
        if side == "BUY" and rng.random() < 0.5:
            return SubmitOrder(pair="WETH-USDC", side=side, type=kind, quote_amount="250.5")
        return SubmitOrder(pair="WETH-USDC", side=side, type=kind, quantity=quantity)
    if kind == "STOP_LIMIT":
        stop = f"{rng.randint(1995, 2005)}.00"
        return SubmitOrder(
            pair="WETH-USDC", side=side, type=kind, price=price, stop_price=stop, quantity=quantity
        )
    tif = rng.choices(["GTC", "IOC", "FOK"], [6, 1, 1])[0]
    post_only = tif == "GTC" and rng.random() < 0.1
    return SubmitOrder(
        pair="WETH-USDC",
        side=side,
        type=kind,
        price=price,
        quantity=quantity,
        time_in_force=tif,
        post_only=post_only,
    )


async def check_books(storage: Storage, pair: Pair, users: list[str], writer: PairWriter) -> None:
    """Conservation, no stray lock, and the live book equal to a rebuild from storage."""
    async with storage.unit_of_work(read_only=True) as uow:
        for token in (pair.base_token_id, pair.quote_token_id):
            total = await uow.ledger.total(token)
            supply = await uow.ledger.supply(token)
            assert total.available + total.locked == supply.outstanding
        orders: list[Order] = []
        for user in users:
            orders += await uow.orders.for_user(user, limit=10_000)
            for token, side in ((pair.quote_token_id, "BUY"), (pair.base_token_id, "SELL")):
                held = await uow.ledger.balance(AccountRef.user(user, token))
                assert held.available >= 0 and held.locked >= 0
                expected = sum(
                    o.locked for o in orders if o.user_id == user and o.side == side and o.is_live
                )
                assert held.locked == expected, (user, side)
        for order in orders:
            if order.status not in LIVE_STATUSES:
                assert order.locked == 0
    fresh = PairWriter(pair.id, storage, SystemClock())
    await fresh.rebuild()
    assert fresh.snapshot() == writer.snapshot()


async def test_a_failed_commit_errors_the_whole_batch_and_restores_the_book(
    storage: FlakyStorage,
) -> None:
    users = [f"u{i}" for i in range(6)]
    pair = await make_market(storage, users)
    trading = service_on(storage)
    writer = trading.writer(pair.id)
    try:
        await trading.submit(
            actor("u0"),
            SubmitOrder(pair="WETH-USDC", side="SELL", type="LIMIT", price="2000.00", quantity="1"),
        )
        requests = [
            (
                actor(user),
                SubmitOrder(
                    pair="WETH-USDC",
                    side="BUY",
                    type="LIMIT",
                    price="2000.00",
                    quantity="0.3",
                    client_order_id=f"c-{user}",
                ),
            )
            for user in users[1:]
        ]
        # a first batch waits in its commit while the five requests queue behind it
        storage.gate = asyncio.Event()
        first = storage.commits + 1
        blocker = asyncio.create_task(
            trading.submit(
                actor("u0"),
                SubmitOrder(
                    pair="WETH-USDC", side="SELL", type="LIMIT", price="2100.00", quantity="1"
                ),
            )
        )
        for _ in range(500):
            if storage.commits == first:
                break
            await asyncio.sleep(0.01)
        tasks = [asyncio.create_task(trading.submit(who, what)) for who, what in requests]
        for _ in range(500):
            if writer.queued == len(requests):
                break
            await asyncio.sleep(0.01)
        assert writer.queued == len(requests) and storage.commits == first
        before = writer.snapshot()  # the blocker's batch is on the book, in its commit
        storage.fail_on = {first + 1}  # the next batch: the five together
        storage.gate.set()
        storage.gate = None
        await blocker
        answers = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(a, BatchFailed) for a in answers)  # every caller of the batch
        assert writer.snapshot() == before
        async with storage.unit_of_work(read_only=True) as uow:
            for (who, what), answer in zip(requests, answers, strict=True):
                stored = await uow.orders.by_client_id(who.id, what.client_order_id or "")
                if isinstance(answer, BaseException):
                    assert stored is None
                    held = await uow.ledger.balance(AccountRef.user(who.id, pair.quote_token_id))
                    assert held.locked == 0 and held.available == 200_000 * USD
                else:
                    assert stored is not None and stored.id == answer.order.id
        await check_books(storage, pair, users, writer)
        # the writer goes on: the same requests succeed now
        again = await asyncio.gather(*(trading.submit(who, what) for who, what in requests))
        filled = sum(a.order.filled_quantity for a in again)
        assert filled == 10**18  # 1 WETH on offer, 5 x 0.3 wanted
        await check_books(storage, pair, users, writer)
    finally:
        await trading.stop()


async def check_market_data(storage: Storage, pair: Pair, count: int) -> None:
    """No relay runs here: the writer's batches stored every trade for market data and folded
    it into candles in the same transaction; each interval's candles equal a fold from
    scratch of the stored trades."""
    async with storage.unit_of_work(read_only=True) as uow:
        stored = await uow.market_data.trades(
            pair.id, after=datetime(2000, 1, 1, tzinfo=UTC), until=datetime(2100, 1, 1, tzinfo=UTC)
        )
        assert len(stored) == count
        for interval in ALL_INTERVALS:
            candles = await uow.market_data.candles(pair.id, interval, limit=10_000)
            expected: dict[datetime, Candle] = {}
            for trade in stored:
                open_time = interval.open_time(trade.time)
                expected[open_time] = apply_trade(expected.get(open_time), trade, interval)
            assert [attrs.evolve(c, version=0) for c in candles] == [
                attrs.evolve(expected[t], version=0) for t in sorted(expected)
            ]


async def test_many_users_at_once_conserve_every_token(storage: FlakyStorage) -> None:
    users = [f"u{i}" for i in range(12)]
    pair = await make_market(storage, users)
    trading = service_on(storage)
    rng = random.Random(8)
    try:

        async def trader(user: str) -> list[Any]:
            answers: list[Any] = []
            mine: list[str] = []
            for _ in range(15):
                if mine and rng.random() < 0.2:
                    order_id = mine.pop(rng.randrange(len(mine)))
                    try:
                        answers.append(await trading.cancel(actor(user), order_id))
                    except DomainError as exc:
                        answers.append(exc)  # it filled meanwhile
                    continue
                try:
                    result = await trading.submit(actor(user), random_order(rng))
                except DomainError as exc:  # e.g. insufficient funds
                    answers.append(exc)
                    continue
                answers.append(result)
                if result.order.is_live:
                    mine.append(result.order.id)
            return answers

        results = await asyncio.gather(*(trader(u) for u in users))
        acknowledged = [a for batch in results for a in batch if not isinstance(a, Exception)]
        assert len(acknowledged) > 100
        writer = trading.writer(pair.id)
        await check_books(storage, pair, users, writer)
        # closing the pair cancels every open order and unlocks all of it, in one batch
        admin = Actor(id="admin-1", roles=("admin",))
        await trading.update_pair(admin, "WETH-USDC", {"status": "closed"})
        await check_books(storage, pair, users, writer)
        async with storage.unit_of_work(read_only=True) as uow:
            for user in users:
                for token in (pair.base_token_id, pair.quote_token_id):
                    assert (await uow.ledger.balance(AccountRef.user(user, token))).locked == 0
            for answer in acknowledged:
                assert await uow.orders.get(answer.order.id) is not None
            trades = await uow.trades.for_pair(pair.id, limit=10_000)
            fees = await uow.ledger.balance(AccountRef.fee(pair.quote_token_id))
        assert trades, "the random stream crossed"
        assert fees.available == sum(t.maker_fee + t.taker_fee for t in trades)
        await check_market_data(storage, pair, len(trades))
        # a restart: a new service rebuilds the same book
        await trading.stop()
        restarted = service_on(storage)
        await restarted.start()
        assert restarted.writer(pair.id).snapshot() == writer.snapshot()
        await restarted.stop()
    finally:
        await trading.stop()


async def test_nobody_hears_of_an_order_before_its_commit(storage: FlakyStorage) -> None:
    users = ["u0", "u1"]
    await make_market(storage, users)
    trading = service_on(storage)
    try:
        await trading.submit(
            actor("u0"),
            SubmitOrder(pair="WETH-USDC", side="SELL", type="LIMIT", price="2000.00", quantity="1"),
        )
        storage.gate = asyncio.Event()
        order = asyncio.create_task(
            trading.submit(
                actor("u1"),
                SubmitOrder(
                    pair="WETH-USDC", side="BUY", type="LIMIT", price="2000.00", quantity="0.5"
                ),
            )
        )
        await asyncio.sleep(0.05)
        book = asyncio.create_task(trading.orderbook("WETH-USDC", depth=5))
        await asyncio.sleep(0.05)
        assert not order.done() and not book.done()  # the fill is not durable yet
        async with storage.unit_of_work(read_only=True) as uow:
            assert await uow.orders.for_user("u1", limit=5) == []
        storage.gate.set()
        result = await order
        assert result.order.filled_quantity == 5 * 10**17
        shown = await book
        assert shown.asks == [("2000.00", "0.500")] and shown.seq == 2
    finally:
        storage.gate = None
        await trading.stop()


async def test_limits_changed_after_validation_are_enforced_by_the_writer(
    storage: FlakyStorage,
) -> None:
    """An order checked against the pair's limits while a change of them waits to commit is
    judged again by the writer against the committed pair: refused, nothing locked."""
    users = ["u0"]
    pair = await make_market(storage, users)
    trading = service_on(storage)
    admin = Actor(id="admin", roles=("admin",))
    try:
        storage.gate = asyncio.Event()  # the change's batch waits at its commit
        change = asyncio.create_task(
            trading.update_pair(admin, "WETH-USDC", {"max_quantity": "0.100"})
        )
        await asyncio.sleep(0.05)
        order = asyncio.create_task(
            trading.submit(
                actor("u0"),
                SubmitOrder(pair="WETH-USDC", side="BUY", type="LIMIT", price="10", quantity="0.5"),
            )
        )
        await asyncio.sleep(0.05)  # checked against the committed limits, then queued
        assert not change.done() and not order.done()
        storage.gate.set()
        assert (await change).max_quantity == 10**17
        with pytest.raises(DomainError) as refused:
            await order
        assert getattr(refused.value, "code", None) == "quantity_above_max"
        async with storage.unit_of_work(read_only=True) as uow:
            assert await uow.orders.for_user("u0", limit=5) == []
            held = await uow.ledger.balance(AccountRef.user("u0", pair.quote_token_id))
            assert held.locked == 0 and held.available == 200_000 * USD
    finally:
        storage.gate = None
        await trading.stop()


async def test_a_pair_stored_before_limits_were_bounded_can_still_be_halted(
    storage: FlakyStorage,
) -> None:
    """A status change never fails on limits it does not touch (a market's pause must halt
    its pair whatever limits an older version stored)."""
    pair = await make_market(storage, ["u0"])
    legacy = attrs.evolve(pair, max_quantity=pair.lot * 2**63, version=pair.version + 1)
    async with storage.unit_of_work() as uow:
        await uow.pairs.save(legacy)
        await uow.commit()
    trading = service_on(storage)
    admin = Actor(id="admin", roles=("admin",))
    try:
        halted = await trading.update_pair(admin, "WETH-USDC", {"status": "halted"})
        assert halted.status.value == "halted" and halted.max_quantity == pair.lot * 2**63
        with pytest.raises(DomainError) as refused:
            await trading.update_pair(admin, "WETH-USDC", {"max_quantity": str(2**63)})
        assert "maxQuantity" in str(getattr(refused.value, "fields", {}))
    finally:
        await trading.stop()
