"""The subscriber side every bus adapter shares: a bounded local queue per subscription."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from core.ports.event_bus import Subscription
from core.shared.events import DomainEvent


class LocalSubscription(Subscription):
    """Fed by its bus with ``offer``; a full queue drops the event for this subscriber only,
    so a slow subscriber never blocks the publisher or the other subscribers."""

    def __init__(
        self, prefix: str, maxsize: int, on_close: Callable[[LocalSubscription], None]
    ) -> None:
        self.prefix = prefix
        self.queue: asyncio.Queue[DomainEvent] = asyncio.Queue(maxsize=maxsize)
        self.dropped = 0
        self._on_close = on_close

    def offer(self, event: DomainEvent) -> None:
        if not event.type.startswith(self.prefix):
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1

    async def __aiter__(self) -> AsyncIterator[DomainEvent]:  # type: ignore[override]
        while True:
            yield await self.queue.get()

    async def get(self, timeout: float) -> DomainEvent:
        return await asyncio.wait_for(self.queue.get(), timeout=timeout)

    async def close(self) -> None:
        self._on_close(self)
