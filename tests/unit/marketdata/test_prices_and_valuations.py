"""fetch-external-prices (through the real HTTP JSON and Chainlink adapters), update-token-
metadata (append-only valuation history) and the ticker payload that shows both."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider

from adapters.outbound.pricefeed.chainlink import ChainlinkPriceFeed
from adapters.outbound.pricefeed.http_json import HttpJsonPriceFeed
from adapters.outbound.storage.memory import MemoryStorage
from core.marketdata.aggregate import TRADE_EXECUTED, TradeExecuted, aggregate_candles
from core.marketdata.prices import (
    FROM_THE_FUTURE,
    NOT_NEWER,
    OUT_OF_BAND,
    STALE,
    UNAVAILABLE,
    PricePolicy,
    fetch_external_prices,
)
from core.marketdata.queries import PairFormat, ticker_payload
from core.marketdata.valuations import REGISTRATION_SOURCE, update_token_metadata
from core.markets.model import AssetType, Market, MarketAsset, MarketStatus
from core.ports.audit import AuditFilter
from core.ports.clock import Clock
from core.shared.errors import NotFound, ValidationFailed
from core.shared.events import Actor, DomainEvent
from tests.harness.aggregator import TestAggregator
from tests.harness.price_server import PriceServer, price_server  # noqa: F401 - fixture

NOW = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
POLICY = PricePolicy(max_age=timedelta(minutes=10), max_deviation_bps=500)


class Clock0(Clock):
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


def body(price: str, at: datetime, symbol: str = "XAU") -> dict[str, str]:
    return {"symbol": symbol, "price": price, "updatedAt": at.isoformat()}


async def test_prices_are_stored_with_times_and_stale_or_out_of_band_ones_refused(
    price_server: PriceServer,  # noqa: F811 - the fixture
) -> None:
    storage, clock = MemoryStorage(), Clock0(NOW)
    feed = HttpJsonPriceFeed(price_server.url, ["XAU", "XAG", "OIL", "NEW"], source="metals")
    price_server.set_json("XAU", body("2000.00", NOW - timedelta(minutes=1)))
    price_server.set_json("XAG", body("25.10", NOW - timedelta(minutes=11), "XAG"))
    price_server.set_json("NEW", body("1", NOW + timedelta(minutes=5), "NEW"))
    report = await fetch_external_prices(storage, [feed], clock, POLICY)
    assert [(p.symbol, p.price, p.observed_at, p.fetched_at) for p in report.accepted] == [
        ("XAU", Decimal("2000.00"), NOW - timedelta(minutes=1), NOW)
    ]
    reasons = {(r.symbol, r.reason) for r in report.rejected}
    assert reasons == {("XAG", STALE), ("OIL", UNAVAILABLE), ("NEW", FROM_THE_FUTURE)}
    stale = next(r for r in report.rejected if r.reason == STALE)
    assert stale.message == "660 s old; the maximum is 600 s" and stale.source == "metals"

    clock.at = NOW + timedelta(minutes=2)
    report = await fetch_external_prices(storage, [feed], clock, POLICY)  # nothing new
    assert ("XAU", NOT_NEWER) in {(r.symbol, r.reason) for r in report.rejected}

    price_server.set_json("XAU", body("2100.01", NOW + timedelta(minutes=1)))  # +5.0005 %
    report = await fetch_external_prices(storage, [feed], clock, POLICY)
    out = next(r for r in report.rejected if r.symbol == "XAU")
    assert out.reason == OUT_OF_BAND and "500 bps" in out.message
    price_server.set_json("XAU", body("2100.00", NOW + timedelta(minutes=1)))  # exactly 5 %
    report = await fetch_external_prices(storage, [feed], clock, POLICY)
    assert [p.price for p in report.accepted] == [Decimal("2100.00")]
    async with storage.unit_of_work(read_only=True) as uow:
        history = await uow.reference_prices.history("XAU", limit=10)
    assert [p.price for p in history] == [Decimal("2100.00"), Decimal("2000.00")]
    await feed.close()


async def test_a_chainlink_price_is_banded_against_the_http_one(
    price_server: PriceServer,  # noqa: F811 - the fixture
) -> None:
    storage, clock = MemoryStorage(), Clock0(NOW)
    http = HttpJsonPriceFeed(price_server.url, ["XAU"], source="metals")
    price_server.set_json("XAU", body("2000", NOW - timedelta(minutes=2)))
    w3 = Web3(EthereumTesterProvider())
    aggregator = TestAggregator(w3, 8)
    chain = ChainlinkPriceFeed(w3, {"XAU": aggregator.address})
    aggregator.set(Decimal("2050.12345678"), NOW - timedelta(minutes=1))
    report = await fetch_external_prices(storage, [http, chain], clock, POLICY)
    assert [(p.source, p.price) for p in report.accepted] == [
        ("metals", Decimal("2000")),
        ("chainlink", Decimal("2050.12345678")),
    ]
    aggregator.set(Decimal("3000"), NOW)
    report = await fetch_external_prices(storage, [chain], clock, POLICY)
    assert [(r.source, r.reason) for r in report.rejected] == [("chainlink", OUT_OF_BAND)]
    await http.close()
    await chain.close()


async def add_market(storage: MemoryStorage, valuation: Decimal | None) -> Market:
    market = Market(
        id="m-1",
        name="Lux apartment",
        asset_type=AssetType.REAL_ESTATE,
        issuer_id="issuer-1",
        token_symbol="LUXAPT",
        token_name="Lux",
        total_supply=1000,
        status=MarketStatus.ACTIVE,
        created_at=NOW - timedelta(days=30),
        updated_at=NOW,
    )
    asset = MarketAsset(market_id=market.id, valuation=valuation, currency="EUR")
    async with storage.unit_of_work() as uow:
        await uow.markets.add(market, asset)
        await uow.commit()
    return market


async def test_valuation_updates_keep_their_history() -> None:
    storage, clock = MemoryStorage(), Clock0(NOW)
    await add_market(storage, Decimal("1250000.00"))
    admin = Actor("admin-1", roles=("admin",))
    first = await update_token_metadata(
        storage, clock, admin, "m-1", valuation=Decimal("1300000.50"), note="appraisal"
    )
    assert (first.version, first.currency, first.effective_at) == (2, "EUR", NOW)
    clock.at = NOW + timedelta(days=1)
    second = await update_token_metadata(
        storage,
        clock,
        admin,
        "m-1",
        valuation=Decimal("1280000"),
        currency="USD",
        effective_at=NOW,
        source="auditor",
    )
    assert second.version == 3 and second.recorded_at == NOW + timedelta(days=1)
    async with storage.unit_of_work(read_only=True) as uow:
        history = await uow.valuations.history("m-1")
    assert [(v.version, v.valuation, v.currency, v.source) for v in history] == [
        (1, Decimal("1250000.00"), "EUR", REGISTRATION_SOURCE),
        (2, Decimal("1300000.50"), "EUR", None),
        (3, Decimal("1280000"), "USD", "auditor"),
    ]
    assert history[0].actor_id == "issuer-1" and history[0].effective_at == NOW - timedelta(30)
    async with storage.unit_of_work(read_only=True) as uow:
        audited = await uow.audit.query(AuditFilter(action="asset.valuation_update"), limit=10)
    assert [
        (e.actor_id, e.subject, e.before["version"], e.after["valuation"]) for e in audited
    ] == [
        ("admin-1", "market:m-1", 2, "1280000"),
        ("admin-1", "market:m-1", 1, "1300000.50"),
    ]
    with pytest.raises(NotFound):
        await update_token_metadata(storage, clock, admin, "m-9", valuation=Decimal(1))
    with pytest.raises(ValidationFailed) as failed:
        await update_token_metadata(
            storage,
            clock,
            admin,
            "m-1",
            valuation=Decimal(0),
            currency="usd",
            effective_at=datetime(2026, 1, 1),
        )
    assert set(failed.value.fields) == {"valuation", "currency", "effectiveAt"}
    with pytest.raises(ValidationFailed):
        await update_token_metadata(storage, clock, admin, "m-1", valuation=1.5)  # type: ignore[arg-type]


async def test_the_ticker_shows_stats_reference_price_and_valuation(
    price_server: PriceServer,  # noqa: F811 - the fixture
) -> None:
    storage, clock = MemoryStorage(), Clock0(NOW)
    await add_market(storage, None)
    empty = await ticker_payload(
        storage,
        pair_id="pair-1",
        symbol="LUXAPT-USDC",
        fmt=PairFormat(2, 0),
        now=NOW,
        reference_symbol="LUXAPT",
        market_id="m-1",
    )
    assert empty["last"] is None and empty["referencePrice"] is None and empty["valuation"] is None
    await update_token_metadata(
        storage, clock, Actor("admin-1"), "m-1", valuation=Decimal("1250000"), currency="USD"
    )
    feed = HttpJsonPriceFeed(price_server.url, ["LUXAPT"], source="appraiser")
    price_server.set_json("LUXAPT", body("1250.5", NOW, "LUXAPT"))
    await fetch_external_prices(storage, [feed], clock, POLICY)
    await feed.close()
    trade = DomainEvent(
        type=TRADE_EXECUTED,
        aggregate_id="pair-1",
        actor_id="matching",
        actor_type="system",
        occurred_at=NOW - timedelta(minutes=3),
        metadata=TradeExecuted("t1", Decimal("1251.00"), Decimal("4"), "BUY").to_metadata(),
        stream="pair:pair-1",
        seq=1,
    )
    await aggregate_candles(storage, [trade])
    ticker = await ticker_payload(
        storage,
        pair_id="pair-1",
        symbol="LUXAPT-USDC",
        fmt=PairFormat(2, 0),
        now=NOW,
        reference_symbol="LUXAPT",
        market_id="m-1",
    )
    assert ticker == {
        "pair": "pair-1",
        "symbol": "LUXAPT-USDC",
        "open": "1251.00",
        "high": "1251.00",
        "low": "1251.00",
        "last": "1251.00",
        "volume": "4",
        "quoteVolume": "5004.00",
        "changePercent": "0.00",
        "referencePrice": {
            "symbol": "LUXAPT",
            "price": "1250.5",
            "source": "appraiser",
            "observedAt": "2026-11-23T14:00:00.000Z",
        },
        "valuation": {
            "valuation": "1250000",
            "currency": "USD",
            "effectiveAt": "2026-11-23T14:00:00.000Z",
            "version": 1,
        },
        "time": "2026-11-23T14:00:00.000Z",
    }
