"""The outbox relay over every storage adapter (memory, SQLite, Postgres) and bus (memory,
Redis): order per stream, no transaction open while publishing, reactions retried without
republishing, idempotence by (stream, seq), one leader across processes, a quiet final flush."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from structlog.contextvars import bound_contextvars

import logs
from adapters.outbound.events.memory import MemoryEventBus
from adapters.outbound.events.redis import RedisEventBus
from adapters.outbound.storage.memory import MemoryStorage
from adapters.outbound.storage.sql import SqlStorage
from adapters.outbound.storage.sql.migrate import upgrade_async
from core.ports.event_bus import EventBus, StreamGap, Subscription
from core.ports.storage import Storage, UnitOfWork
from core.shared.errors import ServiceUnavailable
from core.shared.events import DomainEvent
from core.shared.ids import new_id
from core.shared.outbox_relay import OutboxRelay
from tests.contract.storage_suite import make_event
from tests.contract.test_storage import (  # noqa: F401 - fixtures
    migrated_postgres_template,
    postgres_storage_url,
)

StorageFactory = Callable[[], Storage]


class _ProbedUnit(UnitOfWork):
    def __init__(self, inner: UnitOfWork, probe: ProbedStorage, read_only: bool) -> None:
        self._inner = inner
        self._probe = probe
        self._read_only = read_only

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def _begin(self) -> None:
        await self._inner.__aenter__()
        self._probe.open += 1

    async def _end(self) -> None:
        self._probe.open -= 1
        await self._inner.__aexit__(None, None, None)

    async def commit(self) -> None:
        if self._probe.fail_commits:
            self._probe.fail_commits -= 1
            raise ServiceUnavailable("the database is busy; try again")
        await self._inner.commit()


class ProbedStorage(Storage):
    """Counts the units of work open right now, and can make the next commits fail."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.open = 0
        self.fail_commits = 0
        self.fail_begins = False

    def unit_of_work(self, *, read_only: bool = False) -> UnitOfWork:
        if self.fail_begins:
            raise ServiceUnavailable("the database is busy; try again")
        inner = self.inner.unit_of_work(read_only=read_only)
        return _ProbedUnit(inner, self, read_only)

    async def ping(self) -> None:
        await self.inner.ping()


class RecordingBus(MemoryEventBus):
    """A memory bus that remembers every publish and can check something at each one."""

    def __init__(self, check: Callable[[DomainEvent], None] | None = None) -> None:
        super().__init__()
        self.sent: list[DomainEvent] = []
        self._check = check

    async def publish(self, event: DomainEvent) -> None:
        if self._check is not None:
            self._check(event)
        self.sent.append(event)
        await super().publish(event)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def storages(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StorageFactory]:
    """A factory of storages over ONE store: each call is another process's storage."""
    made: list[Storage] = []
    if request.param == "memory":
        shared = MemoryStorage()

        def factory() -> Storage:
            return shared
    else:
        if request.param == "sqlite":
            url = f"sqlite+aiosqlite:///{tmp_path / 'relay.db'}"
            await upgrade_async(url)
        else:
            url = request.getfixturevalue("postgres_storage_url")

        def factory() -> Storage:
            made.append(SqlStorage(url))
            return made[-1]

    yield factory
    for storage in made:
        await storage.close()


async def append(storage: Storage, *events: DomainEvent) -> list[DomainEvent]:
    async with storage.unit_of_work() as uow:
        stored = await uow.events.append(events)
        await uow.commit()
    return stored


async def pending(storage: Storage) -> list[tuple[str, int | None, bool, bool]]:
    async with storage.unit_of_work(read_only=True) as uow:
        messages = await uow.outbox.pending(1000)
    return [(m.event.stream, m.event.seq, m.published, m.reacted) for m in messages]


async def received(sub: Subscription, count: int) -> list[DomainEvent]:
    got = []
    for _ in range(count):
        item = await sub.get(timeout=5)
        assert not isinstance(item, StreamGap)
        got.append(item)
    return got


async def test_each_stream_goes_out_in_order_and_is_marked(storages: StorageFactory) -> None:
    storage = storages()
    bus = MemoryEventBus()
    sub = await bus.subscribe()
    a, b = new_id(), new_id()
    stored = await append(storage, make_event(a, "market.e1"), make_event(b, "market.e1"))
    stored += await append(storage, make_event(a, "market.e2"), make_event(a, "market.e3"))
    relay = OutboxRelay(storage, bus)
    assert await relay.pump() == 4
    assert await received(sub, 4) == stored
    assert [(e.stream, e.seq) for e in stored] == [
        (f"market:{a}", 1),
        (f"market:{b}", 1),
        (f"market:{a}", 2),
        (f"market:{a}", 3),
    ]
    assert await pending(storage) == []
    assert await relay.pump() == 0


async def test_no_transaction_is_open_while_publishing_or_reacting(
    storages: StorageFactory,
) -> None:
    probe = ProbedStorage(storages())
    writer = storages()  # another process, writing while the relay publishes

    def nothing_open(_: DomainEvent) -> None:
        assert probe.open == 0, "the relay holds a unit of work while publishing"

    async def write_meanwhile(event: DomainEvent) -> None:
        nothing_open(event)
        # on SQLite a held BEGIN IMMEDIATE would make this wait for the busy timeout
        await asyncio.wait_for(append(writer, make_event(new_id(), "market.side")), 3.0)

    bus = RecordingBus(check=nothing_open)
    relay = OutboxRelay(probe, bus)
    relay.on("market.e1", write_meanwhile)
    await append(probe, *(make_event(new_id(), "market.e1") for _ in range(3)))
    assert await relay.pump() == 6  # its three, and the three written meanwhile
    assert [e.type for e in bus.sent].count("market.side") == 3


async def test_a_failed_reaction_is_retried_without_republishing(
    storages: StorageFactory,
) -> None:
    storage = storages()
    bus = RecordingBus()
    calls: list[tuple[str, int | None]] = []
    failures = [RuntimeError("the job queue is down")]

    async def react(event: DomainEvent) -> None:
        calls.append((event.stream, event.seq))
        if failures:
            raise failures.pop()

    relay = OutboxRelay(storage, bus, retry_delay=0.01)
    relay.on("market.activation_started", react)
    a, b = new_id(), new_id()
    await append(
        storage,
        make_event(a, "market.activation_started"),
        make_event(a, "market.activated"),
        make_event(b, "market.registered"),
    )
    assert await relay.pump() == 1  # b's; a's first is held back with its stream
    assert [(e.stream, e.seq) for e in bus.sent] == [(f"market:{a}", 1), (f"market:{b}", 1)]
    assert await pending(storage) == [
        (f"market:{a}", 1, True, False),
        (f"market:{a}", 2, False, False),
    ]
    assert relay.failures == 1

    assert await relay.pump() == 2
    sent = Counter((e.stream, e.seq) for e in bus.sent)
    assert sent == {(f"market:{a}", 1): 1, (f"market:{a}", 2): 1, (f"market:{b}", 1): 1}
    assert calls == [(f"market:{a}", 1), (f"market:{a}", 1)]  # failed, then retried once
    assert await pending(storage) == []


async def test_a_lost_mark_neither_republishes_nor_reacts_again(
    storages: StorageFactory,
) -> None:
    probe = ProbedStorage(storages())
    bus = RecordingBus()
    reactions: list[int | None] = []

    async def react(event: DomainEvent) -> None:
        reactions.append(event.seq)

    relay = OutboxRelay(probe, bus)
    relay.on("market.e", react)
    await append(probe, *(make_event(new_id(), "market.e") for _ in range(3)))
    assert await relay._hold_lease()  # the lease is taken before the mark is made to fail
    probe.fail_commits = 1
    with pytest.raises(ServiceUnavailable):
        await relay.pump()
    assert len(await pending(probe)) == 3  # nothing marked
    assert await relay.pump() == 3
    assert len(bus.sent) == 3 and len(reactions) == 3  # all once
    assert await pending(probe) == []


async def _run_side_by_side(storages: StorageFactory, buses: list[EventBus]) -> None:
    """Two relays (two processes) and four writers; a subscriber sees every stream in
    order, each event once; then the leader stops and the other carries on."""
    watcher = await buses[0].subscribe("market.")
    relays = [
        OutboxRelay(storages(), bus, interval=0.02, lease_seconds=1.0, holder=f"p{n}")
        for n, bus in enumerate(buses)
    ]
    for relay in relays:
        relay.start()
    markets = [new_id() for _ in range(4)]

    async def writer(market_id: str) -> None:
        storage = storages()
        for n in range(15):
            await append(storage, make_event(market_id, f"market.e{n}"))
            await asyncio.sleep(0.005)

    await asyncio.gather(*(writer(m) for m in markets))
    got = await received(watcher, 60)
    for market_id in markets:
        seqs = [e.seq for e in got if e.aggregate_id == market_id]
        assert seqs == list(range(1, 16)), market_id
    leaders = [relay for relay in relays if relay.is_leader]
    assert len(leaders) == 1
    await leaders[0].stop()  # gives the lease up
    await append(storages(), make_event(markets[0], "market.after"))
    after = await received(watcher, 1)
    assert [(e.type, e.seq) for e in after] == [("market.after", 16)]
    for relay in relays:
        await relay.stop()
    assert await pending(storages()) == []


async def test_two_relays_keep_each_stream_in_order(storages: StorageFactory) -> None:
    bus = MemoryEventBus()
    await _run_side_by_side(storages, [bus, bus])


async def test_two_relays_keep_each_stream_in_order_over_redis(
    storages: StorageFactory, clean_redis_url: str
) -> None:
    buses = [RedisEventBus(clean_redis_url), RedisEventBus(clean_redis_url)]
    try:
        await _run_side_by_side(storages, list(buses))
    finally:
        for bus in buses:
            await bus.close()


async def test_a_dead_leaders_lease_expires(storages: StorageFactory) -> None:
    bus = RecordingBus()
    dead = OutboxRelay(storages(), bus, lease_seconds=0.5, holder="dead")
    heir = OutboxRelay(storages(), bus, lease_seconds=0.5, holder="heir")
    assert await dead.pump() == 0 and dead.is_leader  # then it is killed: no release
    await append(storages(), make_event(new_id(), "market.e"))
    assert await heir.pump() == 0  # the lease is still the dead one's
    await asyncio.sleep(0.6)
    assert await heir.pump() == 1
    assert heir.is_leader and len(bus.sent) == 1


async def test_a_failed_final_flush_logs_one_line(
    storages: StorageFactory, caplog: pytest.LogCaptureFixture
) -> None:
    probe = ProbedStorage(storages())
    relay = OutboxRelay(probe, MemoryEventBus())
    relay.start()
    await asyncio.sleep(0.05)
    probe.fail_begins = True  # the database is locked from now on
    await append(probe.inner, make_event(new_id(), "market.e"))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="core.shared.outbox_relay"):
        await relay.stop()
    flush = [r for r in caplog.records if "final flush failed" in r.getMessage()]
    assert len(flush) == 1
    assert flush[0].exc_info is None and "\n" not in flush[0].getMessage()
    assert "ServiceUnavailable" in flush[0].getMessage()
    probe.fail_begins = False
    assert len(await pending(probe)) == 1  # left for the next start


async def test_reactions_run_with_the_correlation_id_of_the_writer(
    storages: StorageFactory,
) -> None:
    storage = storages()
    seen: list[str | None] = []

    async def react(event: DomainEvent) -> None:
        seen.append(logs.correlation_id())

    relay = OutboxRelay(storage, RecordingBus(), reaction_context=logs.correlated)
    relay.on("market.e", react)
    with bound_contextvars(request_id="req-approve-1"):
        await append(storage, make_event(new_id(), "market.e"))
    await append(storage, make_event(new_id(), "market.e"))
    assert await relay.pump() == 2
    assert seen == ["req-approve-1", None]
