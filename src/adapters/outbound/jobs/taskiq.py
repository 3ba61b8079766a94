"""Jobs on taskiq.

- embedded profile: taskiq's ``InMemoryBroker`` inside the API process (not durable; delays
  are asyncio timers, and interrupted deployments are resumed from storage at start);
- production: ``RedisStreamJobBroker`` (taskiq-redis streams, see ``redis_stream.py``).
  The API process only produces; ``taskiq worker worker:broker`` processes consume. Delays
  go to a Redis sorted set and survive restarts. With ``consume_in_process=True`` (tests,
  or the embedded profile pointed at Redis) this process also runs a taskiq ``Receiver``.

Every job type becomes a taskiq task with an explicit ``task_name`` equal to the job's
``name`` (``deploy-token``); the payload is the job unstructured by cattrs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import cattrs
from taskiq import AsyncBroker, InMemoryBroker
from taskiq.receiver import Receiver

from adapters.outbound.jobs.redis_stream import DELAY_LABEL, RedisStreamJobBroker
from core.ports.jobs import Job, JobHandler, JobQueue
from core.ports.metrics import NO_METRICS, Metrics
from logs import correlation_id, job_context

log = logging.getLogger(__name__)
# the payload's metadata, beside the job's own fields: {"correlationId": ...}
META = "_meta"


async def cancel_until_done(task: asyncio.Task[Any], *, attempts: int = 100) -> None:
    """Cancel ``task`` and wait for it, cancelling again while it lives: on Python 3.11 an
    ``asyncio.wait_for`` inside the task (taskiq's, redis-py's) can swallow a cancellation
    that races with its own completion, and a single ``cancel()`` then waits forever."""
    for _ in range(attempts):
        if task.done():
            break
        task.cancel()
        await asyncio.wait({task}, timeout=0.1)
    else:
        log.error("a task ignored %d cancellations; left behind: %r", attempts, task)
        return
    with contextlib.suppress(asyncio.CancelledError, Exception):
        task.result()


class TaskiqJobQueue(JobQueue):
    """Each job type becomes a taskiq task named after the job (``deploy-token``)."""

    def __init__(
        self,
        broker: AsyncBroker | None = None,
        *,
        consume_in_process: bool = False,
        max_async_tasks: int = 16,
        stop_grace_seconds: float = 10.0,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self.broker = broker or InMemoryBroker()
        self._metrics = metrics
        self._types: dict[str, type[Job]] = {}
        self._delayed: set[asyncio.Task[None]] = set()
        self._converter = cattrs.Converter()
        self._started = False
        self._owns_broker_lifecycle = True
        self._consume = consume_in_process and not isinstance(self.broker, InMemoryBroker)
        self._max_async_tasks = max_async_tasks
        self._stop_grace = stop_grace_seconds
        self._receiver_task: asyncio.Task[None] | None = None
        self._finish: asyncio.Event | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._running: set[asyncio.Task[Any]] = set()  # handler runs of this process

    @property
    def durable(self) -> bool:
        return not isinstance(self.broker, InMemoryBroker)

    def register(self, job_type: type[Job], handler: JobHandler) -> None:
        self._types[job_type.name] = job_type
        converter = self._converter
        running = self._running
        metrics = self._metrics

        async def run(payload: dict[str, Any]) -> None:
            task = asyncio.current_task()
            if task is not None:
                running.add(task)
            fields = dict(payload)
            meta = fields.pop(META, None)
            correlation = meta.get("correlationId") if isinstance(meta, dict) else None
            started, ok = time.perf_counter(), False
            with job_context(job_type.name, correlation if isinstance(correlation, str) else None):
                try:
                    await handler(converter.structure(fields, job_type))
                    ok = True
                finally:
                    running.discard(task)
                    elapsed = time.perf_counter() - started
                    metrics.job_processed(job_type.name, ok=ok, seconds=elapsed)
                    log.info(
                        "job %s ran in %.3f s (%s)",
                        job_type.name,
                        elapsed,
                        "ok" if ok else "failed",
                    )

        run.__name__ = job_type.name.replace("-", "_")
        self.broker.register_task(run, task_name=job_type.name)

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        self._owns_broker_lifecycle = True
        if isinstance(self.broker, RedisStreamJobBroker):
            self.broker.suppress_acks = False
        await self.broker.startup()
        if self._consume:
            self._start_receiver()

    def attach_to_worker(self) -> None:
        """Inside ``taskiq worker``: taskiq owns the broker's startup, receiver and shutdown;
        this queue is only used to register handlers and to enqueue (retries)."""
        self._started = True
        self._owns_broker_lifecycle = False

    def _start_receiver(self) -> None:
        self._finish = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="taskiq-sync")
        self.broker.is_worker_process = True
        receiver = Receiver(
            broker=self.broker,
            executor=self._executor,
            run_startup=False,
            max_async_tasks=self._max_async_tasks,
        )
        self._receiver_task = asyncio.create_task(
            receiver.listen(self._finish), name="taskiq-receiver"
        )

    async def _stop_receiver(self) -> None:
        task, finish = self._receiver_task, self._finish
        self._receiver_task = self._finish = None
        if task is None or finish is None:
            return
        finish.set()  # stop fetching; running jobs finish and are acknowledged
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=self._stop_grace)
        except TimeoutError:
            log.warning(
                "%d jobs still running after %.1fs; cancelled and left unacknowledged",
                len(self._running),
                self._stop_grace,
            )
            await self.abandon_running()
        await cancel_until_done(task)
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    async def abandon_running(self) -> int:
        """Cancel the jobs this process is still running and leave them unacknowledged, so
        that another worker runs them (taskiq would acknowledge a cancelled job)."""
        if isinstance(self.broker, RedisStreamJobBroker):
            self.broker.suppress_acks = True
        # taskiq's receiver runs each job in a task of its own, outside the listen task.
        jobs = list(self._running)
        await asyncio.gather(*(cancel_until_done(job) for job in jobs))
        return len(jobs)

    async def _drain_in_memory(self, broker: InMemoryBroker) -> None:
        """In-process jobs get the grace period to finish; the ones still running then are
        cancelled: this queue is not durable, and interrupted deployments are resumed from
        storage at the next start. (Waiting for all of them could outlast the server's
        shutdown deadline, and the loop would then be torn down under them.)"""
        drained = asyncio.ensure_future(broker.wait_all())
        try:
            await asyncio.wait_for(asyncio.shield(drained), timeout=self._stop_grace)
            return
        except TimeoutError:
            pass
        cancelled = await self.abandon_running()
        log.warning(
            "%d in-process jobs still running after %.1fs were cancelled; they resume at the "
            "next start",
            cancelled,
            self._stop_grace,
        )
        try:
            await asyncio.wait_for(drained, timeout=self._stop_grace)
        except TimeoutError:
            log.warning("in-process jobs did not finish after cancellation; left behind")

    async def stop(self) -> None:
        for task in self._delayed:
            task.cancel()
        for task in list(self._delayed):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if not self._started:
            return
        self._started = False
        if not self._owns_broker_lifecycle:
            return
        await self._stop_receiver()
        if isinstance(self.broker, InMemoryBroker):
            await self._drain_in_memory(self.broker)
        await self.broker.shutdown()
        self.broker.is_worker_process = False

    async def enqueue(self, job: Job, *, delay_seconds: float = 0.0) -> None:
        task = self.broker.find_task(job.name)
        if task is None:
            raise LookupError(f"no task registered for job {job.name!r}")
        payload = self._converter.unstructure(job)
        correlation = correlation_id()
        if correlation is not None:
            payload[META] = {"correlationId": correlation}
        self._metrics.job_enqueued(job.name)
        if delay_seconds <= 0:
            await task.kiq(payload)
            return
        if isinstance(self.broker, RedisStreamJobBroker):
            # Durable: the message waits in Redis until a worker moves it to the stream.
            await task.kicker().with_labels(**{DELAY_LABEL: float(delay_seconds)}).kiq(payload)
            return

        async def later() -> None:
            await asyncio.sleep(delay_seconds)
            await task.kiq(payload)

        timer = asyncio.create_task(later(), name=f"delayed-{job.name}")
        self._delayed.add(timer)
        timer.add_done_callback(self._delayed.discard)

    async def join(self, timeout: float) -> None:
        if isinstance(self.broker, RedisStreamJobBroker):
            await self._join_redis(self.broker, timeout)
            return

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

    @staticmethod
    async def _join_redis(broker: RedisStreamJobBroker, timeout: float) -> None:
        """Poll Redis until no job is queued, delayed or running, in any process."""
        deadline = time.monotonic() + timeout
        while await broker.outstanding():
            if time.monotonic() >= deadline:
                raise TimeoutError(f"jobs still outstanding after {timeout}s")
            await asyncio.sleep(0.02)

    async def ping(self) -> None:
        if isinstance(self.broker, RedisStreamJobBroker):
            await self.broker.ping()

    async def depth(self) -> int:
        if isinstance(self.broker, RedisStreamJobBroker):
            return await self.broker.outstanding()  # every process's, from Redis
        running = self.broker._running_tasks if isinstance(self.broker, InMemoryBroker) else ()
        return sum(not t.done() for t in (*self._delayed, *running))
