"""The production topology end to end: API under hypercorn, a separate taskiq worker, Postgres,
Redis, a Hardhat node and the stand-in Entity Permissions Core, all on loopback.

Approval arrives by signed webhook, then by the polling path; the worker (not the API) deploys
the token; a worker killed in the middle of a deployment does not lose the job."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from web3 import Web3

from adapters.outbound.chain.trex.artifacts import TrexContract, trex_artifact
from tests.e2e.server import API, poll
from tests.harness.common import missing_service
from tests.harness.hardhat import hardhat_unavailable
from tests.harness.permissions_core import approval_event, deliver
from tests.harness.postgres import find_bin_dir
from tests.harness.prometheus import prometheus_binary
from tests.harness.redis import redis_binary
from tests.harness.topology import WEBHOOK_SECRET, Topology, signal_group, start_topology

SUPPLY = 1_000_000


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    if find_bin_dir() is None:
        missing_service("PostgreSQL (initdb/pg_ctl)")
    if redis_binary() is None:
        missing_service("redis-server")
    reason = hardhat_unavailable()
    if reason is not None:
        missing_service(f"Hardhat: {reason}")
    if prometheus_binary() is None:
        missing_service("prometheus (apt-get install prometheus)")
    started = start_topology(tmp_path_factory.mktemp("topology"), poller=True, prometheus=True)
    try:
        yield started
    finally:
        started.stop()


def client(topology: Topology) -> httpx.Client:
    assert topology.api is not None
    return topology.api.client()


def register(topology: Topology, http: httpx.Client, symbol: str) -> str:
    assert topology.api is not None
    response = http.post(
        f"{API}/register",
        json={
            "name": f"{symbol} Plaza",
            "assetType": "real_estate",
            "tokenSymbol": symbol,
            "tokenName": f"{symbol} Plaza Token",
            "totalSupply": SUPPLY,
            "entityId": "entity-topology",
        },
        headers={"Authorization": f"Bearer {topology.api.token('issuer-top', 'issuer')}"},
    )
    assert response.status_code == 201, response.text
    market_id: str = response.json()["data"]["market"]["id"]
    return market_id


def wait_status(http: httpx.Client, market_id: str, status: str, timeout: float = 90) -> Any:
    return poll(
        lambda: http.get(f"{API}/{market_id}").json()["data"],
        lambda m: m["status"] == status,
        timeout=timeout,
        what=f"market {market_id} to be {status}",
    )


def assert_token_on_chain(topology: Topology, market: dict[str, Any]) -> None:
    w3 = Web3(Web3.HTTPProvider(topology.hardhat.url))
    address = Web3.to_checksum_address(market["contractAddress"])
    assert len(w3.eth.get_code(address)) > 0
    token = w3.eth.contract(address=address, abi=trex_artifact(TrexContract.TOKEN).abi)
    assert token.functions.totalSupply().call() == SUPPLY * 10**18
    assert token.functions.paused().call() is False


def test_signed_webhook_approval_is_deployed_by_the_worker(topology: Topology) -> None:
    assert topology.api is not None
    with client(topology) as http:
        market_id = register(topology, http, "TOPW")
        status, body = deliver(
            f"{topology.api.base_url}/api/v1/webhooks/entity-permissions",
            approval_event("evt-topology-webhook", market_id, actor_id="core-admin-9"),
            WEBHOOK_SECRET,
        )
        assert status == 200, body
        market = wait_status(http, market_id, "active")
        assert market["approvedBy"] == "core-admin-9"
        assert_token_on_chain(topology, market)
        events = [
            e["eventType"] for e in http.get(f"{API}/{market_id}/events?order=asc").json()["data"]
        ]
        assert events[-1] == "market.activated"
        # the API does not deploy in production: a worker process did
        assert "deploy-token" in "".join(topology.log(f"worker-{n}") for n in range(9))
        ready = http.get("/readyz")
        assert ready.status_code == 200, ready.text
        # a redelivery of the same event changes nothing
        status, _ = deliver(
            f"{topology.api.base_url}/api/v1/webhooks/entity-permissions",
            approval_event("evt-topology-webhook", market_id, actor_id="core-admin-9"),
            WEBHOOK_SECRET,
        )
        assert status == 200
        again = [
            e["eventType"] for e in http.get(f"{API}/{market_id}/events?order=asc").json()["data"]
        ]
        assert again == events


def test_polled_approval_is_deployed_by_the_worker(topology: Topology) -> None:
    with client(topology) as http:
        market_id = register(topology, http, "TOPP")
        topology.core.publish(approval_event("evt-topology-poll", market_id, actor_id="core-2"))
        market = wait_status(http, market_id, "active")
        assert market["approvedBy"] == "core-2"
        assert_token_on_chain(topology, market)


def test_prometheus_scrapes_the_api_and_the_workers_metrics(topology: Topology) -> None:
    """``make production-local``'s Prometheus: its target (the API's /metrics) is up, and
    the scrape holds the API's own requests and the deployments the worker process made
    (its values reach /metrics through the shared multiprocess directory)."""
    prometheus = topology.prometheus
    assert prometheus is not None and topology.api is not None
    [target] = poll(
        prometheus.targets,
        lambda targets: len(targets) == 1 and targets[0]["health"] == "up",
        timeout=30,
        what="the API target up",
        context=prometheus.log_tail,
    )
    assert target["labels"]["job"] == "rwa-api"
    assert target["scrapeUrl"] == f"{topology.api.base_url}/metrics"
    requests = poll(
        lambda: prometheus.query('sum(rwa_http_requests_total{route="/api/v1/markets/register"})'),
        lambda result: bool(result) and float(result[0]["value"][1]) >= 2,
        timeout=30,
        what="the API's registrations scraped",
    )
    assert float(requests[0]["value"][1]) >= 2
    deployed = poll(
        lambda: prometheus.query('rwa_deployment_attempts_total{outcome="succeeded"}'),
        lambda result: bool(result) and float(result[0]["value"][1]) >= 2,
        timeout=30,
        what="the worker's deployments scraped",
    )
    assert deployed[0]["metric"]["job"] == "rwa-api"
    groups = prometheus.api("rules")["groups"]
    assert any(r["name"] == "RwaSettlementLagHigh" for g in groups for r in g["rules"])


def rpc(topology: Topology, method: str, *params: Any) -> Any:
    response = httpx.post(
        topology.hardhat.url,
        json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)},
        timeout=10,
    )
    return response.json().get("result")


def test_a_worker_killed_mid_deployment_does_not_lose_the_job(topology: Topology) -> None:
    assert topology.api is not None
    with client(topology) as http:
        market_id = register(topology, http, "TOPK")
        # Stop mining: the worker sends the deployment and then waits for its receipt.
        rpc(topology, "evm_setAutomine", False)
        try:
            status, body = deliver(
                f"{topology.api.base_url}/api/v1/webhooks/entity-permissions",
                approval_event("evt-topology-kill", market_id),
                WEBHOOK_SECRET,
            )
            assert status == 200, body
            poll(
                lambda: rpc(topology, "eth_getBlockByNumber", "pending", False),
                lambda block: bool(block and block.get("transactions")),
                timeout=60,
                what="the worker's deployment to wait in the mempool",
            )
            for worker in list(topology.workers):  # the whole worker "machine" dies
                signal_group(worker, signal.SIGKILL)
                worker.wait()
            assert http.get(f"{API}/{market_id}").json()["data"]["status"] == "activating"
        finally:
            rpc(topology, "evm_setAutomine", True)
            rpc(topology, "evm_mine")
        time.sleep(0.5)
        replacement = topology.start_worker()  # claims the dead worker's pending job
        market = wait_status(http, market_id, "active", timeout=120)
        assert_token_on_chain(topology, market)
        assert replacement.poll() is None
