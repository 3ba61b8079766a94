"""The Redis job queue with a real, separate ``rwa-market worker`` (``taskiq worker``) process:
this process only produces; the worker process runs the jobs."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from adapters.outbound.jobs.redis_stream import redis_job_broker
from adapters.outbound.jobs.taskiq import TaskiqJobQueue
from tests.harness.taskiq_worker import WorkerProcess, start_worker, worker_env
from tests.harness.worker_jobs import RecordJob


async def must_not_run_here(job: RecordJob) -> None:
    raise AssertionError("the producer process must not run jobs")


@pytest.fixture
def worker(clean_redis_url: str, tmp_path: Path) -> Iterator[WorkerProcess]:
    process = start_worker(tmp_path, worker_env(clean_redis_url, tmp_path / "data"))
    try:
        took = process.wait_listening()
        print(f"worker listening {took:.2f}s after start")
        yield process
    finally:
        process.stop()


@pytest.fixture
async def producer(clean_redis_url: str) -> AsyncIterator[TaskiqJobQueue]:
    queue = TaskiqJobQueue(redis_job_broker(clean_redis_url))  # produce only
    queue.register(RecordJob, must_not_run_here)
    await queue.start()
    yield queue
    await queue.stop()


@pytest.fixture
async def raw(clean_redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(clean_redis_url)
    yield client
    await client.aclose()


async def test_the_worker_process_runs_jobs_and_join_sees_them_done(
    worker: WorkerProcess, producer: TaskiqJobQueue, raw: Redis
) -> None:
    for i in range(10):
        await producer.enqueue(RecordJob(key=f"k{i}"))
    await producer.join(timeout=20)
    for i in range(10):
        completed = await raw.lrange(f"test:completed:k{i}", 0, -1)
        assert len(completed) == 1
        assert int(completed[0]) not in (os.getpid(), worker.pid)  # a worker child process


async def test_a_delayed_job_really_waits_in_the_worker(
    worker: WorkerProcess, producer: TaskiqJobQueue, raw: Redis
) -> None:
    sent = time.monotonic()
    await producer.enqueue(RecordJob(key="later"), delay_seconds=1.5)
    await asyncio.sleep(1.0)
    assert await raw.llen("test:started:later") == 0
    while not await raw.llen("test:completed:later"):
        assert time.monotonic() - sent < 10, worker.log()[-3000:]
        await asyncio.sleep(0.02)
    waited = time.monotonic() - sent
    print(f"delay 1.5s honoured after {waited:.3f}s")
    assert 1.5 <= waited < 2.5


async def test_enqueue_to_run_latency_across_processes(
    worker: WorkerProcess, producer: TaskiqJobQueue, raw: Redis
) -> None:
    samples = []
    for i in range(30):
        sent = time.perf_counter()
        await producer.enqueue(RecordJob(key=f"lat{i}"))
        assert await raw.blpop([f"test:started:lat{i}"], timeout=5) is not None
        samples.append(time.perf_counter() - sent)
    samples.sort()
    p50, p95 = samples[len(samples) // 2], samples[int(len(samples) * 0.95)]
    print(f"worker process enqueue->start latency: p50={p50 * 1000:.2f}ms p95={p95 * 1000:.2f}ms")
    assert p95 < 1.0


def test_the_worker_exits_on_sigterm(worker: WorkerProcess) -> None:
    took = worker.stop(timeout=15)
    print(f"worker exit after SIGTERM: {took}")
    assert took is not None, "the worker ignored SIGTERM for 15 s"
