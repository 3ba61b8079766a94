"""``RedisOrderRouter``: engine commands over Redis Streams, replies on a stream per process.

Keys (``{ns}`` is ``rwa`` unless configured):

- ``{ns}:engine:commands:<pair id>``: one stream per pair, consumer group ``engines``
  (created at id 0 by whoever touches the stream first, so nothing added before the group
  exists is skipped). Each entry holds ``command`` (the codec's JSON) and ``replyTo``.
  Only the engine that holds the pair's lease reads it (``XREADGROUP``); a new owner takes
  the entries its dead predecessor read and never answered with ``XAUTOCLAIM`` (min idle 0:
  the old owner can no longer commit, its lease is gone), and the owner claims again, on
  every lease pass, entries idle longer than the lease (read by a stale owner after the
  takeover).
- ``{ns}:engine:replies:<process id>``: the replies to one API process, read with a
  blocking ``XREAD`` by one task that wakes the waiting request (correlated by request id)
  and deletes what it read. Capped (``MAXLEN ~ 10000``) and expiring (10 minutes after the
  last reply), so the stream of a process that died disappears.

A reply is ``XADD`` to the requester's stream, then ``XACK`` + ``XDEL`` of the command, in one
``MULTI``: the command is acknowledged exactly when its reply is out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from adapters.outbound.routing.codec import (
    decode_command,
    decode_reply,
    encode_command,
    encode_reply,
)
from core.ports.order_routing import (
    Delivery,
    EngineCommand,
    EngineReply,
    EngineUnavailable,
    OrderRouter,
)

log = logging.getLogger(__name__)

GROUP = "engines"
REPLY_MAXLEN = 10_000
REPLY_TTL_SECONDS = 600
CLAIM_BATCH = 100


class RedisOrderRouter(OrderRouter):
    def __init__(self, url: str, *, namespace: str = "rwa", process_id: str | None = None) -> None:
        self._redis: Redis = Redis.from_url(url)
        self._ns = namespace
        self._reply_key = f"{namespace}:engine:replies:{process_id or uuid.uuid4().hex}"
        self._groups: set[str] = set()
        self._waiting: dict[str, asyncio.Future[EngineReply]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._closed = False

    def commands_key(self, pair_id: str) -> str:
        return f"{self._ns}:engine:commands:{pair_id}"

    async def _ensure_group(self, key: str) -> None:
        if key in self._groups:
            return
        try:
            await self._redis.xgroup_create(key, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._groups.add(key)

    # -- the API side ------------------------------------------------------------------------

    async def request(self, command: EngineCommand, *, timeout: float) -> EngineReply:
        if self._closed:
            raise EngineUnavailable("the order router is closed")
        text = encode_command(command)
        self._start_reader()
        future: asyncio.Future[EngineReply] = asyncio.get_running_loop().create_future()
        self._waiting[command.request_id] = future
        try:
            key = self.commands_key(command.pair_id)
            try:
                await self._ensure_group(key)
                await self._redis.xadd(key, {"command": text, "replyTo": self._reply_key})
            except RedisError as exc:
                raise EngineUnavailable(
                    "the command queue cannot be reached", details={"pair": command.pair_id}
                ) from exc
            try:
                return await asyncio.wait_for(asyncio.shield(future), timeout)
            except TimeoutError:
                raise EngineUnavailable(
                    "no matching engine answered in time", details={"pair": command.pair_id}
                ) from None
        finally:
            self._waiting.pop(command.request_id, None)

    def _start_reader(self) -> None:
        if self._reader is None or self._reader.done():
            self._reader = asyncio.get_running_loop().create_task(
                self._read_replies(), name="engine-replies"
            )

    async def _read_replies(self) -> None:
        last = "0-0"
        while not self._closed:
            try:
                found: Any = await self._redis.xread({self._reply_key: last}, block=1000, count=100)
            except asyncio.CancelledError:
                raise
            except RedisError as exc:
                log.warning("reading engine replies failed: %s", exc)
                await asyncio.sleep(0.5)
                continue
            read: list[str] = []
            for _, entries in found or []:
                for entry_id, fields in entries:
                    last = _text(entry_id)
                    read.append(last)
                    self._deliver(fields)
            if read:  # each reply is read once: the stream holds only unread ones
                with contextlib.suppress(RedisError):
                    await self._redis.xdel(self._reply_key, *read)

    def _deliver(self, fields: dict[Any, Any]) -> None:
        try:
            reply = decode_reply(fields[b"reply"])
        except Exception:  # a malformed reply never stops the reader
            log.exception("malformed engine reply")
            return
        future = self._waiting.get(reply.request_id)
        if future is not None and not future.done():
            future.set_result(reply)

    # -- the engine side ---------------------------------------------------------------------

    async def receive(
        self, consumer: str, pair_ids: Sequence[str], *, count: int, block_seconds: float
    ) -> list[Delivery]:
        if not pair_ids:
            await asyncio.sleep(block_seconds)
            return []
        keys = [self.commands_key(pair_id) for pair_id in pair_ids]
        for key in keys:
            await self._ensure_group(key)
        found: Any = await self._redis.xreadgroup(
            GROUP,
            consumer,
            {key: ">" for key in keys},
            count=count,
            block=max(1, int(block_seconds * 1000)),
        )
        deliveries: list[Delivery] = []
        for key, entries in found or []:
            for entry_id, fields in entries:
                delivery = await self._decode(_text(key), entry_id, fields, redelivered=False)
                if delivery is not None:
                    deliveries.append(delivery)
        return deliveries

    async def claim(
        self, consumer: str, pair_id: str, *, min_idle_seconds: float = 0.0
    ) -> list[Delivery]:
        key = self.commands_key(pair_id)
        await self._ensure_group(key)
        claimed: list[Delivery] = []
        start = "0-0"
        while True:
            answer: Any = await self._redis.xautoclaim(
                key,
                GROUP,
                consumer,
                min_idle_time=int(min_idle_seconds * 1000),
                start_id=start,
                count=CLAIM_BATCH,
            )
            start, entries = _text(answer[0]), answer[1]
            for entry_id, fields in entries:
                delivery = await self._decode(key, entry_id, fields, redelivered=True)
                if delivery is not None:
                    claimed.append(delivery)
            if start == "0-0":
                return claimed

    async def reply(self, delivery: Delivery, reply: EngineReply) -> None:
        text = encode_reply(reply)
        key = self.commands_key(delivery.command.pair_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xadd(delivery.reply_to, {"reply": text}, maxlen=REPLY_MAXLEN, approximate=True)
            pipe.expire(delivery.reply_to, REPLY_TTL_SECONDS)
            pipe.xack(key, GROUP, delivery.delivery_id)
            pipe.xdel(key, delivery.delivery_id)
            await pipe.execute()

    async def _decode(
        self, key: str, entry_id: Any, fields: dict[Any, Any] | None, *, redelivered: bool
    ) -> Delivery | None:
        """The entry as a delivery; a malformed one (no requester can be told) is logged and
        dropped, so it cannot block its pair's queue. An entry deleted meanwhile is None."""
        if not fields:
            return None
        try:
            return Delivery(
                command=decode_command(fields[b"command"]),
                delivery_id=_text(entry_id),
                reply_to=_text(fields[b"replyTo"]),
                redelivered=redelivered,
            )
        except Exception:
            log.exception("dropping a malformed engine command %s on %s", _text(entry_id), key)
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.xack(key, GROUP, entry_id)
                pipe.xdel(key, entry_id)
                await pipe.execute()
            return None

    async def close(self) -> None:
        self._closed = True
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(EngineUnavailable("the order router closed"))
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        with contextlib.suppress(RedisError):
            await self._redis.delete(self._reply_key)
        await self._redis.aclose()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
