"""``fetch-external-prices`` on a schedule: with ``RWA_PRICE_FETCH_SECONDS`` and an HTTP JSON
source on loopback, the started service enqueues the job on its own and its handler stores
the accepted price (the ``ticker`` channel reads the latest one); a stale quote is refused
and stored nowhere. Without the setting nothing is scheduled."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

import bootstrap
from bootstrap import Settings
from core.marketdata.prices import FetchExternalPricesJob
from settings import ConfigurationError
from tests.harness.price_server import PriceServer, price_server  # noqa: F401 - fixture
from tests.unit.conftest import SECRET


def settings(**extra: object) -> Settings:
    return Settings(profile="test", jwt_secret=SECRET, **extra)  # type: ignore[arg-type]


async def test_prices_are_fetched_on_schedule(price_server: PriceServer) -> None:  # noqa: F811
    now = datetime.now(UTC)
    price_server.set_json("HVO", {"price": "10.4812", "updatedAt": now.isoformat()})
    price_server.set_json(
        "OLD", {"price": "3", "updatedAt": (now - timedelta(hours=3)).isoformat()}
    )
    runtime = bootstrap.build(
        settings(
            price_fetch_seconds=0.2,
            price_feed_url=price_server.url,
            price_feed_symbols="HVO,OLD",
        )
    )
    scheduler = runtime.container.token_job_scheduler()
    assert FetchExternalPricesJob.name in [job.name for _, job in scheduler._every]
    await runtime.start()
    try:
        storage = runtime.container.storage()
        for _ in range(100):  # the first run is due at once
            async with storage.unit_of_work(read_only=True) as uow:
                stored = await uow.reference_prices.latest("HVO")
            if stored is not None:
                break
            await asyncio.sleep(0.05)
        assert stored is not None and str(stored.price) == "10.4812"
        assert stored.source == "http"
        report = runtime.container.price_fetching().last_report
        assert report is not None
        assert [(r.symbol, r.reason) for r in report.rejected] == [("OLD", "stale")]
        async with storage.unit_of_work(read_only=True) as uow:
            assert await uow.reference_prices.latest("OLD") is None
        # and again on schedule: the source was asked more than once
        await asyncio.sleep(0.5)
        assert price_server.requests.count("/prices/HVO") >= 2
    finally:
        await runtime.stop()


def test_not_scheduled_without_the_setting() -> None:
    scheduler = bootstrap.build(settings()).container.token_job_scheduler()
    assert FetchExternalPricesJob.name not in [job.name for _, job in scheduler._every]


def test_chainlink_feeds_are_checked_and_need_a_node() -> None:
    with pytest.raises(ConfigurationError, match="RWA_PRICE_FEED_CHAINLINK"):
        Settings.from_env({"RWA_PRICE_FEED_CHAINLINK": "HVO=not-an-address"})
    built = bootstrap.build(settings(price_feed_chainlink="HVO=0x" + "ab" * 20))
    with pytest.raises(ConfigurationError, match="RWA_CHAIN_RPC_URL"):
        built.container.price_fetching()
