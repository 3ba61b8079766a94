"""Pairs, orders and trades in the memory storage, with the SQL rules.

A unit of work stages records; ``MemoryTradingState.check`` refuses at commit what the
database would: a record added twice, a pair symbol or market taken, a user's
``client_order_id`` used twice, an update built on a version that is no longer stored.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from core.ports.settlement import SettlementStatus, TradeSettlement
from core.ports.trading import (
    DuplicateClientOrderId,
    OrderRepository,
    PairRepository,
    TradeRepository,
)
from core.shared.errors import ConcurrentModification, Conflict
from core.trading.orders import (
    LIVE_STATUSES,
    BookEntry,
    Order,
    OrderStatus,
    Trade,
    book_entries_of,
)
from core.trading.pairs import Pair, PairSymbolTaken


@attrs.define
class TradingChanges:
    pairs: dict[str, Pair] = attrs.Factory(dict)
    new_pairs: set[str] = attrs.Factory(set)
    pair_bases: dict[str, int] = attrs.Factory(dict)
    orders: dict[str, Order] = attrs.Factory(dict)
    new_orders: set[str] = attrs.Factory(set)
    order_bases: dict[str, int] = attrs.Factory(dict)
    trades: list[Trade] = attrs.Factory(list)
    # trade id -> (the status it must still have at commit, its new settlement)
    settlements: dict[str, tuple[SettlementStatus, TradeSettlement]] = attrs.Factory(dict)


class MemoryTradingState:
    def __init__(self) -> None:
        self.pairs: dict[str, Pair] = {}
        self.orders: dict[str, Order] = {}
        self.client_ids: dict[tuple[str, str], str] = {}  # (user, client id) -> order id
        self.live: dict[str, dict[str, Order]] = {}  # pair -> live orders by id
        self.trades: dict[str, list[Trade]] = {}  # pair -> trades in seq order
        self.user_trades: dict[str, list[Trade]] = {}
        self.settlements: dict[str, TradeSettlement] = {}  # absent: PENDING

    def settlement_status(self, trade_id: str) -> SettlementStatus:
        found = self.settlements.get(trade_id)
        return SettlementStatus.PENDING if found is None else found.status

    def check(self, changes: TradingChanges) -> None:
        for pair_id, pair in changes.pairs.items():
            stored = self.pairs.get(pair_id)
            if pair_id in changes.new_pairs:
                if stored is not None:
                    raise Conflict(f"pair {pair_id} already exists")
                for other in self.pairs.values():
                    if other.symbol == pair.symbol or (
                        pair.market_id is not None and other.market_id == pair.market_id
                    ):
                        raise PairSymbolTaken(pair.symbol)
            elif stored is None or stored.version != changes.pair_bases[pair_id]:
                raise ConcurrentModification(f"pair {pair_id} changed since it was read")
        for order_id, order in changes.orders.items():
            stored_order = self.orders.get(order_id)
            if order_id in changes.new_orders:
                if stored_order is not None:
                    raise Conflict(f"order {order_id} already exists")
                key = (order.user_id, order.client_order_id or "")
                if order.client_order_id is not None and key in self.client_ids:
                    raise DuplicateClientOrderId("the client order id is taken")
            elif stored_order is None or stored_order.version != changes.order_bases[order_id]:
                raise ConcurrentModification(f"order {order_id} changed since it was read")
        for trade_id, (expected, _) in changes.settlements.items():
            if self.settlement_status(trade_id) is not expected:
                raise ConcurrentModification(f"trade {trade_id}'s settlement changed")

    def apply(self, changes: TradingChanges) -> None:
        self.pairs.update(changes.pairs)
        for order_id, order in changes.orders.items():
            self.orders[order_id] = order
            if order.client_order_id is not None:
                self.client_ids[(order.user_id, order.client_order_id)] = order_id
            live = self.live.setdefault(order.pair_id, {})
            if order.status in LIVE_STATUSES:
                live[order_id] = order
            else:
                live.pop(order_id, None)
        for trade in changes.trades:
            self.trades.setdefault(trade.pair_id, []).append(trade)
            self.user_trades.setdefault(trade.maker_user_id, []).append(trade)
            self.user_trades.setdefault(trade.taker_user_id, []).append(trade)
        for trade_id, (_, settlement) in changes.settlements.items():
            self.settlements[trade_id] = settlement


class MemoryPairRepository(PairRepository):
    def __init__(self, state: MemoryTradingState, changes: TradingChanges) -> None:
        self._state = state
        self._changes = changes

    def _get(self, pair_id: str) -> Pair | None:
        return self._changes.pairs.get(pair_id) or self._state.pairs.get(pair_id)

    def _all(self) -> dict[str, Pair]:
        return {**self._state.pairs, **self._changes.pairs}

    async def add(self, pair: Pair) -> None:
        for other in self._all().values():
            if other.id == pair.id:
                raise Conflict(f"pair {pair.id} already exists")
            if other.symbol == pair.symbol or (
                pair.market_id is not None and other.market_id == pair.market_id
            ):
                raise PairSymbolTaken(pair.symbol)
        self._changes.pairs[pair.id] = pair
        self._changes.new_pairs.add(pair.id)

    async def get(self, pair_id: str) -> Pair | None:
        return self._get(pair_id)

    async def by_symbol(self, symbol: str) -> Pair | None:
        return next((p for p in self._all().values() if p.symbol == symbol), None)

    async def by_market(self, market_id: str) -> Pair | None:
        return next((p for p in self._all().values() if p.market_id == market_id), None)

    async def list(self) -> list[Pair]:
        return sorted(self._all().values(), key=lambda p: p.symbol)

    async def save(self, pair: Pair) -> Pair:
        current = self._get(pair.id)
        if current is None or current.version != pair.version - 1:
            raise ConcurrentModification(f"pair {pair.id} changed since it was read")
        if pair.id not in self._changes.pairs:
            self._changes.pair_bases[pair.id] = current.version
        self._changes.pairs[pair.id] = pair
        return pair


class MemoryOrderRepository(OrderRepository):
    def __init__(self, state: MemoryTradingState, changes: TradingChanges) -> None:
        self._state = state
        self._changes = changes

    def _get(self, order_id: str) -> Order | None:
        return self._changes.orders.get(order_id) or self._state.orders.get(order_id)

    def _all(self) -> dict[str, Order]:
        return {**self._state.orders, **self._changes.orders}

    async def add(self, order: Order) -> None:
        if self._get(order.id) is not None:
            raise Conflict(f"order {order.id} already exists")
        if order.version != 1:
            raise ValueError("a new order has version 1")
        if order.client_order_id is not None and (
            await self.by_client_id(order.user_id, order.client_order_id) is not None
        ):
            raise DuplicateClientOrderId("the client order id is taken")
        self._changes.orders[order.id] = order
        self._changes.new_orders.add(order.id)

    async def add_many(self, orders: Sequence[Order]) -> None:
        for order in orders:
            await self.add(order)

    async def get(self, order_id: str) -> Order | None:
        return self._get(order_id)

    async def by_client_id(self, user_id: str, client_order_id: str) -> Order | None:
        found = self._state.client_ids.get((user_id, client_order_id))
        if found is not None:
            return self._get(found)
        return next(
            (
                o
                for o in self._changes.orders.values()
                if o.user_id == user_id and o.client_order_id == client_order_id
            ),
            None,
        )

    async def save(self, order: Order) -> Order:
        current = self._get(order.id)
        if current is None or current.version != order.version - 1:
            raise ConcurrentModification(f"order {order.id} changed since it was read")
        if order.id not in self._changes.orders:
            self._changes.order_bases[order.id] = current.version
        self._changes.orders[order.id] = order
        return order

    async def live(self, pair_id: str) -> list[Order]:
        merged = dict(self._state.live.get(pair_id, {}))
        for order in self._changes.orders.values():
            if order.pair_id != pair_id:
                continue
            if order.status in LIVE_STATUSES:
                merged[order.id] = order
            else:
                merged.pop(order.id, None)
        return sorted(merged.values(), key=lambda o: o.seq)

    async def book_entries(self, pair_id: str) -> list[BookEntry]:
        return book_entries_of(await self.live(pair_id))

    async def max_seq(self, pair_id: str) -> int:
        return max((o.seq for o in self._all().values() if o.pair_id == pair_id), default=0)

    async def max_rest_position(self, pair_id: str) -> int:
        return max(
            (o.rest_position or 0 for o in self._all().values() if o.pair_id == pair_id),
            default=0,
        )

    async def for_user(
        self,
        user_id: str,
        *,
        statuses: Sequence[OrderStatus] = (),
        pair_id: str | None = None,
        limit: int,
        before_id: str | None = None,
    ) -> list[Order]:
        found = [
            o
            for o in self._all().values()
            if o.user_id == user_id
            and (not statuses or o.status in statuses)
            and (pair_id is None or o.pair_id == pair_id)
            and (before_id is None or o.id < before_id)
        ]
        found.sort(key=lambda o: o.id, reverse=True)
        return found[:limit]


class MemoryTradeRepository(TradeRepository):
    def __init__(self, state: MemoryTradingState, changes: TradingChanges) -> None:
        self._state = state
        self._changes = changes

    async def add(self, trades: Sequence[Trade]) -> None:
        self._changes.trades.extend(trades)

    async def for_pair(self, pair_id: str, *, limit: int) -> list[Trade]:
        staged = [t for t in self._changes.trades if t.pair_id == pair_id]
        stored = self._state.trades.get(pair_id, [])
        return (stored[-limit:] + staged)[::-1][:limit]

    async def for_user(
        self, user_id: str, *, limit: int, before_id: str | None = None
    ) -> list[Trade]:
        found = {
            t.id: t
            for t in [
                *self._state.user_trades.get(user_id, []),
                *(t for t in self._changes.trades if user_id in (t.maker_user_id, t.taker_user_id)),
            ]
            if before_id is None or t.id < before_id
        }
        return sorted(found.values(), key=lambda t: t.id, reverse=True)[:limit]

    async def max_seq(self, pair_id: str) -> int:
        staged = [t.seq for t in self._changes.trades if t.pair_id == pair_id]
        stored = self._state.trades.get(pair_id, [])
        return max([*staged, stored[-1].seq if stored else 0])
