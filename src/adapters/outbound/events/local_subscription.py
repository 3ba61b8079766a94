"""The subscriber side every bus adapter shares: a bounded local queue per subscription."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from core.ports.event_bus import StreamGap, Subscription, SubscriptionItem
from core.shared.events import DomainEvent


class LocalSubscription(Subscription):
    """Fed by its bus with ``offer``; never blocks the publisher or the other subscribers.

    - Deduplication: the last ``seq`` delivered of every stream is kept; an event at or below
      it (a redelivery by the relay) is dropped.
    - Overflow: when the queue is full the event is dropped and counted; the subscriber then
      receives one ``StreamGap`` with the count, where the events are missing (before the
      next event that fits, or as soon as it has emptied the queue).
    """

    def __init__(
        self, prefix: str, maxsize: int, on_close: Callable[[LocalSubscription], None]
    ) -> None:
        if maxsize < 2:
            raise ValueError("a subscription queue holds at least 2 items (an event and a gap)")
        self.prefix = prefix
        self.queue: asyncio.Queue[SubscriptionItem] = asyncio.Queue(maxsize=maxsize)
        self.dropped = 0  # overflowed events, ever
        self.duplicates = 0  # redelivered events dropped, ever
        self._missing = 0  # overflowed events not yet reported by a gap
        self._seen: dict[str, int] = {}  # stream -> last seq delivered
        self._on_close = on_close

    def offer(self, event: DomainEvent) -> None:
        if not event.type.startswith(self.prefix):
            return
        if event.seq is not None and event.seq <= self._seen.get(event.stream, 0):
            self.duplicates += 1
            return
        free = self.queue.maxsize - self.queue.qsize()
        if free < (2 if self._missing else 1):
            self._missing += 1
            self.dropped += 1
            return
        if self._missing:
            self.queue.put_nowait(StreamGap(dropped=self._missing))
            self._missing = 0
        self.queue.put_nowait(event)
        if event.seq is not None:
            self._seen[event.stream] = event.seq

    def _gap_if_drained(self) -> StreamGap | None:
        if self._missing and self.queue.empty():
            gap, self._missing = StreamGap(dropped=self._missing), 0
            return gap
        return None

    async def __aiter__(self) -> AsyncIterator[SubscriptionItem]:
        while True:
            gap = self._gap_if_drained()
            yield gap if gap is not None else await self.queue.get()

    async def get(self, timeout: float) -> SubscriptionItem:
        gap = self._gap_if_drained()
        if gap is not None:
            return gap
        return await asyncio.wait_for(self.queue.get(), timeout=timeout)

    async def close(self) -> None:
        self._on_close(self)
