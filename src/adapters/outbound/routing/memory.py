"""``MemoryOrderRouter``: the routing port inside one process (tests, the in-process engine
host). It keeps the Redis Streams semantics: one queue per pair, entries pending per consumer
until replied to, claimable by another consumer, and every command and reply goes through the
same JSON codec, so what Redis could not carry is refused here too."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence

import attrs

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


@attrs.define
class _Entry:
    entry_id: str
    text: str
    reply_to: str
    consumer: str | None = None  # None: never delivered
    deliveries: int = 0
    delivered_at: float = 0.0  # monotonic


class MemoryOrderRouter(OrderRouter):
    def __init__(self, name: str = "memory") -> None:
        self._name = name
        self._streams: dict[str, dict[str, _Entry]] = {}  # pair -> entries in order
        self._numbers = itertools.count(1)
        self._waiting: dict[str, asyncio.Future[EngineReply]] = {}
        self._arrived = asyncio.Event()
        self._closed = False

    def _stream(self, pair_id: str) -> dict[str, _Entry]:
        return self._streams.setdefault(pair_id, {})

    async def request(self, command: EngineCommand, *, timeout: float) -> EngineReply:
        if self._closed:
            raise EngineUnavailable("the order router is closed")
        text = encode_command(command)
        future: asyncio.Future[EngineReply] = asyncio.get_running_loop().create_future()
        self._waiting[command.request_id] = future
        entry_id = f"{next(self._numbers)}-0"
        self._stream(command.pair_id)[entry_id] = _Entry(entry_id, text, self._name)
        self._arrived.set()
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            raise EngineUnavailable(
                "no matching engine answered in time", details={"pair": command.pair_id}
            ) from None
        finally:
            self._waiting.pop(command.request_id, None)

    async def receive(
        self, consumer: str, pair_ids: Sequence[str], *, count: int, block_seconds: float
    ) -> list[Delivery]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + block_seconds
        while True:
            found: list[Delivery] = []
            for pair_id in pair_ids:
                fresh = [e for e in self._stream(pair_id).values() if e.consumer is None]
                for entry in fresh[:count]:
                    entry.consumer, entry.deliveries = consumer, 1
                    entry.delivered_at = loop.time()
                    found.append(self._delivery(entry))
            if found or self._closed:
                return found
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                return []

    async def claim(
        self, consumer: str, pair_id: str, *, min_idle_seconds: float = 0.0
    ) -> list[Delivery]:
        now = asyncio.get_running_loop().time()
        claimed: list[Delivery] = []
        for entry in self._stream(pair_id).values():
            if entry.consumer is not None and now - entry.delivered_at >= min_idle_seconds:
                entry.consumer = consumer
                entry.deliveries += 1
                entry.delivered_at = now
                claimed.append(self._delivery(entry))
        return claimed

    async def reply(self, delivery: Delivery, reply: EngineReply) -> None:
        text = encode_reply(reply)
        self._stream(delivery.command.pair_id).pop(delivery.delivery_id, None)
        future = self._waiting.get(reply.request_id)
        if future is not None and not future.done():
            future.set_result(decode_reply(text))

    async def close(self) -> None:
        self._closed = True
        self._arrived.set()
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(EngineUnavailable("the order router closed"))

    @staticmethod
    def _delivery(entry: _Entry) -> Delivery:
        return Delivery(
            command=decode_command(entry.text),
            delivery_id=entry.entry_id,
            reply_to=entry.reply_to,
            redelivered=entry.deliveries > 1,
        )
