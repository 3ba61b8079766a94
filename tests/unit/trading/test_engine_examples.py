"""The matching core's rules, one example each."""

from __future__ import annotations

import zlib
from typing import Any

import pytest

from core.trading.book import book_checksum, checksum, format_units, level_strings
from core.trading.commands import (
    ACCEPTED,
    BUY,
    BY_USER,
    CANCELLED,
    EXPIRED,
    FILL,
    FOK,
    FOK_UNFILLABLE,
    INVALID_PRICE,
    INVALID_QUANTITY,
    INVALID_SIDE,
    INVALID_TIME_IN_FORCE,
    IOC,
    LEVEL,
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
    Limit,
    Market,
    MarketBuyFunds,
    StopLimit,
)
from core.trading.engine import MatchingEngine


def run(engine: MatchingEngine, *commands: Any) -> list[tuple[Any, ...]]:
    for c in commands:
        engine.apply(c)
    return engine.take_events()


def fills(events: list[tuple[Any, ...]]) -> list[tuple[int, int, int, int]]:
    return [(e[1], e[2], e[3], e[4]) for e in events if e[0] == FILL]


def test_a_limit_order_rests_and_reports_its_level() -> None:
    e = MatchingEngine()
    assert run(e, Limit(1, "u1", BUY, 100, 5)) == [
        (ACCEPTED, 1),
        (RESTED, 1, 5),
        (LEVEL, 1, BUY, 100, 5),
    ]
    assert run(e, Limit(2, "u2", BUY, 100, 3))[-1] == (LEVEL, 2, BUY, 100, 8)
    assert e.best_bid() == 100 and e.best_ask() is None
    assert e.order(1) == (BUY, 100, 5)
    assert e.seq == 2


def test_price_time_priority_and_the_makers_price() -> None:
    e = MatchingEngine()
    run(e, Limit(1, "a", SELL, 101, 2), Limit(2, "b", SELL, 100, 2), Limit(3, "c", SELL, 100, 2))
    events = run(e, Limit(4, "t", BUY, 105, 5))
    # best price first, oldest first within it, each at the maker's price (price improvement)
    assert fills(events) == [(2, 4, 100, 2), (3, 4, 100, 2), (1, 4, 101, 1)]
    assert events[1] == (FILL, 2, 4, 100, 2, "b", "t", BUY)
    assert (LEVEL, 4, SELL, 100, 0) in events and (LEVEL, 4, SELL, 101, 1) in events
    assert e.order(1) == (SELL, 101, 1) and e.order(2) is None
    assert e.last_price == 101


def test_a_partly_filled_maker_keeps_its_place() -> None:
    e = MatchingEngine()
    run(e, Limit(1, "a", SELL, 100, 5), Limit(2, "b", SELL, 100, 5), Market(3, "t", BUY, 2))
    assert fills(run(e, Market(4, "t", BUY, 4))) == [(1, 4, 100, 3), (2, 4, 100, 1)]


def test_taker_rest_rests_at_its_limit() -> None:
    e = MatchingEngine()
    run(e, Limit(1, "a", SELL, 100, 2))
    events = run(e, Limit(2, "t", BUY, 101, 5))
    assert events[-2:] == [(RESTED, 2, 3), (LEVEL, 2, BUY, 101, 3)]
    assert e.best_bid() == 101 and e.best_ask() is None


def test_market_by_quantity_sweeps_and_expires_the_rest() -> None:
    e = MatchingEngine()
    run(e, Limit(1, "a", BUY, 99, 2), Limit(2, "b", BUY, 98, 2))
    events = run(e, Market(3, "t", SELL, 10))
    assert fills(events) == [(1, 3, 99, 2), (2, 3, 98, 2)]
    assert events[-1] == (EXPIRED, 3, 6, UNFILLED)
    assert e.best_bid() is None


def test_market_buy_by_funds_stops_when_funds_no_longer_cover_a_lot() -> None:
    e = MatchingEngine()
    run(e, Limit(1, "a", SELL, 100, 3), Limit(2, "b", SELL, 110, 5))
    events = run(e, MarketBuyFunds(3, "t", 650))
    # 3 x 100 = 300 spent; 350 left buys 3 lots at 110 (330); 20 left < 110
    assert fills(events) == [(1, 3, 100, 3), (2, 3, 110, 3)]
    assert events[-1] == (EXPIRED, 3, 20, UNFILLED)
    assert e.order(2) == (SELL, 110, 2)


def test_market_buy_by_funds_spent_exactly_has_no_remainder() -> None:
    e = MatchingEngine()
    run(e, Limit(1, "a", SELL, 100, 3))
    events = run(e, MarketBuyFunds(2, "t", 200))
    assert fills(events) == [(1, 2, 100, 2)]
    assert events[-1][0] == LEVEL


def test_ioc_limit_expires_what_does_not_cross() -> None:
    e = MatchingEngine()
    run(e, Limit(1, "a", SELL, 100, 2), Limit(2, "a", SELL, 102, 2))
    events = run(e, Limit(3, "t", BUY, 101, 5, IOC))
    assert fills(events) == [(1, 3, 100, 2)]
    assert events[-1] == (EXPIRED, 3, 3, UNFILLED)
    assert e.best_bid() is None


def test_fok_fills_whole_or_not_at_all() -> None:
    e = MatchingEngine()
    run(e, Limit(1, "a", SELL, 100, 2), Limit(2, "b", SELL, 101, 2))
    events = run(e, Limit(3, "t", BUY, 101, 5, FOK))
    assert events == [(ACCEPTED, 3), (EXPIRED, 3, 5, FOK_UNFILLABLE)]
    assert e.seq == 2  # the book did not change
    events = run(e, Limit(4, "t", BUY, 101, 4, FOK))
    assert fills(events) == [(1, 4, 100, 2), (2, 4, 101, 2)]
    run(e, Limit(5, "a", SELL, 100, 2))
    assert run(e, Market(6, "t", BUY, 3, FOK))[-1] == (EXPIRED, 6, 3, FOK_UNFILLABLE)


def test_fok_counts_its_own_orders_as_a_wall() -> None:
    e = MatchingEngine()
    run(e, Limit(1, "me", SELL, 100, 5), Limit(2, "b", SELL, 100, 5))
    assert run(e, Limit(3, "me", BUY, 100, 5, FOK))[-1] == (EXPIRED, 3, 5, FOK_UNFILLABLE)


def test_post_only_is_rejected_when_it_would_cross() -> None:
    e = MatchingEngine()
    run(e, Limit(1, "a", SELL, 100, 2))
    assert run(e, Limit(2, "b", BUY, 100, 1, post_only=True)) == [
        (REJECTED, 2, POST_ONLY_WOULD_CROSS)
    ]
    assert run(e, Limit(3, "b", BUY, 99, 1, post_only=True))[1] == (RESTED, 3, 1)
    assert run(e, Limit(4, "b", BUY, 99, 1, IOC, True)) == [(REJECTED, 4, POST_ONLY_NOT_GTC)]


def test_self_trade_prevention_expires_the_takers_rest() -> None:
    e = MatchingEngine()
    run(e, Limit(1, "x", SELL, 100, 2), Limit(2, "me", SELL, 100, 3), Limit(3, "y", SELL, 100, 4))
    events = run(e, Limit(4, "me", BUY, 100, 10))
    assert fills(events) == [(1, 4, 100, 2)]  # fills before its own order stand
    assert events[-1] == (EXPIRED, 4, 8, SELF_TRADE)
    assert e.order(2) == (SELL, 100, 3) and e.order(3) == (SELL, 100, 4)  # makers stay
    assert e.best_bid() is None  # nothing of the taker rests


def test_cancel_reports_the_remaining_quantity() -> None:
    e = MatchingEngine()
    run(e, Limit(1, "a", SELL, 100, 5), Limit(2, "a", SELL, 100, 1), Market(3, "t", BUY, 2))
    assert run(e, Cancel(1)) == [(CANCELLED, 1, 3, BY_USER), (LEVEL, 4, SELL, 100, 1)]
    assert run(e, Cancel(1)) == [(REJECTED, 1, UNKNOWN_ORDER)]
    assert e.seq == 4
    assert run(e, Cancel(2))[-1] == (LEVEL, 5, SELL, 100, 0)
    assert e.best_ask() is None and len(e) == 0


def test_stop_limit_waits_for_the_last_trade_price() -> None:
    e = MatchingEngine()
    run(e, Limit(1, "a", SELL, 100, 1), Limit(2, "a", SELL, 105, 5))
    assert run(e, StopLimit(3, "s", BUY, 103, 106, 2)) == [(ACCEPTED, 3), (PENDING, 3)]
    assert 3 in e.pending_stops()
    run(e, Market(4, "t", BUY, 1))  # last trade 100: below the stop
    assert 3 in e.pending_stops()
    events = run(e, Market(5, "t", BUY, 1))  # last trade 105 >= 103: triggers
    assert (TRIGGERED, 3) in events
    assert fills(events) == [(2, 5, 105, 1), (2, 3, 105, 2)]
    assert 3 not in e.pending_stops()


def test_sell_stop_and_cancel_of_a_pending_stop() -> None:
    e = MatchingEngine()
    run(e, Limit(1, "a", BUY, 100, 5), Limit(2, "b", SELL, 100, 1))  # trades at 100
    assert e.last_price == 100
    # already reached: enters at once
    events = run(e, StopLimit(3, "s", SELL, 100, 99, 1))
    assert events[:3] == [(ACCEPTED, 3), (PENDING, 3), (TRIGGERED, 3)]
    assert fills(events) == [(1, 3, 100, 1)]
    run(e, StopLimit(4, "s", SELL, 90, 90, 7))
    assert run(e, Cancel(4)) == [(CANCELLED, 4, 7, BY_USER)]
    assert e.pending_stops() == {}


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        (Limit(1, "a", BUY, 100, 0), INVALID_QUANTITY),
        (Limit(1, "a", BUY, 0, 1), INVALID_PRICE),
        (Limit(1, "a", "HOLD", 100, 1), INVALID_SIDE),
        (Limit(1, "a", BUY, 100, 1, "DAY"), INVALID_TIME_IN_FORCE),
        (Market(1, "a", BUY, -1), INVALID_QUANTITY),
        (MarketBuyFunds(1, "a", 0), INVALID_QUANTITY),
        (StopLimit(1, "a", SELL, 0, 100, 1), INVALID_PRICE),
    ],
)
def test_invalid_commands_are_rejected_without_trace(command: Any, reason: str) -> None:
    e = MatchingEngine()
    assert run(e, command) == [(REJECTED, 1, reason)]
    assert e.seq == 0 and len(e) == 0
    assert run(e, Limit(1, "a", BUY, 100, 1))[0] == (ACCEPTED, 1)  # the id was not used


def test_order_ids_must_increase() -> None:
    e = MatchingEngine()
    run(e, Limit(5, "a", BUY, 100, 1))
    assert run(e, Limit(5, "a", BUY, 99, 1)) == [(REJECTED, 5, ORDER_ID_NOT_INCREASING)]
    assert run(e, Market(4, "a", SELL, 1)) == [(REJECTED, 4, ORDER_ID_NOT_INCREASING)]


def test_tombstones_are_compacted_and_fifo_survives() -> None:
    e = MatchingEngine()
    for i in range(1, 1001):
        e.apply(Limit(i, f"u{i % 7}", SELL, 100, 1))
    for i in range(2, 1000, 3):  # cancel a third, in the middle of the queue
        e.apply(Cancel(i))
    e.events.clear()
    level = e._asks[100]
    assert len(level.queue) <= 2 * level.live + 32 + 1
    remaining = [oid for oid, _, _ in e.snapshot()[0][2]]
    assert remaining == [i for i in range(1, 1001) if i % 3 != 2 or i == 1000]
    events = run(e, Market(2000, "t", BUY, 5))
    assert [f[0] for f in fills(events)] == remaining[:5]


def test_depth_is_aggregated_best_first() -> None:
    e = MatchingEngine()
    run(
        e,
        Limit(1, "a", BUY, 99, 1),
        Limit(2, "a", BUY, 99, 2),
        Limit(3, "a", BUY, 97, 4),
        Limit(4, "a", BUY, 98, 1),
        Limit(5, "b", SELL, 101, 3),
        Limit(6, "b", SELL, 103, 1),
    )
    assert e.depth(2) == ([(99, 3), (98, 1)], [(101, 3), (103, 1)])


def test_restore_rebuilds_the_same_book() -> None:
    e = MatchingEngine()
    run(e, Limit(1, "a", BUY, 99, 1), Limit(2, "b", BUY, 99, 2), Limit(3, "c", SELL, 101, 3))
    copy = MatchingEngine()
    for side, price, orders in e.snapshot():
        for oid, qty, user in orders:
            copy.restore(oid, user, side, price, qty)
    assert copy.snapshot() == e.snapshot()
    with pytest.raises(ValueError):
        copy.restore(9, "d", BUY, 101, 1)  # would cross
    assert run(copy, Limit(3, "x", BUY, 1, 1))[0][2] == ORDER_ID_NOT_INCREASING


def test_restored_stops_trigger_like_the_originals() -> None:
    commands = [
        Limit(1, "a", SELL, 100, 1),
        Limit(2, "b", BUY, 100, 1),  # last price 100
        StopLimit(3, "s", BUY, 105, 106, 2),
        StopLimit(4, "s", SELL, 95, 94, 1),
        Limit(5, "c", SELL, 105, 3),
        Limit(6, "c", BUY, 90, 3),
    ]
    e = MatchingEngine()
    run(e, *commands)
    copy = MatchingEngine()
    for side, price, orders in e.snapshot():
        for oid, qty, user in orders:
            copy.restore(oid, user, side, price, qty)
    for oid, (side, stop, price, qty, tif, post_only, user) in e.pending_stops().items():
        copy.restore_stop(oid, user, side, stop, price, qty, tif, post_only)
    copy.last_price, copy.seq = e.last_price, e.seq
    assert copy.take_events() == []
    after = [Market(7, "t", BUY, 1), Market(8, "t", SELL, 3), Cancel(4)]
    assert run(copy, *after) == run(e, *after)
    assert copy.snapshot() == e.snapshot()


def test_format_units() -> None:
    assert format_units(12345, 2) == "123.45"
    assert format_units(5, 3) == "0.005"
    assert format_units(7, 0) == "7"
    assert format_units(0, 2) == "0.00"


def test_checksum_concatenates_top_asks_then_top_bids() -> None:
    bids = [("0.05005", "0.00000500"), ("0.05004", "0.00010000")]
    asks = [("0.05010", "1.00000000"), ("0.05011", "0.50000000")]
    expected = "5010" + "100000000" + "5011" + "50000000" + "5005" + "500" + "5004" + "10000"
    assert checksum(bids, asks) == zlib.crc32(expected.encode())
    # only ten levels a side count
    many = [(f"{p}.0", "1.0") for p in range(1, 30)]
    assert checksum(many, many) == checksum(many[:10], many[:10])


def test_book_checksum_from_engine_units() -> None:
    # tickSize 0.05 with 2 price decimals (tick = 5), lotSize 0.001 with 3 (lot = 1)
    bids, asks = [(2001, 1500)], [(2002, 20)]
    assert level_strings(asks, tick=5, price_decimals=2, lot=1, size_decimals=3) == [
        ("100.10", "0.020")
    ]
    expected = "10010" + "20" + "10005" + "1500"
    scale = {"tick": 5, "price_decimals": 2, "lot": 1, "size_decimals": 3}
    assert book_checksum(bids, asks, **scale) == zlib.crc32(expected.encode())


def test_cancelled_stops_do_not_pile_up_in_the_trigger_book() -> None:
    e = MatchingEngine()
    for i in range(1, 501):
        e.apply(StopLimit(i, "s", BUY if i % 2 else SELL, 50 + i, 50 + i, 1))
        if i % 5:
            e.apply(Cancel(i))
    assert len(e.pending_stops()) == 100
    assert len(e._buy_stops) + len(e._sell_stops) <= 2 * 100 + 64
    events = run(e, Limit(1000, "a", SELL, 200, 1), Limit(1001, "b", BUY, 200, 1))  # last 200
    triggered = [ev[1] for ev in events if ev[0] == TRIGGERED]
    # the pending BUY stops at or below 200 fire lowest first, then the SELL stops at or
    # above 200 highest first (their limit orders rest: nothing crosses); no cancelled one
    pending = [i for i in range(1, 501) if i % 5 == 0]
    buys = [i for i in pending if i % 2 and 50 + i <= 200]
    sells = [i for i in reversed(pending) if not i % 2 and 50 + i >= 200]
    assert triggered == buys + sells
    assert len(e.pending_stops()) == 100 - len(triggered)
