"""The Entity Permissions Core's event feed: over HTTP (production) and in memory (test).

``GET {base}/api/v1/events?after=<cursor>&limit=<n>`` (``after`` left out the first time)
answers ``{"events": [<event>, ...], "nextCursor": "<opaque>" | null}``, bare or inside
``{"data": ...}``; each event has the shape of the webhook's direct payload.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

import httpx

from adapters.outbound.permissions.client import (
    DEFAULT_TIMEOUT_SECONDS,
    EVENTS_PATH,
    PermissionsCoreClient,
    unwrap,
)
from core.ports.permission_feed import FeedPage, PermissionEventFeed
from core.shared.text import text_problem

MAX_CURSOR_LENGTH = 500


def _text(event: Any) -> str:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


class HttpPermissionEventFeed(PermissionEventFeed):
    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.client = PermissionsCoreClient(
            base_url, api_key=api_key, timeout_seconds=timeout_seconds, transport=transport
        )

    async def fetch(self, after: str | None, limit: int) -> FeedPage:
        params = {"limit": str(limit)}
        if after is not None:
            params["after"] = after
        answer = unwrap(await self.client.request("GET", EVENTS_PATH, params=params))
        what = f"GET {EVENTS_PATH}"
        if not isinstance(answer, dict) or not isinstance(answer.get("events"), list):
            raise self.client.malformed(what, "no `events` list")
        cursor = answer.get("nextCursor")
        if isinstance(cursor, int) and not isinstance(cursor, bool):
            cursor = str(cursor)
        if cursor is not None and not isinstance(cursor, str):
            raise self.client.malformed(what, "`nextCursor` is neither a string nor null")
        if cursor is not None and (
            len(cursor) > MAX_CURSOR_LENGTH or text_problem(cursor) is not None
        ):
            # it is stored and sent back: it must be short, printable text
            raise self.client.malformed(what, "`nextCursor` is not a short printable string")
        return FeedPage(events=tuple(_text(e) for e in answer["events"]), next_cursor=cursor)

    async def close(self) -> None:
        await self.client.close()


class MemoryPermissionEventFeed(PermissionEventFeed):
    """An in-process feed: ``publish`` appends; the cursor is the count of events seen."""

    def __init__(self) -> None:
        self._events: list[str] = []
        self._lock = threading.Lock()

    def publish(self, event: Mapping[str, Any] | str) -> None:
        with self._lock:
            self._events.append(event if isinstance(event, str) else _text(dict(event)))

    async def fetch(self, after: str | None, limit: int) -> FeedPage:
        start = 0
        if after is not None:
            try:
                start = int(after)
            except ValueError:
                start = 0
        with self._lock:
            chunk = tuple(self._events[start : start + max(limit, 0)])
        if not chunk:
            return FeedPage(events=(), next_cursor=after)
        return FeedPage(events=chunk, next_cursor=str(start + len(chunk)))
