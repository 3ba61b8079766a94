"""Inbox port: what the service has already consumed from outside (idempotent consumers).

``processed_events`` remembers every inbound integration event by its id, with what came of
it, so a redelivered event is recognised and does nothing. ``cursors`` keeps small named
positions in outside feeds (the Entity Permissions Core's event feed, for one). Both are
parts of the storage unit of work, so recording an event commits with the change it caused.
"""

from __future__ import annotations

import abc
import enum
from datetime import datetime
from typing import Any

import attrs

from core.shared.errors import Conflict


class ProcessStatus(enum.StrEnum):
    SUCCESS = "success"  # the event did what it says (a market approved or rejected)
    FAILED = "failed"  # it could not be applied; a redelivery may try again
    SKIPPED = "skipped"  # nothing to do (unknown type, market no longer pending); final


@attrs.frozen
class ProcessedEvent:
    """One consumed event. ``attempts`` counts processing runs and guards concurrent updates."""

    event_id: str
    event_type: str
    source: str  # "webhook" | "sns" | "poller"
    status: ProcessStatus
    received_at: datetime  # first delivery
    processed_at: datetime  # last processing run
    error: str | None = None
    payload: dict[str, Any] = attrs.field(factory=dict)
    context: dict[str, Any] = attrs.field(factory=dict)
    attempts: int = 1


class DuplicateEvent(Conflict):
    """Another delivery of the same event was recorded first (or changed its record first)."""

    code = "duplicate_event"

    def __init__(self, event_id: str) -> None:
        super().__init__(f"event {event_id} is already recorded", details={"eventId": event_id})
        self.event_id = event_id


class ProcessedEventRepository(abc.ABC):
    @abc.abstractmethod
    async def get(self, event_id: str) -> ProcessedEvent | None: ...

    @abc.abstractmethod
    async def add(self, record: ProcessedEvent) -> None:
        """Record a first delivery; ``DuplicateEvent`` when the id is already recorded.

        With concurrent units of work the duplicate may only be detected at ``commit()``,
        which then raises ``DuplicateEvent`` and applies nothing of the unit.
        """

    @abc.abstractmethod
    async def replace(self, record: ProcessedEvent, *, expected_attempts: int) -> None:
        """Overwrite the record of ``record.event_id`` whose stored ``attempts`` equals
        ``expected_attempts`` (a retry of a failed event). ``DuplicateEvent`` when the stored
        record is missing or was changed by someone else (possibly only at ``commit()``)."""


class CursorRepository(abc.ABC):
    """Named positions (opaque strings) in outside feeds."""

    @abc.abstractmethod
    async def get(self, key: str) -> str | None: ...

    @abc.abstractmethod
    async def set(self, key: str, value: str, at: datetime) -> None:
        """Create or overwrite the cursor ``key``."""
