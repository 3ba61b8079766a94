"""``update-token-metadata`` on a schedule: with ``RWA_VALUATION_FETCH_SECONDS`` and
``RWA_VALUATION_SOURCE_URL`` (a JSON server on loopback), the started service enqueues the job
on its own and records each active market's valuation (``GET .../valuations`` shows it, by the
system actor); a hostile answer is refused and counted, recorded nowhere. Without a source, or
with 0 seconds, nothing is scheduled; a bad template stops the start naming the variable."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

import bootstrap
from adapters.outbound.metrics.memory import MemoryMetrics
from bootstrap import Settings
from core.marketdata.valuation_fetch import UpdateTokenMetadataJob
from core.markets.model import AssetType, Market, MarketAsset, MarketStatus
from settings import ConfigurationError
from tests.harness.valuation_server import (  # noqa: F401 - fixture
    ValuationServer,
    valuation_server,
)
from tests.unit.conftest import SECRET


def settings(**extra: object) -> Settings:
    return Settings(profile="test", jwt_secret=SECRET, **extra)  # type: ignore[arg-type]


def scheduled(runtime: bootstrap.Runtime) -> list[str]:
    return [job.name for _, job in runtime.container.token_job_scheduler()._every]


async def test_valuations_are_fetched_on_schedule(
    valuation_server: ValuationServer,  # noqa: F811 - the fixture
) -> None:
    now = datetime.now(UTC)
    valuation_server.set_json(
        "LUXAPT", {"valuation": "1050000.50", "currency": "USD", "asOf": now.isoformat()}
    )
    valuation_server.set_raw(
        "HOSTILE", b'{"valuation": 1050000.5, "currency": "USD", "asOf": "2026-01-01T00:00Z"}'
    )
    runtime = bootstrap.build(
        settings(valuation_fetch_seconds=0.2, valuation_source_url=valuation_server.template)
    )
    assert UpdateTokenMetadataJob.name in scheduled(runtime)
    storage = runtime.container.storage()
    for market_id, symbol in (("m-good", "LUXAPT"), ("m-bad", "HOSTILE")):
        market = Market(
            id=market_id,
            name=symbol,
            asset_type=AssetType.REAL_ESTATE,
            issuer_id="iss",
            token_symbol=symbol,
            token_name=symbol,
            total_supply=10,
            status=MarketStatus.ACTIVE,
            created_at=now - timedelta(days=1),
            updated_at=now - timedelta(days=1),
        )
        asset = MarketAsset(market_id=market_id, valuation=Decimal("1000000"), currency="USD")
        async with storage.unit_of_work() as uow:
            await uow.markets.add(market, asset)
            await uow.commit()
    async with runtime.http_app().test_app() as app:  # starts the runtime, as serving does
        client = app.test_client()
        for _ in range(100):  # the first run is due at once
            async with storage.unit_of_work(read_only=True) as uow:
                found = await uow.valuations.history("m-good")
            if len(found) == 2:
                break
            await asyncio.sleep(0.05)
        response = await client.get("/api/v1/markets/m-good/valuations")
        wire = (await response.get_json())["data"]
        assert [(v["version"], v["valuation"], v["actorId"]) for v in wire] == [
            (1, "1000000", "iss"),
            (2, "1050000.50", "update-token-metadata"),
        ]
        assert wire[1]["source"] == valuation_server.url.removeprefix("http://")
        async with storage.unit_of_work(read_only=True) as uow:
            assert await uow.valuations.history("m-bad") == []
        await asyncio.sleep(0.5)  # and again on schedule: nothing recorded twice
        assert sum("/valuations/LUXAPT" in r for r in valuation_server.requests) >= 2
        async with storage.unit_of_work(read_only=True) as uow:
            assert len(await uow.valuations.history("m-good")) == 2
        metrics = runtime.container.metrics()
        assert isinstance(metrics, MemoryMetrics)
        assert metrics.valuations["recorded"] == 1
        assert metrics.valuations["repeated"] >= 1 and metrics.valuations["unavailable"] >= 2


def test_daily_by_default_but_only_with_a_source() -> None:
    assert Settings().valuation_fetch_seconds == 86_400
    assert UpdateTokenMetadataJob.name not in scheduled(bootstrap.build(settings()))
    off = settings(valuation_fetch_seconds=0, valuation_source_url="https://v.example/{symbol}")
    assert UpdateTokenMetadataJob.name not in scheduled(bootstrap.build(off))
    on = bootstrap.build(settings(valuation_source_url="https://v.example/{symbol}"))
    assert [(s, j.name) for s, j in on.container.token_job_scheduler()._every] == [
        (86_400, UpdateTokenMetadataJob.name)
    ]


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"RWA_VALUATION_SOURCE_URL": "https://v.example/{nope}"}, "RWA_VALUATION_SOURCE_URL"),
        ({"RWA_VALUATION_SOURCE_URL": "https://v.example/all"}, "RWA_VALUATION_SOURCE_URL"),
        ({"RWA_VALUATION_SOURCE_URL": "file:///{symbol}"}, "RWA_VALUATION_SOURCE_URL"),
        ({"RWA_VALUATION_FETCH_SECONDS": "-1"}, "RWA_VALUATION_FETCH_SECONDS"),
        ({"RWA_VALUATION_MAX_CHANGE_BPS": "x"}, "RWA_VALUATION_MAX_CHANGE_BPS"),
        ({"RWA_VALUATION_MAX_AGE_SECONDS": "0"}, "RWA_VALUATION_MAX_AGE_SECONDS"),
    ],
)
def test_bad_values_stop_the_start_naming_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        Settings.from_env(env)
