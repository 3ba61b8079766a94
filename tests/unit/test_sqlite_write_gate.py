"""The queue of a process's SQLite writers: one at a time, handed over at once, urgent
writers (``URGENT_WRITES``, a pair's single writer) first, each kind in arrival order; a
writer that gives up (timeout, cancellation) never keeps the gate; on a real SQLite file a
unit that fails or times out releases it and the others go on."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from adapters.outbound.storage.sql import SqlStorage
from adapters.outbound.storage.sql import storage as sql_storage
from adapters.outbound.storage.sql.migrate import upgrade_async
from adapters.outbound.storage.sql.write_gate import WriteGate
from core.ledger.model import AccountRef
from core.ledger.operations import mint
from core.ports.storage import URGENT_WRITES
from core.shared.errors import ServiceUnavailable
from tests.unit.test_trading_writer import NOW


async def test_urgent_writers_first_then_arrival_order() -> None:
    gate = WriteGate()
    await gate.acquire(urgent=False, timeout=1)
    order: list[str] = []

    async def writer(name: str, urgent: bool) -> None:
        await gate.acquire(urgent=urgent, timeout=5)
        order.append(name)
        await asyncio.sleep(0)
        gate.release()

    tasks = []
    for name, urgent in (("n1", False), ("u1", True), ("n2", False), ("u2", True)):
        tasks.append(asyncio.create_task(writer(name, urgent)))
        await asyncio.sleep(0)  # each queues before the next
    assert gate.waiting == 4
    gate.release()
    await asyncio.gather(*tasks)
    assert order == ["u1", "u2", "n1", "n2"]
    assert not gate.held and gate.waiting == 0


async def test_a_writer_that_gives_up_never_keeps_the_gate() -> None:
    gate = WriteGate()
    await gate.acquire(urgent=False, timeout=1)
    with pytest.raises(TimeoutError):
        await gate.acquire(urgent=True, timeout=0.01)
    cancelled = asyncio.create_task(gate.acquire(urgent=False, timeout=5))
    waiting = asyncio.create_task(gate.acquire(urgent=False, timeout=5))
    await asyncio.sleep(0)
    cancelled.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await cancelled
    gate.release()  # the cancelled and the timed-out waiters are skipped
    await asyncio.wait_for(waiting, 1)
    assert gate.held and gate.waiting == 0
    # handed over in the very step its waiter is cancelled: passed on, not lost
    late = asyncio.create_task(gate.acquire(urgent=False, timeout=5))
    after = asyncio.create_task(gate.acquire(urgent=False, timeout=5))
    await asyncio.sleep(0)
    gate.release()  # late's turn is granted ...
    late.cancel()  # ... and it is cancelled before it runs
    with contextlib.suppress(asyncio.CancelledError):
        await late
    await asyncio.wait_for(after, 1)
    gate.release()
    assert not gate.held


@pytest.fixture
async def sqlite(tmp_path: Path) -> SqlStorage:
    url = f"sqlite+aiosqlite:///{tmp_path / 'gate.db'}"
    await upgrade_async(url)
    return SqlStorage(url)


async def test_sqlite_writers_queue_urgent_first_and_a_failure_releases(
    sqlite: SqlStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered: list[str] = []
    hold = asyncio.Event()

    async def unit(name: str, *, urgent: bool = False, fail: bool = False) -> None:
        URGENT_WRITES.set(urgent)
        async with sqlite.unit_of_work() as uow:
            entered.append(name)
            if name == "first":
                await hold.wait()
            account = AccountRef.user(name, "TOK")
            await uow.ledger.apply(mint(f"k-{name}", NOW, account, 1))
            if fail:
                raise RuntimeError("a bug in the unit")
            await uow.commit()

    try:
        first = asyncio.create_task(unit("first"))
        await asyncio.sleep(0.05)
        queued = [
            asyncio.create_task(unit("normal", fail=True)),
            asyncio.create_task(unit("later")),
            asyncio.create_task(unit("urgent", urgent=True)),
        ]
        await asyncio.sleep(0.05)
        assert entered == ["first"]  # the others wait on the gate, not in SQLite
        hold.set()
        results = await asyncio.gather(first, *queued, return_exceptions=True)
        assert entered == ["first", "urgent", "normal", "later"]
        assert isinstance(results[1], RuntimeError)
        async with sqlite.unit_of_work(read_only=True) as uow:
            held = {
                n: (await uow.ledger.balance(AccountRef.user(n, "TOK"))).available for n in entered
            }
        assert held == {"first": 1, "urgent": 1, "normal": 0, "later": 1}
        # one that waits longer than the busy timeout gets SQLite's answer: 503
        monkeypatch.setattr(sql_storage, "SQLITE_BUSY_TIMEOUT_MS", 50)
        hold.clear()
        blocker = asyncio.create_task(unit("first"))
        await asyncio.sleep(0.02)
        with pytest.raises(ServiceUnavailable):
            await unit("too-late")
        hold.set()
        await blocker
    finally:
        await sqlite.close()
