"""Order routing port contract: the in-process router and Redis Streams, one suite.

Each case has an API side (``request``) and an engine side (``receive``/``claim``/``reply``);
on Redis they are two router instances (two processes' connections), in memory one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import attrs
import pytest

from adapters.outbound.routing.codec import UnroutableCommand
from adapters.outbound.routing.memory import MemoryOrderRouter
from adapters.outbound.routing.redis_streams import RedisOrderRouter
from core.ledger.model import AccountRef, Bucket, InsufficientFunds
from core.ports.order_routing import (
    Delivery,
    EngineCommand,
    EngineReply,
    EngineUnavailable,
    OrderRouter,
)
from core.shared.errors import Conflict, NotFound, ValidationFailed
from core.shared.events import Actor
from core.shared.ids import new_id
from core.trading.orders import Order, OrderNotFound, OrderRefused, OrderStatus, OrderType
from core.trading.pairs import Pair, make_pair
from core.trading.writer import CancelOrder, ChangePair, NewOrder, OrderResult

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
ALICE = Actor(id="alice", roles=("trader",))


def an_order(pair_id: str = "p-1", *, quantity: int = 10**30) -> Order:
    return Order(
        pair_id=pair_id,
        seq=0,
        user_id="alice",
        side="BUY",
        type=OrderType.LIMIT,
        time_in_force="GTC",
        status=OrderStatus.OPEN,
        created_at=NOW,
        updated_at=NOW,
        price=2_000 * 10**6,
        quantity=quantity,  # beyond 2**64: exact on every wire
        client_order_id="c-1",
    )


def a_pair() -> Pair:
    return make_pair(
        base_symbol="WETH",
        quote_symbol="USDC",
        base_token_id="t-base",
        quote_token_id="t-quote",
        base_decimals=18,
        quote_decimals=6,
        tick=10_000,
        lot=10**15,
        min_quantity=10**15,
        max_quantity=10**21,
        maker_fee_bps=10,
        taker_fee_bps=25,
        at=NOW,
    )


def command(pair_id: str = "p-1", request: object | None = None) -> EngineCommand:
    return EngineCommand(
        request_id=new_id(),
        pair_id=pair_id,
        request=request or NewOrder(ALICE, an_order(pair_id)),  # type: ignore[arg-type]
        deadline=datetime.now(UTC) + timedelta(seconds=30),
    )


async def receive_all(router: OrderRouter, consumer: str, pairs: list[str]) -> list[Delivery]:
    return await router.receive(consumer, pairs, count=100, block_seconds=0.5)


class OrderRouterContract:
    @pytest.fixture
    async def sides(self) -> AsyncIterator[tuple[OrderRouter, OrderRouter]]:
        raise NotImplementedError
        yield  # pragma: no cover

    async def test_a_command_reaches_the_engine_and_its_reply_the_requester(
        self, sides: tuple[OrderRouter, OrderRouter]
    ) -> None:
        api, engine = sides
        sent = command()
        waiting = asyncio.ensure_future(api.request(sent, timeout=5))
        deliveries: list[Delivery] = []
        while not deliveries:
            deliveries = await receive_all(engine, "engine-a", ["p-1"])
        [delivery] = deliveries
        assert delivery.command == sent  # every field, the big integer exact
        assert not delivery.redelivered
        assert isinstance(sent.request, NewOrder)
        stored = OrderResult(sent.request.order, replayed=True)
        await engine.reply(delivery, EngineReply(sent.request_id, result=stored))
        reply = await waiting
        assert reply == EngineReply(sent.request_id, result=stored)
        assert reply.unwrap() == stored
        assert await receive_all(engine, "engine-a", ["p-1"]) == []  # acknowledged
        assert await engine.claim("engine-b", "p-1") == []

    async def test_other_requests_and_results_round_trip(
        self, sides: tuple[OrderRouter, OrderRouter]
    ) -> None:
        api, engine = sides
        pair = a_pair()
        requests = [
            CancelOrder(ALICE, "o-1"),
            ChangePair(
                Actor(id="admin", roles=("admin",)), {"status": "halted", "maker_fee_bps": 5}
            ),
            ChangePair(Actor.system(), {"status": "closed"}, action="market.archived"),
        ]
        for request in requests:
            sent = command(pair.id, request)
            waiting = asyncio.ensure_future(api.request(sent, timeout=5))
            deliveries: list[Delivery] = []
            while not deliveries:
                deliveries = await receive_all(engine, "engine-a", [pair.id])
            assert deliveries[0].command == sent
            await engine.reply(deliveries[0], EngineReply(sent.request_id, result=pair))
            assert (await waiting).unwrap() == pair

    async def test_a_domain_error_comes_back_with_its_family_code_and_details(
        self, sides: tuple[OrderRouter, OrderRouter]
    ) -> None:
        api, engine = sides
        errors = [
            (InsufficientFunds(AccountRef.user("alice", "t"), Bucket.AVAILABLE, 10**40), Conflict),
            (OrderRefused("price_off_tick", "price", "must be a multiple"), ValidationFailed),
            (OrderNotFound("o-9"), NotFound),
        ]
        for error, family in errors:
            sent = command()
            waiting = asyncio.ensure_future(api.request(sent, timeout=5))
            deliveries: list[Delivery] = []
            while not deliveries:
                deliveries = await receive_all(engine, "engine-a", ["p-1"])
            await engine.reply(deliveries[0], EngineReply(sent.request_id, error=error))
            reply = await waiting
            with pytest.raises(family) as raised:
                reply.unwrap()
            assert raised.value.code == error.code
            assert raised.value.message == error.message
            assert raised.value.details == error.details
        assert raised.value.details == {"orderId": "o-9"}

    async def test_without_an_engine_the_request_times_out_and_the_command_waits(
        self, sides: tuple[OrderRouter, OrderRouter]
    ) -> None:
        api, engine = sides
        sent = command("p-2")
        with pytest.raises(EngineUnavailable) as raised:
            await api.request(sent, timeout=0.3)
        assert raised.value.code == "engine_unavailable"
        [late] = await receive_all(engine, "engine-a", ["p-2"])
        assert late.command == sent  # the engine still sees it (and checks its deadline)
        await engine.reply(late, EngineReply(sent.request_id, error=raised.value))  # dropped

    async def test_only_the_pairs_asked_for_and_oldest_first(
        self, sides: tuple[OrderRouter, OrderRouter]
    ) -> None:
        api, engine = sides
        first, second, other = command("p-1"), command("p-1"), command("p-3")
        waiting = []
        for sent in (first, second, other):  # one after the other
            waiting.append(asyncio.ensure_future(api.request(sent, timeout=5)))
            await asyncio.sleep(0.1)
        got = await receive_all(engine, "engine-a", ["p-1"])
        assert [d.command for d in got] == [first, second]
        [third] = await receive_all(engine, "engine-a", ["p-3"])
        assert third.command == other
        for delivery in (*got, third):
            await engine.reply(delivery, EngineReply(delivery.command.request_id, error=None))
        # a reply with neither result nor error still reaches the requester
        assert [(await w).request_id for w in waiting] == [
            first.request_id,
            second.request_id,
            other.request_id,
        ]

    async def test_a_dead_consumers_commands_are_claimed_by_the_next_owner(
        self, sides: tuple[OrderRouter, OrderRouter]
    ) -> None:
        api, engine = sides
        sent = [command("p-1") for _ in range(3)]
        waiting = []
        for one in sent:
            waiting.append(asyncio.ensure_future(api.request(one, timeout=5)))
            await asyncio.sleep(0.1)
        held = await receive_all(engine, "engine-a", ["p-1"])  # then engine-a dies
        assert len(held) == 3
        assert await receive_all(engine, "engine-b", ["p-1"]) == []  # not new
        claimed = await engine.claim("engine-b", "p-1")
        assert [d.command for d in claimed] == sent
        assert all(d.redelivered for d in claimed)
        for delivery in claimed:
            assert isinstance(delivery.command.request, NewOrder)
            result = OrderResult(delivery.command.request.order)
            await engine.reply(delivery, EngineReply(delivery.command.request_id, result=result))
        assert [(await w).request_id for w in waiting] == [c.request_id for c in sent]
        assert await engine.claim("engine-c", "p-1") == []

    async def test_a_claim_takes_only_commands_idle_long_enough(
        self, sides: tuple[OrderRouter, OrderRouter]
    ) -> None:
        api, engine = sides
        sent = command("p-4")
        waiting = asyncio.ensure_future(api.request(sent, timeout=5))
        await asyncio.sleep(0.1)
        [held] = await receive_all(engine, "engine-a", ["p-4"])
        assert await engine.claim("engine-b", "p-4", min_idle_seconds=0.6) == []
        await asyncio.sleep(0.7)
        [claimed] = await engine.claim("engine-b", "p-4", min_idle_seconds=0.6)
        assert claimed.command == held.command and claimed.redelivered
        assert await engine.claim("engine-c", "p-4", min_idle_seconds=0.6) == []  # idle reset
        await engine.reply(claimed, EngineReply(sent.request_id, error=None))
        assert (await waiting).request_id == sent.request_id

    async def test_what_cannot_travel_is_refused_before_it_is_queued(
        self, sides: tuple[OrderRouter, OrderRouter]
    ) -> None:
        api, engine = sides
        naive = attrs.evolve(an_order(), created_at=datetime(2026, 1, 1))
        with pytest.raises(UnroutableCommand):
            await api.request(command(request=NewOrder(ALICE, naive)), timeout=1)
        with pytest.raises(UnroutableCommand):
            not_json = ChangePair(ALICE, {"status": {1, 2}})
            await api.request(command(request=not_json), timeout=1)
        assert await receive_all(engine, "engine-a", ["p-1"]) == []


class TestMemoryOrderRouter(OrderRouterContract):
    @pytest.fixture
    async def sides(self) -> AsyncIterator[tuple[OrderRouter, OrderRouter]]:
        router = MemoryOrderRouter()
        yield router, router
        await router.close()


class TestRedisOrderRouter(OrderRouterContract):
    @pytest.fixture
    async def sides(self, clean_redis_url: str) -> AsyncIterator[tuple[OrderRouter, OrderRouter]]:
        api, engine = RedisOrderRouter(clean_redis_url), RedisOrderRouter(clean_redis_url)
        yield api, engine
        await api.close()
        await engine.close()
