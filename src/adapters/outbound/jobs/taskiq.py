"""Jobs on taskiq. The embedded profile uses taskiq's InMemoryBroker inside the API process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import cattrs
from taskiq import AsyncBroker, InMemoryBroker

from core.ports.jobs import Job, JobHandler, JobQueue

log = logging.getLogger(__name__)


class TaskiqJobQueue(JobQueue):
    """Each job type becomes a taskiq task named after the job (``deploy-token``)."""

    def __init__(self, broker: AsyncBroker | None = None) -> None:
        self.broker = broker or InMemoryBroker()
        self._types: dict[str, type[Job]] = {}
        self._delayed: set[asyncio.Task[None]] = set()
        self._converter = cattrs.Converter()
        self._started = False

    @property
    def durable(self) -> bool:
        return not isinstance(self.broker, InMemoryBroker)

    def register(self, job_type: type[Job], handler: JobHandler) -> None:
        self._types[job_type.name] = job_type
        converter = self._converter

        async def run(payload: dict[str, Any]) -> None:
            await handler(converter.structure(payload, job_type))

        run.__name__ = job_type.name.replace("-", "_")
        self.broker.register_task(run, task_name=job_type.name)

    async def start(self) -> None:
        if not self._started:
            await self.broker.startup()
            self._started = True

    async def stop(self) -> None:
        for task in self._delayed:
            task.cancel()
        for task in list(self._delayed):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._started:
            if isinstance(self.broker, InMemoryBroker):
                await self.broker.wait_all()
            await self.broker.shutdown()
            self._started = False

    async def enqueue(self, job: Job, *, delay_seconds: float = 0.0) -> None:
        task = self.broker.find_task(job.name)
        if task is None:
            raise LookupError(f"no task registered for job {job.name!r}")
        payload = self._converter.unstructure(job)
        if delay_seconds <= 0:
            await task.kiq(payload)
            return

        async def later() -> None:
            await asyncio.sleep(delay_seconds)
            await task.kiq(payload)

        timer = asyncio.create_task(later(), name=f"delayed-{job.name}")
        self._delayed.add(timer)
        timer.add_done_callback(self._delayed.discard)

    async def join(self, timeout: float) -> None:
        def busy() -> list[asyncio.Task[Any]]:
            tasks: list[asyncio.Task[Any]] = list(self._delayed)
            if isinstance(self.broker, InMemoryBroker):
                tasks.extend(self.broker._running_tasks)
            return [t for t in tasks if not t.done()]

        async def drain() -> None:
            # Done callbacks run on the next loop turn, so always yield before re-checking.
            while pending := busy():
                await asyncio.wait(pending)
                await asyncio.sleep(0)

        await asyncio.wait_for(drain(), timeout=timeout)
