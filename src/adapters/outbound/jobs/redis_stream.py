"""taskiq-redis's RedisStreamBroker, made durable for delayed jobs and dead consumers.

What it adds to ``taskiq_redis.RedisStreamBroker``
--------------------------------------------------
1. **Delayed jobs in a Redis sorted set.** A message kicked with the label ``delay``
   (seconds) is not added to the stream: it goes to the sorted set ``{stream}:due``, scored
   by the time it is due in *Redis server time* (``TIME``), so clocks of API and worker hosts
   do not matter. Every consuming process runs a small loop that moves due messages into the
   stream with one Lua script (``ZRANGEBYSCORE`` + ``XADD`` + ``ZREM``), atomically, so
   several workers never move one message twice. The set lives in Redis: delayed jobs
   survive restarts of every API and worker process, and are moved by whichever worker
   runs when they fall due. The loop sleeps until the next due time (at most
   ``due_poll_seconds``), so a delay is honoured to within that poll interval.

   Chosen over taskiq's schedule sources + ``taskiq scheduler`` because it needs no extra
   process (and no single scheduler to keep alive), the deploy-token retries are one-off
   delays not cron schedules, and the due time has millisecond precision instead of the
   scheduler's polling interval.

2. **Re-delivery of messages held by a dead consumer, even on an idle queue, and leases
   for slow live ones.** The base broker only runs ``XAUTOCLAIM`` right after a read that
   returned new messages, so a message held by a killed worker would wait for the next
   unrelated job. Here every consumer checks the pending list at least every
   ``claim_interval_seconds``: a message another consumer left unacknowledged for
   ``claim_idle_seconds`` is claimed (``XCLAIM`` with the same min-idle guard, so only one
   consumer wins) and run again. While a job runs, its consumer renews its lease every
   ``claim_idle_seconds / 3`` (a Lua script re-claims the message for itself with
   ``JUSTID`` if it still owns it, which resets the idle time), so a slow job that is still
   running is never handed to a second worker, whatever its duration; only a consumer
   that stopped renewing (killed, frozen for longer than ``claim_idle_seconds``) loses it.

3. **Dead letters.** A message delivered ``max_deliveries`` times without being
   acknowledged (a job that keeps killing its worker) is moved to ``{stream}:dead`` instead
   of being run again.

4. **Acknowledge then delete.** The ack is ``XACK`` + ``XDEL`` in one transaction, so the
   stream holds only jobs that are waiting or running: ``outstanding()`` is
   ``XLEN(stream) + ZCARD(due)``, which ``TaskiqJobQueue.join`` polls.

Messages are acknowledged by taskiq's receiver after the task ran and its result was saved
(``AcknowledgeType.WHEN_SAVED``, the default), so a worker killed mid-job leaves its message
pending, and item 2 hands it to another worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from taskiq import AckableMessage, BrokerMessage
from taskiq_redis import RedisAsyncResultBackend, RedisStreamBroker

log = logging.getLogger(__name__)

DELAY_LABEL = "delay"

# KEYS[1] due set; ARGV[1] delay in ms, ARGV[2] message. Scored in Redis server time.
_SCHEDULE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[2])
return now
"""

# KEYS[1] due set, KEYS[2] stream; ARGV[1] batch size.
# Returns {moved, ms until the next due message or -1 when none is left}.
_MOVE_DUE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, message in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'data', message)
  redis.call('ZREM', KEYS[1], message)
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if nxt[2] then
  return {#due, tonumber(nxt[2]) - now}
end
return {#due, -1}
"""


# KEYS[1] stream; ARGV[1] group, ARGV[2] consumer, ARGV[3..] message ids.
# Resets the idle time of the listed messages that this consumer still owns.
_RENEW = """
local renewed = 0
for i = 3, #ARGV do
  local entry = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)[1]
  if entry and entry[2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    renewed = renewed + 1
  end
end
return renewed
"""


class RedisStreamJobBroker(RedisStreamBroker):
    """A ``RedisStreamBroker`` with durable delays, idle-queue reclaiming and dead letters."""

    def __init__(
        self,
        url: str,
        *,
        queue_name: str = "rwa:jobs:stream",
        consumer_group_name: str = "rwa-workers",
        consumer_name: str | None = None,
        claim_idle_seconds: float = 60.0,
        claim_interval_seconds: float | None = None,
        max_deliveries: int = 5,
        due_poll_seconds: float = 0.2,
        xread_block_seconds: float = 2.0,
        max_connection_pool_size: int | None = None,
        **connection_kwargs: Any,
    ) -> None:
        super().__init__(
            url,
            queue_name=queue_name,
            max_connection_pool_size=max_connection_pool_size,
            consumer_group_name=consumer_group_name,
            consumer_name=consumer_name,
            # "0": a group created after jobs were queued still delivers them.
            consumer_id="0",
            xread_block=int(xread_block_seconds * 1000),
            idle_timeout=int(claim_idle_seconds * 1000),
            # One message per read: the receiver reads only when it has capacity, so a
            # message never waits in one worker's buffer while another worker is idle.
            xread_count=1,
            **connection_kwargs,
        )
        if claim_interval_seconds is None:
            claim_interval_seconds = max(0.5, min(claim_idle_seconds / 2, 10.0))
        self.claim_idle_seconds = claim_idle_seconds
        self.claim_interval_seconds = claim_interval_seconds
        self.max_deliveries = max_deliveries
        self.due_poll_seconds = due_poll_seconds
        self.due_key = f"{queue_name}:due"
        self.dead_key = f"{queue_name}:dead"
        self._client = Redis(connection_pool=self.connection_pool)
        self._schedule = self._client.register_script(_SCHEDULE)
        self._move_due = self._client.register_script(_MOVE_DUE)
        self._renew = self._client.register_script(_RENEW)
        self._background: list[asyncio.Task[None]] = []
        self._inflight: set[bytes | str] = set()
        self.lease_renew_seconds = claim_idle_seconds / 3
        # Set when a stopping process cancels jobs that did not finish: taskiq's receiver
        # would otherwise acknowledge a cancelled job as if it had run.
        self.suppress_acks = False

    # -- producing ---------------------------------------------------------------------

    async def kick(self, message: BrokerMessage) -> None:
        delay = float(message.labels.get(DELAY_LABEL) or 0)
        if delay <= 0:
            await super().kick(message)
            return
        await self._schedule(keys=[self.due_key], args=[int(delay * 1000), message.message])

    # -- state -------------------------------------------------------------------------

    async def outstanding(self) -> int:
        """Jobs waiting, delayed or running (acknowledged jobs are deleted from the stream)."""
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.xlen(self.queue_name)
            pipe.zcard(self.due_key)
            waiting, delayed = await pipe.execute()
        return int(waiting) + int(delayed)

    async def dead_letters(self) -> int:
        return int(await self._client.xlen(self.dead_key))

    async def ping(self) -> None:
        await self._client.ping()

    # -- consuming ---------------------------------------------------------------------

    async def move_due(self, batch: int = 100) -> tuple[int, float | None]:
        """Move due delayed jobs into the stream: (how many, seconds until the next one)."""
        moved, next_ms = await self._move_due(keys=[self.due_key, self.queue_name], args=[batch])
        return int(moved), (None if int(next_ms) < 0 else int(next_ms) / 1000)

    async def _move_due_forever(self) -> None:
        while True:
            try:
                moved, next_in = await self.move_due()
                if moved:
                    log.debug("moved %d due jobs to %s", moved, self.queue_name)
                    continue
                wait = self.due_poll_seconds if next_in is None else next_in
                await asyncio.sleep(max(0.005, min(wait, self.due_poll_seconds)))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("moving due jobs failed (%s); retrying", exc)
                await asyncio.sleep(1.0)

    async def renew_leases(self) -> int:
        """Reset the idle time of the jobs this consumer is running, so that no other
        consumer claims a job that is slow but alive. Returns how many were renewed."""
        ids = list(self._inflight)
        if not ids:
            return 0
        renewed = await self._renew(
            keys=[self.queue_name], args=[self.consumer_group_name, self.consumer_name, *ids]
        )
        return int(renewed)

    async def _renew_leases_forever(self) -> None:
        while True:
            await asyncio.sleep(self.lease_renew_seconds)
            try:
                await self.renew_leases()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("renewing job leases failed (%s); retrying", exc)

    def _start_background(self) -> None:
        if any(not task.done() for task in self._background):
            return
        self._background = [
            asyncio.create_task(self._move_due_forever(), name="due-jobs-mover"),
            asyncio.create_task(self._renew_leases_forever(), name="job-lease-renewal"),
        ]

    async def _stop_background(self) -> None:
        tasks, self._background = self._background, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _delivered(self, data: bytes, message_id: bytes | str) -> AckableMessage:
        self._inflight.add(message_id)
        return AckableMessage(data=data, ack=self._ack(message_id))

    def _ack(self, message_id: bytes | str) -> Callable[[], Awaitable[None]]:
        async def ack() -> None:
            self._inflight.discard(message_id)
            if self.suppress_acks:
                return
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.xack(self.queue_name, self.consumer_group_name, message_id)
                pipe.xdel(self.queue_name, message_id)
                await pipe.execute()

        return ack

    async def _claim_stale(self, conn: Redis) -> list[AckableMessage]:
        """Claim messages other (dead) consumers left unacknowledged for too long."""
        idle_ms = int(self.claim_idle_seconds * 1000)
        pending = cast(
            "list[dict[str, Any]]",
            await conn.xpending_range(
                self.queue_name, self.consumer_group_name, "-", "+", 100, idle=idle_ms
            ),
        )
        claimed: list[AckableMessage] = []
        for entry in pending:
            message_id = entry["message_id"]
            if entry["consumer"] in (self.consumer_name, self.consumer_name.encode()):
                continue  # ours: running here, its lease is renewed
            got = cast(
                "list[tuple[bytes, dict[bytes, bytes] | None]]",
                await conn.xclaim(
                    self.queue_name,
                    self.consumer_group_name,
                    self.consumer_name,
                    min_idle_time=idle_ms,
                    message_ids=[message_id],
                ),
            )
            if not got:
                continue  # another consumer won, or the entry is gone
            _, fields = got[0]
            if fields is None:  # deleted entry: drop it from the pending list
                await conn.xack(self.queue_name, self.consumer_group_name, message_id)
                continue
            deliveries = int(entry["times_delivered"]) + 1
            if deliveries > self.max_deliveries:
                log.error(
                    "job message %s was delivered %d times without completing; moved to %s",
                    message_id,
                    deliveries - 1,
                    self.dead_key,
                )
                async with conn.pipeline(transaction=True) as pipe:
                    dead: dict[Any, Any] = {**fields, b"origin_id": message_id}
                    pipe.xadd(self.dead_key, dead)
                    pipe.xack(self.queue_name, self.consumer_group_name, message_id)
                    pipe.xdel(self.queue_name, message_id)
                    await pipe.execute()
                continue
            log.warning(
                "re-delivering job message %s (idle > %.1fs on consumer %s, delivery %d)",
                message_id,
                self.claim_idle_seconds,
                entry["consumer"],
                deliveries,
            )
            claimed.append(self._delivered(fields[b"data"], message_id))
        return claimed

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        self._start_background()
        loop = asyncio.get_running_loop()
        block_ms = max(1, min(self.block, int(self.claim_interval_seconds * 1000)))
        next_claim = 0.0
        try:
            async with Redis(connection_pool=self.connection_pool) as conn:
                while True:
                    # redis-py can turn a cancellation that lands during a blocking XREADGROUP
                    # into an empty reply (seen with redis 8.1 on Python 3.11): the task
                    # still says it is being cancelled, so honour that here, at the latest
                    # one block later, instead of reading forever.
                    current = asyncio.current_task()
                    if current is not None and current.cancelling():
                        raise asyncio.CancelledError
                    try:
                        if loop.time() >= next_claim:
                            next_claim = loop.time() + self.claim_interval_seconds
                            for message in await self._claim_stale(conn):
                                yield message
                        fetched = cast(
                            "list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]] | None",
                            await conn.xreadgroup(
                                self.consumer_group_name,
                                self.consumer_name,
                                {self.queue_name: ">"},
                                block=block_ms,
                                count=self.count,
                            ),
                        )
                    except ResponseError as exc:
                        if "NOGROUP" not in str(exc):
                            raise
                        log.warning("consumer group missing (Redis emptied?); declaring it again")
                        await self._declare_consumer_group()
                        continue
                    except (RedisConnectionError, RedisTimeoutError) as exc:
                        log.warning("redis unreachable while reading jobs (%s); retrying", exc)
                        await asyncio.sleep(1.0)
                        continue
                    for _stream, entries in fetched or []:
                        for message_id, fields in entries:
                            yield self._delivered(fields[b"data"], message_id)
        finally:
            await self._stop_background()

    async def shutdown(self) -> None:
        await self._stop_background()
        await super().shutdown()


def redis_job_broker(
    url: str,
    *,
    queue_name: str = "rwa:jobs:stream",
    result_ttl_seconds: int = 86_400,
    **kwargs: Any,
) -> RedisStreamJobBroker:
    """The production broker: the stream broker above with taskiq-redis's result backend."""
    broker = RedisStreamJobBroker(url, queue_name=queue_name, **kwargs)
    backend: RedisAsyncResultBackend[Any] = RedisAsyncResultBackend(
        url, result_ex_time=result_ttl_seconds, prefix_str=f"{queue_name}:result"
    )
    return broker.with_result_backend(backend)
