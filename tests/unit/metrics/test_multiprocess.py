"""Multiprocess mode: two processes record into one ``PROMETHEUS_MULTIPROC_DIR`` and
``/metrics``'s exposition in a third merges them: counters and histograms add up, the
connected-clients gauge counts live processes only, the sampled gauges keep the latest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

SRC = str(Path(__file__).resolve().parents[3] / "src")

WORKER = textwrap.dedent(
    """
    import json, sys, time
    from adapters.outbound.metrics.prometheus import PrometheusMetrics
    m = PrometheusMetrics()
    n, depth, close = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "close"
    for _ in range(n):
        m.http_request("GET", "/api/v1/markets/<market_id>", 200, 0.003)
        m.observe_matching_latency("GOLD-USDC", 0.00002)
    m.trades_executed("GOLD-USDC", ok=True, count=n)
    m.ws_connection(opened=True)
    m.queue_depth("rwa:jobs", depth)
    if close:
        m.close()
    """
)

RENDER = textwrap.dedent(
    """
    import sys
    from adapters.outbound.metrics.prometheus import PrometheusMetrics
    body, content_type = PrometheusMetrics().exposition()
    sys.stdout.write(body.decode())
    """
)


def run(code: str, *args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def test_two_processes_are_merged(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": SRC}
    run(WORKER, "3", "7", "keep", env=env)  # stays "live": its pid's files remain
    run(WORKER, "2", "5", "close", env=env)  # ended: its live gauge is dropped
    assert any(tmp_path.iterdir())
    text = run(RENDER, env=env)
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, json.dumps(sample.labels, sort_keys=True))] = sample.value
    route = {"method": "GET", "route": "/api/v1/markets/<market_id>", "status": "200"}
    assert found[("rwa_http_requests_total", json.dumps(route, sort_keys=True))] == 5
    pair = json.dumps({"pair": "GOLD-USDC"})
    assert found[("rwa_matching_latency_seconds_count", pair)] == 5
    le = json.dumps({"le": "2.5e-05", "pair": "GOLD-USDC"}, sort_keys=True)
    assert found[("rwa_matching_latency_seconds_bucket", le)] == 5
    ok = json.dumps({"outcome": "success", "pair": "GOLD-USDC"}, sort_keys=True)
    assert found[("rwa_trades_total", ok)] == 5
    assert found[("rwa_ws_connections", "{}")] == 1  # the closed process no longer counts
    assert found[("rwa_job_queue_depth", json.dumps({"queue": "rwa:jobs"}))] == 5  # latest
