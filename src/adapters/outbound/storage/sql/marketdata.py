"""Market data in the unit of work's transaction: ``marketdata_trades``, ``marketdata_candles``,
``reference_prices`` and ``asset_valuations``.

The database keeps the rules: the primary key refuses a second trade with one (pair, seq);
a candle is inserted at version 1 (the primary key refuses a second insert) or updated with
``WHERE version = :expected``; valuations are unique per (market, version). Every insert runs
in a SAVEPOINT, so a refusal leaves the unit of work usable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.outbound.storage.sql.prepared import Prepared, settable
from adapters.outbound.storage.sql.tables import (
    asset_valuations,
    marketdata_candles,
    marketdata_trades,
    reference_prices,
)
from core.marketdata.model import AssetValuation, Candle, Interval, MarketTrade, ReferencePrice
from core.ports.marketdata import (
    MAX_CANDLES,
    DuplicateMarketData,
    MarketDataRepository,
    ReferencePriceRepository,
    ValuationRepository,
)
from core.shared.errors import ConcurrentModification


async def _insert(
    conn: AsyncConnection, table: sa.Table, values: dict[str, Any], what: str
) -> None:
    try:
        async with conn.begin_nested():
            await conn.execute(sa.insert(table).values(**values))
    except IntegrityError as exc:
        raise DuplicateMarketData(f"{what} is already stored") from exc


def _trade(row: RowMapping) -> MarketTrade:
    return MarketTrade(
        pair_id=row["pair_id"],
        seq=int(row["seq"]),
        trade_id=row["trade_id"],
        price=row["price"],
        quantity=row["quantity"],
        taker_side=row["taker_side"],
        time=row["time"],
    )


def _candle(row: Mapping[Any, Any]) -> Candle:
    values = {f.name: row[f.name] for f in attrs.fields(Candle)}
    values["interval"] = Interval(values["interval"])
    for name in ("trade_count", "first_seq", "last_seq", "version"):
        values[name] = int(values[name])
    return Candle(**values)


# Built once: a pair writer's batch stores its trades and reads and writes their candles.
_INSERT_TRADE = Prepared.insert(marketdata_trades)
_INSERT_CANDLE = Prepared.insert(marketdata_candles)
_HAS_TRADE = Prepared(
    sa.select(marketdata_trades.c.seq).where(
        marketdata_trades.c.pair_id == sa.bindparam("pair_id"),
        marketdata_trades.c.seq == sa.bindparam("seq", type_=marketdata_trades.c.seq.type),
    )
)
_CANDLE_KEY = (
    marketdata_candles.c.pair_id == sa.bindparam("k_pair_id"),
    marketdata_candles.c.interval == sa.bindparam("k_interval"),
    marketdata_candles.c.open_time
    == sa.bindparam("k_open_time", type_=marketdata_candles.c.open_time.type),
)
_GET_CANDLE = Prepared(sa.select(marketdata_candles).where(*_CANDLE_KEY))
_UPDATE_CANDLE = Prepared(
    sa.update(marketdata_candles)
    .where(*_CANDLE_KEY, marketdata_candles.c.version == sa.bindparam("k_version"))
    .values(settable(marketdata_candles))
)


class SqlMarketDataRepository(MarketDataRepository):
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def add_trade(self, trade: MarketTrade) -> None:
        values = attrs.asdict(trade, recurse=False)
        await _insert(
            self._conn, marketdata_trades, values, f"trade {trade.seq} of pair {trade.pair_id}"
        )

    async def add_trades(self, trades: Sequence[MarketTrade]) -> None:
        if not trades:
            return
        try:
            async with self._conn.begin_nested():
                await _INSERT_TRADE.run(
                    self._conn, [attrs.asdict(trade, recurse=False) for trade in trades]
                )
        except IntegrityError as exc:
            raise DuplicateMarketData("a trade of the batch is already stored") from exc

    async def has_trade(self, pair_id: str, seq: int) -> bool:
        return bool(await _HAS_TRADE.rows(self._conn, {"pair_id": pair_id, "seq": seq}))

    async def trades(self, pair_id: str, *, after: datetime, until: datetime) -> list[MarketTrade]:
        t = marketdata_trades.c
        query = (
            sa.select(marketdata_trades)
            .where(t.pair_id == pair_id, t.time > after, t.time <= until)
            .order_by(t.time, t.seq)
        )
        return [_trade(r) for r in (await self._conn.execute(query)).mappings().all()]

    async def last_trade(self, pair_id: str, *, at_or_before: datetime) -> MarketTrade | None:
        t = marketdata_trades.c
        query = (
            sa.select(marketdata_trades)
            .where(t.pair_id == pair_id, t.time <= at_or_before)
            .order_by(t.time.desc(), t.seq.desc())
            .limit(1)
        )
        row = (await self._conn.execute(query)).mappings().first()
        return None if row is None else _trade(row)

    async def pair_ids(self) -> list[str]:
        t = marketdata_trades.c
        query = sa.select(t.pair_id).distinct().order_by(t.pair_id)
        return [str(r[0]) for r in (await self._conn.execute(query)).all()]

    async def get_candle(
        self, pair_id: str, interval: Interval, open_time: datetime
    ) -> Candle | None:
        key = {"k_pair_id": pair_id, "k_interval": interval.value, "k_open_time": open_time}
        rows = await _GET_CANDLE.rows(self._conn, key)
        return _candle(rows[0]) if rows else None

    async def put_candle(self, candle: Candle) -> None:
        values = attrs.asdict(candle, recurse=False)
        values["interval"] = candle.interval.value
        conflict = ConcurrentModification(
            "the candle changed since it was read",
            details={"pairId": candle.pair_id, "interval": candle.interval.value},
        )
        if candle.version == 1:
            try:
                async with self._conn.begin_nested():
                    await _INSERT_CANDLE.run(self._conn, values)
            except IntegrityError as exc:
                raise conflict from exc
            return
        values["k_pair_id"], values["k_interval"] = values.pop("pair_id"), values.pop("interval")
        values["k_open_time"], values["k_version"] = values.pop("open_time"), candle.version - 1
        if await _UPDATE_CANDLE.run(self._conn, values) != 1:
            raise conflict

    async def candles(
        self,
        pair_id: str,
        interval: Interval,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = MAX_CANDLES,
    ) -> list[Candle]:
        c = marketdata_candles.c
        query = sa.select(marketdata_candles).where(
            c.pair_id == pair_id, c.interval == interval.value
        )
        if start is not None:
            query = query.where(c.open_time >= start)
        if end is not None:
            query = query.where(c.open_time <= end)
        if start is not None:
            query = query.order_by(c.open_time).limit(limit)
            rows = (await self._conn.execute(query)).mappings().all()
            return [_candle(r) for r in rows]
        query = query.order_by(c.open_time.desc()).limit(limit)
        rows = (await self._conn.execute(query)).mappings().all()
        return [_candle(r) for r in reversed(rows)]


class SqlReferencePriceRepository(ReferencePriceRepository):
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def add(self, price: ReferencePrice) -> None:
        values = attrs.asdict(price, recurse=False)
        await _insert(self._conn, reference_prices, values, f"reference price {price.id}")

    def _newest(self) -> sa.Select[Any]:
        p = reference_prices.c
        return sa.select(reference_prices).order_by(
            p.observed_at.desc(), p.fetched_at.desc(), p.id.desc()
        )

    async def latest(self, symbol: str, *, source: str | None = None) -> ReferencePrice | None:
        p = reference_prices.c
        query = self._newest().where(p.symbol == symbol)
        if source is not None:
            query = query.where(p.source == source)
        row = (await self._conn.execute(query.limit(1))).mappings().first()
        return None if row is None else ReferencePrice(**dict(row))

    async def history(self, symbol: str, *, limit: int) -> list[ReferencePrice]:
        query = self._newest().where(reference_prices.c.symbol == symbol).limit(limit)
        rows = (await self._conn.execute(query)).mappings().all()
        return [ReferencePrice(**dict(r)) for r in rows]


class SqlValuationRepository(ValuationRepository):
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def add(self, valuation: AssetValuation) -> None:
        values = attrs.asdict(valuation, recurse=False)
        what = f"valuation {valuation.version} of market {valuation.market_id}"
        await _insert(self._conn, asset_valuations, values, what)

    async def latest(self, market_id: str) -> AssetValuation | None:
        v = asset_valuations.c
        query = (
            sa.select(asset_valuations)
            .where(v.market_id == market_id)
            .order_by(v.version.desc())
            .limit(1)
        )
        row = (await self._conn.execute(query)).mappings().first()
        return None if row is None else _valuation(row)

    async def history(self, market_id: str) -> list[AssetValuation]:
        v = asset_valuations.c
        query = sa.select(asset_valuations).where(v.market_id == market_id).order_by(v.version)
        return [_valuation(r) for r in (await self._conn.execute(query)).mappings().all()]


def _valuation(row: RowMapping) -> AssetValuation:
    values = dict(row)
    values["version"] = int(values["version"])
    return AssetValuation(**values)
