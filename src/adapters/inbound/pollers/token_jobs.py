"""Scheduled token jobs: ``sync-blockchain`` every ``RWA_DEPOSIT_SYNC_SECONDS`` and
``reconcile`` every ``RWA_RECONCILE_SECONDS``, the ``verify-compliance`` sweep of expiries every
``RWA_COMPLIANCE_SWEEP_SECONDS``, ``fetch-external-prices`` every ``RWA_PRICE_FETCH_SECONDS`` and
``update-token-metadata`` every ``RWA_VALUATION_FETCH_SECONDS`` (0 turns any of them off).

With a ``lease`` (a ``StorageLease`` in the shared database) only the process holding it
enqueues, so several API processes schedule each run once. The jobs themselves are safe to
run twice (deposits are recorded once per (tx hash, log index); a reconciliation only reads
and reports; a valuation already recorded is refused as ``repeated``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from core.marketdata.prices import FetchExternalPricesJob
from core.marketdata.valuation_fetch import UpdateTokenMetadataJob
from core.ports.jobs import Job, JobQueue
from core.shared.lease import StorageLease
from core.tokens.compliance_chain import VerifyComplianceJob
from core.tokens.jobs import ReconcileJob, SyncBlockchainJob

log = logging.getLogger(__name__)


class TokenJobScheduler:
    def __init__(
        self,
        jobs: JobQueue,
        *,
        sync_seconds: float,
        reconcile_seconds: float,
        compliance_seconds: float = 0.0,
        prices_seconds: float = 0.0,
        valuations_seconds: float = 0.0,
        lease: StorageLease | None = None,
    ) -> None:
        self._jobs = jobs
        self._every: list[tuple[float, Job]] = [
            (seconds, job)
            for seconds, job in (
                (sync_seconds, SyncBlockchainJob()),
                (reconcile_seconds, ReconcileJob()),
                (compliance_seconds, VerifyComplianceJob()),
                (prices_seconds, FetchExternalPricesJob()),
                (valuations_seconds, UpdateTokenMetadataJob()),
            )
            if seconds > 0
        ]
        self._lease = lease
        self._due: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    @property
    def enabled(self) -> bool:
        return bool(self._every)

    async def tick(self, now: float) -> list[str]:
        """Enqueue what is due at ``now`` (monotonic seconds); the names enqueued."""
        if self._lease is not None and not await self._lease.acquire():
            return []
        enqueued = []
        for seconds, job in self._every:
            if now >= self._due.get(job.name, 0.0):
                await self._jobs.enqueue(job)
                self._due[job.name] = now + seconds
                enqueued.append(job.name)
        return enqueued

    def start(self) -> None:
        if self.enabled and self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._run(), name="token-job-scheduler")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._stopping.set()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        if self._lease is not None:
            with contextlib.suppress(Exception):
                await self._lease.release()

    @property
    def step_seconds(self) -> float:
        """How often the loop ticks: the shortest interval, and with a lease at least three
        times per lease term, so that its holder renews it before it lapses (a daily job
        alone would otherwise let another process take the lease and enqueue it again)."""
        step = min(seconds for seconds, _ in self._every)
        if self._lease is not None:
            step = min(step, self._lease.ttl_seconds / 3)
        return step

    async def _run(self) -> None:
        step = self.step_seconds
        while not self._stopping.is_set():
            try:
                await self.tick(time.monotonic())
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # storage or broker down: try again next step
                log.warning("token job scheduler: %s: %s", type(exc).__name__, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=step)
