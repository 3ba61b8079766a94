"""update-token-metadata, the scheduled valuation fetch, on memory storage with the memory
valuation source (which parses answers exactly as the HTTP one): what passes is appended to
the audited history by the system actor, the rest is refused with its reason and recorded
nowhere, one market's failure never stops the others, and a retry records nothing twice."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.outbound.metrics.memory import MemoryMetrics
from adapters.outbound.storage.memory import MemoryStorage
from adapters.outbound.valuations.memory import MemoryValuationSource
from core.marketdata.model import AssetValuation
from core.marketdata.valuation_fetch import (
    CONFLICT,
    FROM_THE_FUTURE,
    NOT_ACTIVE,
    NOT_NEWER,
    OUT_OF_BAND,
    REPEATED,
    STALE,
    SYSTEM,
    UNAVAILABLE,
    WRONG_CURRENCY,
    UpdateTokenMetadataJob,
    ValuationFetching,
    ValuationPolicy,
    check_quote,
    fetch_valuations,
)
from core.marketdata.valuations import REGISTRATION_SOURCE, update_token_metadata
from core.markets.model import AssetType, Market, MarketAsset, MarketStatus
from core.ports.audit import AuditFilter
from core.ports.clock import Clock
from core.ports.valuation_source import ValuationQuote, ValuationSource
from core.shared.events import Actor

NOW = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
CREATED = NOW - timedelta(days=1)
POLICY = ValuationPolicy(max_age=timedelta(days=2), max_change_bps=2_000)


class Clock0(Clock):
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


async def add_market(
    storage: MemoryStorage,
    market_id: str,
    symbol: str,
    *,
    status: MarketStatus = MarketStatus.ACTIVE,
    valuation: str | None = "1000000.00",
    currency: str | None = "USD",
) -> Market:
    market = Market(
        id=market_id,
        name=f"Asset {symbol}",
        asset_type=AssetType.REAL_ESTATE,
        issuer_id="issuer-1",
        token_symbol=symbol,
        token_name=symbol,
        total_supply=1000,
        status=status,
        created_at=CREATED,
        updated_at=CREATED,
    )
    asset = MarketAsset(
        market_id=market_id,
        valuation=None if valuation is None else Decimal(valuation),
        currency=currency,
    )
    async with storage.unit_of_work() as uow:
        await uow.markets.add(market, asset)
        await uow.commit()
    return market


def doc(valuation: str, as_of: datetime, currency: str = "USD") -> dict[str, Any]:
    return {"valuation": valuation, "currency": currency, "asOf": as_of.isoformat()}


async def history(storage: MemoryStorage, market_id: str) -> list[AssetValuation]:
    async with storage.unit_of_work(read_only=True) as uow:
        return await uow.valuations.history(market_id)


async def test_active_markets_get_their_valuation_recorded_by_the_system_with_an_audit() -> None:
    storage, clock, source = MemoryStorage(), Clock0(NOW), MemoryValuationSource("appraiser")
    await add_market(storage, "m-1", "LUXAPT")
    await add_market(storage, "m-2", "DRAFT", status=MarketStatus.PENDING_APPROVAL)
    await add_market(storage, "m-3", "PAUSED", status=MarketStatus.PAUSED)
    as_of = NOW - timedelta(hours=6)
    source.set_json("LUXAPT", doc("1050000.25", as_of))
    source.set_json("DRAFT", doc("1", as_of))
    source.set_json("PAUSED", doc("1", as_of))
    report = await fetch_valuations(storage, source, clock, POLICY)
    assert source.requests == [("m-1", "LUXAPT")]  # only active markets are asked
    assert report.rejected == ()
    assert [(v.market_id, v.version, v.valuation) for v in report.recorded] == [
        ("m-1", 2, Decimal("1050000.25"))
    ]
    found = await history(storage, "m-1")
    assert [(v.version, v.valuation, v.source, v.actor_id) for v in found] == [
        (1, Decimal("1000000.00"), REGISTRATION_SOURCE, "issuer-1"),
        (2, Decimal("1050000.25"), "appraiser", "update-token-metadata"),
    ]
    assert found[1].effective_at == as_of and found[1].recorded_at == NOW
    assert found[1].currency == "USD"
    async with storage.unit_of_work(read_only=True) as uow:
        audited = await uow.audit.query(AuditFilter(action="asset.valuation_update"), limit=5)
    assert [
        (e.actor_id, e.subject, e.before["version"], e.after["valuation"]) for e in audited
    ] == [("update-token-metadata", "market:m-1", 1, "1050000.25")]
    assert SYSTEM.type == "system"
    assert await history(storage, "m-2") == [] and await history(storage, "m-3") == []


async def test_a_second_run_and_concurrent_redeliveries_record_nothing_twice() -> None:
    storage, clock, source = MemoryStorage(), Clock0(NOW), MemoryValuationSource()
    await add_market(storage, "m-1", "LUXAPT")
    source.set_json("LUXAPT", doc("1010000", NOW - timedelta(hours=1)))
    first, second = await asyncio.gather(
        fetch_valuations(storage, source, clock, POLICY),
        fetch_valuations(storage, source, clock, POLICY),
    )
    assert len(first.recorded) + len(second.recorded) == 1
    assert {r.reason for r in first.rejected + second.rejected} <= {REPEATED, CONFLICT}
    clock.at = NOW + timedelta(hours=1)
    again = await fetch_valuations(storage, source, clock, POLICY)
    assert again.recorded == () and [r.reason for r in again.rejected] == [REPEATED]
    assert [v.version for v in await history(storage, "m-1")] == [1, 2]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (doc("1000001", NOW - timedelta(days=2, seconds=1)), STALE),
        (doc("1000001", NOW + timedelta(minutes=6)), FROM_THE_FUTURE),
        (doc("1000001", CREATED), REPEATED),  # the registration's own effective time
        (doc("1000001", CREATED - timedelta(hours=1)), NOT_NEWER),
        (doc("1000001", NOW, currency="EUR"), WRONG_CURRENCY),
        (doc("1200000.01", NOW), OUT_OF_BAND),  # +20.000001 %
        (doc("799999.99", NOW), OUT_OF_BAND),
        ({"valuation": "-1000000", "currency": "USD", "asOf": NOW.isoformat()}, UNAVAILABLE),
        ({"valuation": "9" * 4000, "currency": "USD", "asOf": NOW.isoformat()}, UNAVAILABLE),
        ({"valuation": "NaN", "currency": "USD", "asOf": NOW.isoformat()}, UNAVAILABLE),
        ({"valuation": "1000000", "currency": "USD"}, UNAVAILABLE),
    ],
)
async def test_refused_valuations_are_recorded_nowhere(answer: dict[str, Any], reason: str) -> None:
    storage, clock, source = MemoryStorage(), Clock0(NOW), MemoryValuationSource()
    await add_market(storage, "m-1", "LUXAPT")
    source.set_json("LUXAPT", answer)
    report = await fetch_valuations(storage, source, clock, POLICY)
    assert report.recorded == ()
    assert [(r.market_id, r.symbol, r.reason) for r in report.rejected] == [
        ("m-1", "LUXAPT", reason)
    ]
    assert await history(storage, "m-1") == []  # not even the registration's version 1
    async with storage.unit_of_work(read_only=True) as uow:
        assert await uow.audit.query(AuditFilter(), limit=5) == []


async def test_the_band_edges_are_exact() -> None:
    storage, clock, source = MemoryStorage(), Clock0(NOW), MemoryValuationSource()
    await add_market(storage, "m-1", "LUXAPT")
    source.set_json("LUXAPT", doc("1200000.00", NOW - timedelta(hours=2)))  # exactly +20 %
    assert len((await fetch_valuations(storage, source, clock, POLICY)).recorded) == 1
    source.set_json("LUXAPT", doc("960000.00", NOW - timedelta(hours=1)))  # exactly -20 %
    assert len((await fetch_valuations(storage, source, clock, POLICY)).recorded) == 1
    found = await history(storage, "m-1")
    assert [v.valuation for v in found] == [
        Decimal("1000000.00"),
        Decimal("1200000.00"),
        Decimal("960000.00"),
    ]


async def test_a_first_valuation_has_no_band_but_keeps_the_assets_currency() -> None:
    storage, clock, source = MemoryStorage(), Clock0(NOW), MemoryValuationSource()
    await add_market(storage, "m-1", "BARE", valuation=None, currency=None)
    await add_market(storage, "m-2", "EURO", valuation=None, currency="EUR")
    source.set_json("BARE", doc("123456789.5", NOW))
    source.set_json("EURO", doc("5", NOW))
    report = await fetch_valuations(storage, source, clock, POLICY)
    assert [(v.market_id, v.version, v.currency) for v in report.recorded] == [("m-1", 1, "USD")]
    assert [(r.market_id, r.reason) for r in report.rejected] == [("m-2", WRONG_CURRENCY)]


class Broken(ValuationSource):
    """Answers from ``inner`` except for one symbol, where it fails as a buggy adapter might."""

    def __init__(self, inner: MemoryValuationSource, bad: str) -> None:
        self._inner, self._bad = inner, bad

    @property
    def source(self) -> str:
        return self._inner.source

    async def latest(self, market_id: str, symbol: str) -> ValuationQuote:
        if symbol == self._bad:
            raise KeyError(symbol)
        quote = await self._inner.latest(market_id, symbol)
        return quote if symbol != "SWAP" else ValuationQuote(
            "m-other", "OTHER", quote.valuation, quote.currency, quote.as_of, quote.source
        )  # fmt: skip


async def test_one_markets_failure_never_stops_the_others() -> None:
    storage, clock, inner = MemoryStorage(), Clock0(NOW), MemoryValuationSource()
    for n, symbol in enumerate(("AAA", "BUG", "CCC", "DOWN", "EEE", "SWAP", "HUGE")):
        await add_market(storage, f"m-{n}", symbol)
        inner.set_json(symbol, doc("1000100", NOW - timedelta(minutes=n)))
    inner.set_unavailable("DOWN")
    inner.set_raw("HUGE", b'{"valuation": 1e999999, "currency": "USD", "asOf": "x"}')
    report = await fetch_valuations(storage, Broken(inner, "BUG"), clock, POLICY)
    assert sorted(v.market_id for v in report.recorded) == ["m-0", "m-2", "m-4"]
    assert sorted((r.symbol, r.reason) for r in report.rejected) == [
        ("BUG", UNAVAILABLE),
        ("DOWN", UNAVAILABLE),
        ("HUGE", UNAVAILABLE),
        ("SWAP", UNAVAILABLE),
    ]
    assert next(r for r in report.rejected if r.symbol == "BUG").message == "KeyError"


async def test_a_market_paused_meanwhile_is_skipped() -> None:
    storage, clock = MemoryStorage(), Clock0(NOW)
    market = await add_market(storage, "m-1", "LUXAPT")
    inner = MemoryValuationSource()
    inner.set_json("LUXAPT", doc("1000100", NOW))

    class PausingSource(MemoryValuationSource):
        async def latest(self, market_id: str, symbol: str) -> ValuationQuote:
            async with storage.unit_of_work() as uow:
                stored = await uow.markets.get(market_id)
                assert stored is not None
                await uow.markets.save(attrs.evolve(stored, status=MarketStatus.PAUSED))
                await uow.commit()
            return await inner.latest(market_id, symbol)

    report = await fetch_valuations(storage, PausingSource(), clock, POLICY)
    assert [r.reason for r in report.rejected] == [NOT_ACTIVE]
    assert market.status is MarketStatus.ACTIVE  # as added
    assert await history(storage, "m-1") == []


async def test_an_admins_newer_valuation_wins_over_an_older_fetched_one() -> None:
    storage, clock, source = MemoryStorage(), Clock0(NOW), MemoryValuationSource()
    await add_market(storage, "m-1", "LUXAPT")
    await update_token_metadata(
        storage, clock, Actor("adm", roles=("admin",)), "m-1", valuation=Decimal("1100000")
    )
    source.set_json("LUXAPT", doc("1000500", NOW - timedelta(hours=3)))
    report = await fetch_valuations(storage, source, clock, POLICY)
    assert [r.reason for r in report.rejected] == [NOT_NEWER]


async def test_the_job_handler_counts_outcomes_and_closes_its_source() -> None:
    storage, clock, source = MemoryStorage(), Clock0(NOW), MemoryValuationSource()
    await add_market(storage, "m-1", "GOOD")
    await add_market(storage, "m-2", "OLD")
    source.set_json("GOOD", doc("1000001", NOW))
    source.set_json("OLD", doc("1000001", NOW - timedelta(days=9)))
    metrics = MemoryMetrics()
    handler = ValuationFetching(storage, source, clock, POLICY, count=metrics.valuation_fetched)
    await handler.handle(UpdateTokenMetadataJob())
    await handler.handle(UpdateTokenMetadataJob(reason="redelivered"))
    assert metrics.valuations == {"recorded": 1, "stale": 2, "repeated": 1}
    assert handler.last_report is not None and handler.last_report.recorded == ()
    await handler.close()
    nothing = ValuationFetching(storage, None, clock)
    await nothing.handle(UpdateTokenMetadataJob())  # no source configured: a log line
    assert nothing.last_report is None
    await nothing.close()


def current(valuation: Decimal) -> AssetValuation:
    return AssetValuation(
        id="v1",
        market_id="m-1",
        version=1,
        valuation=valuation,
        currency="USD",
        effective_at=NOW - timedelta(days=1),
        recorded_at=NOW - timedelta(days=1),
        actor_id="a",
    )


AMOUNTS = st.decimals(
    min_value=Decimal("0.000000000000000001"),
    max_value=Decimal("9" * 30),
    places=18,
    allow_nan=False,
    allow_infinity=False,
)


@given(AMOUNTS, AMOUNTS, st.integers(min_value=0, max_value=100_000))
def test_the_band_is_exact(before: Decimal, after: Decimal, bps: int) -> None:
    quote = ValuationQuote("m-1", "X", after, "USD", NOW, "s")
    policy = ValuationPolicy(max_age=timedelta(days=1), max_change_bps=bps)
    refused = check_quote(quote, current(before), "USD", policy, NOW)
    within = abs(after - before) * 10_000 <= bps * before
    assert (refused is None) == within
    assert refused is None or refused[0] == OUT_OF_BAND


@given(st.integers(min_value=-(10**7), max_value=10**7))
def test_time_checks_follow_the_policy(seconds: int) -> None:
    as_of = NOW + timedelta(seconds=seconds)
    quote = ValuationQuote("m-1", "X", Decimal(1), "USD", as_of, "s")
    refused = check_quote(quote, None, None, POLICY, NOW)
    if seconds > 300:
        assert refused is not None and refused[0] == FROM_THE_FUTURE
    elif -seconds > POLICY.max_age.total_seconds():
        assert refused is not None and refused[0] == STALE
    else:
        assert refused is None
