"""Reads of market data and their wire shapes: candles, 24h stats (one pair, all pairs) and
the ``ticker`` payload of the WebSocket gateway. Every read is one read-only unit of work.

Wire rules (docs/api.md): prices are decimal strings with exactly the pair's price places
(the decimals of its ``tickSize``), sizes with its size places (the decimals of ``lotSize``),
a quote volume with price places + size places (exact: price x size needs no more); a value
that would need more places than that is written exactly, never rounded. ``changePercent``
is a string with 2 places. Times are ISO-8601 UTC with ``Z``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs

from core.marketdata.model import AssetValuation, Candle, Interval, ReferencePrice
from core.marketdata.stats import PairStats, rolling_stats, stats_from_parts, window_parts
from core.ports.marketdata import MAX_CANDLES
from core.ports.storage import Storage, UnitOfWork

MAX_MINUTES = 24 * 60  # 1m candles a 24h window can hold


@attrs.frozen
class PairFormat:
    """How a pair writes numbers: the decimals of its tick size and of its lot size."""

    price_places: int
    size_places: int

    @classmethod
    def of(cls, tick_size: Decimal, lot_size: Decimal) -> PairFormat:
        return cls(_places(tick_size), _places(lot_size))


def _places(step: Decimal) -> int:
    exponent = step.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def fixed(value: Decimal, places: int) -> str:
    """``value`` with at least ``places`` decimals; more only if it has them (exact)."""
    own = _places(value) if value != 0 else 0
    return format(value, f".{max(places, own)}f")


def _price(value: Decimal | None, fmt: PairFormat) -> str | None:
    return None if value is None else fixed(value, fmt.price_places)


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def candle_wire(candle: Candle, fmt: PairFormat) -> dict[str, Any]:
    """``{openTime, open, high, low, close, volume}`` (docs/api.md)."""
    return {
        "openTime": iso(candle.open_time),
        "open": fixed(candle.open, fmt.price_places),
        "high": fixed(candle.high, fmt.price_places),
        "low": fixed(candle.low, fmt.price_places),
        "close": fixed(candle.close, fmt.price_places),
        "volume": fixed(candle.volume, fmt.size_places),
    }


def stats_wire(stats: PairStats, fmt: PairFormat) -> dict[str, Any]:
    """``{open, high, low, last, volume, quoteVolume, changePercent}`` (docs/api.md)."""
    return {
        "open": _price(stats.open, fmt),
        "high": _price(stats.high, fmt),
        "low": _price(stats.low, fmt),
        "last": _price(stats.last, fmt),
        "volume": fixed(stats.volume, fmt.size_places),
        "quoteVolume": fixed(stats.quote_volume, fmt.price_places + fmt.size_places),
        "changePercent": None if stats.change_percent is None else f"{stats.change_percent:.2f}",
    }


def stats_item_wire(stats: PairStats, fmt: PairFormat, symbol: str) -> dict[str, Any]:
    """One entry of ``GET /trading/stats``: the stats with ``pair`` (id) and ``symbol``."""
    return {"pair": stats.pair_id, "symbol": symbol, **stats_wire(stats, fmt)}


def reference_wire(price: ReferencePrice | None) -> dict[str, Any] | None:
    if price is None:
        return None
    return {
        "symbol": price.symbol,
        "price": format(price.price, "f"),
        "source": price.source,
        "observedAt": iso(price.observed_at),
    }


def valuation_wire(valuation: AssetValuation | None) -> dict[str, Any] | None:
    if valuation is None:
        return None
    return {
        "valuation": format(valuation.valuation, "f"),
        "currency": valuation.currency,
        "effectiveAt": iso(valuation.effective_at),
        "version": valuation.version,
    }


async def stats_in(uow: UnitOfWork, pair_id: str, *, now: datetime) -> PairStats:
    """24h stats read from the partial first minute's trades, the full minutes' 1m candles
    and the current minute's trades (never a day of trades); equal to ``rolling_stats``."""
    parts = window_parts(now)
    md = uow.market_data
    if not parts.split:
        trades = await md.trades(pair_id, after=parts.start, until=now)
        before = await md.last_trade(pair_id, at_or_before=parts.start) if not trades else None
        return rolling_stats(pair_id, trades, now=now, last_before=before)
    tick = timedelta(microseconds=1)
    head = await md.trades(pair_id, after=parts.start, until=parts.head_end - tick)
    minutes = await md.candles(
        pair_id,
        Interval.M1,
        start=parts.head_end,
        end=parts.tail_start - timedelta(minutes=1),
        limit=MAX_MINUTES,
    )
    # the current minute's trades as their candle (one row, not a minute of trades: a ticker
    # reads this ten times a second), unless a trade of that minute is later than ``now``
    found = await md.candles(
        pair_id, Interval.M1, start=parts.tail_start, end=parts.tail_start, limit=1
    )
    current = found[0] if found and found[0].last_time <= now else None
    tail = (
        []
        if current is not None
        else await md.trades(pair_id, after=parts.tail_start - tick, until=now)
    )
    before = None
    if not (head or minutes or tail or current):
        before = await md.last_trade(pair_id, at_or_before=parts.start)
    return stats_from_parts(
        pair_id,
        now=now,
        head=head,
        minutes=minutes,
        tail=tail,
        current=current,
        last_before=before,
    )


async def pair_stats(storage: Storage, pair_id: str, *, now: datetime) -> PairStats:
    async with storage.unit_of_work(read_only=True) as uow:
        return await stats_in(uow, pair_id, now=now)


async def all_pairs_stats(
    storage: Storage, *, now: datetime, pair_ids: Sequence[str] | None = None
) -> list[PairStats]:
    """Stats of ``pair_ids`` (default: every pair that ever traded), in that order, read in
    one snapshot."""
    async with storage.unit_of_work(read_only=True) as uow:
        ids = list(pair_ids) if pair_ids is not None else await uow.market_data.pair_ids()
        return [await stats_in(uow, pair_id, now=now) for pair_id in ids]


async def candles(
    storage: Storage,
    pair_id: str,
    interval: Interval,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 500,
) -> list[Candle]:
    """``GET .../candles``: ``start``/``end`` bound ``openTime`` (both inclusive); without
    ``start``, the newest ``limit`` candles up to ``end``. Oldest first."""
    if not 1 <= limit <= MAX_CANDLES:
        raise ValueError(f"limit must be between 1 and {MAX_CANDLES}")
    if start is not None and end is not None and end < start:
        raise ValueError("to must not be before from")
    async with storage.unit_of_work(read_only=True) as uow:
        return await uow.market_data.candles(pair_id, interval, start=start, end=end, limit=limit)


async def ticker_payload(
    storage: Storage,
    *,
    pair_id: str,
    symbol: str,
    fmt: PairFormat,
    now: datetime,
    reference_symbol: str | None = None,
    market_id: str | None = None,
) -> dict[str, Any]:
    """The ``ticker`` channel's data for one pair, read in one snapshot:
    ``{pair, symbol, last, open, high, low, volume, quoteVolume, changePercent,
    referencePrice: {symbol, price, source, observedAt} | null,
    valuation: {valuation, currency, effectiveAt, version} | null, time}``.

    ``reference_symbol`` is the symbol whose accepted external price is shown (usually the
    base token's symbol); ``market_id`` the market whose latest asset valuation is shown."""
    async with storage.unit_of_work(read_only=True) as uow:
        stats = await stats_in(uow, pair_id, now=now)
        reference = (
            await uow.reference_prices.latest(reference_symbol) if reference_symbol else None
        )
        valuation = await uow.valuations.latest(market_id) if market_id else None
    return {
        "pair": pair_id,
        "symbol": symbol,
        **stats_wire(stats, fmt),
        "referencePrice": reference_wire(reference),
        "valuation": valuation_wire(valuation),
        "time": iso(now),
    }
