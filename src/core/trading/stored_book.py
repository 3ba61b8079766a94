"""The committed book of a pair read from storage, for processes that own no book (the API
processes of the production profile, whose books live in ``rwa-market engine``).

The book is rebuilt the way the writer rebuilds it (``PairWriter.rebuild``: resting orders in
time priority, then the pair's stored ``book_seq``), so levels, ``seq`` and checksum are the
engine's as of its last commit. Every batch writes its orders and the pair's ``book_seq`` in
one transaction; the reader reads the pair, the orders, and the pair again, and retries until
both reads of ``book_seq`` agree, so it never pairs orders of one commit with the ``seq`` of
another, whatever the store's isolation level. The last rebuild per pair is kept: while
``book_seq`` has not moved, a read costs one query.
"""

from __future__ import annotations

import asyncio

import attrs

from core.ports.storage import Storage
from core.shared.errors import ServiceUnavailable
from core.trading.engine import MatchingEngine
from core.trading.orders import Order, OrderStatus
from core.trading.pairs import Pair, PairNotFound

ATTEMPTS = 20


@attrs.frozen
class _Cached:
    seq: int
    engine: MatchingEngine


class StoredBooks:
    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._cache: dict[str, _Cached] = {}

    async def depth(
        self, pair_id: str, depth: int
    ) -> tuple[Pair, list[tuple[int, int]], list[tuple[int, int]], int]:
        """(pair, bids, asks, seq) of the committed book, like ``PairWriter.stable_depth``."""
        for _ in range(ATTEMPTS):
            async with self._storage.unit_of_work(read_only=True) as uow:
                pair = await uow.pairs.get(pair_id)
                if pair is None:
                    raise PairNotFound(pair_id)
                cached = self._cache.get(pair_id)
                if cached is not None and cached.seq == pair.book_seq:
                    bids, asks = cached.engine.depth(depth)
                    return pair, bids, asks, pair.book_seq
                live = await uow.orders.live(pair_id)
                again = await uow.pairs.get(pair_id)
            if again is None or again.book_seq != pair.book_seq:
                await asyncio.sleep(0)  # a batch committed between the reads: read again
                continue
            engine = _engine(pair, live)
            self._cache[pair_id] = _Cached(pair.book_seq, engine)
            bids, asks = engine.depth(depth)
            return pair, bids, asks, pair.book_seq
        raise ServiceUnavailable("the book kept changing while it was read; try again")


def _engine(pair: Pair, live: list[Order]) -> MatchingEngine:
    engine = MatchingEngine()
    resting = [o for o in live if o.status is not OrderStatus.PENDING_TRIGGER]
    resting.sort(key=lambda o: o.rest_position or 0)
    for order in resting:
        assert order.price is not None and order.quantity is not None
        engine.restore(
            order.seq,
            order.user_id,
            order.side,
            order.price // pair.tick,
            (order.quantity - order.filled_quantity) // pair.lot,
        )
    engine.take_events()
    engine.seq = pair.book_seq
    return engine
