"""Permission event feed port: the Entity Permissions Core's events, read from a cursor.

The polling fallback of the webhook. Events come back as the JSON text the Core sent, one
document per event, so that the core parses webhook and feed events the same way.
"""

from __future__ import annotations

import abc

import attrs


@attrs.frozen
class FeedPage:
    """Events after a cursor, oldest first, and the cursor to ask from next time.

    ``next_cursor`` is opaque; ``None`` means "no new position" (keep the one you had).
    """

    events: tuple[str, ...]
    next_cursor: str | None


class PermissionEventFeed(abc.ABC):
    """Raises ``ServiceUnavailable`` when the feed cannot be read (timeout, refused, 5xx,
    an answer that is not a feed page)."""

    @abc.abstractmethod
    async def fetch(self, after: str | None, limit: int) -> FeedPage:
        """At most ``limit`` events that come after ``after`` (``None``: from the start)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
