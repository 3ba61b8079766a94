"""What the service reports through the metrics port, asserted on the memory adapter: the
matching engine's latency and trade outcomes (a failed commit counts its matched trades as
failures), deploy-token attempts, jobs run and queued, cache hits and misses."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import attrs
import pytest

from adapters.outbound.cache.memory import MemoryCache
from adapters.outbound.cache.metered import MeteredCache
from adapters.outbound.clock.system import SystemClock
from adapters.outbound.jobs.memory import MemoryJobQueue
from adapters.outbound.jobs.taskiq import TaskiqJobQueue
from adapters.outbound.metrics.memory import MemoryMetrics
from adapters.outbound.permissions.memory import MemoryPermissions
from adapters.outbound.storage.memory import MemoryStorage
from core.ports.jobs import Job, JobQueue
from core.ports.storage import Storage, UnitOfWork
from core.shared.authorization import Authorizer
from core.shared.errors import ServiceUnavailable
from core.trading.service import SubmitOrder, TradingService
from core.trading.writer import BatchFailed
from tests.unit.test_trading_writer import actor, make_market


class _FailingUnit(UnitOfWork):
    def __init__(self, owner: FailNextCommit, inner: UnitOfWork) -> None:
        self._owner = owner
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def _begin(self) -> None:
        await self._inner.__aenter__()

    async def _end(self) -> None:
        await self._inner.__aexit__(None, None, None)

    async def commit(self) -> None:
        if self._owner.fail_next:
            self._owner.fail_next = False
            raise ServiceUnavailable("injected: the disk is full")
        await self._inner.commit()


class FailNextCommit(Storage):
    """With ``fail_next`` set, the next commit fails and applies nothing."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.fail_next = False

    def unit_of_work(self, *, read_only: bool = False) -> UnitOfWork:
        return _FailingUnit(self, self.inner.unit_of_work(read_only=read_only))

    async def ping(self) -> None:
        await self.inner.ping()

    async def close(self) -> None:
        await self.inner.close()


def limit(side: str, price: str, quantity: str) -> SubmitOrder:
    return SubmitOrder(pair="WETH-USDC", side=side, type="LIMIT", price=price, quantity=quantity)


async def test_matching_latency_and_trade_outcomes() -> None:
    storage = FailNextCommit(MemoryStorage())
    pair = await make_market(storage, ["u0", "u1", "u2"])
    metrics = MemoryMetrics()
    trading = TradingService(
        storage, Authorizer(MemoryPermissions()), SystemClock(), metrics=metrics
    )
    try:
        await trading.submit(actor("u0"), limit("SELL", "2000.00", "1"))
        await trading.submit(actor("u1"), limit("BUY", "2000.00", "0.4"))
        assert metrics.trades[(pair.id, True)] == 1
        assert len(metrics.matching[pair.id]) == 2  # one per command through the engine
        assert all(0 <= s < 1 for s in metrics.matching[pair.id])

        storage.fail_next = True  # the next batch matches, then its commit fails
        with pytest.raises(BatchFailed):
            await trading.submit(actor("u2"), limit("BUY", "2000.00", "0.2"))
        assert metrics.trades[(pair.id, False)] == 1
        assert metrics.trades[(pair.id, True)] == 1

        await trading.submit(actor("u2"), limit("BUY", "2000.00", "0.2"))
        assert metrics.trades[(pair.id, True)] == 2
    finally:
        await trading.stop()


@attrs.frozen
class Ping(Job):
    name: ClassVar[str] = "ping"
    fail: bool = False


@pytest.mark.parametrize("kind", ["memory", "taskiq"])
async def test_jobs_are_counted_by_outcome_and_their_depth_is_known(kind: str) -> None:
    metrics = MemoryMetrics()
    queue: JobQueue = (
        MemoryJobQueue(metrics=metrics) if kind == "memory" else TaskiqJobQueue(metrics=metrics)
    )
    gate = asyncio.Event()

    async def handler(job: Ping) -> None:
        await gate.wait()
        if job.fail:
            raise RuntimeError("refused")

    queue.register(Ping, handler)
    await queue.start()
    try:
        await queue.enqueue(Ping())
        await queue.enqueue(Ping(fail=True))
        await queue.enqueue(Ping(), delay_seconds=0.05)
        await asyncio.sleep(0)
        assert await queue.depth() == 3
        gate.set()
        await asyncio.sleep(0.1)
        await queue.join(timeout=5)
        assert await queue.depth() == 0
    finally:
        await queue.stop()
    assert metrics.enqueued["ping"] == 3
    assert metrics.jobs[("ping", True)] == 2
    assert metrics.jobs[("ping", False)] == 1
    assert len(metrics.job_seconds["ping"]) == 3


async def test_cache_hits_and_misses() -> None:
    metrics = MemoryMetrics()
    cache = MeteredCache(MemoryCache(), metrics, name="markets")
    assert await cache.get("a") is None
    await cache.set("a", "1")
    assert await cache.get_text("a") == "1"
    assert await cache.get("a") == b"1"
    assert await cache.delete("a")
    assert metrics.cache == {("markets", True): 2, ("markets", False): 1}
