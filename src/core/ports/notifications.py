"""Notification port: tell a user that something happened to them (a trade of theirs).

Delivery is at least once: a job sends each notification and is retried when ``send``
raises, so a receiver deduplicates on ``Notification.id`` (stable across retries).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs


@attrs.frozen
class Notification:
    id: str  # stable: the same notification sent again has the same id
    user_id: str
    type: str  # e.g. "trade.executed"
    occurred_at: datetime
    data: Mapping[str, Any] = attrs.field(factory=dict)


class NotificationFailed(Exception):
    """The notification was not delivered; the job tries again later."""


class Notifier(abc.ABC):
    @abc.abstractmethod
    async def send(self, notification: Notification) -> None:
        """Deliver one notification; ``NotificationFailed`` when it was not accepted."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
