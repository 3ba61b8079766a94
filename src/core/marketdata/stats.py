"""Rolling 24-hour statistics of a pair, exact.

The window is ``(now - 24h, now]``: a trade exactly 24 hours old has left it. Over the
trades in the window (ordered by ``(time, seq)``): ``open`` is the first trade's price,
``last`` the last one's, ``high``/``low`` the extremes, ``volume`` the sum of quantities and
``quoteVolume`` the sum of price x quantity, all exact.

With no trade in the window the pair did not move: ``open``, ``high``, ``low`` and ``last``
are all the last price before the window (None if the pair never traded), the volumes are 0
and ``changePercent`` is 0.00.

``changePercent`` = (last - open) / open x 100, computed as an exact fraction and then
rounded to 2 decimal places **half away from zero** (ROUND_HALF_UP in ``decimal``'s terms):
+1.005 becomes 1.01 and -1.005 becomes -1.01. It is None when ``open`` is None.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import attrs

from core.marketdata.model import EXACT, ZERO, Candle, Interval, MarketTrade

WINDOW = timedelta(hours=24)


@attrs.frozen
class PairStats:
    pair_id: str
    open: Decimal | None
    high: Decimal | None
    low: Decimal | None
    last: Decimal | None
    volume: Decimal
    quote_volume: Decimal
    change_percent: Decimal | None
    trade_count: int
    window_start: datetime  # exclusive
    window_end: datetime  # inclusive


def round_half_away_from_zero(value: Fraction, places: int) -> Decimal:
    """``value`` rounded to ``places`` decimals, ties away from zero, as an exact Decimal."""
    scaled = abs(value) * 10**places
    whole, remainder = divmod(scaled.numerator, scaled.denominator)
    if 2 * remainder >= scaled.denominator:
        whole += 1
    signed = -whole if value < 0 else whole
    return Decimal(signed).scaleb(-places, EXACT)


def change_percent(open_price: Decimal, last: Decimal) -> Decimal:
    """(last - open) / open x 100, rounded to 2 places half away from zero."""
    if open_price <= 0:
        raise ValueError("open price must be positive")
    exact = (Fraction(last) - Fraction(open_price)) * 100 / Fraction(open_price)
    return round_half_away_from_zero(exact, 2)


def window_start(now: datetime) -> datetime:
    return now - WINDOW


def rolling_stats(
    pair_id: str,
    trades: Iterable[MarketTrade],
    *,
    now: datetime,
    last_before: MarketTrade | None = None,
) -> PairStats:
    """Stats of ``pair_id`` at ``now``. ``trades`` may hold trades outside the window (they
    are ignored) and come in any order; ``last_before`` is the latest trade at or before the
    window's start, used when the window is empty."""
    start = window_start(now)
    inside: Sequence[MarketTrade] = sorted(
        (t for t in trades if t.pair_id == pair_id and start < t.time <= now), key=lambda t: t.key
    )
    if not inside:
        price = last_before.price if last_before is not None else None
        return PairStats(
            pair_id=pair_id,
            open=price,
            high=price,
            low=price,
            last=price,
            volume=ZERO,
            quote_volume=ZERO,
            change_percent=None if price is None else Decimal("0.00"),
            trade_count=0,
            window_start=start,
            window_end=now,
        )
    volume = quote_volume = ZERO
    for trade in inside:
        volume = EXACT.add(volume, trade.quantity)
        quote_volume = EXACT.add(quote_volume, trade.quote_amount)
    first, last = inside[0].price, inside[-1].price
    return PairStats(
        pair_id=pair_id,
        open=first,
        high=max(t.price for t in inside),
        low=min(t.price for t in inside),
        last=last,
        volume=volume,
        quote_volume=quote_volume,
        change_percent=change_percent(first, last),
        trade_count=len(inside),
        window_start=start,
        window_end=now,
    )


@attrs.frozen
class WindowParts:
    """How a read splits the window so that it never scans a day of trades: the trades of
    ``(start, head_end)`` (the partial first minute), the full 1m candles with ``open_time``
    in ``[head_end, tail_start)``, and the trades of ``[tail_start, now]`` (the current
    minute). ``split`` is False when the window is too short to split (read all trades)."""

    start: datetime
    head_end: datetime
    tail_start: datetime
    split: bool


def window_parts(now: datetime) -> WindowParts:
    start = window_start(now)
    head_end = Interval.M1.open_time(start) + timedelta(minutes=1)
    tail_start = Interval.M1.open_time(now)
    return WindowParts(start, head_end, tail_start, head_end < tail_start)


def stats_from_parts(
    pair_id: str,
    *,
    now: datetime,
    head: Sequence[MarketTrade],
    minutes: Sequence[Candle],
    tail: Sequence[MarketTrade] = (),
    current: Candle | None = None,
    last_before: MarketTrade | None = None,
) -> PairStats:
    """The same ``PairStats`` as ``rolling_stats`` over the window's trades, from the parts of
    ``window_parts(now)``: ``head`` and ``tail`` trades (any order), ``minutes`` the 1m candles
    between them. ``current``, the 1m candle of the tail's minute when its last trade is not
    later than ``now``, may stand for the ``tail`` trades (it aggregates exactly them)."""
    parts = window_parts(now)
    if not parts.split:
        raise ValueError("the window is too short to split; use rolling_stats")
    if any(not (parts.start < t.time < parts.head_end) for t in head) or any(
        not (parts.tail_start <= t.time <= now) for t in tail
    ):
        raise ValueError("a trade is outside its part of the window")
    if any(
        c.interval is not Interval.M1 or not (parts.head_end <= c.open_time < parts.tail_start)
        for c in minutes
    ):
        raise ValueError("a candle is outside the window's full minutes")
    # (open, high, low, close, volume, quote volume, trades) of each segment, oldest first
    segments = [
        (t.price, t.price, t.price, t.price, t.quantity, t.quote_amount, 1)
        for t in sorted(head, key=lambda t: t.key)
    ]
    segments += [
        (c.open, c.high, c.low, c.close, c.volume, c.quote_volume, c.trade_count)
        for c in sorted(minutes, key=lambda c: c.open_time)
    ]
    segments += [
        (t.price, t.price, t.price, t.price, t.quantity, t.quote_amount, 1)
        for t in sorted(tail, key=lambda t: t.key)
    ]
    if current is not None:
        if (
            tail
            or current.interval is not Interval.M1
            or current.open_time != parts.tail_start
            or current.last_time > now
        ):
            raise ValueError("the current minute's candle does not stand for the window's tail")
        segments.append(
            (
                current.open,
                current.high,
                current.low,
                current.close,
                current.volume,
                current.quote_volume,
                current.trade_count,
            )
        )
    if not segments:
        return rolling_stats(pair_id, (), now=now, last_before=last_before)
    volume = quote_volume = ZERO
    for segment in segments:
        volume = EXACT.add(volume, segment[4])
        quote_volume = EXACT.add(quote_volume, segment[5])
    first, last = segments[0][0], segments[-1][3]
    return PairStats(
        pair_id=pair_id,
        open=first,
        high=max(s[1] for s in segments),
        low=min(s[2] for s in segments),
        last=last,
        volume=volume,
        quote_volume=quote_volume,
        change_percent=change_percent(first, last),
        trade_count=sum(s[6] for s in segments),
        window_start=parts.start,
        window_end=now,
    )
