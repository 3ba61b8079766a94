"""In-process event bus: each subscriber gets its own bounded queue."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from core.ports.event_bus import EventBus, Subscription
from core.shared.events import DomainEvent

log = logging.getLogger(__name__)


class MemorySubscription(Subscription):
    def __init__(self, bus: MemoryEventBus, prefix: str, maxsize: int) -> None:
        self._bus = bus
        self.prefix = prefix
        self.queue: asyncio.Queue[DomainEvent] = asyncio.Queue(maxsize=maxsize)
        self.dropped = 0

    def offer(self, event: DomainEvent) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1  # a slow subscriber never blocks the publisher

    async def __aiter__(self) -> AsyncIterator[DomainEvent]:  # type: ignore[override]
        while True:
            yield await self.queue.get()

    async def get(self, timeout: float) -> DomainEvent:
        return await asyncio.wait_for(self.queue.get(), timeout=timeout)

    async def close(self) -> None:
        self._bus.unsubscribe(self)


class MemoryEventBus(EventBus):
    def __init__(self, queue_size: int = 10_000) -> None:
        self._subscriptions: list[MemorySubscription] = []
        self._queue_size = queue_size

    async def publish(self, event: DomainEvent) -> None:
        for sub in list(self._subscriptions):
            if event.type.startswith(sub.prefix):
                sub.offer(event)

    async def subscribe(self, prefix: str = "") -> Subscription:
        sub = MemorySubscription(self, prefix, self._queue_size)
        self._subscriptions.append(sub)
        return sub

    def unsubscribe(self, sub: MemorySubscription) -> None:
        if sub in self._subscriptions:
            self._subscriptions.remove(sub)
