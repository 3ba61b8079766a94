"""The trading storage contract (``uow.pairs``, ``uow.orders``, ``uow.trades``): every adapter
runs it."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
import pytest

from core.ports.storage import Storage
from core.ports.trading import DuplicateClientOrderId
from core.shared.errors import ConcurrentModification
from core.tokens.model import Token, TokenType
from core.trading.orders import BookEntry, Order, OrderStatus, OrderType, Trade
from core.trading.pairs import Pair, PairStatus, PairSymbolTaken, make_pair

T0 = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
BIG = 2**200  # beyond any native integer column


async def tokens(storage: Storage) -> tuple[Token, Token]:
    base = Token(symbol="GOLD", name="Gold", type=TokenType.RWA, decimals=18, created_at=T0)
    quote = Token(symbol="USDC", name="USD Coin", type=TokenType.STABLE, decimals=6, created_at=T0)
    async with storage.unit_of_work() as uow:
        await uow.tokens.add(base)
        await uow.tokens.add(quote)
        await uow.commit()
    return base, quote


def pair_of(base: Token, quote: Token, **overrides: object) -> Pair:
    pair = make_pair(
        base_symbol=base.symbol,
        quote_symbol=quote.symbol,
        base_token_id=base.id,
        quote_token_id=quote.id,
        base_decimals=18,
        quote_decimals=6,
        tick=10_000,
        lot=10**15,
        min_quantity=10**15,
        max_quantity=(2**62 - 1) * 10**15,  # the most lots a pair may have: a 34-digit number
        maker_fee_bps=10,
        taker_fee_bps=20,
        at=T0,
        market_id="m-1",
    )
    return attrs.evolve(pair, **overrides)  # type: ignore[arg-type]


def order_of(pair: Pair, seq: int, **overrides: object) -> Order:
    order = Order(
        pair_id=pair.id,
        seq=seq,
        user_id="u-1",
        side="BUY",
        type=OrderType.LIMIT,
        time_in_force="GTC",
        status=OrderStatus.OPEN,
        created_at=T0,
        updated_at=T0,
        price=BIG,
        quantity=10**15,
        locked=BIG,
        rest_position=seq,
    )
    return attrs.evolve(order, **overrides)  # type: ignore[arg-type]


class TradingContract:
    async def test_pairs_by_id_symbol_market_and_unique(self, storage: Storage) -> None:
        base, quote = await tokens(storage)
        pair = pair_of(base, quote)
        async with storage.unit_of_work() as uow:
            await uow.pairs.add(pair)
            await uow.commit()
        async with storage.unit_of_work(read_only=True) as uow:
            assert await uow.pairs.get(pair.id) == pair
            assert await uow.pairs.by_symbol("GOLD-USDC") == pair
            assert await uow.pairs.by_market("m-1") == pair
            assert await uow.pairs.list() == [pair]
            assert await uow.pairs.get("nope") is None
        with pytest.raises(PairSymbolTaken):
            async with storage.unit_of_work() as uow:
                await uow.pairs.add(pair_of(base, quote, market_id=None))
                await uow.commit()
        changed = attrs.evolve(
            pair, status=PairStatus.HALTED, book_seq=7, last_price=BIG, version=2
        )
        async with storage.unit_of_work() as uow:
            await uow.pairs.save(changed)
            await uow.commit()
        with pytest.raises(ConcurrentModification):
            async with storage.unit_of_work() as uow:
                await uow.pairs.save(changed)
                await uow.commit()
        async with storage.unit_of_work(read_only=True) as uow:
            assert await uow.pairs.get(pair.id) == changed

    async def test_orders_live_client_ids_and_pages(self, storage: Storage) -> None:
        base, quote = await tokens(storage)
        pair = pair_of(base, quote)
        first = order_of(pair, 1, client_order_id="c-1")
        second = order_of(pair, 2, side="SELL", status=OrderStatus.PENDING_TRIGGER, stop_price=5)
        third = order_of(pair, 3, user_id="u-2", client_order_id="c-1")
        async with storage.unit_of_work() as uow:
            await uow.pairs.add(pair)
            for order in (first, second, third):
                await uow.orders.add(order)
            assert await uow.orders.by_client_id("u-1", "c-1") == first  # staged, visible
            await uow.commit()
        with pytest.raises(DuplicateClientOrderId):
            async with storage.unit_of_work() as uow:
                await uow.orders.add(order_of(pair, 4, client_order_id="c-1"))
                await uow.commit()
        filled = attrs.evolve(
            first, status=OrderStatus.FILLED, filled_quantity=10**15, locked=0, version=2
        )
        async with storage.unit_of_work() as uow:
            await uow.orders.save(filled)
            await uow.commit()
        with pytest.raises(ConcurrentModification):
            async with storage.unit_of_work() as uow:
                await uow.orders.save(filled)
                await uow.commit()
        async with storage.unit_of_work(read_only=True) as uow:
            assert await uow.orders.get(first.id) == filled
            assert await uow.orders.get("missing") is None
        # many at once: all or, if any changed meanwhile, a refused unit of work
        stale = attrs.evolve(filled, fee=1, version=2)  # filled is already version 2
        moved = attrs.evolve(third, filled_quantity=7, version=2)
        with pytest.raises(ConcurrentModification):
            async with storage.unit_of_work() as uow:
                await uow.orders.save_many([moved, stale])
                await uow.commit()
        async with storage.unit_of_work() as uow:
            assert await uow.orders.get(third.id) == third  # nothing of the refused unit
            await uow.orders.save_many([])
            await uow.orders.save_many([moved, attrs.evolve(filled, fee=1, version=3)])
            await uow.commit()
        async with storage.unit_of_work(read_only=True) as uow:
            assert await uow.orders.get(third.id) == moved
            assert (await uow.orders.get(first.id)) == attrs.evolve(filled, fee=1, version=3)
        third, filled = moved, attrs.evolve(filled, fee=1, version=3)
        async with storage.unit_of_work(read_only=True) as uow:
            assert await uow.orders.get(first.id) == filled
            assert await uow.orders.by_client_id("u-2", "c-1") == third
            assert await uow.orders.live(pair.id) == [second, third]
            assert await uow.orders.max_seq(pair.id) == 3
            assert await uow.orders.max_rest_position(pair.id) == 3
            mine = await uow.orders.for_user("u-1", limit=10)
            assert [o.id for o in mine] == sorted([first.id, second.id], reverse=True)
            only_live = await uow.orders.for_user(
                "u-1", statuses=[OrderStatus.PENDING_TRIGGER], pair_id=pair.id, limit=10
            )
            assert only_live == [second]
            page = await uow.orders.for_user("u-1", limit=1, before_id=mine[0].id)
            assert page == [mine[1]]

    async def test_book_entries_are_the_live_orders_in_book_order(self, storage: Storage) -> None:
        """Resting orders by ``rest_position`` (not ``seq``), then pending stops by ``seq``;
        amounts exact beyond 64 bits; ended orders and other pairs left out; staged changes
        of the unit seen."""
        base, quote = await tokens(storage)
        pair = pair_of(base, quote)
        other = pair_of(base, quote, symbol="GOLD-EUR", market_id="m-2")
        late = order_of(pair, 1, rest_position=7, filled_quantity=3, user_id="u-9")
        early = order_of(pair, 2, side="SELL", rest_position=5, quantity=BIG, post_only=True)
        stop_b = order_of(pair, 6, status=OrderStatus.PENDING_TRIGGER, stop_price=BIG + 1)
        stop_a = order_of(
            pair, 4, status=OrderStatus.PENDING_TRIGGER, stop_price=9, rest_position=None
        )
        partial = order_of(pair, 3, status=OrderStatus.PARTIALLY_FILLED, rest_position=6)
        ended = order_of(pair, 5, status=OrderStatus.CANCELLED, locked=0)
        elsewhere = order_of(other, 1)
        async with storage.unit_of_work() as uow:
            await uow.pairs.add(pair)
            await uow.pairs.add(other)
            await uow.orders.add_many([late, early, stop_b, stop_a, partial, ended, elsewhere])
            await uow.commit()
        async with storage.unit_of_work(read_only=True) as uow:
            entries = await uow.orders.book_entries(pair.id)
            assert await uow.orders.book_entries("nope") == []
        assert [e.id for e in entries] == [early.id, partial.id, late.id, stop_a.id, stop_b.id]
        assert entries[0] == BookEntry(
            early.id, 2, "u-1", "SELL", OrderStatus.OPEN, "GTC", True, BIG, None, BIG, 0, 5
        )
        assert entries[2].filled_quantity == 3 and entries[2].user_id == "u-9"
        assert entries[4].stop_price == BIG + 1 and entries[3].rest_position is None
        assert all(type(v) is int for e in entries for v in (e.seq, e.price, e.quantity))
        cancelled = attrs.evolve(early, status=OrderStatus.CANCELLED, locked=0, version=2)
        async with storage.unit_of_work() as uow:
            await uow.orders.save(cancelled)
            assert [e.id for e in await uow.orders.book_entries(pair.id)][:1] == [partial.id]

    async def test_trades_by_pair_and_user(self, storage: Storage) -> None:
        base, quote = await tokens(storage)
        pair = pair_of(base, quote)
        made = [
            Trade(
                pair_id=pair.id,
                seq=seq,
                price=BIG,
                quantity=seq,
                maker_order_id="o-m",
                taker_order_id="o-t",
                maker_user_id="u-1",
                taker_user_id="u-2" if seq < 3 else "u-3",
                taker_side="BUY",
                maker_fee=1,
                taker_fee=BIG,
                created_at=T0,
            )
            for seq in (1, 2, 3)
        ]
        async with storage.unit_of_work() as uow:
            await uow.pairs.add(pair)
            await uow.trades.add(made)
            await uow.commit()
        async with storage.unit_of_work(read_only=True) as uow:
            assert await uow.trades.for_pair(pair.id, limit=2) == made[::-1][:2]
            assert await uow.trades.max_seq(pair.id) == 3
            assert await uow.trades.max_seq("other") == 0
            by_u2 = await uow.trades.for_user("u-2", limit=10)
            assert sorted(t.seq for t in by_u2) == [1, 2]
            assert len(await uow.trades.for_user("u-1", limit=10)) == 3

    async def test_nothing_without_commit(self, storage: Storage) -> None:
        base, quote = await tokens(storage)
        pair = pair_of(base, quote)
        async with storage.unit_of_work() as uow:
            await uow.pairs.add(pair)
            await uow.orders.add(order_of(pair, 1))
        async with storage.unit_of_work(read_only=True) as uow:
            assert await uow.pairs.list() == []
            assert await uow.orders.live(pair.id) == []
