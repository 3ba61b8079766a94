"""Event bus port: fan-out of published domain events to live subscribers."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator

import attrs

from core.shared.events import DomainEvent


@attrs.frozen
class StreamGap:
    """What a subscription yields where it had to drop events because its subscriber fell
    behind (its queue was full): ``dropped`` events, of any stream, are missing here. A
    subscriber that keeps state from events (a WebSocket gateway) resyncs from storage, with
    a fresh snapshot, instead of going on as if nothing was lost."""

    dropped: int


SubscriptionItem = DomainEvent | StreamGap


class Subscription(abc.ABC):
    """A live feed of events whose type starts with the subscription's prefix.

    Each event comes at most once per ``(stream, seq)``: a redelivery (the relay publishes at
    least once) or an older event of a stream than one already delivered is dropped. Events
    come in each stream's order. Overflow is never silent: a ``StreamGap`` takes the place
    of what was dropped.
    """

    @abc.abstractmethod
    def __aiter__(self) -> AsyncIterator[SubscriptionItem]: ...

    @abc.abstractmethod
    async def get(self, timeout: float) -> SubscriptionItem:
        """The next event or gap; ``TimeoutError`` when none arrives in time."""

    @abc.abstractmethod
    async def close(self) -> None: ...


class EventBus(abc.ABC):
    """At-least-once publication from the outbox relay to subscribers."""

    @abc.abstractmethod
    async def publish(self, event: DomainEvent) -> None:
        """Send ``event`` to every subscriber; ``InvalidEvent`` (nothing sent) when its
        metadata is not plain JSON or its time is naive, on every adapter alike."""

    @abc.abstractmethod
    async def subscribe(self, prefix: str = "") -> Subscription: ...

    async def ping(self) -> None:  # noqa: B027 - in-process bus is always reachable
        """Raise if the bus cannot be reached."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
