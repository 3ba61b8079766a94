"""24h rolling stats and the changePercent rounding rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.marketdata.candles import build_candles
from core.marketdata.model import Interval, MarketTrade
from core.marketdata.stats import (
    WINDOW,
    change_percent,
    rolling_stats,
    round_half_away_from_zero,
    stats_from_parts,
    window_parts,
)

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def trade(seq: int, ago: timedelta, price: str, qty: str = "1") -> MarketTrade:
    return MarketTrade("p1", seq, f"t{seq}", Decimal(price), Decimal(qty), "SELL", NOW - ago)


def test_change_percent_rounds_half_away_from_zero() -> None:
    assert change_percent(Decimal("200"), Decimal("202.01")) == Decimal("1.01")  # 1.005
    assert change_percent(Decimal("200"), Decimal("197.99")) == Decimal("-1.01")  # -1.005
    assert change_percent(Decimal("3"), Decimal("4")) == Decimal("33.33")
    assert change_percent(Decimal("3"), Decimal("2")) == Decimal("-33.33")
    assert change_percent(Decimal("1"), Decimal("1")) == Decimal("0.00")
    assert str(change_percent(Decimal("8"), Decimal("9"))) == "12.50"
    assert round_half_away_from_zero(Fraction(-1, 8), 2) == Decimal("-0.13")
    with pytest.raises(ValueError):
        change_percent(Decimal(0), Decimal(1))


def test_the_window_is_the_last_24_hours_exactly() -> None:
    trades = [
        trade(1, timedelta(hours=24), "90"),  # exactly 24h old: outside
        trade(2, timedelta(hours=23, minutes=59), "100", "2.5"),
        trade(3, timedelta(hours=3), "120", "0.5"),
        trade(4, timedelta(hours=3), "80", "1"),  # same time, later seq: after trade 3
        trade(5, timedelta(0), "110", "1"),
        trade(6, -timedelta(seconds=1), "999"),  # in the future: outside
    ]
    stats = rolling_stats("p1", reversed(trades), now=NOW)
    assert (stats.open, stats.high, stats.low, stats.last) == (
        Decimal("100"),
        Decimal("120"),
        Decimal("80"),
        Decimal("110"),
    )
    assert stats.volume == Decimal("5.0")
    assert stats.quote_volume == Decimal("250") + Decimal("60") + Decimal("80") + Decimal("110")
    assert stats.change_percent == Decimal("10.00")
    assert stats.trade_count == 4


def test_an_empty_window_repeats_the_last_price() -> None:
    old = trade(1, timedelta(days=3), "42.5")
    stats = rolling_stats("p1", [], now=NOW, last_before=old)
    assert (stats.open, stats.high, stats.low, stats.last) == (Decimal("42.5"),) * 4
    assert (stats.volume, stats.change_percent, stats.trade_count) == (
        Decimal(0),
        Decimal("0.00"),
        0,
    )
    never = rolling_stats("p1", [], now=NOW)
    assert never.last is None and never.change_percent is None


@st.composite
def day_of_trades(draw: st.DrawFn) -> tuple[datetime, list[MarketTrade]]:
    now = NOW + timedelta(seconds=draw(st.integers(0, 120)), microseconds=draw(st.integers(0, 9)))
    count = draw(st.integers(0, 30))
    trades = []
    for seq in range(1, count + 1):
        # around both edges of the window and in the middle, to the microsecond
        edge = draw(st.sampled_from([WINDOW, timedelta(0), WINDOW / 2]))
        offset = timedelta(
            seconds=draw(st.integers(-90, 90)), microseconds=draw(st.integers(-2, 2))
        )
        trades.append(
            MarketTrade(
                "p1",
                seq,
                f"t{seq}",
                Decimal(draw(st.integers(1, 10**6))).scaleb(-2),
                Decimal(draw(st.integers(1, 10**4))).scaleb(-3),
                "BUY",
                now - edge + offset,
            )
        )
    return now, trades


@settings(max_examples=200, deadline=None)
@given(case=day_of_trades())
def test_stats_from_minutes_and_edges_equal_the_scan_of_all_trades(
    case: tuple[datetime, list[MarketTrade]],
) -> None:
    now, trades = case
    parts = window_parts(now)
    head = [t for t in trades if parts.start < t.time < parts.head_end]
    tail = [t for t in trades if parts.tail_start <= t.time <= now]
    middle = [t for t in trades if parts.head_end <= t.time < parts.tail_start]
    minutes = build_candles(middle, Interval.M1)
    before = max((t for t in trades if t.time <= parts.start), key=lambda t: t.key, default=None)
    scanned = rolling_stats("p1", trades, now=now, last_before=before)
    assert (
        stats_from_parts("p1", now=now, head=head, minutes=minutes, tail=tail, last_before=before)
        == scanned
    )
    # the tail's minute as its candle, when none of that minute's trades is later than now
    (current,) = build_candles(tail, Interval.M1) or (None,)
    assert (
        stats_from_parts(
            "p1", now=now, head=head, minutes=minutes, current=current, last_before=before
        )
        == scanned
    )
    later = [
        t for t in trades if t.time > now and Interval.M1.open_time(t.time) == parts.tail_start
    ]
    if later:  # such a candle would hold trades the window does not: refused
        (beyond,) = build_candles(tail + later, Interval.M1)
        with pytest.raises(ValueError):
            stats_from_parts("p1", now=now, head=head, minutes=minutes, current=beyond)
