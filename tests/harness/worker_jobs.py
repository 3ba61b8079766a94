"""Test-only job types that real ``taskiq worker`` processes run (see ``worker_tasks``).

``RecordJob`` leaves its traces in Redis, so a test in another process can see who ran it:
- ``test:started:{key}``: a list of the worker PIDs that started it;
- ``test:effect:{key}``: its effect, written with SET NX, so re-runs cannot change it;
- ``test:completed:{key}``: a list of the PIDs that ran it to the end.
"""

from __future__ import annotations

import asyncio
import os
from typing import ClassVar

import attrs
from redis.asyncio import Redis

from core.ports.jobs import Job


@attrs.frozen
class RecordJob(Job):
    name: ClassVar[str] = "test-record"
    key: str
    sleep_seconds: float = 0.0


async def run_record(job: RecordJob) -> None:
    client = Redis.from_url(os.environ["RWA_REDIS_URL"])
    try:
        await client.rpush(f"test:started:{job.key}", os.getpid())
        await asyncio.sleep(job.sleep_seconds)
        await client.set(f"test:effect:{job.key}", os.getpid(), nx=True)
        await client.rpush(f"test:completed:{job.key}", os.getpid())
    finally:
        await client.aclose()
