"""SQLite units of work on the event loop's thread (``sql/loop_thread.py``): what the
storage contract cannot see. Another process holding the write lock delays a writer without
blocking the loop, and past the busy timeout the unit fails with 503; a transaction begun
again after a commit in the same unit is a real transaction; the WAL is checkpointed off the
loop and the checkpointer stops with the storage."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.outbound.storage.sql import SqlStorage, loop_thread
from adapters.outbound.storage.sql import storage as storage_module
from adapters.outbound.storage.sql.migrate import upgrade_async
from core.shared.errors import ServiceUnavailable
from tests.contract.storage_suite import make_asset, make_market


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[tuple[SqlStorage, Path]]:
    path = tmp_path / "rwa.db"
    url = f"sqlite+aiosqlite:///{path}"
    await upgrade_async(url)
    storage = SqlStorage(url)
    yield storage, path
    await storage.close()


def other_process_lock(path: Path) -> sqlite3.Connection:
    """What another process holding the write lock looks like to this one."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    return other


async def test_a_writer_waits_for_another_process_without_blocking_the_loop(
    db: tuple[SqlStorage, Path],
) -> None:
    storage, path = db
    other = other_process_lock(path)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    async def release_later() -> None:
        await asyncio.sleep(0.3)
        other.execute("COMMIT")

    ticker = asyncio.create_task(tick())
    releaser = asyncio.create_task(release_later())
    market = make_market()
    started = time.monotonic()
    try:
        async with storage.unit_of_work() as uow:
            waited = time.monotonic() - started
            await uow.markets.add(market, make_asset(market))
            await uow.commit()
    finally:
        ticker.cancel()
        await releaser
        other.close()
    assert waited >= 0.29  # it did wait for the lock...
    assert ticks >= 20  # ...while the loop went on (a blocked loop would tick about once)
    async with storage.unit_of_work(read_only=True) as uow:
        assert await uow.markets.get(market.id) == market


async def test_past_the_busy_timeout_the_unit_is_503_and_holds_nothing(
    db: tuple[SqlStorage, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    storage, path = db
    monkeypatch.setattr(storage_module, "SQLITE_BUSY_TIMEOUT_MS", 200)
    other = other_process_lock(path)
    market = make_market()
    try:
        with pytest.raises(ServiceUnavailable, match="busy"):
            async with storage.unit_of_work() as uow:
                await uow.markets.add(market, make_asset(market))
    finally:
        other.execute("ROLLBACK")
        other.close()
    async with storage.unit_of_work() as uow:  # the gate and the connection were released
        await uow.markets.add(market, make_asset(market))
        await uow.commit()


async def test_writes_after_a_commit_in_the_same_unit_are_a_transaction_again(
    db: tuple[SqlStorage, Path],
) -> None:
    storage, path = db
    first, second = make_market(), make_market()
    async with storage.unit_of_work() as uow:
        await uow.markets.add(first, make_asset(first))
        await uow.commit()
        await uow.markets.add(second, make_asset(second))
        # the second insert is in a transaction that holds the write lock
        probe = sqlite3.connect(path, isolation_level=None, timeout=0)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                probe.execute("BEGIN IMMEDIATE")
        finally:
            probe.close()
    async with storage.unit_of_work(read_only=True) as uow:
        assert await uow.markets.get(first.id) == first
        assert await uow.markets.get(second.id) is None  # never committed


async def test_the_wal_is_checkpointed_off_the_loop_and_the_checkpointer_stops(
    db: tuple[SqlStorage, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    storage, path = db
    monkeypatch.setattr(loop_thread, "CHECKPOINT_EVERY_S", 0.02)
    size_before = path.stat().st_size
    for _ in range(30):
        market = make_market()
        async with storage.unit_of_work() as uow:
            await uow.markets.add(market, make_asset(market, description="x" * 4000))
            await uow.commit()
    threads = [t for t in threading.enumerate() if t.name == "sqlite-checkpointer"]
    assert threads, "the first write starts the checkpointer"
    # the writers' own automatic checkpoint is off and this test checkpoints nothing: the
    # database file only grows by ~120 kB of pages if the checkpointer copied the WAL into it
    for _ in range(100):
        if path.stat().st_size >= size_before + 100_000:
            break
        await asyncio.sleep(0.05)
    assert path.stat().st_size >= size_before + 100_000
    await storage.close()
    assert all(not t.is_alive() for t in threads)
