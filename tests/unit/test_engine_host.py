"""Engine hosts: one owner per pair by lease, takeover, fencing, nothing applied twice.

In one process on memory storage and the in-process router (the e2e test runs the same with
processes, Postgres and Redis): API-side ``TradingService``s with a router, two
``EngineHost``s with a short lease.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import attrs
import pytest

from adapters.outbound.clock.system import SystemClock
from adapters.outbound.permissions.memory import MemoryPermissions
from adapters.outbound.routing.memory import MemoryOrderRouter
from adapters.outbound.storage.memory import MemoryStorage
from core.ports.order_routing import Delivery, EngineReply, EngineUnavailable, OrderRouter
from core.ports.storage import Storage
from core.shared.authorization import Authorizer
from core.shared.errors import DomainError
from core.shared.ids import new_id
from core.trading.engine_host import EngineHost, lease_name
from core.trading.pairs import Pair
from core.trading.service import SubmitOrder, TradingService
from core.trading.stored_book import StoredBooks
from core.trading.writer import PairWriter
from tests.unit.test_trading_writer import actor, check_books, make_market

LEASE = 0.5
USERS = [f"u{i}" for i in range(4)]


class DyingRouter(OrderRouter):
    """An engine's view of the router; ``die_on_reply``: the engine dies after its commit,
    before its reply leaves (the reply is never sent)."""

    def __init__(self, inner: OrderRouter) -> None:
        self.inner = inner
        self.die_on_reply = False
        self.lose_next = False
        self.dead = asyncio.Event()

    async def request(self, command, *, timeout):  # type: ignore[no-untyped-def]
        return await self.inner.request(command, timeout=timeout)

    async def receive(
        self, consumer: str, pair_ids: Sequence[str], *, count: int, block_seconds: float
    ) -> list[Delivery]:
        if self.dead.is_set():
            await asyncio.sleep(block_seconds)
            return []
        got = await self.inner.receive(consumer, pair_ids, count=count, block_seconds=block_seconds)
        if got and self.lose_next:  # read, then lost on the way (a stale reader's)
            self.lose_next = False
            return got[1:]
        return got

    async def claim(
        self, consumer: str, pair_id: str, *, min_idle_seconds: float = 0.0
    ) -> list[Delivery]:
        return await self.inner.claim(consumer, pair_id, min_idle_seconds=min_idle_seconds)

    async def reply(self, delivery: Delivery, reply: EngineReply) -> None:
        if self.die_on_reply or self.dead.is_set():
            self.dead.set()
            return
        await self.inner.reply(delivery, reply)


async def kill(host: EngineHost) -> None:
    """As SIGKILL would: the loops and writers stop, no lease is given back."""
    for task in host._tasks:
        task.cancel()
    for owned in host._owned.values():
        owned.lost = True
        await owned.writer.stop()


def trading(storage: Storage, router: OrderRouter, timeout: float = 5.0) -> TradingService:
    return TradingService(
        storage,
        Authorizer(MemoryPermissions()),
        SystemClock(),
        router=router,
        reply_timeout=timeout,
    )


def host(storage: Storage, router: OrderRouter, name: str) -> EngineHost:
    return EngineHost(storage, SystemClock(), router, holder=name, lease_seconds=LEASE)


async def owner_of(hosts: list[EngineHost], pair: Pair, within: float = 5.0) -> EngineHost:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        owners = [h for h in hosts if pair.id in h.owned]
        if owners:
            assert len(owners) == 1
            return owners[0]
        await asyncio.sleep(0.02)
    raise AssertionError("no engine took the pair")


def order(rng: random.Random) -> SubmitOrder:
    side = rng.choice(["BUY", "SELL"])
    price = f"{rng.randint(1995, 2005)}.00"
    quantity = f"{rng.randint(1, 200) / 1000:.3f}"
    return SubmitOrder(pair="WETH-USDC", side=side, type="LIMIT", price=price, quantity=quantity)


async def place(service: TradingService, rng: random.Random, count: int) -> list[str]:
    """``count`` random orders from every user at once; the acknowledged ids."""
    acknowledged: list[str] = []

    async def one_user(user: str) -> None:
        for _ in range(count):
            try:
                result = await service.submit(actor(user), order(rng))
            except DomainError as refused:
                assert refused.code in ("insufficient_funds", "engine_unavailable")
                continue
            acknowledged.append(result.order.id)

    await asyncio.gather(*(one_user(u) for u in USERS))
    return acknowledged


async def stored_writer(storage: Storage, pair: Pair) -> PairWriter:
    writer = PairWriter(pair.id, storage, SystemClock())
    await writer.rebuild()
    return writer


async def test_two_engines_one_owner_takeover_within_the_lease_and_nothing_lost() -> None:
    storage, router = MemoryStorage(), MemoryOrderRouter()
    pair = await make_market(storage, USERS)
    api_one, api_two = trading(storage, router), trading(storage, router)
    a, b = host(storage, router, "engine-a"), host(storage, router, "engine-b")
    a.start()
    assert await owner_of([a, b], pair) is a
    b.start()
    rng = random.Random(7)
    placed = await place(api_one, rng, 10) + await place(api_two, rng, 10)
    assert len(placed) > 40
    assert await owner_of([a, b], pair) is a and b.owned == []
    # an API process reads the book from storage: the owner's committed book, same seq
    _, bids, asks, seq = await a._owned[pair.id].writer.stable_depth(50)
    _, stored_bids, stored_asks, stored_seq = await StoredBooks(storage).depth(pair.id, 50)
    assert (stored_bids, stored_asks, stored_seq) == (bids, asks, seq)
    assert seq > 0 and bids and asks
    book = await api_two.orderbook("WETH-USDC", depth=50)
    assert book.seq == seq and len(book.bids) == len(bids)

    await kill(a)
    killed = time.monotonic()
    assert await owner_of([b], pair, within=LEASE * 4) is b
    took = time.monotonic() - killed
    assert took <= LEASE + LEASE / 5 + 0.5
    placed += await place(api_one, rng, 10)
    async with storage.unit_of_work(read_only=True) as uow:
        for order_id in placed:
            assert await uow.orders.get(order_id) is not None
    await check_books(storage, pair, USERS, b._owned[pair.id].writer)
    await b.stop()
    await router.close()


async def test_a_command_the_dead_owner_committed_is_answered_not_applied_again() -> None:
    storage, router = MemoryStorage(), MemoryOrderRouter()
    pair = await make_market(storage, USERS)
    api = trading(storage, router)
    dying = DyingRouter(router)
    a = host(storage, dying, "engine-a")
    a.start()
    await owner_of([a], pair)
    dying.die_on_reply = True  # a commits the next order, then dies before its reply
    submitted = asyncio.ensure_future(
        api.submit(
            actor("u1"),
            SubmitOrder(
                pair="WETH-USDC",
                side="BUY",
                type="LIMIT",
                price="1990.00",
                quantity="0.100",
                client_order_id=None,
            ),
        )
    )
    await asyncio.wait_for(dying.dead.wait(), 5)
    await kill(a)
    async with storage.unit_of_work(read_only=True) as uow:
        [committed] = await uow.orders.for_user("u1", limit=10)  # a committed it
    b = host(storage, router, "engine-b")
    b.start()
    result = await asyncio.wait_for(submitted, 10)  # answered by b, from storage
    assert result.order.id == committed.id
    async with storage.unit_of_work(read_only=True) as uow:
        assert [o.id for o in await uow.orders.for_user("u1", limit=10)] == [committed.id]
    await check_books(storage, pair, USERS, b._owned[pair.id].writer)
    await b.stop()
    await router.close()


async def test_an_engine_that_lost_its_lease_commits_nothing_more() -> None:
    storage, router = MemoryStorage(), MemoryOrderRouter()
    pair = await make_market(storage, USERS)
    api = trading(storage, router, timeout=1.0)
    a = host(storage, router, "engine-a")
    a.start()
    await owner_of([a], pair)
    before = await stored_writer(storage, pair)
    # a pause longer than the lease (a frozen VM): another holder takes the lease meanwhile
    a_loop = a._tasks[0]
    a_loop.cancel()
    now = datetime.now(UTC)
    async with storage.unit_of_work() as uow:
        assert await uow.leases.acquire(
            lease_name(pair.id),
            "thief",
            now=now + timedelta(seconds=1),
            until=now + timedelta(hours=1),
        )
        await uow.commit()
    with pytest.raises(EngineUnavailable):  # a's batch is fenced: no answer, nothing stored
        await api.submit(
            actor("u2"),
            SubmitOrder(
                pair="WETH-USDC", side="SELL", type="LIMIT", price="2100.00", quantity="0.5"
            ),
        )
    async with storage.unit_of_work(read_only=True) as uow:
        assert await uow.orders.for_user("u2", limit=10) == []
    assert a.owned == []  # the failed commit marked the pair lost
    after = await stored_writer(storage, pair)
    assert after.snapshot() == before.snapshot()
    await a.stop()
    await router.close()


async def test_a_clean_stop_hands_the_pair_over_at_once() -> None:
    storage, router = MemoryStorage(), MemoryOrderRouter()
    pair = await make_market(storage, USERS)
    api = trading(storage, router)
    slow = EngineHost(storage, SystemClock(), router, holder="engine-a", lease_seconds=10)
    other = EngineHost(storage, SystemClock(), router, holder="engine-b", lease_seconds=10)
    slow.start()
    assert await owner_of([slow, other], pair) is slow
    other.start()
    placed = await place(api, random.Random(3), 5)
    stopped = time.monotonic()
    await slow.stop()  # SIGTERM: the lease is given back, not left to expire (10 s)
    assert await owner_of([other], pair, within=30) is other
    assert time.monotonic() - stopped < 10 / 5 + 1  # the standby's next pass
    placed += await place(api, random.Random(4), 5)
    async with storage.unit_of_work(read_only=True) as uow:
        for order_id in placed:
            assert await uow.orders.get(order_id) is not None
    await check_books(storage, pair, USERS, other._owned[pair.id].writer)
    await other.stop()
    await router.close()


async def test_a_command_past_its_deadline_is_refused_unapplied() -> None:
    storage, router = MemoryStorage(), MemoryOrderRouter()
    pair = await make_market(storage, USERS)
    api = trading(storage, router, timeout=0.5)
    with pytest.raises(EngineUnavailable):  # no engine yet: the command waits in the queue
        await api.submit(
            actor("u3"),
            SubmitOrder(pair="WETH-USDC", side="BUY", type="LIMIT", price="1990.00", quantity="1"),
        )
    late = host(storage, router, "engine-late")
    late.start()
    await owner_of([late], pair)
    await asyncio.sleep(0.5)  # it took the waiting command and refused it
    async with storage.unit_of_work(read_only=True) as uow:
        assert await uow.orders.for_user("u3", limit=10) == []
    assert await router.receive("anyone", [pair.id], count=10, block_seconds=0) == []
    assert await router.claim("anyone", pair.id) == []  # answered, so acknowledged
    await late.stop()
    await router.close()


async def test_a_command_read_but_never_served_is_claimed_after_the_lease() -> None:
    """A command delivered to a consumer that never answers it (a previous owner that had
    lost the pair without knowing yet) is served by the owner once idle for a lease."""
    storage, router = MemoryStorage(), MemoryOrderRouter()
    pair = await make_market(storage, USERS)
    api = trading(storage, router)
    lossy = DyingRouter(router)
    a = host(storage, lossy, "engine-a")
    a.start()
    await owner_of([a], pair)
    lossy.lose_next = True
    started = time.monotonic()
    result = await api.submit(
        actor("u0"),
        SubmitOrder(pair="WETH-USDC", side="BUY", type="LIMIT", price="1990.00", quantity="0.5"),
    )
    waited = time.monotonic() - started
    assert LEASE <= waited <= LEASE + LEASE / 5 + 1.0
    async with storage.unit_of_work(read_only=True) as uow:
        assert [o.id for o in await uow.orders.for_user("u0", limit=10)] == [result.order.id]
    placed = await place(api, random.Random(5), 5)  # and the pair goes on
    assert placed
    await check_books(storage, pair, USERS, a._owned[pair.id].writer)
    await a.stop()
    await router.close()


async def add_pairs(storage: Storage, pair: Pair, count: int) -> list[Pair]:
    """More pairs quoting in the same tokens (another symbol each)."""
    added = [attrs.evolve(pair, id=new_id(), symbol=f"X{n}-USDC") for n in range(count)]
    async with storage.unit_of_work() as uow:
        for one in added:
            await uow.pairs.add(one)
        await uow.commit()
    return added


async def test_pairs_are_spread_over_the_engines_and_move_when_one_dies() -> None:
    storage, router = MemoryStorage(), MemoryOrderRouter()
    first = await make_market(storage, USERS)
    pairs = [first, *await add_pairs(storage, first, 2)]
    api = trading(storage, router)
    a = host(storage, router, "engine-a")
    a.start()
    for pair in pairs:
        assert await owner_of([a], pair) is a  # alone, it takes them all
    b, c = host(storage, router, "engine-b"), host(storage, router, "engine-c")
    b.start()
    c.start()

    async def spread(hosts: list[EngineHost], counts: list[int], within: float) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if sorted(len(h.owned) for h in hosts) == counts:
                return
            await asyncio.sleep(0.05)
        raise AssertionError([h.owned for h in hosts])

    await spread([a, b, c], [1, 1, 1], within=10 * LEASE)  # each owns one
    for pair in pairs:  # and each book answers
        await owner_of([a, b, c], pair)
    placed = await place(api, random.Random(8), 5)
    assert placed
    dead = next(h for h in (a, b, c) if first.id in h.owned)
    await kill(dead)
    alive = [h for h in (a, b, c) if h is not dead]
    await spread(alive, [1, 2], within=10 * LEASE)  # the dead one's pair moved
    assert await owner_of(alive, first) in alive
    placed += await place(api, random.Random(9), 5)
    async with storage.unit_of_work(read_only=True) as uow:
        for order_id in placed:
            assert await uow.orders.get(order_id) is not None
    owner = await owner_of(alive, first)
    await check_books(storage, first, USERS, owner._owned[first.id].writer)
    for one in alive:
        await one.stop()
    await router.close()
