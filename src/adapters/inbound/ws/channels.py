"""Channels: what a client can subscribe to, one registry entry per channel name.

A channel kind declares whether it is private (it needs ``auth``), checks the parameters of a
subscription, names the *topic* it listens to on the event bus (a stream such as
``user:<id>`` or ``pair:<id>``, or a family of streams such as ``market:*``), produces the
first message of a subscription (its snapshot, read from storage) and turns each event of its
topic into an update. Every update carries the ``stream`` and ``seq`` of the event it comes
from, so a client sees gaps per stream.

Channels of DESIGN §6 without a source yet (``ticker``, ``candles``) are registered as
``UnavailableChannel``: they check their parameters like the real ones will, then answer
``channel_unavailable``. The trading channels (``book``, ``trades``, private ``orders`` and
``fills``, in ``trading.py``) are registered over their placeholders.
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
    available: bool = True

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


class UnavailableChannel(Channel):
    """A channel of DESIGN §6 whose source does not exist yet: checked like the real one,
    answered with ``channel_unavailable``."""

    available = False

    def __init__(
        self,
        name: str,
        *,
        private: bool = False,
        pair: str = "none",  # "required", "optional" or "none"
        takes_depth: bool = False,
        needs_interval: bool = False,
        reason: str = "it needs the trading engine, which is not wired yet",
    ) -> None:
        self.name = name
        self.private = private
        self.pair = pair
        self.takes_depth = takes_depth
        self.needs_interval = needs_interval
        self.reason = reason

    def check(self, request: SubscribeRequest) -> SubscribeRequest:
        if self.pair == "required" and request.pair is None:
            raise ClientError("invalid_params", f"channel {self.name} needs a pair")
        if self.pair == "none" and request.pair is not None:
            raise ClientError("invalid_params", f"channel {self.name} takes no pair")
        if request.depth is not None and not self.takes_depth:
            raise ClientError("invalid_params", f"channel {self.name} takes no depth")
        if self.needs_interval and request.interval is None:
            raise ClientError("invalid_params", f"channel {self.name} needs an interval")
        if request.interval is not None and not self.needs_interval:
            raise ClientError("invalid_params", f"channel {self.name} takes no interval")
        return request

    def topic(self, request: SubscribeRequest, actor: Actor | None) -> str:
        raise ClientError("channel_unavailable", self.unavailable_message())

    async def snapshot(self, request: SubscribeRequest, actor: Actor | None) -> Mapping[str, Any]:
        raise ClientError("channel_unavailable", self.unavailable_message())

    def update(self, request: SubscribeRequest, event: DomainEvent) -> Outgoing | None:
        return None

    def unavailable_message(self) -> str:
        return f"channel {self.name} is not available yet: {self.reason}"


class ChannelRegistry:
    """Channels by name; a later channel of the same name replaces an earlier one (the
    trading engine registers ``book`` over the unavailable entry)."""

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


def trading_placeholders() -> list[Channel]:
    """The channels of DESIGN §6 that wait for the trading engine."""
    return [
        UnavailableChannel("book", pair="required", takes_depth=True),
        UnavailableChannel("trades", pair="required"),
        UnavailableChannel("ticker", pair="optional"),
        UnavailableChannel("candles", pair="required", needs_interval=True),
        UnavailableChannel("orders", private=True),
        UnavailableChannel("fills", private=True),
    ]


# Ops of DESIGN §6 that wait for the trading engine: answered with ``op_unavailable`` (after
# the authentication check they will have).
UNAVAILABLE_OPS = {
    "order.submit": "order entry over WebSocket needs the trading engine, not wired yet",
    "order.cancel": "order entry over WebSocket needs the trading engine, not wired yet",
}
