"""Storage of market data (part of the unit of work): ``uow.market_data`` (trades as market
data keeps them, and candles), ``uow.reference_prices`` and ``uow.valuations``.

What the store enforces itself, memory and SQL alike (possibly only at ``commit()``):
- a trade is stored once per ``(pair_id, seq)``, its place in the stream ``pair:<pair_id>``
  (``DuplicateMarketData``): the aggregator's idempotency rests on it;
- a candle is written optimistically: ``put_candle`` stores ``version`` 1 when there is none,
  or replaces the stored ``version - 1``; anything else is ``ConcurrentModification``;
- valuations are append-only, one per ``(market_id, version)`` (``DuplicateMarketData``);
  nothing updates or deletes a valuation or a reference price.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import datetime

from core.marketdata.model import AssetValuation, Candle, Interval, MarketTrade, ReferencePrice
from core.shared.errors import Conflict

MAX_CANDLES = 1000


class DuplicateMarketData(Conflict):
    code = "duplicate_market_data"


class MarketDataRepository(abc.ABC):
    @abc.abstractmethod
    async def add_trade(self, trade: MarketTrade) -> None:
        """Store a trade; ``DuplicateMarketData`` when ``(pair_id, seq)`` is stored."""

    @abc.abstractmethod
    async def add_trades(self, trades: Sequence[MarketTrade]) -> None:
        """Store trades at once (a pair writer's batch), all or none: ``DuplicateMarketData``
        when any ``(pair_id, seq)`` is stored or repeated, and then none is stored."""

    @abc.abstractmethod
    async def has_trade(self, pair_id: str, seq: int) -> bool: ...

    @abc.abstractmethod
    async def trades(self, pair_id: str, *, after: datetime, until: datetime) -> list[MarketTrade]:
        """The pair's trades with ``after < time <= until``, ordered by ``(time, seq)``."""

    @abc.abstractmethod
    async def last_trade(self, pair_id: str, *, at_or_before: datetime) -> MarketTrade | None:
        """The latest trade (by ``(time, seq)``) with ``time <= at_or_before``."""

    @abc.abstractmethod
    async def pair_ids(self) -> list[str]:
        """Every pair with at least one stored trade, sorted."""

    @abc.abstractmethod
    async def get_candle(
        self, pair_id: str, interval: Interval, open_time: datetime
    ) -> Candle | None: ...

    @abc.abstractmethod
    async def put_candle(self, candle: Candle) -> None:
        """Insert (``version`` 1) or replace the stored ``version - 1`` of this candle."""

    @abc.abstractmethod
    async def candles(
        self,
        pair_id: str,
        interval: Interval,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = MAX_CANDLES,
    ) -> list[Candle]:
        """Candles with ``start <= open_time <= end``, oldest first; with no ``start``, the
        newest ``limit`` of them (still oldest first)."""


class ReferencePriceRepository(abc.ABC):
    @abc.abstractmethod
    async def add(self, price: ReferencePrice) -> None:
        """Append an accepted price; ``DuplicateMarketData`` for a taken id."""

    @abc.abstractmethod
    async def latest(self, symbol: str, *, source: str | None = None) -> ReferencePrice | None:
        """The accepted price of ``symbol`` (from ``source`` when given) with the latest
        ``observed_at`` (ties: the latest ``fetched_at``)."""

    @abc.abstractmethod
    async def history(self, symbol: str, *, limit: int) -> list[ReferencePrice]:
        """Newest first by ``observed_at``."""


class ValuationRepository(abc.ABC):
    @abc.abstractmethod
    async def add(self, valuation: AssetValuation) -> None:
        """Append; ``DuplicateMarketData`` when ``(market_id, version)`` or the id is taken."""

    @abc.abstractmethod
    async def latest(self, market_id: str) -> AssetValuation | None: ...

    @abc.abstractmethod
    async def history(self, market_id: str) -> list[AssetValuation]:
        """Every valuation of the market, oldest (``version`` 1) first."""
