"""Event bus port contract."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.outbound.events.memory import MemoryEventBus
from core.ports.event_bus import EventBus
from core.shared.events import DomainEvent


def event(kind: str, n: int = 0) -> DomainEvent:
    return DomainEvent(
        type=kind,
        aggregate_id=f"m-{n}",
        actor_id="a",
        actor_type="user",
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        metadata={"n": n},
    )


class EventBusContract:
    def make(self) -> EventBus:
        raise NotImplementedError

    async def test_subscribers_get_events_in_order(self) -> None:
        bus = self.make()
        sub = await bus.subscribe()
        sent = [event("market.approved", n) for n in range(5)]
        for one in sent:
            await bus.publish(one)
        got = [await sub.get(timeout=2) for _ in range(5)]
        assert got == sent
        await sub.close()
        await bus.close()

    async def test_prefix_filters(self) -> None:
        bus = self.make()
        markets = await bus.subscribe("market.")
        everything = await bus.subscribe("")
        await bus.publish(event("trade.executed"))
        await bus.publish(event("market.paused"))
        assert (await markets.get(timeout=2)).type == "market.paused"
        assert (await everything.get(timeout=2)).type == "trade.executed"
        assert (await everything.get(timeout=2)).type == "market.paused"
        await bus.close()

    async def test_closed_subscription_gets_nothing_more(self) -> None:
        bus = self.make()
        sub = await bus.subscribe()
        await sub.close()
        await bus.publish(event("market.paused"))
        with pytest.raises(TimeoutError):
            await sub.get(timeout=0.2)
        await bus.close()


class TestMemoryEventBus(EventBusContract):
    def make(self) -> EventBus:
        return MemoryEventBus()
