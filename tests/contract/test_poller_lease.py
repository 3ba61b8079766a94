"""One active permissions poller at a time: two pollers on one database, only the lease holder
polls; when it stops, the other takes over. SQLite (two engines on one file, as two
processes would have) and Postgres."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from adapters.inbound.pollers.permissions import PermissionEventPoller
from adapters.outbound.clock.system import SystemClock
from adapters.outbound.permissions.feed import MemoryPermissionEventFeed
from adapters.outbound.permissions.memory import MemoryPermissions
from adapters.outbound.storage.memory import MemoryStorage
from adapters.outbound.storage.sql import SqlStorage
from adapters.outbound.storage.sql.migrate import upgrade_async
from core.markets.permission_events import PermissionEventProcessor, PermissionFeedSync
from core.markets.use_cases import MarketUseCases
from core.ports.permission_feed import FeedPage, PermissionEventFeed
from core.ports.storage import Storage
from core.shared.authorization import Authorizer
from core.shared.lease import StorageLease

INTERVAL = 0.05
LEASE_NAME = "test.poller"


class CountingFeed(PermissionEventFeed):
    """A shared in-memory feed, counting this poller's fetches."""

    def __init__(self, shared: MemoryPermissionEventFeed) -> None:
        self.shared = shared
        self.fetches = 0

    async def fetch(self, after: str | None, limit: int) -> FeedPage:
        self.fetches += 1
        return await self.shared.fetch(after, limit)

    async def close(self) -> None:
        return None


def poller(storage: Storage, feed: CountingFeed, holder: str, ttl: float) -> PermissionEventPoller:
    clock = SystemClock()
    markets = MarketUseCases(storage, Authorizer(MemoryPermissions()), clock)
    sync = PermissionFeedSync(
        feed, PermissionEventProcessor(storage, markets, clock), storage, clock
    )
    lease = StorageLease(storage, clock, name=LEASE_NAME, holder=holder, ttl_seconds=ttl)
    return PermissionEventPoller(sync, interval_seconds=INTERVAL, lease=lease)


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def two_pollers_one_polls(make_storage: Callable[[], Awaitable[Storage]]) -> None:
    shared = MemoryPermissionEventFeed()
    stores = [await make_storage(), await make_storage()]
    feeds = [CountingFeed(shared), CountingFeed(shared)]
    pollers = [poller(stores[i], feeds[i], f"holder-{i}", ttl=2.0) for i in range(2)]
    try:
        for p in pollers:
            p.start()
        await eventually(lambda: sum(p.steps + p.standby_steps for p in pollers) >= 20)
        await asyncio.sleep(10 * INTERVAL)
        active = [i for i in range(2) if feeds[i].fetches > 0]
        assert len(active) == 1, [f.fetches for f in feeds]
        [first] = active
        other = 1 - first
        assert pollers[first].holding and not pollers[other].holding
        assert pollers[other].standby_steps >= 5 and feeds[other].fetches == 0
        # a clean stop releases the lease: the other poller takes over at its next step
        await pollers[first].stop()
        before = feeds[first].fetches
        await eventually(lambda: feeds[other].fetches >= 3)
        assert pollers[other].holding
        assert feeds[first].fetches == before
    finally:
        for p in pollers:
            await p.stop()
        for s in stores:
            await s.close()


async def a_dead_holder_loses_the_lease(make_storage: Callable[[], Awaitable[Storage]]) -> None:
    shared = MemoryPermissionEventFeed()
    stores = [await make_storage(), await make_storage()]
    feeds = [CountingFeed(shared), CountingFeed(shared)]
    dead = poller(stores[0], feeds[0], "dead", ttl=0.5)
    alive = poller(stores[1], feeds[1], "alive", ttl=0.5)
    try:
        assert await dead.hold_lease()  # then never renews it, as if killed
        alive.start()
        await asyncio.sleep(0.2)
        assert feeds[1].fetches == 0 and alive.standby_steps >= 1
        await eventually(lambda: feeds[1].fetches >= 1, timeout=5)
        assert not await dead.hold_lease()  # the lease moved on
    finally:
        await alive.stop()
        for s in stores:
            await s.close()


async def test_two_pollers_in_memory() -> None:
    storage = MemoryStorage()

    async def same() -> Storage:
        return storage

    await two_pollers_one_polls(same)


@pytest.fixture
async def sqlite_storage(tmp_path: Path) -> AsyncIterator[Callable[[], Awaitable[Storage]]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'leases.sqlite3'}"
    await upgrade_async(url)

    async def make() -> Storage:
        return SqlStorage(url)

    yield make


async def test_two_pollers_on_sqlite(sqlite_storage: Callable[[], Awaitable[Storage]]) -> None:
    await two_pollers_one_polls(sqlite_storage)


async def test_a_dead_poller_loses_the_lease_on_sqlite(
    sqlite_storage: Callable[[], Awaitable[Storage]],
) -> None:
    await a_dead_holder_loses_the_lease(sqlite_storage)


@pytest.fixture
async def postgres_storage(fresh_postgres_url: str) -> Callable[[], Awaitable[Storage]]:
    await upgrade_async(fresh_postgres_url)

    async def make() -> Storage:
        return SqlStorage(fresh_postgres_url)

    return make


@pytest.mark.postgres
async def test_two_pollers_on_postgres(postgres_storage: Callable[[], Awaitable[Storage]]) -> None:
    await two_pollers_one_polls(postgres_storage)


@pytest.mark.postgres
async def test_a_dead_poller_loses_the_lease_on_postgres(
    postgres_storage: Callable[[], Awaitable[Storage]],
) -> None:
    await a_dead_holder_loses_the_lease(postgres_storage)
