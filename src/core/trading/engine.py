"""The pure matching core of one pair: price-time priority, synchronous and deterministic.

No I/O, no clock, no randomness: the same commands in the same order give the same events
and the same book. Vocabulary and event layout: `core.trading.commands`.

Layout, chosen for speed and memory in pure Python (see bench/README.md for figures):

* the order index `dict[order_id, (remaining, user, key)]` is the only per-order record;
* each side is a `dict[key, _Level]` plus a heap of its keys. A key is the price for asks
  and minus the price for bids, so on both sides the smallest key is the best level and
  "crosses a limit" is `key <= limit_key`. The heap's top is always a live level (stale keys
  of levels that emptied elsewhere are dropped when they surface; the heap is rebuilt when
  stale keys outnumber the live ones);
* a `_Level` holds a FIFO `deque` of order ids, its aggregate size and its live count.
  A cancel removes the order from the index at once (O(1)) and leaves its id in the queue
  as a tombstone, skipped when it reaches the head; a queue with more tombstones than live
  orders is compacted. Partial fills only ever hit the head of a queue.
* users are interned, so a million orders from a thousand users hold a thousand user
  objects.

Self-trade prevention: when the taker reaches a resting order of its own user, the taker's
remaining quantity expires (`EXPIRED`, reason `self_trade`); fills made before stand and
the resting order stays. A FOK order that would meet its own order before filling whole
expires unfilled.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from heapq import heapify, heappop, heappush, nsmallest
from typing import Any

from core.trading.commands import (
    ACCEPTED,
    BUY,
    BY_USER,
    CANCELLED,
    EXPIRED,
    FILL,
    FOK,
    FOK_UNFILLABLE,
    GTC,
    INVALID_PRICE,
    INVALID_QUANTITY,
    INVALID_SIDE,
    INVALID_TIME_IN_FORCE,
    IOC,
    LEVEL,
    MAX_VALUE,
    ORDER_ID_NOT_INCREASING,
    PENDING,
    POST_ONLY_NOT_GTC,
    POST_ONLY_WOULD_CROSS,
    REJECTED,
    RESTED,
    SELF_TRADE,
    SELL,
    TRIGGERED,
    UNFILLED,
    UNKNOWN_ORDER,
    Cancel,
    Command,
    Limit,
    Market,
    MarketBuyFunds,
    StopLimit,
)

Event = tuple[Any, ...]
# (remaining, user, key) of a resting order
_Entry = tuple[int, Hashable, int]
# (side, stop_price, price, qty, tif, post_only, user) of a pending stop order
_Stop = tuple[str, int, int, int, str, bool, Hashable]

_NO_LIMIT = 1 << 80
_VALID_TIF = frozenset((GTC, IOC, FOK))


class _Level:
    __slots__ = ("key", "live", "queue", "size")

    def __init__(self, key: int, order_id: int, qty: int) -> None:
        self.key = key
        self.queue: deque[int] = deque((order_id,))
        self.size = qty
        self.live = 1


class MatchingEngine:
    """One pair's book. Feed it commands; read `events` (and clear it when consumed)."""

    __slots__ = (
        "_ask_heap",
        "_asks",
        "_bid_heap",
        "_bids",
        "_buy_stops",
        "_index",
        "_last_id",
        "_sell_stops",
        "_stops",
        "_users",
        "events",
        "last_price",
        "seq",
    )

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.seq = 0  # book sequence: +1 per command that changed the book
        self.last_price: int | None = None
        self._index: dict[int, _Entry] = {}
        self._bids: dict[int, _Level] = {}
        self._asks: dict[int, _Level] = {}
        self._bid_heap: list[int] = []
        self._ask_heap: list[int] = []
        self._last_id = 0
        self._users: dict[Hashable, Hashable] = {}
        self._stops: dict[int, _Stop] = {}
        self._buy_stops: list[tuple[int, int]] = []  # (stop, order_id): lowest stop first
        self._sell_stops: list[tuple[int, int]] = []  # (-stop, order_id): highest stop first

    # ------------------------------------------------------------------ commands

    def apply(self, command: Command) -> None:
        """Apply one command; its events are appended to `events`.

        The hot paths (a GTC limit order that rests without crossing, a cancel) are inlined
        here: in CPython a call costs about as much as the work itself."""
        kind = type(command)
        if kind is Limit:
            order_id, user, side, price, qty, tif, post_only = command  # type: ignore[misc]
            if (
                post_only
                or order_id <= self._last_id
                or not 0 < price < MAX_VALUE
                or not 0 < qty < MAX_VALUE
                or (tif != GTC and tif != IOC)
            ):
                self._limit(order_id, user, side, price, qty, tif, post_only)
                return
            if side == BUY:
                heap = self._ask_heap
                if heap and heap[0] <= price:
                    self._cross(order_id, user, BUY, price, qty, tif, price, self._asks, heap, 1)
                    return
                levels, heap, key = self._bids, self._bid_heap, -price
            elif side == SELL:
                heap = self._bid_heap
                if heap and -heap[0] >= price:
                    self._cross(order_id, user, SELL, price, qty, tif, -price, self._bids, heap, -1)
                    return
                levels, heap, key = self._asks, self._ask_heap, price
            else:
                self._limit(order_id, user, side, price, qty, tif, post_only)
                return
            if tif != GTC:  # an IOC order that does not cross
                self._last_id = order_id
                self.events.append((ACCEPTED, order_id))
                self.events.append((EXPIRED, order_id, qty, UNFILLED))
                return
            # Rest at once (the same as `_rest`).
            self._last_id = order_id
            users = self._users
            try:
                user = users[user]
            except KeyError:
                users[user] = user
            level = levels.get(key)
            if level is None:
                levels[key] = level = _Level(key, order_id, qty)
                heappush(heap, key)
                if len(heap) > 2 * len(levels) + 64:
                    heap[:] = levels
                    heapify(heap)
                size = qty
            else:
                key = level.key  # one shared int per level, not one per order
                level.queue.append(order_id)
                level.live += 1
                size = level.size + qty
                level.size = size
            self._index[order_id] = (qty, user, key)
            seq = self.seq + 1
            self.seq = seq
            ap = self.events.append
            ap((ACCEPTED, order_id))
            ap((RESTED, order_id, qty))
            ap((LEVEL, seq, side, price, size))
        elif kind is Cancel:
            order_id = command[0]
            entry = self._index.pop(order_id, None)
            if entry is None:
                self._cancel_pending(order_id)
                return
            qty, _user, key = entry
            if key > 0:
                levels, heap, side, price = self._asks, self._ask_heap, SELL, key
            else:
                levels, heap, side, price = self._bids, self._bid_heap, BUY, -key
            level = levels[key]
            size = level.size - qty
            level.size = size
            live = level.live - 1
            level.live = live
            seq = self.seq + 1
            self.seq = seq
            ap = self.events.append
            ap((CANCELLED, order_id, qty, BY_USER))
            ap((LEVEL, seq, side, price, size))
            if not live:
                del levels[key]
                if heap[0] == key:
                    heappop(heap)
                    while heap and heap[0] not in levels:
                        heappop(heap)
            else:
                queue = level.queue
                if queue[-1] == order_id:
                    queue.pop()
                elif len(queue) > 2 * live + 32:  # compact the tombstones
                    index = self._index
                    level.queue = deque([i for i in queue if i in index])
        elif kind is Market:
            order_id, user, side, qty, tif = command  # type: ignore[misc]
            if order_id <= self._last_id or not 0 < qty < MAX_VALUE or (tif != IOC and tif != GTC):
                self._market(order_id, user, side, qty, tif)
            elif side == BUY:
                self._cross(
                    order_id, user, BUY, 0, qty, IOC, _NO_LIMIT, self._asks, self._ask_heap, 1
                )
            elif side == SELL:
                self._cross(
                    order_id, user, SELL, 0, qty, IOC, _NO_LIMIT, self._bids, self._bid_heap, -1
                )
            else:
                self._market(order_id, user, side, qty, tif)
        elif kind is MarketBuyFunds:
            self._market_buy_funds(*command)
        elif kind is StopLimit:
            self._stop_limit(*command)
        else:
            raise TypeError(f"not a command: {command!r}")

    def take_events(self) -> list[Event]:
        """The events so far, in order; `events` starts empty again."""
        events = self.events
        self.events = []
        return events

    def limit(
        self,
        order_id: int,
        user: Hashable,
        side: str,
        price: int,
        qty: int,
        tif: str = GTC,
        post_only: bool = False,
    ) -> None:
        self.apply(Limit(order_id, user, side, price, qty, tif, post_only))

    def market(self, order_id: int, user: Hashable, side: str, qty: int, tif: str = IOC) -> None:
        self._market(order_id, user, side, qty, tif)

    def market_buy_funds(self, order_id: int, user: Hashable, funds: int) -> None:
        self._market_buy_funds(order_id, user, funds)

    def stop_limit(
        self,
        order_id: int,
        user: Hashable,
        side: str,
        stop_price: int,
        price: int,
        qty: int,
        tif: str = GTC,
        post_only: bool = False,
    ) -> None:
        self._stop_limit(order_id, user, side, stop_price, price, qty, tif, post_only)

    def cancel(self, order_id: int) -> None:
        self.apply(Cancel(order_id))

    # ------------------------------------------------------------------ general paths

    def _limit(
        self,
        order_id: int,
        user: Hashable,
        side: str,
        price: int,
        qty: int,
        tif: str,
        post_only: bool,
    ) -> None:
        ap = self.events.append
        reason = self._check(order_id, side, qty, tif)
        if reason is None:
            if not 0 < price < MAX_VALUE:
                reason = INVALID_PRICE
            elif post_only and tif != GTC:
                reason = POST_ONLY_NOT_GTC
            elif post_only and self._crosses(side, price):
                reason = POST_ONLY_WOULD_CROSS
        if reason is not None:
            ap((REJECTED, order_id, reason))
            return
        self._last_id = order_id
        ap((ACCEPTED, order_id))
        seq = self.seq + 1
        self._enter(order_id, user, side, price, qty, tif, seq)
        if self._stops:
            self._run_triggers(seq)

    def _cross(
        self,
        order_id: int,
        user: Hashable,
        side: str,
        price: int,
        qty: int,
        tif: str,
        limit_key: int,
        levels: dict[int, _Level],
        heap: list[int],
        sign: int,
    ) -> None:
        """A valid GTC or IOC order (limit or market) that crosses: no FOK, no post-only."""
        self._last_id = order_id
        ap = self.events.append
        ap((ACCEPTED, order_id))
        seq = self.seq + 1
        qty = self._take(order_id, user, side, qty, limit_key, levels, heap, sign, seq)
        if qty > 0:
            if tif == GTC:
                self._rest(order_id, user, side, price, qty, seq)
            else:
                ap((EXPIRED, order_id, qty, UNFILLED))
        elif qty < 0:
            ap((EXPIRED, order_id, -qty, SELF_TRADE))
        if self._stops:
            self._run_triggers(seq)

    def _market(self, order_id: int, user: Hashable, side: str, qty: int, tif: str) -> None:
        ap = self.events.append
        reason = self._check(order_id, side, qty, tif)
        if reason is not None:
            ap((REJECTED, order_id, reason))
            return
        self._last_id = order_id
        ap((ACCEPTED, order_id))
        seq = self.seq + 1
        if side == BUY:
            levels, heap, sign = self._asks, self._ask_heap, 1
        else:
            levels, heap, sign = self._bids, self._bid_heap, -1
        if tif == FOK and not self._fillable(user, qty, _NO_LIMIT, levels):
            ap((EXPIRED, order_id, qty, FOK_UNFILLABLE))
            return
        rest = self._take(order_id, user, side, qty, _NO_LIMIT, levels, heap, sign, seq)
        if rest > 0:
            ap((EXPIRED, order_id, rest, UNFILLED))
        elif rest < 0:
            ap((EXPIRED, order_id, -rest, SELF_TRADE))
        if self._stops:
            self._run_triggers(seq)

    def _market_buy_funds(self, order_id: int, user: Hashable, funds: int) -> None:
        ap = self.events.append
        reason = self._check(order_id, BUY, funds, IOC)
        if reason is not None:
            ap((REJECTED, order_id, reason))
            return
        self._last_id = order_id
        ap((ACCEPTED, order_id))
        seq = self.seq + 1
        rest = self._take_funds(order_id, user, funds, seq)
        if rest > 0:
            ap((EXPIRED, order_id, rest, UNFILLED))
        elif rest < 0:
            ap((EXPIRED, order_id, -rest, SELF_TRADE))
        if self._stops:
            self._run_triggers(seq)

    def _stop_limit(
        self,
        order_id: int,
        user: Hashable,
        side: str,
        stop_price: int,
        price: int,
        qty: int,
        tif: str,
        post_only: bool,
    ) -> None:
        ap = self.events.append
        reason = self._check(order_id, side, qty, tif)
        if reason is None:
            if not (0 < price < MAX_VALUE and 0 < stop_price < MAX_VALUE):
                reason = INVALID_PRICE
            elif post_only and tif != GTC:
                reason = POST_ONLY_NOT_GTC
        if reason is not None:
            ap((REJECTED, order_id, reason))
            return
        self._last_id = order_id
        ap((ACCEPTED, order_id))
        self._stops[order_id] = (side, stop_price, price, qty, tif, post_only, user)
        if side == BUY:
            heappush(self._buy_stops, (stop_price, order_id))
        else:
            heappush(self._sell_stops, (-stop_price, order_id))
        ap((PENDING, order_id))
        self._run_triggers(self.seq + 1)

    def _cancel_pending(self, order_id: int) -> None:
        stop = self._stops.pop(order_id, None) if self._stops else None
        if stop is None:
            self.events.append((REJECTED, order_id, UNKNOWN_ORDER))
        else:
            self.events.append((CANCELLED, order_id, stop[3], BY_USER))
            stops = self._stops
            if len(self._buy_stops) + len(self._sell_stops) > 2 * len(stops) + 64:
                # drop the cancelled stops' heap entries
                self._buy_stops = [(s[1], i) for i, s in stops.items() if s[0] == BUY]
                self._sell_stops = [(-s[1], i) for i, s in stops.items() if s[0] != BUY]
                heapify(self._buy_stops)
                heapify(self._sell_stops)

    # ------------------------------------------------------------------ queries

    def best_bid(self) -> int | None:
        heap = self._bid_heap
        return -heap[0] if heap else None

    def best_ask(self) -> int | None:
        heap = self._ask_heap
        return heap[0] if heap else None

    def depth(self, n: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Aggregated top `n` levels: (bids highest first, asks lowest first) of (price, size)."""
        bids = [(-key, self._bids[key].size) for key in nsmallest(n, self._bids)]
        asks = [(key, self._asks[key].size) for key in nsmallest(n, self._asks)]
        return bids, asks

    def order(self, order_id: int) -> tuple[str, int, int] | None:
        """(side, price, remaining) of a resting order, or None."""
        entry = self._index.get(order_id)
        if entry is None:
            return None
        key = entry[2]
        return (SELL, key, entry[0]) if key > 0 else (BUY, -key, entry[0])

    def pending_stops(self) -> dict[int, _Stop]:
        """Stop orders waiting in the trigger book, by id."""
        return dict(self._stops)

    def __len__(self) -> int:
        return len(self._index)

    def snapshot(self) -> list[tuple[str, int, list[tuple[int, int, Hashable]]]]:
        """Every live order in priority order: bids best first, then asks best first, as
        (side, price, [(order_id, remaining, user), ...] oldest first)."""
        index = self._index
        out: list[tuple[str, int, list[tuple[int, int, Hashable]]]] = []
        for side, levels, sign in ((BUY, self._bids, -1), (SELL, self._asks, 1)):
            for key in sorted(levels):
                orders = [(i, index[i][0], index[i][1]) for i in levels[key].queue if i in index]
                out.append((side, key * sign, orders))
        return out

    def restore(self, order_id: int, user: Hashable, side: str, price: int, qty: int) -> None:
        """Put a resting order back at the end of its level without matching, to rebuild a
        book from storage (call in time priority order, before any other command; set `seq`
        and `last_price` from storage too). Emits no events."""
        if order_id in self._index or self._crosses(side, price) or qty <= 0 or price <= 0:
            raise ValueError(f"order {order_id} cannot be restored on this book")
        self._last_id = max(self._last_id, order_id)
        mark = len(self.events)
        self._rest(order_id, user, side, price, qty, self.seq)
        del self.events[mark:]  # a restored book is not news: no events

    def restore_stop(
        self,
        order_id: int,
        user: Hashable,
        side: str,
        stop_price: int,
        price: int,
        qty: int,
        tif: str = GTC,
        post_only: bool = False,
    ) -> None:
        """Put a pending stop order back in the trigger book, without triggering it (a
        rebuild restores `last_price` as stored, and no stop had been reached then)."""
        if order_id in self._stops or order_id in self._index or side not in (BUY, SELL):
            raise ValueError(f"stop order {order_id} cannot be restored on this book")
        self._last_id = max(self._last_id, order_id)
        self._stops[order_id] = (side, stop_price, price, qty, tif, post_only, user)
        if side == BUY:
            heappush(self._buy_stops, (stop_price, order_id))
        else:
            heappush(self._sell_stops, (-stop_price, order_id))

    # ------------------------------------------------------------------ internals

    def _check(self, order_id: int, side: str, qty: int, tif: str) -> str | None:
        if order_id <= self._last_id:
            return ORDER_ID_NOT_INCREASING
        if side != BUY and side != SELL:
            return INVALID_SIDE
        if not 0 < qty < MAX_VALUE:
            return INVALID_QUANTITY
        if tif not in _VALID_TIF:
            return INVALID_TIME_IN_FORCE
        return None

    def _crosses(self, side: str, price: int) -> bool:
        if side == BUY:
            heap = self._ask_heap
            return bool(heap) and heap[0] <= price
        heap = self._bid_heap
        return bool(heap) and -heap[0] >= price

    def _enter(
        self, order_id: int, user: Hashable, side: str, price: int, qty: int, tif: str, seq: int
    ) -> None:
        """Match a limit order, then rest or expire what is left."""
        if side == BUY:
            heap = self._ask_heap
            if heap and heap[0] <= price:
                if tif == FOK and not self._fillable(user, qty, price, self._asks):
                    self.events.append((EXPIRED, order_id, qty, FOK_UNFILLABLE))
                    return
                qty = self._take(order_id, user, BUY, qty, price, self._asks, heap, 1, seq)
        else:
            heap = self._bid_heap
            if heap and -heap[0] >= price:
                if tif == FOK and not self._fillable(user, qty, -price, self._bids):
                    self.events.append((EXPIRED, order_id, qty, FOK_UNFILLABLE))
                    return
                qty = self._take(order_id, user, SELL, qty, -price, self._bids, heap, -1, seq)
        if qty > 0:
            if tif == GTC:
                self._rest(order_id, user, side, price, qty, seq)
            else:
                self.events.append(
                    (EXPIRED, order_id, qty, FOK_UNFILLABLE if tif == FOK else UNFILLED)
                )
        elif qty < 0:
            self.events.append((EXPIRED, order_id, -qty, SELF_TRADE))

    def _rest(
        self, order_id: int, user: Hashable, side: str, price: int, qty: int, seq: int
    ) -> None:
        if side == BUY:
            levels, heap, key = self._bids, self._bid_heap, -price
        else:
            levels, heap, key = self._asks, self._ask_heap, price
        level = levels.get(key)
        if level is None:
            levels[key] = level = _Level(key, order_id, qty)
            heappush(heap, key)
            if len(heap) > 2 * len(levels) + 64:
                heap[:] = levels
                heapify(heap)
            size = qty
        else:
            key = level.key  # one shared int per level, not one per order
            level.queue.append(order_id)
            level.live += 1
            size = level.size + qty
            level.size = size
        users = self._users
        try:
            user = users[user]
        except KeyError:
            users[user] = user
        self._index[order_id] = (qty, user, key)
        ap = self.events.append
        ap((RESTED, order_id, qty))
        ap((LEVEL, seq, side, price, size))
        self.seq = seq

    def _take(
        self,
        order_id: int,
        user: Hashable,
        side: str,
        qty: int,
        limit_key: int,
        levels: dict[int, _Level],
        heap: list[int],
        sign: int,
        seq: int,
    ) -> int:
        """Fill `qty` against the opposite side up to `limit_key`, best level and oldest order
        first, at the maker's price. Returns the quantity left, negated when self-trade
        prevention stopped the taker."""
        ap = self.events.append
        index = self._index
        maker_side = SELL if sign == 1 else BUY
        while heap:
            key = heap[0]
            if key > limit_key:
                break
            level = levels[key]
            queue = level.queue
            price = key * sign
            size = level.size
            live = level.live
            self_trade = False
            while True:
                maker_id = queue[0]
                entry = index.get(maker_id)
                if entry is None:  # a cancelled order's tombstone
                    queue.popleft()
                    continue
                maker_qty, maker_user, _ = entry
                if maker_user == user:
                    self_trade = True
                    break
                if maker_qty <= qty:
                    queue.popleft()
                    del index[maker_id]
                    live -= 1
                    qty -= maker_qty
                    size -= maker_qty
                    ap((FILL, maker_id, order_id, price, maker_qty, maker_user, user, side))
                    if not live or not qty:
                        break
                else:
                    index[maker_id] = (maker_qty - qty, maker_user, key)
                    size -= qty
                    ap((FILL, maker_id, order_id, price, qty, maker_user, user, side))
                    qty = 0
                    break
            if size != level.size:
                level.size = size
                level.live = live
                ap((LEVEL, seq, maker_side, price, size))
                self.seq = seq
                self.last_price = price
            if not live:
                del levels[key]
                heappop(heap)
                while heap and heap[0] not in levels:
                    heappop(heap)
            if self_trade:
                return -qty
            if not qty:
                break
        return qty

    def _take_funds(self, order_id: int, user: Hashable, funds: int, seq: int) -> int:
        """A market BUY by funds: take each maker while the funds cover price x qty."""
        ap = self.events.append
        index = self._index
        levels, heap = self._asks, self._ask_heap
        while heap:
            price = heap[0]
            if funds < price:
                break
            level = levels[price]
            queue = level.queue
            size = level.size
            live = level.live
            self_trade = False
            while True:
                maker_id = queue[0]
                entry = index.get(maker_id)
                if entry is None:
                    queue.popleft()
                    continue
                maker_qty, maker_user, _ = entry
                if maker_user == user:
                    self_trade = True
                    break
                affordable = funds // price
                if maker_qty <= affordable:
                    queue.popleft()
                    del index[maker_id]
                    live -= 1
                    funds -= maker_qty * price
                    size -= maker_qty
                    ap((FILL, maker_id, order_id, price, maker_qty, maker_user, user, BUY))
                    if not live or funds < price:
                        break
                else:
                    index[maker_id] = (maker_qty - affordable, maker_user, price)
                    funds -= affordable * price
                    size -= affordable
                    ap((FILL, maker_id, order_id, price, affordable, maker_user, user, BUY))
                    break
            if size != level.size:
                level.size = size
                level.live = live
                ap((LEVEL, seq, SELL, price, size))
                self.seq = seq
                self.last_price = price
            if not live:
                del levels[price]
                heappop(heap)
                while heap and heap[0] not in levels:
                    heappop(heap)
            if self_trade:
                return -funds
            if funds < price:
                break
        return funds

    def _fillable(
        self, user: Hashable, qty: int, limit_key: int, levels: dict[int, _Level]
    ) -> bool:
        """Whether a FOK taker would fill whole now (reads only; stops at its own order)."""
        index = self._index
        for key in sorted(k for k in levels if k <= limit_key):
            for maker_id in levels[key].queue:
                entry = index.get(maker_id)
                if entry is None:
                    continue
                if entry[1] == user:
                    return False
                qty -= entry[0]
                if qty <= 0:
                    return True
        return False

    def _run_triggers(self, seq: int) -> None:
        """Enter every stop order the last trade price has reached, one at a time: BUY stops
        lowest stop first, then SELL stops highest stop first (ties: lower id first),
        re-checking after each since its trades move the last price."""
        buys, sells, stops = self._buy_stops, self._sell_stops, self._stops
        ap = self.events.append
        while True:
            last = self.last_price
            if last is None:
                return
            if buys and buys[0][0] <= last:
                order_id = heappop(buys)[1]
            elif sells and -sells[0][0] >= last:
                order_id = heappop(sells)[1]
            else:
                return
            stop = stops.pop(order_id, None)
            if stop is None:  # cancelled while pending
                continue
            side, _, price, qty, tif, post_only, user = stop
            ap((TRIGGERED, order_id))
            if post_only and self._crosses(side, price):
                ap((EXPIRED, order_id, qty, POST_ONLY_WOULD_CROSS))
                continue
            self._enter(order_id, user, side, price, qty, tif, seq)
