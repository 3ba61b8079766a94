"""Metrics port contract, run against the memory and the Prometheus adapters: the same facts
give the same readings (counters add up per label, gauges keep the last value, durations are
counted), and both refuse what no caller may report (negative counts and durations)."""

from __future__ import annotations

import math

import pytest

from adapters.outbound.metrics.memory import MemoryMetrics
from adapters.outbound.metrics.prometheus import PrometheusMetrics
from core.ports.metrics import Metrics


class MetricsContract:
    """Each adapter says how to read a value back; the facts and the readings are shared."""

    def make(self) -> Metrics:
        raise NotImplementedError

    def trades(self, m: Metrics, pair: str, ok: bool) -> float:
        raise NotImplementedError

    def jobs(self, m: Metrics, name: str, ok: bool) -> float:
        raise NotImplementedError

    def matched(self, m: Metrics, pair: str) -> float:
        """How many matching latencies were observed for ``pair``."""
        raise NotImplementedError

    def depth(self, m: Metrics, queue: str) -> float:
        raise NotImplementedError

    def cache(self, m: Metrics, name: str, hit: bool) -> float:
        raise NotImplementedError

    def drift(self, m: Metrics, token: str) -> float:
        raise NotImplementedError

    def markets(self, m: Metrics, status: str) -> float:
        raise NotImplementedError

    def ws_open(self, m: Metrics) -> float:
        raise NotImplementedError

    def http(self, m: Metrics, method: str, route: str, status: int) -> float:
        raise NotImplementedError

    def deployments(self, m: Metrics, outcome: str) -> float:
        raise NotImplementedError

    def settlements(self, m: Metrics, kind: str) -> tuple[float, float]:
        """(how many, their sum in seconds)."""
        raise NotImplementedError

    def valuations(self, m: Metrics, outcome: str) -> float:
        raise NotImplementedError

    def test_counters_add_up_per_label(self) -> None:
        m = self.make()
        m.trades_executed("A-B", ok=True, count=3)
        m.trades_executed("A-B", ok=True)
        m.trades_executed("A-B", ok=False, count=2)
        m.trades_executed("C-D", ok=True)
        assert self.trades(m, "A-B", True) == 4
        assert self.trades(m, "A-B", False) == 2
        assert self.trades(m, "C-D", True) == 1
        m.job_processed("mint-token", ok=True, seconds=0.2)
        m.job_processed("mint-token", ok=False, seconds=0.0)
        assert (self.jobs(m, "mint-token", True), self.jobs(m, "mint-token", False)) == (1, 1)
        for hit in (True, True, False):
            m.cache_hit("markets", hit=hit)
        assert (self.cache(m, "markets", True), self.cache(m, "markets", False)) == (2, 1)
        m.http_request("GET", "/api/v1/markets/<market_id>", 404, 0.01)
        m.http_request("GET", "/api/v1/markets/<market_id>", 404, 0.02)
        assert self.http(m, "GET", "/api/v1/markets/<market_id>", 404) == 2
        m.deployment_attempt("retrying")
        m.deployment_attempt("succeeded")
        assert self.deployments(m, "retrying") == self.deployments(m, "succeeded") == 1
        for outcome in ("recorded", "stale", "stale", "out_of_band"):
            m.valuation_fetched(outcome)
        assert [self.valuations(m, o) for o in ("recorded", "stale", "out_of_band")] == [1, 2, 1]

    def test_durations_are_counted(self) -> None:
        m = self.make()
        for seconds in (0.00001, 0.00002, 0.5):
            m.observe_matching_latency("A-B", seconds)
        assert self.matched(m, "A-B") == 3
        assert self.matched(m, "C-D") == 0

    def test_gauges_keep_the_last_value(self) -> None:
        m = self.make()
        m.queue_depth("q", 1500)
        m.queue_depth("q", 12)
        assert self.depth(m, "q") == 12
        m.reconciliation_drift("USDC", 3)
        m.reconciliation_drift("USDC", 0)
        assert self.drift(m, "USDC") == 0
        m.markets_by_status({"active": 2, "activating": 1})
        m.markets_by_status({"active": 3, "activating": 0})
        assert (self.markets(m, "active"), self.markets(m, "activating")) == (3, 0)
        m.ws_connection(opened=True)
        m.ws_connection(opened=True)
        m.ws_connection(opened=False)
        assert self.ws_open(m) == 1

    def test_negative_counts_and_durations_are_refused(self) -> None:
        m = self.make()
        with pytest.raises(ValueError):
            m.trades_executed("A-B", ok=True, count=-1)
        with pytest.raises(ValueError):
            m.ws_messages("out", -1)
        with pytest.raises(ValueError):
            m.queue_depth("q", -1)
        with pytest.raises(ValueError):
            m.observe_matching_latency("A-B", -0.001)
        with pytest.raises(ValueError):
            m.job_processed("j", ok=True, seconds=math.nan)
        with pytest.raises(ValueError):
            m.http_request("GET", "/healthz", 200, -1.0)
        assert self.trades(m, "A-B", True) == 0

    def test_settlement_lag_before_its_start_counts_as_zero(self) -> None:
        m = self.make()
        m.settlement_lag("mint", -0.5)  # clocks of two hosts a little apart
        m.settlement_lag("mint", 12.0)
        assert self.settlements(m, "mint") == (2, 12.0)
        assert self.settlements(m, "withdrawal") == (0, 0)


class TestMemoryMetrics(MetricsContract):
    def make(self) -> MemoryMetrics:
        return MemoryMetrics()

    def trades(self, m: Metrics, pair: str, ok: bool) -> float:
        assert isinstance(m, MemoryMetrics)
        return m.trades[(pair, ok)]

    def jobs(self, m: Metrics, name: str, ok: bool) -> float:
        assert isinstance(m, MemoryMetrics)
        return m.jobs[(name, ok)]

    def matched(self, m: Metrics, pair: str) -> float:
        assert isinstance(m, MemoryMetrics)
        return len(m.matching.get(pair, []))

    def depth(self, m: Metrics, queue: str) -> float:
        assert isinstance(m, MemoryMetrics)
        return m.depth[queue]

    def cache(self, m: Metrics, name: str, hit: bool) -> float:
        assert isinstance(m, MemoryMetrics)
        return m.cache[(name, hit)]

    def drift(self, m: Metrics, token: str) -> float:
        assert isinstance(m, MemoryMetrics)
        return m.drift[token]

    def markets(self, m: Metrics, status: str) -> float:
        assert isinstance(m, MemoryMetrics)
        return m.markets[status]

    def ws_open(self, m: Metrics) -> float:
        assert isinstance(m, MemoryMetrics)
        return m.ws_open

    def http(self, m: Metrics, method: str, route: str, status: int) -> float:
        assert isinstance(m, MemoryMetrics)
        return m.http[(method, route, status)]

    def deployments(self, m: Metrics, outcome: str) -> float:
        assert isinstance(m, MemoryMetrics)
        return m.deployments[outcome]

    def settlements(self, m: Metrics, kind: str) -> tuple[float, float]:
        assert isinstance(m, MemoryMetrics)
        lags = m.settlement.get(kind, [])
        return len(lags), sum(lags)

    def valuations(self, m: Metrics, outcome: str) -> float:
        assert isinstance(m, MemoryMetrics)
        return m.valuations[outcome]


class TestPrometheusMetrics(MetricsContract):
    def make(self) -> PrometheusMetrics:
        return PrometheusMetrics()

    @staticmethod
    def read(m: Metrics, name: str, **labels: str) -> float:
        assert isinstance(m, PrometheusMetrics)
        return m.registry.get_sample_value(name, labels) or 0.0

    def trades(self, m: Metrics, pair: str, ok: bool) -> float:
        outcome = "success" if ok else "failure"
        return self.read(m, "rwa_trades_total", pair=pair, outcome=outcome)

    def jobs(self, m: Metrics, name: str, ok: bool) -> float:
        outcome = "success" if ok else "failure"
        return self.read(m, "rwa_jobs_processed_total", job=name, outcome=outcome)

    def matched(self, m: Metrics, pair: str) -> float:
        return self.read(m, "rwa_matching_latency_seconds_count", pair=pair)

    def depth(self, m: Metrics, queue: str) -> float:
        return self.read(m, "rwa_job_queue_depth", queue=queue)

    def cache(self, m: Metrics, name: str, hit: bool) -> float:
        result = "hit" if hit else "miss"
        return self.read(m, "rwa_cache_requests_total", cache=name, result=result)

    def drift(self, m: Metrics, token: str) -> float:
        return self.read(m, "rwa_reconciliation_drift_base_units", token=token)

    def markets(self, m: Metrics, status: str) -> float:
        return self.read(m, "rwa_markets", status=status)

    def ws_open(self, m: Metrics) -> float:
        return self.read(m, "rwa_ws_connections")

    def http(self, m: Metrics, method: str, route: str, status: int) -> float:
        return self.read(
            m, "rwa_http_requests_total", method=method, route=route, status=str(status)
        )

    def deployments(self, m: Metrics, outcome: str) -> float:
        return self.read(m, "rwa_deployment_attempts_total", outcome=outcome)

    def settlements(self, m: Metrics, kind: str) -> tuple[float, float]:
        return (
            self.read(m, "rwa_settlement_lag_seconds_count", kind=kind),
            self.read(m, "rwa_settlement_lag_seconds_sum", kind=kind),
        )

    def valuations(self, m: Metrics, outcome: str) -> float:
        return self.read(m, "rwa_valuation_fetches_total", outcome=outcome)
