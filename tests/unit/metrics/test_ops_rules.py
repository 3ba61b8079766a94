"""The alert rules and the Grafana dashboard beside them: ``promtool check rules`` and
``promtool test rules`` pass (Debian's ``prometheus`` package; a loud skip without it
locally, a failure with ``CI=true``), the dashboard is valid JSON, and every metric either
names is one ``/metrics`` exports (and every exported metric is on the dashboard)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml  # type: ignore[import-untyped]  # PyYAML, with schemathesis (dev)

from adapters.outbound.metrics.prometheus import PrometheusMetrics
from tests.harness.common import missing_service

ROOT = Path(__file__).resolve().parents[3]
ALERTS = ROOT / "ops" / "prometheus" / "alerts.yml"
ALERT_TESTS = ROOT / "ops" / "prometheus" / "alerts_test.yml"
DASHBOARD = ROOT / "ops" / "grafana" / "rwa-market.json"
OPERATIONS = ROOT / "docs" / "operations.md"
METRIC = re.compile(r"\brwa_[a-z0-9_]+")
SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        missing_service("promtool (apt-get install prometheus)")
        raise AssertionError("unreachable")
    return found


def exported() -> tuple[set[str], set[str]]:
    """(sample names, family names) of a PrometheusMetrics that reported each fact once."""
    m = PrometheusMetrics()
    m.observe_matching_latency("P", 0.00001)
    m.trades_executed("P", ok=True)
    m.settlement_lag("mint", 1.0)
    m.deployment_attempt("succeeded")
    m.reconciliation_drift("USDC", 0)
    m.valuation_fetched("recorded")
    m.job_enqueued("j")
    m.job_processed("j", ok=True, seconds=0.1)
    m.queue_depth("q", 0)
    m.cache_hit("c", hit=True)
    m.db_pool(in_use=0, size=5)
    m.markets_by_status({"active": 0})
    m.oldest_activating(0)
    m.http_request("GET", "/healthz", 200, 0.001)
    m.ws_connection(opened=True)
    m.ws_messages("out")
    m.ws_slow_consumer_closes()
    samples: set[str] = set()
    families: set[str] = set()
    for family in m.registry.collect():
        families.add(family.name)
        samples.update(s.name for s in family.samples)
    return samples, families


def dashboard_exprs() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    assert exprs
    return exprs


def alert_rules() -> list[dict[str, object]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_promtool_checks_the_rules() -> None:
    done = subprocess.run(
        [promtool(), "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in done.stdout


def test_promtool_unit_tests_fire_each_alert_and_stay_silent_when_healthy() -> None:
    done = subprocess.run(
        [promtool(), "test", "rules", ALERT_TESTS.name],
        cwd=ALERT_TESTS.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    tests = yaml.safe_load(ALERT_TESTS.read_text())["tests"]
    fired = {
        case["alertname"]
        for group in tests
        for case in group["alert_rule_test"]
        if case["exp_alerts"]
    }
    silent = {
        case["alertname"]
        for group in tests
        for case in group["alert_rule_test"]
        if not case["exp_alerts"]
    }
    names = {str(rule["alert"]) for rule in alert_rules()}
    assert fired == names and silent == names


def test_the_seeds_alerts_are_all_there() -> None:
    names = {str(rule["alert"]) for rule in alert_rules()}
    assert {
        "RwaSettlementLagHigh",
        "RwaMatchingLatencyHigh",
        "RwaFailedTradesHigh",
        "RwaJobBacklogHigh",
        "RwaCacheHitRatioLow",
        "RwaReconciliationDrift",
        "RwaMarketStuckActivating",
    } <= names


def test_every_metric_referenced_is_exported() -> None:
    samples, families = exported()
    in_alerts = {name for rule in alert_rules() for name in METRIC.findall(str(rule["expr"]))}
    referenced = in_alerts | {name for expr in dashboard_exprs() for name in METRIC.findall(expr)}
    assert referenced and referenced <= samples, sorted(referenced - samples)
    on_dashboard = {name for expr in dashboard_exprs() for name in METRIC.findall(expr)}
    shown = {next((n[: -len(s)] for s in SUFFIXES if n.endswith(s)), n) for n in on_dashboard}
    assert families <= shown, sorted(families - shown)


def test_the_dashboard_is_grafana_json() -> None:
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] == "rwa-market" and board["title"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}"


def test_operations_doc_explains_every_alert() -> None:
    text = OPERATIONS.read_text()
    for rule in alert_rules():
        assert f"### {rule['alert']}" in text, rule["alert"]
