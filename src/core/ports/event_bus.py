"""Event bus port: fan-out of published domain events to live subscribers."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator

from core.shared.events import DomainEvent


class Subscription(abc.ABC):
    """A live feed of events whose type starts with the subscription's prefix."""

    @abc.abstractmethod
    def __aiter__(self) -> AsyncIterator[DomainEvent]: ...

    @abc.abstractmethod
    async def get(self, timeout: float) -> DomainEvent:
        """The next event; ``TimeoutError`` when none arrives in time."""

    @abc.abstractmethod
    async def close(self) -> None: ...


class EventBus(abc.ABC):
    """At-least-once publication from the outbox relay to subscribers."""

    @abc.abstractmethod
    async def publish(self, event: DomainEvent) -> None: ...

    @abc.abstractmethod
    async def subscribe(self, prefix: str = "") -> Subscription: ...

    async def ping(self) -> None:  # noqa: B027 - in-process bus is always reachable
        """Raise if the bus cannot be reached."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
