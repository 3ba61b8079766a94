"""Domain events: the audit trail of a market, and what the outbox publishes.

Every event belongs to a *stream* (``market:<id>``; later ``pair:<id>``, ``user:<id>``) and
gets a sequence number within it, ``seq``, 1, 2, 3, ... assigned by the storage in the
transaction that writes the event. ``(stream, seq)`` identifies an event for consumers:
delivery is at least once, and subscribers and reactions deduplicate by it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from core.shared.ids import new_id


@attrs.frozen
class Actor:
    """Who did something: a user from a bearer token, or the system itself."""

    id: str
    type: str = "user"  # "user" | "system" | "permissions_core"
    roles: tuple[str, ...] = ()
    entity_id: str | None = None

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        return cls(id=name, type="system")


def market_stream(market_id: str) -> str:
    return f"market:{market_id}"


def _default_stream(event: DomainEvent) -> str:
    return market_stream(event.aggregate_id)


@attrs.frozen
class DomainEvent:
    """One fact about an aggregate, with who caused it, when, and why.

    ``stream`` defaults to the market stream of ``aggregate_id``; ``seq`` is None until the
    storage has appended the event (events read back from storage or the bus carry it).
    """

    type: str
    aggregate_id: str
    actor_id: str
    actor_type: str
    occurred_at: datetime
    decision: str | None = None
    reason: str | None = None
    metadata: dict[str, Any] = attrs.field(factory=dict)
    id: str = attrs.field(factory=new_id)
    stream: str = attrs.field(default=attrs.Factory(_default_stream, takes_self=True))
    seq: int | None = None


class InvalidEvent(ValueError):
    """An event no adapter can store or carry: metadata that is not plain JSON, or a naive
    time. Every storage and bus adapter refuses it the same way, before writing anything."""


def check_event(event: DomainEvent) -> None:
    """Raise ``InvalidEvent`` unless ``event`` survives a JSON round trip unchanged.

    Metadata may hold only None, bool, int, finite float, str, lists and dicts with string
    keys: a Decimal, datetime, set, tuple or bytes would be refused by one adapter and
    silently changed or accepted by another.
    """
    if event.occurred_at.tzinfo is None or event.occurred_at.utcoffset() is None:
        raise InvalidEvent(f"event {event.type}: occurred_at is a naive datetime")
    if not event.stream:
        raise InvalidEvent(f"event {event.type}: empty stream")
    _check_json(event.metadata, "metadata")


def _check_json(value: object, path: str) -> None:
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidEvent(f"{path}: {value!r} is not a JSON number")
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(item, f"{path}[{index}]")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidEvent(f"{path}: key {key!r} is not a string")
            _check_json(item, f"{path}.{key}")
        return
    raise InvalidEvent(f"{path}: a {type(value).__name__} is not a JSON value")
