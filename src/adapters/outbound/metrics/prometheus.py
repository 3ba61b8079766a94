"""Metrics for Prometheus (``prometheus-client``), exported by ``GET /metrics``.

One process: the adapter keeps its metrics in its own registry and renders it.

Several processes (hypercorn ``--workers``, taskiq workers): set ``PROMETHEUS_MULTIPROC_DIR``
to an empty directory shared by all of them, in the environment of every process, before it
starts (prometheus-client reads it when first imported). Each process then writes its values
to files there, and ``/metrics`` in any process merges every process's files
(``prometheus_client.multiprocess.MultiProcessCollector``). Gauges say how they merge:
connections and pool use add up over live processes; values read from shared storage
(markets per status, queue depth, drift) take the most recent sample. Empty the directory
before the service starts; a process that ends calls ``close()`` to drop its live gauges.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from core.ports.metrics import Metrics

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# 10 µs up: the matching core takes microseconds; the seeds' alert is at 100 ms.
MATCHING_BUCKETS = (
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
)  # fmt: skip
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
JOB_BUCKETS = (0.005, 0.025, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
SETTLEMENT_BUCKETS = (1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 300.0, 600.0)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


class PrometheusMetrics(Metrics):
    def __init__(self, *, namespace: str = "rwa") -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._multiprocess = multiprocess_dir()
        r, ns = self.registry, namespace
        self._matching = Histogram(
            "matching_latency_seconds",
            "Time of one command through a pair's matching engine",
            ["pair"], namespace=ns, registry=r, buckets=MATCHING_BUCKETS,
        )  # fmt: skip
        self._trades = Counter(
            "trades", "Trades committed (success) or lost with a failed batch (failure)",
            ["pair", "outcome"], namespace=ns, registry=r,
        )  # fmt: skip
        self._settlement = Histogram(
            "settlement_lag_seconds",
            "From an operation's ledger commit to its confirmed chain transaction",
            ["kind"], namespace=ns, registry=r, buckets=SETTLEMENT_BUCKETS,
        )  # fmt: skip
        self._deployments = Counter(
            "deployment_attempts", "deploy-token attempts by outcome",
            ["outcome"], namespace=ns, registry=r,
        )  # fmt: skip
        self._drift = Gauge(
            "reconciliation_drift_base_units",
            "Sum of |chain - ledger| per token at the last reconcile run (base units)",
            ["token"], namespace=ns, registry=r, multiprocess_mode="mostrecent",
        )  # fmt: skip
        self._valuations = Counter(
            "valuation_fetches", "update-token-metadata: valuations recorded or refused",
            ["outcome"], namespace=ns, registry=r,
        )  # fmt: skip
        self._enqueued = Counter(
            "jobs_enqueued", "Jobs enqueued by name", ["job"], namespace=ns, registry=r
        )
        self._jobs = Counter(
            "jobs_processed", "Jobs run to the end, by name and outcome",
            ["job", "outcome"], namespace=ns, registry=r,
        )  # fmt: skip
        self._job_seconds = Histogram(
            "job_duration_seconds", "Run time of one job", ["job"],
            namespace=ns, registry=r, buckets=JOB_BUCKETS,
        )  # fmt: skip
        self._depth = Gauge(
            "job_queue_depth", "Jobs queued, delayed or running",
            ["queue"], namespace=ns, registry=r, multiprocess_mode="mostrecent",
        )  # fmt: skip
        self._cache = Counter(
            "cache_requests", "Cache reads by result (hit, miss)",
            ["cache", "result"], namespace=ns, registry=r,
        )  # fmt: skip
        self._pool = Gauge(
            "db_pool_connections", "Database pool connections: in_use and size",
            ["state"], namespace=ns, registry=r, multiprocess_mode="livesum",
        )  # fmt: skip
        self._markets = Gauge(
            "markets", "Markets per status", ["status"],
            namespace=ns, registry=r, multiprocess_mode="mostrecent",
        )  # fmt: skip
        self._oldest_activating = Gauge(
            "market_oldest_activating_seconds",
            "Age of the oldest market still activating (0: none)",
            namespace=ns, registry=r, multiprocess_mode="mostrecent",
        )  # fmt: skip
        self._http = Counter(
            "http_requests", "HTTP requests by route template, method and status",
            ["method", "route", "status"], namespace=ns, registry=r,
        )  # fmt: skip
        self._http_seconds = Histogram(
            "http_request_duration_seconds", "HTTP request latency by route template",
            ["method", "route"], namespace=ns, registry=r, buckets=HTTP_BUCKETS,
        )  # fmt: skip
        self._ws_clients = Gauge(
            "ws_connections", "WebSocket clients connected now",
            namespace=ns, registry=r, multiprocess_mode="livesum",
        )  # fmt: skip
        self._ws_opened = Counter(
            "ws_connections_opened", "WebSocket connections accepted", namespace=ns, registry=r
        )
        self._ws_frames = Counter(
            "ws_messages", "WebSocket frames by direction (in, out)",
            ["direction"], namespace=ns, registry=r,
        )  # fmt: skip
        self._ws_slow = Counter(
            "ws_slow_consumer_closes", "WebSocket connections closed as slow consumers",
            namespace=ns, registry=r,
        )  # fmt: skip

    # -- the port ------------------------------------------------------------------------------

    def observe_matching_latency(self, pair: str, seconds: float) -> None:
        self._matching.labels(pair).observe(_duration(seconds))

    def trades_executed(self, pair: str, *, ok: bool, count: int = 1) -> None:
        self._trades.labels(pair, "success" if ok else "failure").inc(count)

    def settlement_lag(self, kind: str, seconds: float) -> None:
        self._settlement.labels(kind).observe(max(0.0, seconds))

    def deployment_attempt(self, outcome: str) -> None:
        self._deployments.labels(outcome).inc()

    def reconciliation_drift(self, token: str, amount: int) -> None:
        self._drift.labels(token).set(amount)

    def valuation_fetched(self, outcome: str) -> None:
        self._valuations.labels(outcome).inc()

    def job_enqueued(self, name: str) -> None:
        self._enqueued.labels(name).inc()

    def job_processed(self, name: str, *, ok: bool, seconds: float) -> None:
        self._jobs.labels(name, "success" if ok else "failure").inc()
        self._job_seconds.labels(name).observe(_duration(seconds))

    def queue_depth(self, queue: str, depth: int) -> None:
        self._depth.labels(queue).set(_count(depth))

    def cache_hit(self, cache: str, *, hit: bool) -> None:
        self._cache.labels(cache, "hit" if hit else "miss").inc()

    def db_pool(self, *, in_use: int, size: int) -> None:
        self._pool.labels("in_use").set(_count(in_use))
        self._pool.labels("size").set(_count(size))

    def markets_by_status(self, counts: Mapping[str, int]) -> None:
        for status, n in counts.items():
            self._markets.labels(status).set(_count(n))

    def oldest_activating(self, seconds: float) -> None:
        self._oldest_activating.set(max(0.0, seconds))

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self._http.labels(method, route, str(status)).inc()
        self._http_seconds.labels(method, route).observe(_duration(seconds))

    def ws_connection(self, *, opened: bool) -> None:
        if opened:
            self._ws_clients.inc()
            self._ws_opened.inc()
        else:
            self._ws_clients.dec()

    def ws_messages(self, direction: str, count: int = 1) -> None:
        self._ws_frames.labels(direction).inc(count)

    def ws_slow_consumer_closes(self, count: int = 1) -> None:
        self._ws_slow.inc(count)

    # -- exposition ------------------------------------------------------------------------------

    def exposition(self) -> tuple[bytes, str]:
        """The text format and its content type: this process's registry, or every
        process's files in multiprocess mode."""
        if self._multiprocess is None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged, path=self._multiprocess)  # type: ignore[no-untyped-call]
        return generate_latest(merged), CONTENT_TYPE_LATEST

    def close(self) -> None:
        """This process ends: its ``live*`` gauges leave the merged view."""
        if self._multiprocess is not None:
            multiprocess.mark_process_dead(os.getpid(), self._multiprocess)  # type: ignore[no-untyped-call]


def _duration(seconds: float) -> float:
    if not seconds >= 0:  # NaN too
        raise ValueError(f"a duration is never negative: {seconds}")
    return seconds


def _count(n: int) -> int:
    if n < 0:
        raise ValueError(f"a count is never negative: {n}")
    return n
