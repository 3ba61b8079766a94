"""The market-data storage contract (``uow.market_data``, ``uow.reference_prices``,
``uow.valuations``): every adapter runs it."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import attrs
import pytest

from core.marketdata.aggregate import (
    TRADE_EXECUTED,
    TradeExecuted,
    aggregate_candles,
    market_trade,
)
from core.marketdata.candles import apply_trade, build_candles
from core.marketdata.model import AssetValuation, Interval, MarketTrade, ReferencePrice
from core.marketdata.queries import candles, pair_stats
from core.marketdata.stats import rolling_stats, window_parts
from core.ports.marketdata import DuplicateMarketData
from core.ports.storage import Storage
from core.shared.errors import ConcurrentModification
from core.shared.events import DomainEvent

T0 = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
HUGE = Decimal("123456789012345678901234567890.123456789012345678")


def trade(seq: int, seconds: int = 0, price: str = "10.5", pair: str = "pair-1") -> MarketTrade:
    return MarketTrade(
        pair_id=pair,
        seq=seq,
        trade_id=f"t-{seq}",
        price=Decimal(price),
        quantity=Decimal("0.125"),
        taker_side="BUY",
        time=T0 + timedelta(seconds=seconds),
    )


def valuation(version: int, market: str = "m-1", amount: str = "1250000.00") -> AssetValuation:
    return AssetValuation(
        id=f"v-{market}-{version}",
        market_id=market,
        version=version,
        valuation=Decimal(amount),
        currency="USD",
        effective_at=T0,
        recorded_at=T0 + timedelta(minutes=version),
        actor_id="admin-1",
        source="appraisal",
        note=None if version == 1 else f"update {version}",
    )


class MarketDataContract:
    @pytest.fixture
    async def storage(self) -> AsyncIterator[Storage]:
        raise NotImplementedError
        yield  # pragma: no cover

    async def test_trades_round_trip_exactly_once_per_pair_and_seq(self, storage: Storage) -> None:
        big = attrs.evolve(trade(1, 5), price=HUGE, quantity=Decimal("0.000000000000000001"))
        async with storage.unit_of_work() as uow:
            await uow.market_data.add_trade(big)
            await uow.market_data.add_trade(trade(2, 5, "9"))
            await uow.market_data.add_trade(trade(3, 1, "11"))
            await uow.market_data.add_trade(trade(1, 0, pair="pair-2"))
            await uow.commit()
        async with storage.unit_of_work() as uow:
            with pytest.raises(DuplicateMarketData):
                await uow.market_data.add_trade(trade(2, 99))
            await uow.market_data.add_trade(trade(4, 7))  # the unit of work is still usable
            await uow.commit()
        async with storage.unit_of_work(read_only=True) as uow:
            found = await uow.market_data.trades("pair-1", after=T0, until=T0 + timedelta(hours=1))
            assert [t.seq for t in found] == [3, 1, 2, 4]  # by (time, seq); T0 itself excluded
            assert found[1] == big and found[1].price == HUGE
            assert str(found[1].quantity) == "1E-18" or found[1].quantity == Decimal("1e-18")
            assert await uow.market_data.has_trade("pair-1", 2)
            assert not await uow.market_data.has_trade("pair-1", 9)
            last = await uow.market_data.last_trade(
                "pair-1", at_or_before=T0 + timedelta(seconds=5)
            )
            assert last is not None and last.seq == 2
            assert (
                await uow.market_data.last_trade("pair-1", at_or_before=T0 - timedelta(1)) is None
            )
            assert await uow.market_data.pair_ids() == ["pair-1", "pair-2"]

    async def test_a_batch_of_trades_is_stored_all_or_none(self, storage: Storage) -> None:
        big = attrs.evolve(trade(2, 3), price=HUGE)
        async with storage.unit_of_work() as uow:
            await uow.market_data.add_trades([trade(1, 1), big, trade(1, 2, pair="pair-2")])
            await uow.market_data.add_trades([])
            await uow.commit()
        async with storage.unit_of_work() as uow:
            for batch in (
                [trade(3, 4), trade(2, 9)],  # one of them is stored
                [trade(5, 4), trade(5, 5)],  # repeated within the batch
            ):
                with pytest.raises(DuplicateMarketData):
                    await uow.market_data.add_trades(batch)
            await uow.market_data.add_trades([trade(4, 6)])  # the unit of work goes on
            await uow.commit()
        async with storage.unit_of_work(read_only=True) as uow:
            found = await uow.market_data.trades("pair-1", after=T0, until=T0 + timedelta(hours=1))
            assert [t.seq for t in found] == [1, 2, 4]  # neither refused batch left a trade
            assert found[1] == big
            assert [
                t.seq
                for t in await uow.market_data.trades(
                    "pair-2", after=T0, until=T0 + timedelta(hours=1)
                )
            ] == [1]

    async def test_racing_writers_of_one_trade_or_candle_store_it_once(
        self, storage: Storage
    ) -> None:
        async def add(n: int) -> bool:
            try:
                async with storage.unit_of_work() as uow:
                    await uow.market_data.add_trade(attrs.evolve(trade(1), trade_id=f"r{n}"))
                    candle = apply_trade(None, trade(1), Interval.M1)
                    await uow.market_data.put_candle(attrs.evolve(candle, version=1))
                    await uow.commit()
                    return True
            except (DuplicateMarketData, ConcurrentModification):
                return False

        results = await asyncio.gather(*(add(n) for n in range(4)))
        assert results.count(True) == 1
        async with storage.unit_of_work(read_only=True) as uow:
            candle = await uow.market_data.get_candle("pair-1", Interval.M1, T0)
            assert candle is not None and candle.trade_count == 1 and candle.version == 1

    async def test_candles_are_written_on_their_stored_version(self, storage: Storage) -> None:
        candle = attrs.evolve(apply_trade(None, trade(1, 3), Interval.M1), version=1)
        async with storage.unit_of_work() as uow:
            await uow.market_data.put_candle(candle)
            await uow.commit()
        async with storage.unit_of_work() as uow:
            stored = await uow.market_data.get_candle("pair-1", Interval.M1, T0)
            assert stored == candle
            with pytest.raises(ConcurrentModification):
                await uow.market_data.put_candle(candle)  # version 1 again
            updated = attrs.evolve(apply_trade(stored, trade(2, 9, "12"), Interval.M1), version=2)
            await uow.market_data.put_candle(updated)
            await uow.commit()
        async with storage.unit_of_work(read_only=True) as uow:
            again = await uow.market_data.get_candle("pair-1", Interval.M1, T0)
            assert again == updated and again.close == Decimal("12")
            assert again.volume == Decimal("0.250")
            assert await uow.market_data.get_candle("pair-1", Interval.M5, T0) is None

    async def test_two_writers_of_one_candle_cannot_both_commit(self, storage: Storage) -> None:
        base = attrs.evolve(apply_trade(None, trade(1), Interval.H1), version=1)
        async with storage.unit_of_work() as uow:
            await uow.market_data.put_candle(base)
            await uow.commit()
        one = attrs.evolve(apply_trade(base, trade(2, 1), Interval.H1), version=2)
        two = attrs.evolve(apply_trade(base, trade(3, 2), Interval.H1), version=2)
        async with storage.unit_of_work() as uow:
            await uow.market_data.put_candle(one)
            await uow.commit()
        async with storage.unit_of_work() as uow:
            with pytest.raises(ConcurrentModification):
                await uow.market_data.put_candle(two)
                await uow.commit()
        async with storage.unit_of_work(read_only=True) as uow:
            assert await uow.market_data.get_candle("pair-1", Interval.H1, T0) == one

    async def test_candle_ranges_and_the_newest_page(self, storage: Storage) -> None:
        async with storage.unit_of_work() as uow:
            for minute in range(5):
                built = apply_trade(None, trade(minute + 1, 60 * minute), Interval.M1)
                await uow.market_data.put_candle(attrs.evolve(built, version=1))
            await uow.commit()
        async with storage.unit_of_work(read_only=True) as uow:
            md = uow.market_data
            got = await md.candles("pair-1", Interval.M1, start=T0 + timedelta(minutes=1), limit=2)
            assert [c.open_time.minute for c in got] == [1, 2]
            got = await md.candles("pair-1", Interval.M1, limit=2)
            assert [c.open_time.minute for c in got] == [3, 4]
            got = await md.candles(
                "pair-1",
                Interval.M1,
                start=T0 + timedelta(minutes=1),
                end=T0 + timedelta(minutes=3),
            )
            assert [c.open_time.minute for c in got] == [1, 2, 3]
            assert await md.candles("pair-1", Interval.M5) == []
            assert await md.candles("pair-9", Interval.M1) == []

    async def test_reference_prices_latest_and_history(self, storage: Storage) -> None:
        def price(n: int, source: str, observed: int) -> ReferencePrice:
            return ReferencePrice(
                id=f"p-{n}",
                symbol="XAU",
                source=source,
                price=Decimal(f"2000.{n}"),
                observed_at=T0 + timedelta(seconds=observed),
                fetched_at=T0 + timedelta(seconds=100 + n),
            )

        async with storage.unit_of_work() as uow:
            await uow.reference_prices.add(price(1, "chainlink", 10))
            await uow.reference_prices.add(price(2, "http", 30))
            await uow.reference_prices.add(price(3, "chainlink", 20))
            await uow.commit()
        async with storage.unit_of_work() as uow:
            with pytest.raises(DuplicateMarketData):
                await uow.reference_prices.add(price(1, "chainlink", 40))
            latest = await uow.reference_prices.latest("XAU")
            assert latest == price(2, "http", 30)
            chainlink = await uow.reference_prices.latest("XAU", source="chainlink")
            assert chainlink is not None and chainlink.price == Decimal("2000.3")
            assert await uow.reference_prices.latest("XAG") is None
            history = await uow.reference_prices.history("XAU", limit=2)
            assert [p.id for p in history] == ["p-2", "p-3"]

    async def test_valuations_are_append_only_with_history(self, storage: Storage) -> None:
        async with storage.unit_of_work() as uow:
            await uow.valuations.add(valuation(1))
            await uow.valuations.add(valuation(2, amount="1300000.50"))
            await uow.valuations.add(valuation(1, market="m-2"))
            await uow.commit()
        async with storage.unit_of_work() as uow:
            with pytest.raises(DuplicateMarketData):
                await uow.valuations.add(attrs.evolve(valuation(2), id="other-id"))
            latest = await uow.valuations.latest("m-1")
            assert latest == valuation(2, amount="1300000.50")
            assert [v.version for v in await uow.valuations.history("m-1")] == [1, 2]
            assert (await uow.valuations.history("m-1"))[0] == valuation(1)
            assert await uow.valuations.latest("m-3") is None

    async def test_racing_valuations_of_one_version_store_one(self, storage: Storage) -> None:
        async def add(n: int) -> bool:
            try:
                async with storage.unit_of_work() as uow:
                    await uow.valuations.add(attrs.evolve(valuation(1), id=f"racer-{n}"))
                    await uow.commit()
                    return True
            except DuplicateMarketData:
                return False

        results = await asyncio.gather(*(add(n) for n in range(4)))
        assert results.count(True) == 1

    async def test_aggregating_shuffled_redelivered_events_equals_the_rebuild(
        self, storage: Storage
    ) -> None:
        rng = random.Random(11)
        stream = [
            DomainEvent(
                type=TRADE_EXECUTED,
                aggregate_id="pair-1",
                actor_id="matching",
                actor_type="system",
                occurred_at=T0 + timedelta(seconds=seq * 41, microseconds=rng.randrange(10**6)),
                metadata=TradeExecuted(
                    f"t{seq}",
                    Decimal(rng.randrange(1, 10**9)).scaleb(-4),
                    Decimal(rng.randrange(1, 10**6)).scaleb(-6),
                    rng.choice(["BUY", "SELL"]),
                ).to_metadata(),
                stream="pair:pair-1",
                seq=seq,
            )
            for seq in range(1, 80)
        ]
        delivered = stream + rng.sample(stream, 20)
        rng.shuffle(delivered)
        for start in range(0, len(delivered), 25):
            await aggregate_candles(storage, delivered[start : start + 25])
        trades = [market_trade(e) for e in stream]
        for interval in Interval:
            stored = await candles(storage, "pair-1", interval, start=T0 - timedelta(days=1))
            expected = build_candles(trades, interval)
            assert [c.open_time for c in stored] == [c.open_time for c in expected]
            assert all(a.same_values(b) for a, b in zip(stored, expected, strict=True))
        stats = await pair_stats(storage, "pair-1", now=T0 + timedelta(hours=2))
        assert stats.trade_count == 79
        assert stats.volume == sum((t.quantity for t in trades), Decimal(0))

    async def test_stats_read_with_the_current_minutes_candle_equal_the_scan(
        self, storage: Storage
    ) -> None:
        """``pair_stats`` reads the current minute as its candle, unless a trade of that
        minute is later than ``now`` (then as trades): the scan of every trade either way."""
        rng = random.Random(5)
        trades = sorted(
            (
                trade(seq, rng.randrange(0, 300), f"{rng.randrange(100, 10_000) / 100:.2f}")
                for seq in range(1, 120)
            ),
            key=lambda t: t.time,
        )
        trades = [attrs.evolve(t, seq=seq) for seq, t in enumerate(trades, start=1)]
        events = [
            DomainEvent(
                type=TRADE_EXECUTED,
                aggregate_id="pair-1",
                actor_id="matching",
                actor_type="system",
                occurred_at=t.time,
                metadata=TradeExecuted(t.trade_id, t.price, t.quantity, t.taker_side).to_metadata(),
                stream="pair:pair-1",
                seq=t.seq,
            )
            for t in trades
        ]
        await aggregate_candles(storage, events)
        stored = [market_trade(e) for e in events]
        nows = [T0 + timedelta(seconds=s, microseconds=7) for s in (59, 61, 150, 299, 301, 400)]
        nows += [t.time for t in rng.sample(stored, 6)]  # exactly at a trade: it counts
        for now in nows:
            # a day later too: the trades then fall in the window's first, partial minute
            for at in (now, now + timedelta(days=1) - timedelta(seconds=30)):
                start = window_parts(at).start
                before = max(
                    (t for t in stored if t.time <= start), key=lambda t: t.key, default=None
                )
                expected = rolling_stats("pair-1", stored, now=at, last_before=before)
                assert await pair_stats(storage, "pair-1", now=at) == expected, at

    async def test_nothing_is_kept_without_commit(self, storage: Storage) -> None:
        async with storage.unit_of_work() as uow:
            await uow.market_data.add_trade(trade(1))
            await uow.valuations.add(valuation(1))
        async with storage.unit_of_work(read_only=True) as uow:
            assert not await uow.market_data.has_trade("pair-1", 1)
            assert await uow.valuations.latest("m-1") is None
