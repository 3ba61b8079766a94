"""Market data in the memory storage (trades, candles, reference prices, valuations), with the
SQL rules: a trade once per (pair, seq), candles written on their stored version, valuations
once per (market, version), nothing ever rewritten. ``MemoryMarketDataState.check`` refuses
at commit what the database would."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import attrs

from core.marketdata.model import AssetValuation, Candle, Interval, MarketTrade, ReferencePrice
from core.ports.marketdata import (
    MAX_CANDLES,
    DuplicateMarketData,
    MarketDataRepository,
    ReferencePriceRepository,
    ValuationRepository,
)
from core.shared.errors import ConcurrentModification

CandleKey = tuple[str, Interval, datetime]


def _candle_key(candle: Candle) -> CandleKey:
    return (candle.pair_id, candle.interval, candle.open_time)


@attrs.define
class MarketDataChanges:
    trades: dict[tuple[str, int], MarketTrade] = attrs.Factory(dict)
    candles: dict[CandleKey, Candle] = attrs.Factory(dict)
    candle_bases: dict[CandleKey, int] = attrs.Factory(dict)  # committed version built on
    prices: dict[str, ReferencePrice] = attrs.Factory(dict)
    valuations: dict[str, AssetValuation] = attrs.Factory(dict)


class MemoryMarketDataState:
    def __init__(self) -> None:
        self.trades: dict[tuple[str, int], MarketTrade] = {}
        self.by_pair: dict[str, list[MarketTrade]] = {}  # each pair's trades, any order
        self.candles: dict[CandleKey, Candle] = {}
        self.prices: dict[str, ReferencePrice] = {}
        self.valuations: dict[str, AssetValuation] = {}

    def check(self, changes: MarketDataChanges) -> None:
        for key in changes.trades:
            if key in self.trades:
                raise DuplicateMarketData(f"trade {key[1]} of pair {key[0]} is already stored")
        for candle_key, base in changes.candle_bases.items():
            stored = self.candles.get(candle_key)
            if (0 if stored is None else stored.version) != base:
                raise ConcurrentModification(
                    "the candle changed since it was read",
                    details={"pairId": candle_key[0], "interval": candle_key[1].value},
                )
        for price_id in changes.prices:
            if price_id in self.prices:
                raise DuplicateMarketData(f"reference price {price_id} already exists")
        taken = {(v.market_id, v.version) for v in self.valuations.values()}
        for valuation in changes.valuations.values():
            if valuation.id in self.valuations or (valuation.market_id, valuation.version) in taken:
                raise DuplicateMarketData(
                    f"valuation {valuation.version} of market {valuation.market_id} exists"
                )

    def apply(self, changes: MarketDataChanges) -> None:
        self.trades.update(changes.trades)
        for trade in changes.trades.values():
            self.by_pair.setdefault(trade.pair_id, []).append(trade)
        self.candles.update(changes.candles)
        self.prices.update(changes.prices)
        self.valuations.update(changes.valuations)


class MemoryMarketDataRepository(MarketDataRepository):
    def __init__(self, state: MemoryMarketDataState, changes: MarketDataChanges) -> None:
        self._state = state
        self._changes = changes

    def _pair_trades(self, pair_id: str) -> list[MarketTrade]:
        staged = [t for t in self._changes.trades.values() if t.pair_id == pair_id]
        return [*self._state.by_pair.get(pair_id, ()), *staged]

    def _candle(self, key: CandleKey) -> Candle | None:
        staged = self._changes.candles.get(key)
        return staged if staged is not None else self._state.candles.get(key)

    async def add_trade(self, trade: MarketTrade) -> None:
        key = (trade.pair_id, trade.seq)
        if key in self._state.trades or key in self._changes.trades:
            raise DuplicateMarketData(f"trade {trade.seq} of pair {trade.pair_id} is stored")
        self._changes.trades[key] = trade

    async def add_trades(self, trades: Sequence[MarketTrade]) -> None:
        keys = [(trade.pair_id, trade.seq) for trade in trades]
        taken = [k for k in keys if k in self._state.trades or k in self._changes.trades]
        if taken or len(set(keys)) != len(keys):
            raise DuplicateMarketData("a trade of the batch is stored or repeated")
        for key, trade in zip(keys, trades, strict=True):
            self._changes.trades[key] = trade

    async def has_trade(self, pair_id: str, seq: int) -> bool:
        return (pair_id, seq) in self._state.trades or (pair_id, seq) in self._changes.trades

    async def trades(self, pair_id: str, *, after: datetime, until: datetime) -> list[MarketTrade]:
        found = [t for t in self._pair_trades(pair_id) if after < t.time <= until]
        return sorted(found, key=lambda t: t.key)

    async def last_trade(self, pair_id: str, *, at_or_before: datetime) -> MarketTrade | None:
        found = [t for t in self._pair_trades(pair_id) if t.time <= at_or_before]
        return max(found, key=lambda t: t.key, default=None)

    async def pair_ids(self) -> list[str]:
        staged = {pair_id for pair_id, _ in self._changes.trades}
        return sorted(staged | set(self._state.by_pair))

    async def get_candle(
        self, pair_id: str, interval: Interval, open_time: datetime
    ) -> Candle | None:
        return self._candle((pair_id, interval, open_time))

    async def put_candle(self, candle: Candle) -> None:
        key = _candle_key(candle)
        stored = self._candle(key)
        current = 0 if stored is None else stored.version
        if candle.version != current + 1:
            raise ConcurrentModification(
                "the candle changed since it was read",
                details={"pairId": candle.pair_id, "interval": candle.interval.value},
            )
        if key not in self._changes.candles:
            self._changes.candle_bases[key] = current
        self._changes.candles[key] = candle

    async def candles(
        self,
        pair_id: str,
        interval: Interval,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = MAX_CANDLES,
    ) -> list[Candle]:
        found = sorted(
            (
                c
                for (p, i, _), c in {**self._state.candles, **self._changes.candles}.items()
                if p == pair_id
                and i is interval
                and (start is None or c.open_time >= start)
                and (end is None or c.open_time <= end)
            ),
            key=lambda c: c.open_time,
        )
        return found[:limit] if start is not None else found[-limit:] if limit else []


class MemoryReferencePriceRepository(ReferencePriceRepository):
    def __init__(self, state: MemoryMarketDataState, changes: MarketDataChanges) -> None:
        self._state = state
        self._changes = changes

    def _all(self) -> list[ReferencePrice]:
        return [*self._state.prices.values(), *self._changes.prices.values()]

    async def add(self, price: ReferencePrice) -> None:
        if price.id in self._state.prices or price.id in self._changes.prices:
            raise DuplicateMarketData(f"reference price {price.id} already exists")
        self._changes.prices[price.id] = price

    async def latest(self, symbol: str, *, source: str | None = None) -> ReferencePrice | None:
        found = [
            p for p in self._all() if p.symbol == symbol and (source is None or p.source == source)
        ]
        return max(found, key=lambda p: (p.observed_at, p.fetched_at, p.id), default=None)

    async def history(self, symbol: str, *, limit: int) -> list[ReferencePrice]:
        found = [p for p in self._all() if p.symbol == symbol]
        found.sort(key=lambda p: (p.observed_at, p.fetched_at, p.id), reverse=True)
        return found[:limit]


class MemoryValuationRepository(ValuationRepository):
    def __init__(self, state: MemoryMarketDataState, changes: MarketDataChanges) -> None:
        self._state = state
        self._changes = changes

    def _all(self) -> list[AssetValuation]:
        return [*self._state.valuations.values(), *self._changes.valuations.values()]

    async def add(self, valuation: AssetValuation) -> None:
        for other in self._all():
            if other.id == valuation.id or (other.market_id, other.version) == (
                valuation.market_id,
                valuation.version,
            ):
                raise DuplicateMarketData(
                    f"valuation {valuation.version} of market {valuation.market_id} exists"
                )
        self._changes.valuations[valuation.id] = valuation

    async def latest(self, market_id: str) -> AssetValuation | None:
        mine = [v for v in self._all() if v.market_id == market_id]
        return max(mine, key=lambda v: v.version, default=None)

    async def history(self, market_id: str) -> list[AssetValuation]:
        return sorted((v for v in self._all() if v.market_id == market_id), key=lambda v: v.version)
