"""What the Redis job queue adds to the jobs contract: durable delays, re-delivery of jobs
held by a dead consumer, dead letters."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from adapters.outbound.jobs.redis_stream import RedisStreamJobBroker, redis_job_broker
from adapters.outbound.jobs.taskiq import TaskiqJobQueue
from core.ports.jobs import DeployTokenJob

STREAM = "rwa:jobs:stream"
GROUP = "rwa-workers"


@pytest.fixture
async def raw(clean_redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(clean_redis_url)
    yield client
    await client.aclose()


def queue(url: str, *, consume: bool, **broker_kwargs: Any) -> tuple[TaskiqJobQueue, list[Any]]:
    q = TaskiqJobQueue(redis_job_broker(url, **broker_kwargs), consume_in_process=consume)
    seen: list[Any] = []

    async def handler(job: DeployTokenJob) -> None:
        seen.append((time.monotonic(), job))

    q.register(DeployTokenJob, handler)
    return q, seen


async def test_a_delayed_job_survives_the_producer_and_waits_for_its_time(
    clean_redis_url: str, raw: Redis
) -> None:
    producer, _ = queue(clean_redis_url, consume=False)
    await producer.start()
    enqueued = time.monotonic()
    await producer.enqueue(DeployTokenJob(market_id="later", attempt=2), delay_seconds=1.0)
    await producer.stop()  # the API process goes away; the job waits in Redis
    assert await raw.zcard(f"{STREAM}:due") == 1

    await asyncio.sleep(0.2)
    consumer, seen = queue(clean_redis_url, consume=True)
    await consumer.start()  # a worker started before the job is due
    try:
        await asyncio.sleep(0.5)
        assert seen == []
        await consumer.join(timeout=5)
    finally:
        await consumer.stop()
    ran_at, job = seen[0]
    assert job == DeployTokenJob(market_id="later", attempt=2)
    assert 1.0 <= ran_at - enqueued < 1.6
    assert len(seen) == 1


async def test_a_delayed_job_due_while_no_worker_ran_runs_when_one_starts(
    clean_redis_url: str,
) -> None:
    producer, _ = queue(clean_redis_url, consume=False)
    await producer.start()
    await producer.enqueue(DeployTokenJob(market_id="overdue"), delay_seconds=0.1)
    await producer.stop()
    await asyncio.sleep(0.3)
    consumer, seen = queue(clean_redis_url, consume=True)
    await consumer.start()
    try:
        await consumer.join(timeout=5)
    finally:
        await consumer.stop()
    assert [job.market_id for _, job in seen] == ["overdue"]


async def _take_as_dead_consumer(raw: Redis) -> bytes:
    """Read one message as a consumer that then dies without acknowledging it."""
    fetched = await raw.xreadgroup(GROUP, "dead-consumer", {STREAM: ">"}, count=1)
    [(_, [(message_id, _fields)])] = fetched
    return bytes(message_id)


async def test_a_job_held_by_a_dead_consumer_is_redelivered_once(
    clean_redis_url: str, raw: Redis
) -> None:
    producer, _ = queue(clean_redis_url, consume=False)
    await producer.start()
    await producer.enqueue(DeployTokenJob(market_id="orphan"))
    await _take_as_dead_consumer(raw)
    await producer.stop()

    consumer, seen = queue(clean_redis_url, consume=True, claim_idle_seconds=0.5)
    started = time.monotonic()
    await consumer.start()
    try:
        await consumer.join(timeout=10)
        await asyncio.sleep(0.6)  # another claim round: nothing runs twice
    finally:
        await consumer.stop()
    assert [job.market_id for _, job in seen] == ["orphan"]
    assert seen[0][0] - started < 2.0
    assert await raw.xpending(STREAM, GROUP) == {
        "pending": 0,
        "min": None,
        "max": None,
        "consumers": [],
    }


async def test_a_job_that_keeps_killing_workers_goes_to_dead_letters(
    clean_redis_url: str, raw: Redis
) -> None:
    producer, _ = queue(clean_redis_url, consume=False)
    await producer.start()
    await producer.enqueue(DeployTokenJob(market_id="poison"))
    message_id = await _take_as_dead_consumer(raw)
    await raw.execute_command(
        "XCLAIM", STREAM, GROUP, "dead-consumer", 0, message_id, "RETRYCOUNT", 5
    )
    await producer.stop()

    consumer, seen = queue(clean_redis_url, consume=True, claim_idle_seconds=0.2, max_deliveries=5)
    await consumer.start()
    try:
        await consumer.join(timeout=10)
        broker = consumer.broker
        assert isinstance(broker, RedisStreamJobBroker)
        assert await broker.dead_letters() == 1
    finally:
        await consumer.stop()
    assert seen == []
    [(_, fields)] = await raw.xrange(f"{STREAM}:dead")
    assert fields[b"origin_id"] == message_id
    assert b"poison" in fields[b"data"]


async def test_a_job_queued_before_any_consumer_group_existed_is_delivered(
    clean_redis_url: str, raw: Redis
) -> None:
    """The group starts at id 0: jobs added before the first worker ever ran are not lost."""
    producer, _ = queue(clean_redis_url, consume=False)
    await producer.start()
    await producer.enqueue(DeployTokenJob(market_id="early"))
    await raw.xgroup_destroy(STREAM, GROUP)
    await producer.stop()
    consumer, seen = queue(clean_redis_url, consume=True)
    await consumer.start()
    try:
        await consumer.join(timeout=5)
    finally:
        await consumer.stop()
    assert [job.market_id for _, job in seen] == ["early"]


async def test_enqueue_to_run_latency(clean_redis_url: str) -> None:
    """Measured, printed (pytest -s), with a generous bound."""
    q = TaskiqJobQueue(redis_job_broker(clean_redis_url), consume_in_process=True)
    ran: asyncio.Queue[float] = asyncio.Queue()

    async def handler(job: DeployTokenJob) -> None:
        ran.put_nowait(time.perf_counter())

    q.register(DeployTokenJob, handler)
    await q.start()
    samples = []
    try:
        for i in range(50):
            sent = time.perf_counter()
            await q.enqueue(DeployTokenJob(market_id=f"m{i}"))
            samples.append(await asyncio.wait_for(ran.get(), timeout=5) - sent)
    finally:
        await q.stop()
    samples.sort()
    p50, p95 = samples[len(samples) // 2], samples[int(len(samples) * 0.95)]
    print(f"redis enqueue->run latency: p50={p50 * 1000:.2f}ms p95={p95 * 1000:.2f}ms")
    assert p95 < 0.5


async def test_a_slow_job_of_a_live_worker_is_not_stolen(clean_redis_url: str) -> None:
    """The job runs 4x longer than the claim idle time; the running worker renews its lease,
    so the second worker never claims it."""
    runs: list[str] = []

    def worker(name: str) -> TaskiqJobQueue:
        q = TaskiqJobQueue(
            redis_job_broker(clean_redis_url, claim_idle_seconds=0.5), consume_in_process=True
        )

        async def slow(job: DeployTokenJob) -> None:
            runs.append(name)
            await asyncio.sleep(2.0)

        q.register(DeployTokenJob, slow)
        return q

    a, b = worker("a"), worker("b")
    await a.start()
    await b.start()
    try:
        await a.enqueue(DeployTokenJob(market_id="slow"))
        await a.join(timeout=10)
    finally:
        await a.stop()
        await b.stop()
    assert len(runs) == 1


async def test_a_job_cancelled_by_a_stopping_process_is_not_acknowledged(
    clean_redis_url: str, raw: Redis
) -> None:
    """taskiq's receiver acknowledges a cancelled task like a finished one; the queue
    suppresses acks once it gives up waiting, so the job runs again elsewhere."""
    finished: list[str] = []

    def consumer(grace: float) -> TaskiqJobQueue:
        q = TaskiqJobQueue(
            redis_job_broker(clean_redis_url, claim_idle_seconds=0.5),
            consume_in_process=True,
            stop_grace_seconds=grace,
        )

        async def slow(job: DeployTokenJob) -> None:
            await asyncio.sleep(1.0)
            finished.append(job.market_id)

        q.register(DeployTokenJob, slow)
        return q

    first = consumer(grace=0.1)
    await first.start()
    await first.enqueue(DeployTokenJob(market_id="interrupted"))
    await asyncio.sleep(0.3)  # running now
    await first.stop()  # gives up after 0.1 s and cancels it
    assert finished == []
    assert (await raw.xpending(STREAM, GROUP))["pending"] == 1

    second = consumer(grace=10)
    await second.start()
    try:
        await second.join(timeout=10)
    finally:
        await second.stop()
    assert finished == ["interrupted"]
