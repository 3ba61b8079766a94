"""Channels: what a client can subscribe to, one registry entry per channel name.

A channel kind declares whether it is private (it needs ``auth``), checks the parameters of a
subscription, names the *topic* it listens to on the event bus (a stream such as
``user:<id>`` or ``pair:<id>``, or a family of streams such as ``market:*``), produces the
first message of a subscription (its snapshot, read from storage) and turns each event of its
topic into an update. Every update carries the ``stream`` and ``seq`` of the event it comes
from, so a client sees gaps per stream.

Every channel of DESIGN §6 has its source (``assembly.standard_registry``): ``markets``
here, ``balances`` in ``private.py``, the trading channels in ``trading.py`` and the market
data channels in ``marketdata.py``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from adapters.inbound.ws.protocol import ClientError, SubscribeRequest
from adapters.inbound.ws.send_queue import Outgoing
from core.shared.events import Actor, DomainEvent

# ``publish(topic, channel, request, message)``: the gateway's way for a channel with state of
# its own to send a message to every subscription of one request.
Publish = Callable[[str, "Channel", SubscribeRequest, Outgoing], None]


class Channel(abc.ABC):
    """One kind of subscription."""

    name: str
    private: bool = False

    def check(self, request: SubscribeRequest) -> SubscribeRequest:
        """The request with this channel's defaults, or ``ClientError("invalid_params")``.
        By default a channel takes no ``pair``, ``depth`` or ``interval``."""
        for field in ("pair", "depth", "interval"):
            if getattr(request, field) is not None:
                raise ClientError("invalid_params", f"channel {self.name} takes no {field}")
        return request

    @abc.abstractmethod
    def topic(self, request: SubscribeRequest, actor: Actor | None) -> str:
        """The bus stream (``user:7``) or stream family (``market:*``) the subscription
        listens to. A private channel's topic is always the authenticated user's stream."""

    @abc.abstractmethod
    async def snapshot(self, request: SubscribeRequest, actor: Actor | None) -> Mapping[str, Any]:
        """The subscription's first message: the state now, from storage."""

    @abc.abstractmethod
    def update(self, request: SubscribeRequest, event: DomainEvent) -> Outgoing | None:
        """The message for one event of the topic, or None when it is not for this channel."""

    # A channel whose updates carry a ``seq`` that must be the previous one plus 1 (``book``):
    # the gateway drops updates its snapshot already holds and answers a jump with a fresh
    # snapshot.
    sequenced: bool = False

    async def resolve_topic(self, request: SubscribeRequest, actor: Actor | None) -> str:
        """``topic``, for channels that must read storage to name it (a pair's id)."""
        return self.topic(request, actor)

    def update_for(
        self, request: SubscribeRequest, event: DomainEvent, actor: Actor | None
    ) -> Outgoing | None:
        """The message for one subscriber: a private channel whose topic carries other users'
        events filters them here (the gateway builds it once per user, never shares it)."""
        return self.update(request, event)

    # Hooks for channels that keep state of their own (``ticker``, ``candles``: a value shared
    # by every subscriber of one request, re-read from storage and pushed with ``publish``).

    def bind(self, publish: Publish) -> None:
        """Called once by the gateway: ``publish(topic, channel, request, message)`` sends a
        message to every current subscription of ``request`` on this channel."""
        return None

    def attached(self, request: SubscribeRequest, actor: Actor | None) -> None:
        """A subscription of ``request`` was added (before its snapshot is read)."""
        return None

    def detached(self, request: SubscribeRequest, actor: Actor | None) -> None:
        """A subscription of ``request`` ended."""
        return None

    # A channel that must see every event of the bus, whatever its subscriptions' topics
    # (``balances``: a ``balance.changed`` notice names its users in its metadata).
    observes_all: bool = False

    def observe(self, event: DomainEvent) -> None:
        """Every event the gateway receives, when ``observes_all``."""
        return None


class ChannelRegistry:
    """Channels by name; a later channel of the same name replaces an earlier one."""

    def __init__(self, channels: Iterable[Channel] = ()) -> None:
        self._channels: dict[str, Channel] = {}
        for channel in channels:
            self.register(channel)

    def register(self, channel: Channel) -> None:
        self._channels[channel.name] = channel

    def get(self, name: str) -> Channel | None:
        return self._channels.get(name)

    def names(self) -> list[str]:
        return sorted(self._channels)

    def channels(self) -> list[Channel]:
        return list(self._channels.values())
