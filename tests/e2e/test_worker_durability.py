"""A ``taskiq worker`` killed with SIGKILL in the middle of a job does not lose it: another
worker runs it, and its effect happens exactly once.

Two real ``rwa-market worker`` processes on a real redis-server, one after the other; the
job is the test-only ``RecordJob`` (``tests/harness/worker_jobs.py``), which sleeps in the
middle, records who started and who finished it, and writes its effect with SET NX.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from redis.asyncio import Redis

from adapters.outbound.jobs.redis_stream import redis_job_broker
from adapters.outbound.jobs.taskiq import TaskiqJobQueue
from tests.harness.taskiq_worker import start_worker, worker_env
from tests.harness.worker_jobs import RecordJob

CLAIM_IDLE_SECONDS = 3.0
JOB_SECONDS = 2.0


async def _wait_for(
    check: Callable[[], Awaitable[int]], timeout: float, what: str, log: Callable[[], str]
) -> float:
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{log()}")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def never_here(job: RecordJob) -> None:
    raise AssertionError("the producer process must not run jobs")


async def test_a_job_of_a_killed_worker_completes_once_on_another(
    clean_redis_url: str, tmp_path: Path
) -> None:
    env = worker_env(
        clean_redis_url,
        tmp_path / "data",
        {"RWA_JOBS_CLAIM_IDLE_SECONDS": str(CLAIM_IDLE_SECONDS)},
    )
    raw = Redis.from_url(clean_redis_url)
    broker = redis_job_broker(clean_redis_url)
    producer = TaskiqJobQueue(broker)
    producer.register(RecordJob, never_here)
    await producer.start()
    first = start_worker(tmp_path, env, name="worker-a")
    second = None
    try:
        await asyncio.to_thread(first.wait_listening)
        await producer.enqueue(RecordJob(key="crash", sleep_seconds=JOB_SECONDS))
        await _wait_for(lambda: raw.llen("test:started:crash"), 10, "worker A to start", first.log)
        await asyncio.sleep(JOB_SECONDS / 4)  # in the middle of the job
        first.kill()
        killed_at = time.monotonic()
        assert await raw.llen("test:completed:crash") == 0
        assert await broker.outstanding() == 1  # still in the stream, unacknowledged

        second = start_worker(tmp_path, env, name="worker-b")
        await asyncio.to_thread(second.wait_listening)
        await _wait_for(
            lambda: raw.llen("test:completed:crash"), 30, "worker B to finish", second.log
        )
        recovered = time.monotonic() - killed_at
        await producer.join(timeout=10)
        # another claim round and more: nothing runs it again
        await asyncio.sleep(CLAIM_IDLE_SECONDS + 1)

        started = [int(pid) for pid in await raw.lrange("test:started:crash", 0, -1)]
        completed = [int(pid) for pid in await raw.lrange("test:completed:crash", 0, -1)]
        effect = int(await raw.get("test:effect:crash"))
        assert len(started) == 2 and started[0] != started[1], started
        assert completed == [started[1]]
        assert effect == started[1]
        assert (await raw.xpending(broker.queue_name, broker.consumer_group_name))["pending"] == 0
        assert await broker.dead_letters() == 0
        assert "re-delivering job message" in second.log()
        print(f"job recovered {recovered:.2f}s after SIGKILL (claim idle {CLAIM_IDLE_SECONDS}s)")
    finally:
        first.kill()
        if second is not None:
            second.stop()
        await producer.stop()
        await raw.aclose()


async def test_sigterm_lets_a_running_job_finish(clean_redis_url: str, tmp_path: Path) -> None:
    env = worker_env(clean_redis_url, tmp_path / "data")
    raw = Redis.from_url(clean_redis_url)
    producer = TaskiqJobQueue(redis_job_broker(clean_redis_url))
    producer.register(RecordJob, never_here)
    await producer.start()
    worker = start_worker(tmp_path, env, name="worker")
    try:
        await asyncio.to_thread(worker.wait_listening)
        await producer.enqueue(RecordJob(key="graceful", sleep_seconds=1.5))
        await _wait_for(lambda: raw.llen("test:started:graceful"), 10, "start", worker.log)
        took = await asyncio.to_thread(worker.stop, 15)
        assert took is not None and took >= 1.0, worker.log()[-3000:]
        assert await raw.llen("test:completed:graceful") == 1
        await producer.join(timeout=2)  # acknowledged before the exit
    finally:
        worker.kill()
        await producer.stop()
        await raw.aclose()


async def test_sigterm_past_the_wait_timeout_leaves_the_job_to_another_worker(
    clean_redis_url: str, tmp_path: Path
) -> None:
    env = worker_env(clean_redis_url, tmp_path / "data", {"RWA_JOBS_CLAIM_IDLE_SECONDS": "2"})
    raw = Redis.from_url(clean_redis_url)
    producer = TaskiqJobQueue(redis_job_broker(clean_redis_url))
    producer.register(RecordJob, never_here)
    await producer.start()
    first = start_worker(tmp_path, env, args=("--wait-tasks-timeout", "0.3"), name="worker-a")
    second = None
    try:
        await asyncio.to_thread(first.wait_listening)
        await producer.enqueue(RecordJob(key="cut", sleep_seconds=3.0))
        await _wait_for(lambda: raw.llen("test:started:cut"), 10, "start", first.log)
        took = await asyncio.to_thread(first.stop, 15)
        assert took is not None and took < 3.0, first.log()[-3000:]
        assert await raw.llen("test:completed:cut") == 0
        assert "unfinished jobs left for other workers" in first.log(), first.log()[-3000:]

        second = start_worker(tmp_path, env, name="worker-b")
        await asyncio.to_thread(second.wait_listening)
        await _wait_for(lambda: raw.llen("test:completed:cut"), 30, "worker B", second.log)
        await producer.join(timeout=10)
        started = await raw.lrange("test:started:cut", 0, -1)
        completed = await raw.lrange("test:completed:cut", 0, -1)
        assert len(started) == 2 and completed == started[1:]
    finally:
        first.kill()
        if second is not None:
            second.stop()
        await producer.stop()
        await raw.aclose()
