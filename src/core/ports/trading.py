"""Trading storage (part of the unit of work): ``uow.pairs``, ``uow.orders``, ``uow.trades``.

Pairs and orders change optimistically: ``save`` writes a record whose ``version`` is the
stored one + 1 and raises ``ConcurrentModification`` otherwise (with the memory store
possibly only at ``commit()``). The store refuses a second pair with a symbol
(``PairSymbolTaken``) or a market, and a second order of one user with one
``client_order_id`` (``DuplicateClientOrderId``).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

from core.shared.errors import Conflict
from core.trading.orders import BookEntry, Order, OrderStatus, Trade
from core.trading.pairs import Pair


class DuplicateClientOrderId(Conflict):
    code = "duplicate_client_order_id"


class PairRepository(abc.ABC):
    @abc.abstractmethod
    async def add(self, pair: Pair) -> None:
        """``PairSymbolTaken`` for a taken symbol or market (possibly at ``commit()``)."""

    @abc.abstractmethod
    async def get(self, pair_id: str) -> Pair | None: ...

    @abc.abstractmethod
    async def by_symbol(self, symbol: str) -> Pair | None: ...

    @abc.abstractmethod
    async def by_market(self, market_id: str) -> Pair | None: ...

    @abc.abstractmethod
    async def list(self) -> list[Pair]:
        """Every pair, by symbol."""

    @abc.abstractmethod
    async def save(self, pair: Pair) -> Pair:
        """Replace the stored pair of ``pair.version - 1``."""


class OrderRepository(abc.ABC):
    @abc.abstractmethod
    async def add(self, order: Order) -> None:
        """Store a new order (version 1). ``DuplicateClientOrderId`` when the user already
        has an order with its ``client_order_id``; ``Conflict`` for a taken (pair, seq)."""

    @abc.abstractmethod
    async def add_many(self, orders: Sequence[Order]) -> None:
        """Store new orders at once (the pair's writer, at the end of a batch). A duplicate
        fails the unit of work (no savepoint): the writer has ruled them out."""

    @abc.abstractmethod
    async def get(self, order_id: str) -> Order | None: ...

    @abc.abstractmethod
    async def by_client_id(self, user_id: str, client_order_id: str) -> Order | None: ...

    @abc.abstractmethod
    async def save(self, order: Order) -> Order:
        """Replace the stored order of ``order.version - 1``."""

    async def save_many(self, orders: Sequence[Order]) -> None:
        """``save`` each (the pair's writer, at the end of a batch); an adapter may do it in
        one statement. ``ConcurrentModification`` if any was changed meanwhile: the unit of
        work must then be abandoned."""
        for order in orders:
            await self.save(order)

    @abc.abstractmethod
    async def live(self, pair_id: str) -> list[Order]:
        """The pair's open, partially filled and pending orders, by ``seq``."""

    @abc.abstractmethod
    async def book_entries(self, pair_id: str) -> list[BookEntry]:
        """What ``live`` holds, as the book's rebuild needs it: the resting orders (open,
        partially filled) by ``rest_position``, then the pending stop orders by ``seq``."""

    @abc.abstractmethod
    async def max_seq(self, pair_id: str) -> int:
        """The highest ``seq`` of the pair's orders; 0 for none."""

    @abc.abstractmethod
    async def max_rest_position(self, pair_id: str) -> int:
        """The highest ``rest_position`` of the pair's orders; 0 for none."""

    @abc.abstractmethod
    async def for_user(
        self,
        user_id: str,
        *,
        statuses: Sequence[OrderStatus] = (),
        pair_id: str | None = None,
        limit: int,
        before_id: str | None = None,
    ) -> list[Order]:
        """The user's orders, newest (highest id) first, below ``before_id``; ``statuses``
        empty means every status."""


class TradeRepository(abc.ABC):
    @abc.abstractmethod
    async def add(self, trades: Sequence[Trade]) -> None: ...

    @abc.abstractmethod
    async def for_pair(self, pair_id: str, *, limit: int) -> list[Trade]:
        """The pair's newest trades first."""

    @abc.abstractmethod
    async def for_user(
        self, user_id: str, *, limit: int, before_id: str | None = None
    ) -> list[Trade]:
        """Trades where the user was maker or taker, newest (highest id) first."""

    @abc.abstractmethod
    async def max_seq(self, pair_id: str) -> int:
        """The pair's highest trade ``seq``; 0 for none."""
