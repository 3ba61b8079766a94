"""Domain events: the audit trail of a market, and what the outbox publishes."""

from __future__ import annotations

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


@attrs.frozen
class DomainEvent:
    """One fact about an aggregate, with who caused it, when, and why."""

    type: str
    aggregate_id: str
    actor_id: str
    actor_type: str
    occurred_at: datetime
    decision: str | None = None
    reason: str | None = None
    metadata: dict[str, Any] = attrs.field(factory=dict)
    id: str = attrs.field(factory=new_id)
