"""The aggregate-candles job on the memory storage: idempotent by (stream, seq), order-proof,
and the reads and wire shapes built on it."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import attrs
import pytest

from adapters.outbound.events.memory import MemoryEventBus
from adapters.outbound.storage.memory import MemoryStorage
from core.marketdata.aggregate import (
    TRADE_EXECUTED,
    CandleAggregator,
    InvalidTradeEvent,
    TradeExecuted,
    aggregate_candles,
    aggregate_pair_history,
    market_trade,
)
from core.marketdata.candles import build_candles
from core.marketdata.model import Interval
from core.marketdata.queries import (
    PairFormat,
    all_pairs_stats,
    candle_wire,
    candles,
    fixed,
    pair_stats,
    stats_item_wire,
    stats_wire,
)
from core.shared.events import DomainEvent
from core.shared.outbox_relay import OutboxRelay

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
FMT = PairFormat.of(Decimal("0.01"), Decimal("0.001"))


def event(seq: int, seconds: int, price: str, qty: str, pair: str = "p1") -> DomainEvent:
    return DomainEvent(
        type=TRADE_EXECUTED,
        aggregate_id=pair,
        actor_id="matching",
        actor_type="system",
        occurred_at=T0 + timedelta(seconds=seconds),
        metadata=TradeExecuted(f"t{seq}", Decimal(price), Decimal(qty), "BUY").to_metadata(),
        stream=f"pair:{pair}",
        seq=seq,
    )


def events() -> list[DomainEvent]:
    rng = random.Random(7)
    return [
        event(
            seq,
            seq * 37 + rng.randrange(0, 30),
            f"{rng.randrange(9_000, 11_000) / 100:.2f}",
            f"{rng.randrange(1, 5_000) / 1000:.3f}",
        )
        for seq in range(1, 120)
    ]


async def test_redelivered_and_reordered_events_build_the_same_candles() -> None:
    stream = events()
    trades = [market_trade(e) for e in stream]
    storage = MemoryStorage()
    shuffled = stream[:]
    random.Random(1).shuffle(shuffled)
    first = await aggregate_candles(storage, shuffled[:70])
    assert (first.applied, first.duplicates) == (70, 0)
    again = await aggregate_candles(storage, shuffled[:70] + shuffled[:10])  # redelivery
    assert (again.applied, again.duplicates) == (0, 80)
    rest = await aggregate_candles(storage, [*shuffled[60:], shuffled[0]])
    assert (rest.applied, rest.duplicates) == (49, 11)
    for interval in Interval:
        stored = await candles(storage, "p1", interval, start=T0 - timedelta(days=1))
        expected = build_candles(trades, interval)
        assert len(stored) == len(expected)
        for got, want in zip(stored, expected, strict=True):
            assert got.same_values(want)
            assert got.version == got.trade_count  # one write per trade, none for duplicates


async def test_other_and_malformed_events_are_reported_not_applied() -> None:
    storage = MemoryStorage()
    bad_stream = attrs.evolve(event(1, 0, "1", "1"), stream="pair:other")
    bad_price = attrs.evolve(event(2, 0, "1", "1"), metadata={**event(2, 0, "1", "1").metadata})
    bad_price.metadata["price"] = 1.5
    unrelated = attrs.evolve(event(3, 0, "1", "1"), type="order.accepted")
    report = await aggregate_candles(storage, [bad_stream, bad_price, unrelated])
    assert (report.applied, report.ignored) == (0, 1)
    assert [reason for _, _, reason in report.invalid] == [
        "stream pair:other is not pair:p1",
        "price must be a decimal string",
    ]
    with pytest.raises(InvalidTradeEvent):
        market_trade(attrs.evolve(event(4, 0, "1", "1"), seq=None))
    with pytest.raises(InvalidTradeEvent):
        TradeExecuted.from_metadata(
            {"tradeId": "t", "price": "1", "quantity": "-1", "takerSide": "BUY"}
        )


async def test_executed_at_overrides_the_event_time() -> None:
    payload = TradeExecuted("t9", Decimal("2"), Decimal("3"), "SELL", T0 + timedelta(hours=5))
    parsed = TradeExecuted.from_metadata(payload.to_metadata())
    assert parsed == payload
    trade = market_trade(attrs.evolve(event(9, 0, "1", "1"), metadata=payload.to_metadata()))
    assert trade.time == T0 + timedelta(hours=5) and trade.taker_side == "SELL"


async def test_stats_and_wire_shapes() -> None:
    storage = MemoryStorage()
    await aggregate_candles(
        storage,
        [
            event(1, 0, "100.00", "1.000"),
            event(2, 60, "112.50", "0.500"),
            event(3, 120, "90.10", "2.250"),
            event(1, 5, "50.00", "1.000", pair="p2"),
        ],
    )
    now = T0 + timedelta(hours=1)
    stats = await pair_stats(storage, "p1", now=now)
    assert stats_wire(stats, FMT) == {
        "open": "100.00",
        "high": "112.50",
        "low": "90.10",
        "last": "90.10",
        "volume": "3.750",
        "quoteVolume": "358.97500",
        "changePercent": "-9.90",
    }
    later = await pair_stats(storage, "p1", now=T0 + timedelta(days=2))
    assert stats_wire(later, FMT)["last"] == "90.10"
    assert stats_wire(later, FMT)["volume"] == "0.000"
    every = await all_pairs_stats(storage, now=now)
    assert [s.pair_id for s in every] == ["p1", "p2"]
    assert stats_item_wire(every[1], FMT, "B-USDC") == {
        "pair": "p2",
        "symbol": "B-USDC",
        "open": "50.00",
        "high": "50.00",
        "low": "50.00",
        "last": "50.00",
        "volume": "1.000",
        "quoteVolume": "50.00000",
        "changePercent": "0.00",
    }
    minute = await candles(storage, "p1", Interval.M1, limit=2)
    assert [candle_wire(c, FMT) for c in minute] == [
        {
            "openTime": "2026-11-23T10:01:00.000Z",
            "open": "112.50",
            "high": "112.50",
            "low": "112.50",
            "close": "112.50",
            "volume": "0.500",
        },
        {
            "openTime": "2026-11-23T10:02:00.000Z",
            "open": "90.10",
            "high": "90.10",
            "low": "90.10",
            "close": "90.10",
            "volume": "2.250",
        },
    ]
    hour = await candles(storage, "p1", Interval.H1, start=T0, end=T0)
    assert candle_wire(hour[0], FMT)["volume"] == "3.750"
    with pytest.raises(ValueError):
        await candles(storage, "p1", Interval.H1, limit=0)
    assert fixed(Decimal("1.23456"), 2) == "1.23456"  # never rounded
    assert fixed(Decimal("7"), 2) == "7.00"


async def test_catching_up_from_the_event_log_applies_each_trade_once() -> None:
    storage = MemoryStorage()
    stream = events()[:30]
    async with storage.unit_of_work() as uow:
        stored = await uow.events.append([attrs.evolve(e, seq=None) for e in stream])
        await uow.commit()
    assert [e.seq for e in stored] == list(range(1, 31))
    await aggregate_candles(storage, stored[:10])  # some arrived live already
    report = await aggregate_pair_history(storage, "p1", batch=7)
    assert (report.applied, report.duplicates) == (20, 10)
    hour = await candles(storage, "p1", Interval.D1)
    want = build_candles([market_trade(e) for e in stored], Interval.D1)
    assert [c.volume for c in hour] == [c.volume for c in want]


async def test_as_an_outbox_relay_reaction_each_committed_trade_lands_once() -> None:
    storage = MemoryStorage()
    relay = OutboxRelay(storage, MemoryEventBus())
    aggregator = CandleAggregator(storage)
    relay.on(TRADE_EXECUTED, aggregator.on_trade_executed)
    stream = events()[:12]
    broken = attrs.evolve(stream[5], metadata={"tradeId": "t6", "price": "x"})
    async with storage.unit_of_work() as uow:
        stored = await uow.events.append(
            [attrs.evolve(e, seq=None) for e in [*stream[:5], broken, *stream[6:]]]
        )
        await uow.commit()
    await relay.pump()
    await relay.pump()
    minute = await candles(storage, "p1", Interval.D1)
    good = [market_trade(e) for e in stored if e.metadata.get("price") != "x"]
    assert minute[0].trade_count == 11 == len(good)
    assert minute[0].same_values(build_candles(good, Interval.D1)[0])
    assert [(s, q) for s, q, _ in aggregator.skipped] == [("pair:p1", 6)]
    async with storage.unit_of_work(read_only=True) as uow:
        assert await uow.outbox.pending(100) == []
