"""A deliberately simple matching book for differential tests: one list of resting orders,
one list of pending stops, linear scans for everything. Slow and obvious on purpose; it
shares only the vocabulary (`core.trading.commands`) with the real engine.

It emits the same events as the engine except `LEVEL`; its aggregated depth is compared
with the one the engine's `LEVEL` events describe.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
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
    MAX_VALUE,
    ORDER_ID_NOT_INCREASING,
    PENDING,
    POST_ONLY_NOT_GTC,
    POST_ONLY_WOULD_CROSS,
    REJECTED,
    RESTED,
    SELF_TRADE,
    SELL,
    TIMES_IN_FORCE,
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


@dataclass
class Resting:
    order_id: int
    user: Hashable
    side: str
    price: int
    qty: int
    arrival: int


@dataclass
class Stop:
    order_id: int
    user: Hashable
    side: str
    stop: int
    price: int
    qty: int
    tif: str
    post_only: bool


class ReferenceBook:
    def __init__(self) -> None:
        self.resting: list[Resting] = []
        self.stops: list[Stop] = []
        self.events: list[tuple[Any, ...]] = []
        self.last_id = 0
        self.last_price: int | None = None
        self.arrivals = 0

    # -- commands

    def apply(self, c: Command) -> None:
        if isinstance(c, Limit):
            self.limit(*c)
        elif isinstance(c, Market):
            self.market(*c)
        elif isinstance(c, MarketBuyFunds):
            self.funds(*c)
        elif isinstance(c, StopLimit):
            self.stop_limit(*c)
        else:
            assert isinstance(c, Cancel)
            self.cancel(c.order_id)
        self.triggers()

    def check(self, order_id: int, side: str, qty: int, tif: str) -> str | None:
        if order_id <= self.last_id:
            return ORDER_ID_NOT_INCREASING
        if side not in (BUY, SELL):
            return INVALID_SIDE
        if not 0 < qty < MAX_VALUE:
            return INVALID_QUANTITY
        if tif not in TIMES_IN_FORCE:
            return INVALID_TIME_IN_FORCE
        return None

    def limit(
        self, oid: int, user: Hashable, side: str, price: int, qty: int, tif: str, po: bool
    ) -> None:
        reason = self.check(oid, side, qty, tif)
        if reason is None:
            if not 0 < price < MAX_VALUE:
                reason = INVALID_PRICE
            elif po and tif != GTC:
                reason = POST_ONLY_NOT_GTC
            elif po and self.crossing(side, price):
                reason = POST_ONLY_WOULD_CROSS
        if reason:
            self.events.append((REJECTED, oid, reason))
            return
        self.last_id = oid
        self.events.append((ACCEPTED, oid))
        self.enter(oid, user, side, price, qty, tif)

    def market(self, oid: int, user: Hashable, side: str, qty: int, tif: str) -> None:
        reason = self.check(oid, side, qty, tif)
        if reason:
            self.events.append((REJECTED, oid, reason))
            return
        self.last_id = oid
        self.events.append((ACCEPTED, oid))
        if tif == FOK and not self.fillable(user, side, qty, None):
            self.events.append((EXPIRED, oid, qty, FOK_UNFILLABLE))
            return
        left, stp = self.take(oid, user, side, qty, None)
        if left:
            self.events.append((EXPIRED, oid, left, SELF_TRADE if stp else UNFILLED))

    def funds(self, oid: int, user: Hashable, funds: int) -> None:
        reason = self.check(oid, BUY, funds, IOC)
        if reason:
            self.events.append((REJECTED, oid, reason))
            return
        self.last_id = oid
        self.events.append((ACCEPTED, oid))
        left, stp = self.take(oid, user, BUY, funds, None, by_funds=True)
        if left:
            self.events.append((EXPIRED, oid, left, SELF_TRADE if stp else UNFILLED))

    def stop_limit(
        self,
        oid: int,
        user: Hashable,
        side: str,
        stop: int,
        price: int,
        qty: int,
        tif: str,
        po: bool,
    ) -> None:
        reason = self.check(oid, side, qty, tif)
        if reason is None:
            if not (0 < price < MAX_VALUE and 0 < stop < MAX_VALUE):
                reason = INVALID_PRICE
            elif po and tif != GTC:
                reason = POST_ONLY_NOT_GTC
        if reason:
            self.events.append((REJECTED, oid, reason))
            return
        self.last_id = oid
        self.events.append((ACCEPTED, oid))
        self.stops.append(Stop(oid, user, side, stop, price, qty, tif, po))
        self.events.append((PENDING, oid))

    def cancel(self, oid: int) -> None:
        for o in self.resting:
            if o.order_id == oid:
                self.resting.remove(o)
                self.events.append((CANCELLED, oid, o.qty, BY_USER))
                return
        for s in self.stops:
            if s.order_id == oid:
                self.stops.remove(s)
                self.events.append((CANCELLED, oid, s.qty, BY_USER))
                return
        self.events.append((REJECTED, oid, UNKNOWN_ORDER))

    # -- matching

    def crossing(self, side: str, price: int) -> bool:
        return bool(self.makers(side, price))

    def makers(self, side: str, limit: int | None) -> list[Resting]:
        """Resting orders a taker of `side` may trade with, best first, oldest first."""
        if side == BUY:
            found = [
                o for o in self.resting if o.side == SELL and (limit is None or o.price <= limit)
            ]
            return sorted(found, key=lambda o: (o.price, o.arrival))
        found = [o for o in self.resting if o.side == BUY and (limit is None or o.price >= limit)]
        return sorted(found, key=lambda o: (-o.price, o.arrival))

    def fillable(self, user: Hashable, side: str, qty: int, limit: int | None) -> bool:
        for o in self.makers(side, limit):
            if o.user == user:
                return False
            qty -= o.qty
            if qty <= 0:
                return True
        return False

    def take(
        self,
        oid: int,
        user: Hashable,
        side: str,
        amount: int,
        limit: int | None,
        by_funds: bool = False,
    ) -> tuple[int, bool]:
        while amount:
            makers = self.makers(side, limit)
            if not makers:
                break
            best = makers[0]
            if by_funds and amount < best.price:
                break
            if best.user == user:
                return amount, True
            qty = min(best.qty, amount // best.price if by_funds else amount)
            self.events.append((FILL, best.order_id, oid, best.price, qty, best.user, user, side))
            self.last_price = best.price
            best.qty -= qty
            if best.qty == 0:
                self.resting.remove(best)
            amount -= qty * best.price if by_funds else qty
        return amount, False

    def enter(self, oid: int, user: Hashable, side: str, price: int, qty: int, tif: str) -> None:
        if tif == FOK and not self.fillable(user, side, qty, price):
            self.events.append((EXPIRED, oid, qty, FOK_UNFILLABLE))
            return
        left, stp = self.take(oid, user, side, qty, price)
        if not left:
            return
        if stp:
            self.events.append((EXPIRED, oid, left, SELF_TRADE))
        elif tif == GTC:
            self.arrivals += 1
            self.resting.append(Resting(oid, user, side, price, left, self.arrivals))
            self.events.append((RESTED, oid, left))
        else:
            self.events.append((EXPIRED, oid, left, UNFILLED))

    def triggers(self) -> None:
        while self.last_price is not None:
            last = self.last_price
            buys = [s for s in self.stops if s.side == BUY and s.stop <= last]
            sells = [s for s in self.stops if s.side == SELL and s.stop >= last]
            if buys:
                s = min(buys, key=lambda s: (s.stop, s.order_id))
            elif sells:
                s = min(sells, key=lambda s: (-s.stop, s.order_id))
            else:
                return
            self.stops.remove(s)
            self.events.append((TRIGGERED, s.order_id))
            if s.post_only and self.crossing(s.side, s.price):
                self.events.append((EXPIRED, s.order_id, s.qty, POST_ONLY_WOULD_CROSS))
                continue
            self.enter(s.order_id, s.user, s.side, s.price, s.qty, s.tif)

    # -- views

    def depth(self) -> dict[tuple[str, int], int]:
        out: dict[tuple[str, int], int] = {}
        for o in self.resting:
            out[(o.side, o.price)] = out.get((o.side, o.price), 0) + o.qty
        return out

    def snapshot(self) -> list[tuple[str, int, list[tuple[int, int, Hashable]]]]:
        out = []
        for side, sign in ((BUY, -1), (SELL, 1)):
            prices = sorted(
                {o.price for o in self.resting if o.side == side}, key=lambda p: p * sign
            )
            for p in prices:
                level = sorted(
                    (o for o in self.resting if o.side == side and o.price == p),
                    key=lambda o: o.arrival,
                )
                out.append((side, p, [(o.order_id, o.qty, o.user) for o in level]))
        return out
