"""In-process event bus: each subscriber gets its own bounded queue."""

from __future__ import annotations

import logging

from adapters.outbound.events.local_subscription import LocalSubscription
from core.ports.event_bus import EventBus, Subscription
from core.shared.events import DomainEvent, check_event

log = logging.getLogger(__name__)


class MemoryEventBus(EventBus):
    def __init__(self, queue_size: int = 10_000) -> None:
        self._subscriptions: list[LocalSubscription] = []
        self._queue_size = queue_size

    async def publish(self, event: DomainEvent) -> None:
        check_event(event)  # what the Redis bus could not carry is refused here too
        for sub in list(self._subscriptions):
            sub.offer(event)

    async def subscribe(self, prefix: str = "") -> Subscription:
        sub = LocalSubscription(prefix, self._queue_size, self.unsubscribe)
        self._subscriptions.append(sub)
        return sub

    def unsubscribe(self, sub: LocalSubscription) -> None:
        if sub in self._subscriptions:
            self._subscriptions.remove(sub)
