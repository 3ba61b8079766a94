"""In-process job queue on asyncio: a few worker tasks, delayed jobs via timers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from core.ports.jobs import Job, JobHandler, JobQueue
from core.ports.metrics import NO_METRICS, Metrics
from logs import correlation_id, job_context

log = logging.getLogger(__name__)


class MemoryJobQueue(JobQueue):
    def __init__(self, concurrency: int = 4, *, metrics: Metrics = NO_METRICS) -> None:
        self._metrics = metrics
        self._handlers: dict[str, JobHandler] = {}
        self._concurrency = concurrency
        # each job with the correlation id it was enqueued with (its metadata)
        self._queue: asyncio.Queue[tuple[Job, str | None]] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._timers: set[asyncio.TimerHandle] = set()
        self._outstanding = 0
        self._idle: asyncio.Event | None = None

    def register(self, job_type: type[Job], handler: JobHandler) -> None:
        self._handlers[job_type.name] = handler

    async def start(self) -> None:
        if self._workers:
            return
        self._queue = asyncio.Queue()
        self._idle = asyncio.Event()
        self._idle.set()
        self._workers = [
            asyncio.create_task(self._work(), name=f"memory-job-worker-{i}")
            for i in range(self._concurrency)
        ]

    async def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers = []

    async def enqueue(self, job: Job, *, delay_seconds: float = 0.0) -> None:
        if job.name not in self._handlers:
            raise LookupError(f"no handler registered for job {job.name!r}")
        if self._queue is None or self._idle is None:
            raise RuntimeError("the job queue is not started")
        self._outstanding += 1
        self._idle.clear()
        self._metrics.job_enqueued(job.name)
        entry = (job, correlation_id())
        if delay_seconds > 0:
            loop = asyncio.get_running_loop()
            holder: list[asyncio.TimerHandle] = []

            def fire() -> None:
                self._timers.discard(holder[0])
                assert self._queue is not None
                self._queue.put_nowait(entry)

            holder.append(loop.call_later(delay_seconds, fire))
            self._timers.add(holder[0])
        else:
            self._queue.put_nowait(entry)

    async def depth(self) -> int:
        return self._outstanding

    async def join(self, timeout: float) -> None:
        if self._idle is not None:
            await asyncio.wait_for(self._idle.wait(), timeout=timeout)

    async def _work(self) -> None:
        assert self._queue is not None and self._idle is not None
        while True:
            job, correlation = await self._queue.get()
            started, ok = time.perf_counter(), False
            with job_context(job.name, correlation):
                try:
                    await self._handlers[job.name](job)
                    ok = True
                except Exception:
                    log.exception("job %s failed", job)
                finally:
                    seconds = time.perf_counter() - started
                    self._metrics.job_processed(job.name, ok=ok, seconds=seconds)
                    log.info(
                        "job %s ran in %.3f s (%s)", job.name, seconds, "ok" if ok else "failed"
                    )
                self._outstanding -= 1
                if self._outstanding == 0:
                    self._idle.set()
