"""Candles from trades: one trade at a time (``apply_trade``) or all at once (``build_candles``).

Both give the same candles whatever order the trades arrive in: open is the price of the
earliest trade by ``(time, seq)``, close the price of the latest, high and low the extremes,
volume the exact sum of quantities and quote volume the exact sum of price x quantity.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from core.marketdata.model import EXACT, Candle, Interval, MarketTrade

ALL_INTERVALS: tuple[Interval, ...] = tuple(Interval)


def apply_trade(candle: Candle | None, trade: MarketTrade, interval: Interval) -> Candle:
    """The candle of ``trade``'s bucket after ``trade``; ``candle`` is that bucket's current
    candle, or None when it has none yet. The result keeps ``candle.version`` (the storage
    bumps it). ``ValueError`` when ``candle`` is another pair's or another bucket's."""
    open_time = interval.open_time(trade.time)
    if candle is None:
        return Candle(
            pair_id=trade.pair_id,
            interval=interval,
            open_time=open_time,
            open=trade.price,
            high=trade.price,
            low=trade.price,
            close=trade.price,
            volume=trade.quantity,
            quote_volume=trade.quote_amount,
            trade_count=1,
            first_time=trade.time,
            first_seq=trade.seq,
            last_time=trade.time,
            last_seq=trade.seq,
            version=0,
        )
    if (candle.pair_id, candle.interval, candle.open_time) != (trade.pair_id, interval, open_time):
        raise ValueError("the trade does not belong to this candle")
    earlier = trade.key < (candle.first_time, candle.first_seq)
    later = trade.key > (candle.last_time, candle.last_seq)
    return attrs.evolve(
        candle,
        open=trade.price if earlier else candle.open,
        close=trade.price if later else candle.close,
        high=max(candle.high, trade.price),
        low=min(candle.low, trade.price),
        volume=EXACT.add(candle.volume, trade.quantity),
        quote_volume=EXACT.add(candle.quote_volume, trade.quote_amount),
        trade_count=candle.trade_count + 1,
        first_time=trade.time if earlier else candle.first_time,
        first_seq=trade.seq if earlier else candle.first_seq,
        last_time=trade.time if later else candle.last_time,
        last_seq=trade.seq if later else candle.last_seq,
    )


def build_candles(trades: Iterable[MarketTrade], interval: Interval) -> list[Candle]:
    """Every candle of ``interval`` from ``trades`` (one pair, any order), oldest first;
    ``version`` is 0 as in ``apply_trade``'s new candles, so both compare equal."""
    ordered = sorted(trades, key=lambda t: t.key)
    candles: dict[object, Candle] = {}
    for trade in ordered:
        bucket = interval.open_time(trade.time)
        built = apply_trade(candles.get(bucket), trade, interval)
        candles[bucket] = attrs.evolve(built, version=0)
    return [candles[k] for k in sorted(candles, key=lambda c: candles[c].open_time)]
