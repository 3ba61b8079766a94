"""Request limits per client address: 429 with Retry-After, health exempt, limiter outages."""

from __future__ import annotations

import pytest

import bootstrap
from bootstrap import Settings
from core.ports.rate_limit import RateLimitDecision, RateLimiter
from tests.unit.conftest import SECRET


async def test_over_the_limit_is_429_with_retry_after() -> None:
    runtime = bootstrap.build(
        Settings(profile="test", jwt_secret=SECRET, http_rate_limit=3, http_rate_window_seconds=60)
    )
    async with runtime.http_app().test_app() as app:
        client = app.test_client()
        for _ in range(3):
            assert (await client.get("/api/v1/markets")).status_code == 200
        refused = await client.get("/api/v1/markets")
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) >= 1
        error = (await refused.get_json())["error"]
        assert error["code"] == "rate_limited" and error["details"]["limit"] == 3
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/readyz")).status_code == 200


class BrokenLimiter(RateLimiter):
    async def hit(self, key: str, limit: int, window_seconds: float) -> RateLimitDecision:
        raise ConnectionError("redis is down")

    async def reset(self, key: str) -> None:
        pass


async def test_a_limiter_outage_lets_requests_through() -> None:
    settings = Settings(profile="test", jwt_secret=SECRET, http_rate_limit=1)
    runtime = bootstrap.build(settings)
    runtime.container.rate_limiter.override(BrokenLimiter())  # type: ignore[attr-defined]
    async with runtime.http_app().test_app() as app:
        client = app.test_client()
        for _ in range(3):
            assert (await client.get("/api/v1/markets")).status_code == 200


def test_zero_turns_the_limit_off_and_negative_is_refused() -> None:
    off = bootstrap.build(Settings(profile="test", jwt_secret=SECRET, http_rate_limit=0))
    assert off.http_app() is not None
    with pytest.raises(bootstrap.ConfigurationError, match="RWA_HTTP_RATE_LIMIT"):
        Settings(profile="test", jwt_secret=SECRET, http_rate_limit=-1)
