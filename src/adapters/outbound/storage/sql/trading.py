"""``trading_pairs``, ``orders`` and ``trades`` in the unit of work's transaction.

The database keeps the rules: unique pair symbol and market, unique (pair, seq) of orders
and trades, unique (user, clientOrderId); updates are ``UPDATE ... WHERE id = :id AND
version = :expected``. Inserts that can be refused run in a SAVEPOINT, so a refusal leaves
the unit of work usable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.outbound.storage.sql.prepared import Prepared
from adapters.outbound.storage.sql.tables import LIVE_ORDER, trading_pairs
from adapters.outbound.storage.sql.tables import orders as order_rows
from adapters.outbound.storage.sql.tables import trades as trade_rows
from core.ports.trading import (
    DuplicateClientOrderId,
    OrderRepository,
    PairRepository,
    TradeRepository,
)
from core.shared.errors import ConcurrentModification, Conflict
from core.trading.orders import LIVE_STATUSES, BookEntry, Order, OrderStatus, OrderType, Trade
from core.trading.pairs import Pair, PairStatus, PairSymbolTaken

_PAIR_INTS = ("tick", "lot", "min_quantity", "max_quantity", "book_seq", "version")
_ORDER_INTS = (
    "seq",
    "filled_quantity",
    "filled_quote",
    "fee",
    "fee_accrued",
    "locked",
    "version",
)


def _unique(exc: IntegrityError) -> bool:
    message = str(exc.orig).lower()
    return "unique" in message or "duplicate" in message


def _pair_values(pair: Pair) -> dict[str, Any]:
    values = attrs.asdict(pair, recurse=False)
    values["status"] = pair.status.value
    return values


def _load_pair(row: Mapping[Any, Any]) -> Pair:
    values = {f.name: row[f.name] for f in attrs.fields(Pair)}
    values["status"] = PairStatus(values["status"])
    for name in _PAIR_INTS:
        values[name] = int(values[name])
    return Pair(**values)


def _order_values(order: Order) -> dict[str, Any]:
    values = attrs.asdict(order, recurse=False)
    values["status"] = order.status.value
    values["type"] = order.type.value
    return values


def _load_order(row: Mapping[Any, Any]) -> Order:
    values = {f.name: row[f.name] for f in attrs.fields(Order)}
    values["status"] = OrderStatus(values["status"])
    values["type"] = OrderType(values["type"])
    for name in _ORDER_INTS:
        values[name] = int(values[name])
    if values["rest_position"] is not None:
        values["rest_position"] = int(values["rest_position"])
    values["post_only"] = bool(values["post_only"])
    return Order(**values)


def _load_trade(row: RowMapping) -> Trade:
    values = {f.name: row[f.name] for f in attrs.fields(Trade)}
    values["seq"] = int(values["seq"])
    return Trade(**values)


# Built once: every order submission and every batch of a pair's writer reads its pair, and
# the batch saves it.
_PAIR_BY = {
    column: Prepared(sa.select(trading_pairs).where(trading_pairs.c[column] == sa.bindparam("key")))
    for column in ("id", "symbol", "market_id")
}
_SAVE_PAIR = Prepared.replace(trading_pairs)


class SqlPairRepository(PairRepository):
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def _one(self, column: str, key: str) -> Pair | None:
        rows = await _PAIR_BY[column].rows(self._conn, {"key": key})
        return _load_pair(rows[0]) if rows else None

    async def add(self, pair: Pair) -> None:
        try:
            async with self._conn.begin_nested():
                await self._conn.execute(sa.insert(trading_pairs).values(**_pair_values(pair)))
        except IntegrityError as exc:
            if _unique(exc):
                raise PairSymbolTaken(pair.symbol) from exc
            raise

    async def get(self, pair_id: str) -> Pair | None:
        return await self._one("id", pair_id)

    async def by_symbol(self, symbol: str) -> Pair | None:
        return await self._one("symbol", symbol)

    async def by_market(self, market_id: str) -> Pair | None:
        return await self._one("market_id", market_id)

    async def list(self) -> list[Pair]:
        query = sa.select(trading_pairs).order_by(trading_pairs.c.symbol)
        return [_load_pair(r) for r in (await self._conn.execute(query)).mappings().all()]

    async def save(self, pair: Pair) -> Pair:
        values = _pair_values(pair)
        values["k_id"], values["k_version"] = values.pop("id"), pair.version - 1
        if await _SAVE_PAIR.run(self._conn, values) != 1:
            raise ConcurrentModification(f"pair {pair.id} changed since it was read")
        return pair


_STATUS = {s.value: s for s in OrderStatus}


def _raw(column: sa.Column[Any]) -> Any:
    """The column as the driver returns it (digits text on SQLite, a Decimal on Postgres)."""
    return sa.type_coerce(column, sa.Text())


# The live orders' partial index serves this (its WHERE is the index's own).
_BOOK_ENTRIES = sa.select(
    order_rows.c.id,
    _raw(order_rows.c.seq),
    order_rows.c.user_id,
    order_rows.c.side,
    order_rows.c.status,
    order_rows.c.time_in_force,
    order_rows.c.post_only,
    _raw(order_rows.c.price),
    _raw(order_rows.c.stop_price),
    _raw(order_rows.c.quantity),
    _raw(order_rows.c.filled_quantity),
    _raw(order_rows.c.rest_position),
).where(order_rows.c.pair_id == sa.bindparam("pair_id"), sa.text(LIVE_ORDER))


def _by_rest_position(entry: BookEntry) -> tuple[int, int]:
    return (entry.rest_position or 0, entry.seq)


def _by_seq(entry: BookEntry) -> int:
    return entry.seq


# Built once: a pair's writer saves every order a batch touched (building and caching the
# statement per order cost more than running it).
_SAVE_ORDER = Prepared.replace(order_rows)
_INSERT_ORDER = Prepared.insert(order_rows)
_ORDER_BY_ID = Prepared(sa.select(order_rows).where(order_rows.c.id == sa.bindparam("key")))
_INSERT_TRADE = Prepared.insert(trade_rows)


def _saved_values(order: Order) -> dict[str, Any]:
    values = _order_values(order)
    values["k_id"], values["k_version"] = values.pop("id"), order.version - 1
    return values


class SqlOrderRepository(OrderRepository):
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def _many(self, query: Any) -> list[Order]:
        return [_load_order(r) for r in (await self._conn.execute(query)).mappings().all()]

    async def add(self, order: Order) -> None:
        if order.version != 1:
            raise ValueError("a new order has version 1")
        try:
            async with self._conn.begin_nested():
                await self._conn.execute(sa.insert(order_rows).values(**_order_values(order)))
        except IntegrityError as exc:
            if not _unique(exc):
                raise
            if order.client_order_id is not None and await self.by_client_id(
                order.user_id, order.client_order_id
            ):
                raise DuplicateClientOrderId("the client order id is taken") from exc
            raise Conflict(f"order {order.id} or its seq already exists") from exc

    async def add_many(self, orders: Sequence[Order]) -> None:
        if any(order.version != 1 for order in orders):
            raise ValueError("a new order has version 1")
        await _INSERT_ORDER.run(self._conn, [_order_values(o) for o in orders])

    async def get(self, order_id: str) -> Order | None:
        rows = await _ORDER_BY_ID.rows(self._conn, {"key": order_id})
        return _load_order(rows[0]) if rows else None

    async def by_client_id(self, user_id: str, client_order_id: str) -> Order | None:
        found = await self._many(
            sa.select(order_rows).where(
                order_rows.c.user_id == user_id, order_rows.c.client_order_id == client_order_id
            )
        )
        return found[0] if found else None

    async def save(self, order: Order) -> Order:
        if await _SAVE_ORDER.run(self._conn, _saved_values(order)) != 1:
            raise ConcurrentModification(f"order {order.id} changed since it was read")
        return order

    async def save_many(self, orders: Sequence[Order]) -> None:
        if await _SAVE_ORDER.run(self._conn, [_saved_values(o) for o in orders]) != len(orders):
            raise ConcurrentModification("an order changed since it was read")

    async def live(self, pair_id: str) -> list[Order]:
        live = [s.value for s in LIVE_STATUSES]
        return await self._many(
            sa.select(order_rows)
            .where(order_rows.c.pair_id == pair_id, order_rows.c.status.in_(live))
            .order_by(order_rows.c.seq)
        )

    async def book_entries(self, pair_id: str) -> list[BookEntry]:
        """Only the columns the book needs, their amounts converted here (no per-value type
        processing: 100,000 resting orders are read in a fraction of a second)."""
        rows = (await self._conn.execute(_BOOK_ENTRIES, {"pair_id": pair_id})).all()
        status = _STATUS.__getitem__
        make = tuple.__new__  # BookEntry's own __new__ parses arguments: 3x slower
        resting: list[BookEntry] = []
        pending: list[BookEntry] = []
        for row in rows:
            entry: BookEntry = make(
                BookEntry,
                (
                    row[0],
                    int(row[1]),
                    row[2],
                    row[3],
                    status(row[4]),
                    row[5],
                    bool(row[6]),
                    int(row[7]),
                    None if row[8] is None else int(row[8]),
                    int(row[9]),
                    int(row[10]),
                    None if row[11] is None else int(row[11]),
                ),
            )
            (pending if entry.status is OrderStatus.PENDING_TRIGGER else resting).append(entry)
        resting.sort(key=_by_rest_position)
        pending.sort(key=_by_seq)
        return resting + pending

    async def max_seq(self, pair_id: str) -> int:
        query = sa.select(sa.func.max(order_rows.c.seq)).where(order_rows.c.pair_id == pair_id)
        return int((await self._conn.execute(query)).scalar() or 0)

    async def max_rest_position(self, pair_id: str) -> int:
        query = sa.select(sa.func.max(order_rows.c.rest_position)).where(
            order_rows.c.pair_id == pair_id
        )
        return int((await self._conn.execute(query)).scalar() or 0)

    async def for_user(
        self,
        user_id: str,
        *,
        statuses: Sequence[OrderStatus] = (),
        pair_id: str | None = None,
        limit: int,
        before_id: str | None = None,
    ) -> list[Order]:
        query = sa.select(order_rows).where(order_rows.c.user_id == user_id)
        if statuses:
            query = query.where(order_rows.c.status.in_([s.value for s in statuses]))
        if pair_id is not None:
            query = query.where(order_rows.c.pair_id == pair_id)
        if before_id is not None:
            query = query.where(order_rows.c.id < before_id)
        return await self._many(query.order_by(order_rows.c.id.desc()).limit(limit))


class SqlTradeRepository(TradeRepository):
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def _many(self, query: Any) -> list[Trade]:
        return [_load_trade(r) for r in (await self._conn.execute(query)).mappings().all()]

    async def add(self, trades: Sequence[Trade]) -> None:
        await _INSERT_TRADE.run(self._conn, [attrs.asdict(t, recurse=False) for t in trades])

    async def for_pair(self, pair_id: str, *, limit: int) -> list[Trade]:
        return await self._many(
            sa.select(trade_rows)
            .where(trade_rows.c.pair_id == pair_id)
            .order_by(trade_rows.c.seq.desc())
            .limit(limit)
        )

    async def for_user(
        self, user_id: str, *, limit: int, before_id: str | None = None
    ) -> list[Trade]:
        query = sa.select(trade_rows).where(
            sa.or_(trade_rows.c.maker_user_id == user_id, trade_rows.c.taker_user_id == user_id)
        )
        if before_id is not None:
            query = query.where(trade_rows.c.id < before_id)
        return await self._many(query.order_by(trade_rows.c.id.desc()).limit(limit))

    async def max_seq(self, pair_id: str) -> int:
        query = sa.select(sa.func.max(trade_rows.c.seq)).where(trade_rows.c.pair_id == pair_id)
        return int((await self._conn.execute(query)).scalar() or 0)
