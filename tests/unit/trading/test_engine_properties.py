"""Properties of the matching core after any command sequence, and a differential test
against the simple reference book of `reference.py`."""

from __future__ import annotations

import random
from collections.abc import Hashable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.trading.commands import (
    BUY,
    CANCELLED,
    EXPIRED,
    FILL,
    FOK,
    GTC,
    IOC,
    LEVEL,
    PENDING,
    REJECTED,
    RESTED,
    SELL,
    TRIGGERED,
    Cancel,
    Command,
    Limit,
    Market,
    MarketBuyFunds,
    StopLimit,
)
from core.trading.engine import MatchingEngine
from tests.unit.trading.reference import ReferenceBook

users = st.integers(1, 4)
sides = st.sampled_from([BUY, SELL])
prices = st.integers(95, 105)
qtys = st.integers(0, 9)  # 0 is rejected
tifs = st.sampled_from([GTC, GTC, GTC, IOC, FOK, "DAY"])  # "DAY" is rejected

specs = st.one_of(
    st.tuples(st.just("limit"), users, sides, prices, qtys, tifs, st.booleans()),
    st.tuples(st.just("limit"), users, sides, prices, qtys, st.just(GTC), st.just(False)),
    st.tuples(st.just("limit"), users, sides, prices, qtys, st.just(GTC), st.just(False)),
    st.tuples(st.just("market"), users, sides, qtys, tifs),
    st.tuples(st.just("funds"), users, st.integers(0, 1500)),
    st.tuples(st.just("stop"), users, sides, prices, prices, qtys, tifs, st.booleans()),
    st.tuples(st.just("cancel"), st.integers(0, 200)),
    st.tuples(st.just("cancel"), st.integers(0, 200)),
    st.tuples(st.just("stale_id"), users, sides, prices, qtys),
)


def build(raw: list[tuple[Any, ...]]) -> list[Command]:
    """Give the specs increasing order ids; cancels target an earlier id."""
    out: list[Command] = []
    ids: list[int] = []
    next_id = 1
    for spec in raw:
        kind = spec[0]
        if kind == "cancel":
            out.append(Cancel(ids[spec[1] % len(ids)] if ids else 1))
            continue
        if kind == "stale_id":
            out.append(Limit(max(1, next_id - 2), *spec[1:]))
            continue
        order_id = next_id
        next_id += 1
        ids.append(order_id)
        if kind == "limit":
            out.append(Limit(order_id, *spec[1:]))
        elif kind == "market":
            out.append(Market(order_id, *spec[1:]))
        elif kind == "funds":
            out.append(MarketBuyFunds(order_id, *spec[1:]))
        else:
            out.append(StopLimit(order_id, *spec[1:]))
    return out


def random_stream(seed: int, count: int) -> list[Command]:
    """A longer stream on few price levels: deep queues, many tombstones, compaction."""
    rng = random.Random(seed)
    raw: list[tuple[Any, ...]] = []
    for _ in range(count):
        roll = rng.random()
        user, side = rng.randint(1, 6), rng.choice([BUY, SELL])
        if roll < 0.35:
            raw.append(("cancel", rng.randrange(10_000)))
        elif roll < 0.85:
            offset = rng.randint(-1, 3)
            price = 100 - offset if side == BUY else 100 + offset
            tif = GTC if rng.random() < 0.9 else rng.choice([IOC, FOK])
            raw.append(("limit", user, side, price, rng.randint(1, 9), tif, rng.random() < 0.05))
        elif roll < 0.93:
            raw.append(("market", user, side, rng.randint(1, 30), rng.choice([IOC, FOK, GTC])))
        elif roll < 0.96:
            raw.append(("funds", user, rng.randint(1, 3000)))
        else:
            stop = rng.randint(96, 104)
            raw.append(("stop", user, side, stop, stop, rng.randint(1, 9), GTC, False))
    return build(raw)


class Observer:
    """Runs an engine command by command and checks every invariant after each one."""

    def __init__(self) -> None:
        self.engine = MatchingEngine()
        self.log: list[list[tuple[Any, ...]]] = []
        self.original: dict[int, int] = {}  # order id -> quantity (or funds)
        self.by_funds: set[int] = set()
        self.side: dict[int, str] = {}
        self.limit: dict[int, int | None] = {}
        self.filled: dict[int, int] = {}
        self.spent: dict[int, int] = {}
        self.closed: dict[int, int] = {}  # cancelled or expired quantity
        self.rested_at: dict[int, int] = {}
        self.rest_counter = 0
        self.depth: dict[tuple[str, int], int] = {}
        self.filled_by_side = {BUY: 0, SELL: 0}
        self.as_maker: dict[int, int] = {}
        self.as_taker: dict[int, int] = {}

    def apply(self, command: Command) -> list[tuple[Any, ...]]:
        engine = self.engine
        seq_before = engine.seq
        engine.apply(command)
        events = engine.take_events()
        self.log.append(events)
        if not isinstance(command, Cancel) and events[0][:2] != (REJECTED, command.order_id):
            self.note_order(command)
        levels = [e for e in events if e[0] == LEVEL]
        assert engine.seq == seq_before + (1 if levels else 0)
        for ev in events:
            self.note(ev, engine.seq)
        self.check()
        return events

    def note_order(self, c: Command) -> None:
        if isinstance(c, Limit | StopLimit):
            self.original[c.order_id] = c.qty
            self.side[c.order_id] = c.side
            self.limit[c.order_id] = c.price
        elif isinstance(c, Market):
            self.original[c.order_id] = c.qty
            self.side[c.order_id] = c.side
            self.limit[c.order_id] = None
        elif isinstance(c, MarketBuyFunds):
            self.original[c.order_id] = c.funds
            self.side[c.order_id] = BUY
            self.limit[c.order_id] = None
            self.by_funds.add(c.order_id)

    def note(self, ev: tuple[Any, ...], seq: int) -> None:
        kind = ev[0]
        if kind == FILL:
            _, maker, taker, price, qty, _mu, _tu, taker_side = ev
            assert qty > 0
            assert self.side[maker] != taker_side == self.side[taker]
            limit = self.limit[taker]
            if limit is not None:  # never worse than the taker's limit
                assert price <= limit if taker_side == BUY else price >= limit
            assert price == self.limit[maker]  # at the maker's price
            for oid in (maker, taker):
                self.filled[oid] = self.filled.get(oid, 0) + qty
                self.spent[oid] = self.spent.get(oid, 0) + qty * price
                self.filled_by_side[self.side[oid]] += qty
            self.as_maker[maker] = self.as_maker.get(maker, 0) + qty
            self.as_taker[taker] = self.as_taker.get(taker, 0) + qty
        elif kind in (CANCELLED, EXPIRED):
            self.closed[ev[1]] = self.closed.get(ev[1], 0) + ev[2]
        elif kind == RESTED:
            self.rest_counter += 1
            self.rested_at[ev[1]] = self.rest_counter
        elif kind == LEVEL:
            _, level_seq, side, price, size = ev
            assert level_seq == seq
            assert size >= 0
            if size:
                self.depth[(side, price)] = size
            else:
                self.depth.pop((side, price), None)

    def check(self) -> None:
        engine = self.engine
        bid, ask = engine.best_bid(), engine.best_ask()
        assert bid is None or ask is None or bid < ask, "crossed book"
        snap = engine.snapshot()
        resting: dict[int, int] = {}
        depth: dict[tuple[str, int], int] = {}
        for side, price, orders in snap:
            assert orders, "empty level kept"
            arrivals = [self.rested_at[oid] for oid, _, _ in orders]
            assert arrivals == sorted(arrivals), "time priority broken"
            for oid, qty, _ in orders:
                assert qty > 0 and self.side[oid] == side and self.limit[oid] == price
                resting[oid] = qty
            depth[(side, price)] = sum(qty for _, qty, _ in orders)
        assert depth == self.depth, "LEVEL events do not describe the book"
        bids, asks = engine.depth(1000)
        assert {(BUY, p): s for p, s in bids} | {(SELL, p): s for p, s in asks} == depth
        assert len(engine) == len(resting)
        pending = {oid: stop[3] for oid, stop in engine.pending_stops().items()}
        # both sides of every fill: what takers got is what makers gave, buyers as sellers
        assert sum(self.as_taker.values()) == sum(self.as_maker.values())
        assert self.filled_by_side[BUY] == self.filled_by_side[SELL]
        for oid, original in self.original.items():
            if oid in self.by_funds:
                assert self.spent.get(oid, 0) + self.closed.get(oid, 0) <= original
                continue
            left = resting.get(oid, 0) + pending.get(oid, 0)
            assert self.filled.get(oid, 0) + left + self.closed.get(oid, 0) == original, oid


def run_checked(commands: list[Command]) -> Observer:
    observer = Observer()
    for c in commands:
        observer.apply(c)
    # Every order that is over is accounted for exactly, funds orders included.
    for oid in observer.by_funds:
        if observer.log and any(e[:2] == (REJECTED, oid) for ev in observer.log for e in ev):
            continue
        assert observer.spent.get(oid, 0) + observer.closed.get(oid, 0) == observer.original[oid]
    return observer


def replay(commands: list[Command]) -> tuple[list[tuple[Any, ...]], Any, int]:
    engine = MatchingEngine()
    for c in commands:
        engine.apply(c)
    return engine.take_events(), engine.snapshot(), engine.seq


def differential(commands: list[Command]) -> None:
    engine = MatchingEngine()
    ref = ReferenceBook()
    depth: dict[tuple[str, int], int] = {}
    for i, c in enumerate(commands):
        engine.apply(c)
        ref.apply(c)
        events = engine.take_events()
        for ev in events:
            if ev[0] == LEVEL:
                if ev[4]:
                    depth[(ev[2], ev[3])] = ev[4]
                else:
                    depth.pop((ev[2], ev[3]), None)
        ours = [e for e in events if e[0] != LEVEL]
        assert ours == ref.events, (i, c, ours, ref.events)
        ref.events.clear()
        assert depth == ref.depth(), (i, c)
        assert engine.last_price == ref.last_price
    assert engine.snapshot() == ref.snapshot()
    assert {oid: s[1] for oid, s in engine.pending_stops().items()} == {
        s.order_id: s.stop for s in ref.stops
    }


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.lists(specs, max_size=60))
def test_invariants_after_any_sequence(raw: list[tuple[Any, ...]]) -> None:
    run_checked(build(raw))


@SETTINGS
@given(st.lists(specs, max_size=60))
def test_replaying_the_log_gives_the_same_book_and_fills(raw: list[tuple[Any, ...]]) -> None:
    commands = build(raw)
    first = replay(commands)
    assert replay(commands) == first
    # and the same as the events seen command by command
    observer = run_checked(commands)
    assert [e for events in observer.log for e in events] == first[0]


@SETTINGS
@given(st.lists(specs, max_size=60))
def test_same_fills_and_book_as_the_reference(raw: list[tuple[Any, ...]]) -> None:
    differential(build(raw))


def test_long_streams_against_the_reference_and_invariants() -> None:
    for seed in range(4):
        commands = random_stream(seed, 2500)
        differential(commands)
        run_checked(commands)
        first = replay(commands)
        assert replay(commands) == first


def test_stream_exercises_every_event_kind() -> None:
    """The random streams above are not vacuous: they reach every path checked."""
    kinds: set[str] = set()
    reasons: set[Hashable] = set()
    for seed in range(4):
        events, _, _ = replay(random_stream(seed, 2500))
        kinds |= {e[0] for e in events}
        reasons |= {e[3] for e in events if e[0] in (CANCELLED, EXPIRED)}
    assert {FILL, RESTED, CANCELLED, EXPIRED, REJECTED, LEVEL, PENDING, TRIGGERED} <= kinds
    assert {"self_trade", "unfilled", "fok_unfillable", "by_user"} <= reasons


def test_engine_alone_is_fast_enough_for_the_unit_tier() -> None:
    """Guard against an accidental quadratic path: 20,000 commands on deep levels."""
    engine = MatchingEngine()
    for c in random_stream(9, 20_000):
        engine.apply(c)
        engine.events.clear()
    assert len(engine) > 0
    _ = FOK
