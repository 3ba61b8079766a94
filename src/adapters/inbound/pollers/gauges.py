"""Gauges sampled from shared state every few seconds: markets per status and the age of the
oldest market still ``activating``, the job queue's depth, the database pool's use.

Every process that serves ``/metrics`` samples; in multiprocess mode the gauges keep the
most recent sample (markets, queue) or add up over live processes (the pool, per process).
A failed sample (storage or broker down) is one log line; the next one tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from core.markets.model import MarketStatus
from core.ports.clock import Clock
from core.ports.jobs import JobQueue
from core.ports.metrics import Metrics
from core.ports.storage import MarketFilter, Storage

log = logging.getLogger(__name__)

PoolUsage = Callable[[], tuple[int, int] | None]  # (in use, size), None when not pooled
PAGE = 500


class GaugeSampler:
    def __init__(
        self,
        storage: Storage,
        jobs: JobQueue,
        metrics: Metrics,
        clock: Clock,
        *,
        interval_seconds: float,
        queue_name: str,
        pool_usage: PoolUsage | None = None,
    ) -> None:
        self._storage = storage
        self._jobs = jobs
        self._metrics = metrics
        self._clock = clock
        self._interval = interval_seconds
        self._queue_name = queue_name
        self._pool_usage = pool_usage
        self._task: asyncio.Task[None] | None = None

    async def sample(self) -> None:
        await self.sample_markets()
        depth = await self._jobs.depth()
        if depth is not None:
            self._metrics.queue_depth(self._queue_name, depth)
        usage = self._pool_usage() if self._pool_usage is not None else None
        if usage is not None:
            self._metrics.db_pool(in_use=usage[0], size=usage[1])

    async def sample_markets(self) -> None:
        """Markets per status; the oldest ``activating`` one by its last change (each
        deploy-token attempt records itself, so a market retrying is not stuck)."""
        counts = {status.value: 0 for status in MarketStatus}
        oldest = None
        async with self._storage.unit_of_work(read_only=True) as uow:
            for status in MarketStatus:
                before: str | None = None
                while True:
                    page = await uow.markets.list(
                        MarketFilter(status=status), limit=PAGE, before_id=before
                    )
                    counts[status.value] += len(page)
                    if status is MarketStatus.ACTIVATING:
                        for market in page:
                            if oldest is None or market.updated_at < oldest:
                                oldest = market.updated_at
                    if len(page) < PAGE:
                        break
                    before = page[-1].id
        self._metrics.markets_by_status(counts)
        age = 0.0 if oldest is None else (self._clock.now() - oldest).total_seconds()
        self._metrics.oldest_activating(age)

    def start(self) -> None:
        if self._interval > 0 and self._task is None:
            self._task = asyncio.create_task(self._run(), name="metrics-gauges")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                await self.sample()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("metrics gauges: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(self._interval)
