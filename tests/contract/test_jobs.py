"""Jobs port contract, run against every job queue adapter."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from structlog.contextvars import clear_contextvars, get_contextvars

from adapters.outbound.jobs.memory import MemoryJobQueue
from adapters.outbound.jobs.redis_stream import redis_job_broker
from adapters.outbound.jobs.taskiq import TaskiqJobQueue
from core.ports.jobs import DeployTokenJob, JobQueue
from logs import bind_request


class JobQueueContract:
    def make(self) -> JobQueue:
        raise NotImplementedError

    @pytest.fixture
    async def queue(self) -> AsyncIterator[JobQueue]:
        q = self.make()
        self.seen: list[DeployTokenJob] = []

        async def handler(job: DeployTokenJob) -> None:
            self.seen.append(job)

        q.register(DeployTokenJob, handler)
        await q.start()
        yield q
        await q.stop()

    async def test_runs_an_enqueued_job_with_its_payload(self, queue: JobQueue) -> None:
        await queue.enqueue(DeployTokenJob(market_id="m-1", attempt=3))
        await queue.join(timeout=5)
        assert self.seen == [DeployTokenJob(market_id="m-1", attempt=3)]

    async def test_runs_each_job_once(self, queue: JobQueue) -> None:
        for i in range(20):
            await queue.enqueue(DeployTokenJob(market_id=f"m-{i}"))
        await queue.join(timeout=5)
        assert sorted(j.market_id for j in self.seen) == sorted(f"m-{i}" for i in range(20))

    async def test_a_delayed_job_waits(self, queue: JobQueue) -> None:
        started = time.monotonic()
        await queue.enqueue(DeployTokenJob(market_id="later"), delay_seconds=0.3)
        await asyncio.sleep(0.1)
        assert self.seen == []
        await queue.join(timeout=5)
        assert self.seen == [DeployTokenJob(market_id="later")]
        assert time.monotonic() - started >= 0.3

    async def test_a_failing_handler_does_not_stop_later_jobs(self) -> None:
        q = self.make()
        seen: list[str] = []

        async def handler(job: DeployTokenJob) -> None:
            if job.market_id == "boom":
                raise RuntimeError("boom")
            seen.append(job.market_id)

        q.register(DeployTokenJob, handler)
        await q.start()
        try:
            await q.enqueue(DeployTokenJob(market_id="boom"))
            await q.enqueue(DeployTokenJob(market_id="fine"))
            await q.join(timeout=5)
        finally:
            await q.stop()
        assert seen == ["fine"]

    async def test_a_job_runs_with_the_correlation_id_it_was_enqueued_with(self) -> None:
        """The request (or connection) that enqueued a job is named in the job's log lines:
        its id travels with the job (payload metadata) and is bound while the job runs."""
        q = self.make()
        seen: dict[str, dict[str, object]] = {}

        async def handler(job: DeployTokenJob) -> None:
            seen[job.market_id] = dict(get_contextvars())

        q.register(DeployTokenJob, handler)
        await q.start()
        try:
            bind_request("req-abc.1")
            await q.enqueue(DeployTokenJob(market_id="now"))
            await q.enqueue(DeployTokenJob(market_id="later"), delay_seconds=0.2)
            clear_contextvars()
            await q.enqueue(DeployTokenJob(market_id="alone"))
            await q.join(timeout=5)
        finally:
            clear_contextvars()
            await q.stop()
        assert seen["now"]["correlation_id"] == seen["later"]["correlation_id"] == "req-abc.1"
        assert seen["now"]["job"] == "deploy-token"
        alone = seen["alone"]["correlation_id"]
        assert isinstance(alone, str) and alone not in ("", "req-abc.1")  # a fresh one

    async def test_an_unregistered_job_is_refused(self) -> None:
        q = self.make()
        await q.start()
        try:
            with pytest.raises(LookupError):
                await q.enqueue(DeployTokenJob(market_id="x"))
        finally:
            await q.stop()


class TestMemoryJobQueue(JobQueueContract):
    def make(self) -> JobQueue:
        return MemoryJobQueue()


class TestTaskiqInMemoryBroker(JobQueueContract):
    def make(self) -> JobQueue:
        return TaskiqJobQueue()


class TestTaskiqRedis(JobQueueContract):
    """The production queue on a real redis-server; a taskiq Receiver runs in this process."""

    @pytest.fixture(autouse=True)
    def _redis(self, clean_redis_url: str) -> None:
        self.url = clean_redis_url

    def make(self) -> JobQueue:
        return TaskiqJobQueue(redis_job_broker(self.url), consume_in_process=True)

    def test_is_durable(self) -> None:
        assert self.make().durable
