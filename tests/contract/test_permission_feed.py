"""Permission event feed port contract: memory, and HTTP against the stand-in Core."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from adapters.outbound.permissions.feed import HttpPermissionEventFeed, MemoryPermissionEventFeed
from core.ports.permission_feed import PermissionEventFeed
from core.shared.errors import ServiceUnavailable
from tests.harness.permissions_core import TEST_API_KEY, PermissionsCore, approval_event


class PermissionFeedContract:
    """Mixin: subclasses provide ``feed`` and ``publish``."""

    feed: PermissionEventFeed

    def publish(self, event: dict[str, Any]) -> None:
        raise NotImplementedError

    async def test_an_empty_feed(self) -> None:
        page = await self.feed.fetch(None, 10)
        assert page.events == ()

    async def test_pages_in_order_from_a_cursor(self) -> None:
        events = [approval_event(f"evt-{i}", f"m-{i}") for i in range(5)]
        for event in events:
            self.publish(event)
        first = await self.feed.fetch(None, 2)
        assert [json.loads(e) for e in first.events] == events[:2]
        assert first.next_cursor is not None
        second = await self.feed.fetch(first.next_cursor, 2)
        assert [json.loads(e) for e in second.events] == events[2:4]
        third = await self.feed.fetch(second.next_cursor, 10)
        assert [json.loads(e) for e in third.events] == events[4:]
        assert third.next_cursor is not None
        done = await self.feed.fetch(third.next_cursor, 10)
        assert done.events == ()
        assert done.next_cursor in (None, third.next_cursor)
        # the same cursor gives the same page again (a poller that crashed re-reads it)
        again = await self.feed.fetch(first.next_cursor, 2)
        assert again.events == second.events

    async def test_new_events_appear_after_the_last_cursor(self) -> None:
        self.publish(approval_event("evt-a", "m-a"))
        page = await self.feed.fetch(None, 10)
        self.publish(approval_event("evt-b", "m-b"))
        later = await self.feed.fetch(page.next_cursor, 10)
        assert [json.loads(e)["event_id"] for e in later.events] == ["evt-b"]

    async def test_events_come_back_as_json_text_unchanged(self) -> None:
        odd = {
            "event_id": "evt-ü",
            "event_type": "entity.updated",
            "payload": {"nested": {"list": [1, None, True, "x"]}, "name": "Zürich"},
        }
        self.publish(odd)
        [text] = (await self.feed.fetch(None, 10)).events
        assert isinstance(text, str)
        assert json.loads(text) == odd


class TestMemoryFeed(PermissionFeedContract):
    @pytest.fixture(autouse=True)
    def _feed(self) -> None:
        self.memory = MemoryPermissionEventFeed()
        self.feed = self.memory

    def publish(self, event: dict[str, Any]) -> None:
        self.memory.publish(event)


class TestHttpFeed(PermissionFeedContract):
    @pytest.fixture(autouse=True)
    async def _feed(self, permissions_core: PermissionsCore) -> AsyncIterator[None]:
        self.core = permissions_core
        self.feed = self.http = HttpPermissionEventFeed(
            permissions_core.base_url, api_key=TEST_API_KEY, timeout_seconds=2.0
        )
        yield
        await self.http.close()

    def publish(self, event: dict[str, Any]) -> None:
        self.core.publish(event)

    async def test_the_request_carries_cursor_limit_and_api_key(self) -> None:
        await self.feed.fetch(None, 7)
        await self.feed.fetch("c3", 5)
        first, second = self.core.requests_to("/api/v1/events")
        assert first.query == {"limit": "7"}
        assert second.query == {"after": "c3", "limit": "5"}
        assert {first.headers["x-api-key"], second.headers["x-api-key"]} == {TEST_API_KEY}

    async def test_outages_are_service_unavailable(self) -> None:
        self.core.fail_status = 500
        with pytest.raises(ServiceUnavailable, match="HTTP 500"):
            await self.feed.fetch(None, 10)
        self.core.fail_status = None
        self.core.malformed = True
        with pytest.raises(ServiceUnavailable, match="not JSON"):
            await self.feed.fetch(None, 10)
        self.core.malformed = False
        self.core.delay_seconds = 1.0
        slow = HttpPermissionEventFeed(
            self.core.base_url, api_key=TEST_API_KEY, timeout_seconds=0.2
        )
        with pytest.raises(ServiceUnavailable, match="no answer"):
            await slow.fetch(None, 10)
        await slow.close()
        self.core.delay_seconds = 0
        self.core.down()
        with pytest.raises(ServiceUnavailable, match="ConnectError"):
            await self.feed.fetch(None, 10)

    @pytest.mark.parametrize(
        "answer",
        [{"nextCursor": "c1"}, {"events": "x"}, {"events": [], "nextCursor": {"a": 1}}, [1]],
    )
    async def test_a_malformed_page_is_service_unavailable(self, answer: Any) -> None:
        feed = HttpPermissionEventFeed(
            "http://core.invalid",
            transport=httpx.MockTransport(lambda request: httpx.Response(200, json=answer)),
        )
        with pytest.raises(ServiceUnavailable, match="malformed"):
            await feed.fetch(None, 10)
        await feed.close()

    async def test_an_envelope_and_numeric_cursors_are_accepted(self) -> None:
        body = {"data": {"events": [{"event_id": "e"}], "nextCursor": 42}}
        feed = HttpPermissionEventFeed(
            "http://core.invalid",
            transport=httpx.MockTransport(lambda request: httpx.Response(200, json=body)),
        )
        page = await feed.fetch(None, 10)
        assert page.next_cursor == "42" and json.loads(page.events[0]) == {"event_id": "e"}
        await feed.close()
