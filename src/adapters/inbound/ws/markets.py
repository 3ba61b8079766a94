"""The public ``markets`` channel: market lifecycle events (``market.*`` on every
``market:<id>`` stream), after a snapshot of the newest markets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.inbound.http.serialization import dump_event, dump_market
from adapters.inbound.ws.channels import Channel
from adapters.inbound.ws.protocol import SubscribeRequest
from adapters.inbound.ws.send_queue import Outgoing
from core.markets.queries import MAX_PAGE, MarketQueries
from core.ports.storage import MarketFilter
from core.shared.events import Actor, DomainEvent

TOPIC = "market:*"
EVENT_PREFIX = "market."


class MarketsChannel(Channel):
    name = "markets"

    def __init__(self, queries: MarketQueries, *, snapshot_size: int = MAX_PAGE) -> None:
        self._queries = queries
        self._snapshot_size = snapshot_size

    def topic(self, request: SubscribeRequest, actor: Actor | None) -> str:
        return TOPIC

    async def snapshot(self, request: SubscribeRequest, actor: Actor | None) -> Mapping[str, Any]:
        """The newest markets (``complete`` false when there are more: page them over HTTP)."""
        page = await self._queries.page(MarketFilter(), limit=self._snapshot_size)
        return {
            "type": "snapshot",
            "channel": self.name,
            "markets": [dump_market(m) for m in page.items],
            "complete": page.next_cursor is None,
        }

    def update(self, request: SubscribeRequest, event: DomainEvent) -> Outgoing | None:
        if not event.type.startswith(EVENT_PREFIX):
            return None
        return Outgoing(
            {
                "type": "update",
                "channel": self.name,
                "stream": event.stream,
                "seq": event.seq,
                "event": dump_event(event),
            }
        )
