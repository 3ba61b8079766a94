"""Event bus port contract."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import attrs
import pytest

from adapters.outbound.events.memory import MemoryEventBus
from adapters.outbound.events.redis import RedisEventBus, decode_event, encode_event
from core.ports.event_bus import EventBus, StreamGap, Subscription, SubscriptionItem
from core.shared.events import DomainEvent, InvalidEvent
from tests.harness.redis import start_redis


def event(kind: str, n: int = 0, seq: int | None = None) -> DomainEvent:
    return DomainEvent(
        type=kind,
        aggregate_id=f"m-{n}",
        actor_id="a",
        actor_type="user",
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        metadata={"n": n},
        seq=seq,
    )


async def next_event(sub: Subscription, timeout: float = 2) -> DomainEvent:
    item = await sub.get(timeout=timeout)
    assert isinstance(item, DomainEvent), item
    return item


NOT_JSON = [Decimal("1.5"), datetime(2026, 1, 1, tzinfo=UTC), {"a"}, ("a",), float("inf")]


class EventBusContract:
    def make(self, queue_size: int = 10_000) -> EventBus:
        raise NotImplementedError

    async def drain(self, sub: Subscription, count: int) -> list[SubscriptionItem]:
        return [await sub.get(timeout=2) for _ in range(count)]

    async def test_redeliveries_are_dropped_by_stream_and_seq(self) -> None:
        """The relay publishes at least once; a subscriber sees each (stream, seq) once."""
        bus = self.make()
        sub = await bus.subscribe("market.")
        one, two = event("market.a", 1, seq=1), event("market.b", 1, seq=2)
        other, three = event("market.a", 2, seq=1), event("market.c", 1, seq=3)
        for sent in (one, two, one, other, two, three):
            await bus.publish(sent)
        assert await self.drain(sub, 4) == [one, two, other, three]
        with pytest.raises(TimeoutError):
            await sub.get(timeout=0.3)
        await bus.close()

    async def test_an_overflowing_subscription_yields_a_gap(self) -> None:
        bus = self.make(queue_size=3)
        slow = await bus.subscribe("market.")
        fast = await bus.subscribe("market.")
        sent = [event("market.x", 1, seq=n) for n in range(1, 11)]
        for n, one in enumerate(sent):
            await bus.publish(one)
            if n < 6:  # the fast one keeps up
                assert await fast.get(timeout=2) == one
        await asyncio.sleep(0.2)  # the Redis reader has dispatched everything
        # the slow one: what fitted, then a gap standing for the 7 it could not hold
        assert await self.drain(slow, 4) == [*sent[:3], StreamGap(dropped=7)]
        later = event("market.x", 1, seq=11)
        await bus.publish(later)
        assert await slow.get(timeout=2) == later
        # the fast one stopped reading after 6: 3 fitted, 10 and the later one did not
        assert await self.drain(fast, 4) == [*sent[6:9], StreamGap(dropped=2)]
        with pytest.raises(TimeoutError):
            await fast.get(timeout=0.3)
        await bus.close()

    @pytest.mark.parametrize("bad", NOT_JSON, ids=["decimal", "datetime", "set", "tuple", "inf"])
    async def test_non_json_metadata_is_refused(self, bad: object) -> None:
        bus = self.make()
        sub = await bus.subscribe()
        with pytest.raises(InvalidEvent):
            await bus.publish(attrs.evolve(event("market.paused"), metadata={"v": [bad]}))
        with pytest.raises(TimeoutError):
            await sub.get(timeout=0.3)
        await bus.close()

    async def test_naive_datetimes_are_refused(self) -> None:
        bus = self.make()
        naive = attrs.evolve(event("market.paused"), occurred_at=datetime(2026, 1, 1))
        with pytest.raises(InvalidEvent, match="naive"):
            await bus.publish(naive)
        await bus.close()

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
        assert (await next_event(markets)).type == "market.paused"
        assert (await next_event(everything)).type == "trade.executed"
        assert (await next_event(everything)).type == "market.paused"
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
    def make(self, queue_size: int = 10_000) -> EventBus:
        return MemoryEventBus(queue_size=queue_size)


class TestRedisEventBus(EventBusContract):
    @pytest.fixture(autouse=True)
    def _redis(self, clean_redis_url: str) -> None:
        self.url = clean_redis_url

    def make(self, queue_size: int = 10_000) -> EventBus:
        return RedisEventBus(self.url, queue_size=queue_size)

    async def test_two_instances_see_each_others_events(self) -> None:
        """Two API processes: each has its own bus; an event published on one reaches both."""
        api_a, api_b = RedisEventBus(self.url), RedisEventBus(self.url)
        sub_a = await api_a.subscribe("market.")
        sub_b = await api_b.subscribe("market.")
        from_a, from_b = event("market.approved", 1), event("market.paused", 2)
        await api_a.publish(from_a)
        await api_b.publish(from_b)
        assert [await sub_a.get(timeout=2), await sub_a.get(timeout=2)] == [from_a, from_b]
        assert [await sub_b.get(timeout=2), await sub_b.get(timeout=2)] == [from_a, from_b]
        await api_a.close()
        await api_b.close()

    async def test_events_round_trip_exactly(self) -> None:
        bus = self.make()
        sub = await bus.subscribe()
        sent = DomainEvent(
            type="market.activated",
            aggregate_id="m-9",
            actor_id="deploy-token-worker",
            actor_type="system",
            occurred_at=datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=timezone(timedelta(hours=2))),
            decision="approve",
            reason="ok \u2713",
            metadata={"txHash": "0xab", "attempt": 2, "nested": {"a": [1, None, True]}},
            stream="market:m-9",
            seq=7,
        )
        await bus.publish(sent)
        got = await sub.get(timeout=2)
        assert got == sent
        assert got.occurred_at.utcoffset() == timedelta(hours=2)
        assert decode_event(encode_event(sent)) == sent
        await bus.close()

    async def test_ping_and_unreachable_server(self) -> None:
        bus = self.make()
        await bus.ping()
        await bus.close()
        dead = RedisEventBus("redis://127.0.0.1:1/0")
        with pytest.raises(ConnectionError):
            await dead.ping()
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(dead.subscribe(), timeout=5)
        await dead.close()

    async def test_a_subscriber_reconnects_after_redis_restarts(self) -> None:
        """Events published while Redis is down are missed (the WebSocket clients resync from
        snapshots); once Redis is back, the same subscription receives again."""
        server = start_redis()
        restarted = None
        bus = RedisEventBus(server.url())
        try:
            sub = await bus.subscribe("market.")
            await bus.publish(event("market.before"))
            assert (await next_event(sub)).type == "market.before"
            server.stop()
            await asyncio.sleep(0.5)
            restarted = start_redis(port=server.port)
            publisher = RedisEventBus(restarted.url())
            got = None
            for _ in range(50):  # until the subscriber's reconnect has happened
                await publisher.publish(event("market.after"))
                try:
                    got = await next_event(sub, timeout=0.2)
                    break
                except TimeoutError:
                    continue
            await publisher.close()
            assert got is not None and got.type == "market.after"
            assert bus.reconnects >= 1
        finally:
            await bus.close()
            server.stop()
            if restarted is not None:
                restarted.stop()
