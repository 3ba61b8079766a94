"""Candles: built one trade at a time in any arrival order equal candles rebuilt from the trade
list, and each candle is exact against its own trades."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.marketdata.candles import ALL_INTERVALS, apply_trade, build_candles
from core.marketdata.model import Candle, Interval, MarketTrade

START = datetime(2026, 11, 23, 23, 0, tzinfo=UTC)


@st.composite
def trade_lists(draw: st.DrawFn) -> list[MarketTrade]:
    count = draw(st.integers(min_value=1, max_value=40))
    trades = []
    for seq in range(1, count + 1):
        # whole ticks of 0.01 and lots of 0.001; times within ~2 days, many collisions
        offset = draw(st.integers(min_value=0, max_value=2 * 86_400))
        offset = offset - offset % draw(st.sampled_from([1, 30, 60, 3_600]))
        trades.append(
            MarketTrade(
                pair_id="p1",
                seq=seq,
                trade_id=f"t{seq}",
                price=Decimal(draw(st.integers(min_value=1, max_value=10**12))).scaleb(-2),
                quantity=Decimal(draw(st.integers(min_value=1, max_value=10**9))).scaleb(-3),
                taker_side=draw(st.sampled_from(["BUY", "SELL"])),
                time=START + timedelta(seconds=offset, microseconds=draw(st.integers(0, 999))),
            )
        )
    return trades


def incremental(trades: list[MarketTrade], interval: Interval) -> list[Candle]:
    stored: dict[datetime, Candle] = {}
    for trade in trades:
        bucket = interval.open_time(trade.time)
        stored[bucket] = apply_trade(stored.get(bucket), trade, interval)
    return [stored[k] for k in sorted(stored)]


@settings(max_examples=150, deadline=None)
@given(trades=trade_lists(), data=st.data())
def test_incremental_in_any_order_equals_rebuild_and_is_exact(
    trades: list[MarketTrade], data: st.DataObject
) -> None:
    arrival = data.draw(st.permutations(trades))
    for interval in ALL_INTERVALS:
        rebuilt = build_candles(trades, interval)
        assert incremental(arrival, interval) == rebuilt
        assert sum(c.trade_count for c in rebuilt) == len(trades)
        for candle in rebuilt:
            mine = sorted(
                (t for t in trades if interval.open_time(t.time) == candle.open_time),
                key=lambda t: (t.time, t.seq),
            )
            assert mine, "a candle without trades"
            assert candle.open_time <= mine[0].time < candle.close_time
            assert candle.open == mine[0].price
            assert candle.close == mine[-1].price
            assert candle.high == max(t.price for t in mine)
            assert candle.low == min(t.price for t in mine)
            assert candle.volume == sum((t.quantity for t in mine), Decimal(0))
            assert candle.quote_volume == sum((t.price * t.quantity for t in mine), Decimal(0))
            assert candle.trade_count == len(mine)


def test_buckets_align_on_utc() -> None:
    at = datetime(2026, 11, 23, 15, 47, 59, 999_999, tzinfo=UTC)
    assert Interval.M1.open_time(at) == datetime(2026, 11, 23, 15, 47, tzinfo=UTC)
    assert Interval.M5.open_time(at) == datetime(2026, 11, 23, 15, 45, tzinfo=UTC)
    assert Interval.M15.open_time(at) == datetime(2026, 11, 23, 15, 45, tzinfo=UTC)
    assert Interval.H1.open_time(at) == datetime(2026, 11, 23, 15, tzinfo=UTC)
    assert Interval.H4.open_time(at) == datetime(2026, 11, 23, 12, tzinfo=UTC)
    assert Interval.D1.open_time(at) == datetime(2026, 11, 23, tzinfo=UTC)
    with pytest.raises(ValueError):
        Interval.M1.open_time(datetime(2026, 1, 1))
    assert Interval.parse("4h") is Interval.H4
    with pytest.raises(ValueError, match="1m, 5m, 15m, 1h, 4h, 1d"):
        Interval.parse("2h")


def test_a_late_trade_inside_the_open_minute_becomes_the_open() -> None:
    def trade(seq: int, second: int, price: str) -> MarketTrade:
        return MarketTrade(
            pair_id="p1",
            seq=seq,
            trade_id=str(seq),
            price=Decimal(price),
            quantity=Decimal("1.5"),
            taker_side="BUY",
            time=START + timedelta(seconds=second),
        )

    candle = apply_trade(None, trade(2, 30, "10.00"), Interval.M1)
    candle = apply_trade(candle, trade(1, 10, "9.50"), Interval.M1)  # earlier, arrives later
    candle = apply_trade(candle, trade(3, 30, "10.25"), Interval.M1)  # same instant, later seq
    assert (candle.open, candle.high, candle.low, candle.close) == (
        Decimal("9.50"),
        Decimal("10.25"),
        Decimal("9.50"),
        Decimal("10.25"),
    )
    assert candle.volume == Decimal("4.5")
    assert candle.quote_volume == Decimal("44.625")
    with pytest.raises(ValueError):
        apply_trade(candle, trade(4, 90, "1"), Interval.M1)  # the next minute's


def test_floats_and_non_positive_values_are_refused() -> None:
    with pytest.raises(ValueError):
        MarketTrade("p", 1, "t", 1.5, Decimal(1), "BUY", START)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        MarketTrade("p", 1, "t", Decimal(0), Decimal(1), "BUY", START)
    with pytest.raises(ValueError):
        MarketTrade("p", 1, "t", Decimal(1), Decimal(1), "HOLD", START)
