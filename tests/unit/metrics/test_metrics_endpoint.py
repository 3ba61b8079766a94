"""``GET /metrics`` on the wired service: the Prometheus text format parses, requests are
counted by route template (never the raw path), deployments, jobs and the sampled gauges
(markets per status, the oldest activating market, queue depth) move."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from prometheus_client.parser import text_string_to_metric_families

import bootstrap
from adapters.inbound.pollers.gauges import GaugeSampler
from adapters.outbound.metrics.memory import MemoryMetrics
from adapters.outbound.metrics.prometheus import PrometheusMetrics
from bootstrap import Runtime
from core.ports.clock import Clock
from core.shared.events import Actor
from settings import Settings
from tests.unit.conftest import SECRET, bearer
from tests.unit.doubles import FlakyChain
from tests.unit.test_deployment import REGISTRATION, settle

ADMIN = Actor(id="admin-1", roles=("admin",))
ISSUER = Actor(id="issuer-1", roles=("issuer",))


class Later(Clock):
    """The wall clock, ``seconds`` ahead."""

    def __init__(self, seconds: float) -> None:
        self._ahead = timedelta(seconds=seconds)

    def now(self) -> datetime:
        return datetime.now(UTC) + self._ahead


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
async def prometheus_runtime() -> AsyncIterator[tuple[Runtime, Any]]:
    rt = bootstrap.build(Settings(profile="test", jwt_secret=SECRET, deploy_backoff_seconds=0.01))
    rt.container.metrics.override(PrometheusMetrics())
    app = rt.http_app()
    async with app.test_app() as test_app:
        yield rt, test_app.test_client()


async def test_metrics_parse_and_count_requests_by_route(
    prometheus_runtime: tuple[Runtime, Any],
) -> None:
    rt, client = prometheus_runtime
    headers = bearer(rt, "admin-1", "admin")
    for _ in range(3):
        assert (
            await client.get("/api/v1/markets/does-not-exist", headers=headers)
        ).status_code == 404
    assert (await client.get("/no/such/path/42")).status_code == 404
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    found = samples((await response.get_data()).decode())
    rules = {dict(k[1]).get("route") for k in found if k[0] == "rwa_http_requests_total"}
    assert "/no/such/path/42" not in rules and "<unmatched>" in rules
    route = next(r for r in rules if r and r.startswith("/api/v1/markets/<"))
    assert value(found, "rwa_http_requests_total", method="GET", route=route, status="404") == 3
    assert value(found, "rwa_http_request_duration_seconds_count", method="GET", route=route) == 3


async def test_deployment_jobs_and_market_gauges_move(
    prometheus_runtime: tuple[Runtime, Any],
) -> None:
    rt, client = prometheus_runtime
    uc = rt.container.market_use_cases()
    market = await uc.register(ISSUER, REGISTRATION)
    await uc.decide(ADMIN, market.id, "approve")
    await settle(rt)
    await rt.container.gauges().sample()
    found = samples((await (await client.get("/metrics")).get_data()).decode())
    assert value(found, "rwa_deployment_attempts_total", outcome="succeeded") == 1
    assert value(found, "rwa_jobs_processed_total", job="deploy-token", outcome="success") == 1
    assert value(found, "rwa_jobs_enqueued_total", job="deploy-token") == 1
    assert value(found, "rwa_markets", status="active") == 1
    assert value(found, "rwa_markets", status="activating") == 0
    assert value(found, "rwa_market_oldest_activating_seconds") == 0
    assert value(found, "rwa_job_queue_depth", queue=rt.settings.jobs_queue) == 0


async def test_retries_and_a_stuck_activation_on_the_memory_adapter() -> None:
    rt = bootstrap.build(Settings(profile="test", jwt_secret=SECRET, deploy_backoff_seconds=0.01))
    metrics = rt.container.metrics()
    assert isinstance(metrics, MemoryMetrics)  # the test profile's adapter
    chain = FlakyChain()
    chain.failures = 2
    rt.container.chain.override(chain)
    await rt.start()
    try:
        uc = rt.container.market_use_cases()
        market = await uc.register(ISSUER, REGISTRATION)
        await uc.decide(ADMIN, market.id, "approve")
        await settle(rt)
        assert metrics.deployments == {"retrying": 2, "succeeded": 1}
        # a second market whose deploy-token job never runs stays activating
        await rt.container.jobs().stop()
        other = await uc.register(ISSUER, attrs.evolve(REGISTRATION, token_symbol="GLD2"))
        await uc.decide(ADMIN, other.id, "approve")
        await rt.container.relay().pump()
        c = rt.container
        ten_minutes_on = GaugeSampler(
            c.storage(), c.jobs(), metrics, Later(600), interval_seconds=0, queue_name="jobs"
        )
        await ten_minutes_on.sample()
        assert metrics.markets["activating"] == 1 and metrics.markets["active"] == 1
        assert metrics.markets["rejected"] == 0
        assert metrics.oldest_activating_seconds is not None
        assert 600 <= metrics.oldest_activating_seconds < 660
    finally:
        await rt.stop()
