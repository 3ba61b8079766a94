"""Event bus over Redis pub/sub: WebSocket fan-out across API instances.

Why pub/sub and not streams
---------------------------
The bus carries *live* events from the outbox relay to the subscribers of every API
instance (WebSocket channels). The durable record of each event is the outbox / event
table in the database; the bus only has to fan it out now. Pub/sub fits that exactly:

- every instance that is connected gets every event, with no consumer-group bookkeeping,
  no stream to trim, and no per-instance read cursor to persist;
- the publisher never waits for, or is slowed by, a slow subscriber; Redis keeps a
  bounded output buffer per subscriber connection;
- a subscriber that was disconnected misses what was published meanwhile. That is the
  contract of the WebSocket API already: each stream carries ``seq`` and a client that
  sees a gap resubscribes and gets a fresh snapshot, which is rebuilt from storage.

Streams would add replay after a reconnect, at the price of trimming policy and one
blocking reader per instance; nothing downstream could use the replay, because the
snapshots already come from storage.

Wire format
-----------
Each event is published on the channel ``{namespace}:events:{event.type}`` as JSON made by
cattrs: datetimes as ISO 8601 with their UTC offset, every other field as is (``stream``
and ``seq`` included), so ``structure(unstructure(e)) == e``. An event that would not
survive the round trip (naive time, metadata that is not plain JSON) is refused with
``InvalidEvent``, as the memory bus and the storage adapters refuse it.

One bus instance holds one pub/sub connection with one pattern subscription
(``{namespace}:events:*``) and dispatches to its local subscriptions by prefix, so a
thousand WebSocket subscribers cost one connection.
Operators can watch a subset with ``PSUBSCRIBE rwa:events:market.*``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import datetime
from typing import Any

import cattrs
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from adapters.outbound.events.local_subscription import LocalSubscription
from core.ports.event_bus import EventBus, Subscription
from core.shared.events import DomainEvent, check_event

log = logging.getLogger(__name__)


def _unstructure_datetime(value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"refusing to publish a naive datetime: {value!r}")
    return value.isoformat()


def _structure_datetime(value: Any, _: Any) -> datetime:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"event time without an offset: {value!r}")
    return parsed


event_converter = cattrs.Converter()
event_converter.register_unstructure_hook(datetime, _unstructure_datetime)
event_converter.register_structure_hook(datetime, _structure_datetime)


def encode_event(event: DomainEvent) -> bytes:
    check_event(event)
    return json.dumps(
        event_converter.unstructure(event, DomainEvent), separators=(",", ":")
    ).encode()


def decode_event(data: bytes | str) -> DomainEvent:
    return event_converter.structure(json.loads(data), DomainEvent)


class RedisEventBus(EventBus):
    """``publish`` goes to Redis; every bus instance (every API process) receives it."""

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "rwa",
        queue_size: int = 10_000,
        reconnect_delay: float = 0.5,
    ) -> None:
        self._redis: Redis = Redis.from_url(url)
        self._channel_prefix = f"{namespace}:events:"
        self._pattern = f"{_escape_glob(namespace)}:events:*"
        self._queue_size = queue_size
        self._reconnect_delay = reconnect_delay
        self._subscriptions: list[LocalSubscription] = []
        self._reader: asyncio.Task[None] | None = None
        self._ready: asyncio.Event | None = None
        self._lock = asyncio.Lock()
        self.reconnects = 0

    async def publish(self, event: DomainEvent) -> None:
        await self._redis.publish(self._channel_prefix + event.type, encode_event(event))

    async def subscribe(self, prefix: str = "") -> Subscription:
        await self._ensure_reader()
        sub = LocalSubscription(prefix, self._queue_size, self._unsubscribe)
        self._subscriptions.append(sub)
        return sub

    def _unsubscribe(self, sub: LocalSubscription) -> None:
        if sub in self._subscriptions:
            self._subscriptions.remove(sub)

    async def ping(self) -> None:
        try:
            await self._redis.ping()
        except RedisError as exc:
            raise ConnectionError(f"redis event bus unreachable: {exc}") from exc

    async def close(self) -> None:
        self._subscriptions.clear()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, RedisError):
                await self._reader
            self._reader = None
        await self._redis.aclose()

    async def _ensure_reader(self) -> None:
        """Start the pub/sub reader once, and return only when Redis confirmed the pattern:
        an event published after ``subscribe()`` returns is then never missed."""
        async with self._lock:
            if self._reader is None or self._reader.done():
                self._ready = asyncio.Event()
                self._reader = asyncio.create_task(self._read(self._ready), name="redis-bus")
            ready = self._ready
            reader = self._reader
        assert ready is not None
        waiter = asyncio.ensure_future(ready.wait())
        done, _ = await asyncio.wait({waiter, reader}, return_when=asyncio.FIRST_COMPLETED)
        if waiter not in done:
            waiter.cancel()
            try:
                reader.result()
            except RedisError as exc:
                raise ConnectionError(f"redis event bus unreachable: {exc}") from exc
            raise ConnectionError("the Redis event bus reader stopped")

    async def _read(self, ready: asyncio.Event) -> None:
        first = True
        while True:
            pubsub: PubSub = self._redis.pubsub()
            try:
                await pubsub.psubscribe(self._pattern)
                while True:
                    # A cancellation can come back from redis-py as "no message" (see the job
                    # broker's listen); poll with a timeout and honour it here.
                    current = asyncio.current_task()
                    if current is not None and current.cancelling():
                        raise asyncio.CancelledError
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    kind = message.get("type")
                    if kind == "psubscribe":
                        first = False
                        ready.set()
                    elif kind == "pmessage":
                        self._dispatch(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if first:
                    raise  # subscribe() reports it; nothing was listening yet
                self.reconnects += 1
                log.warning(
                    "redis event bus: connection lost (%s); events published meanwhile are "
                    "missed; reconnecting",
                    exc,
                )
                await asyncio.sleep(self._reconnect_delay)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _dispatch(self, data: bytes) -> None:
        try:
            event = decode_event(data)
        except Exception:
            log.exception("redis event bus: dropping an undecodable message")
            return
        for sub in list(self._subscriptions):
            sub.offer(event)


def _escape_glob(text: str) -> str:
    """Escape Redis glob metacharacters so a namespace matches only itself."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)
