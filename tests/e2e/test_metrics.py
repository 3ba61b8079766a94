"""``/metrics`` of the real server under hypercorn, and two servers sharing one
``PROMETHEUS_MULTIPROC_DIR``: each one's ``/metrics`` shows both processes' requests, the
route as its template, and the sampled gauges."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.server import RwaServer, start_server


def scrape(server: RwaServer) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with server.client() as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def requests_of(found: dict[tuple[str, frozenset[tuple[str, str]]], float], route: str) -> float:
    return sum(
        value
        for (name, labels), value in found.items()
        if name == "rwa_http_requests_total" and dict(labels).get("route") == route
    )


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RwaServer]]:
    shared = tmp_path_factory.mktemp("multiproc")
    servers: list[RwaServer] = []
    try:
        for name in ("a", "b"):
            work = tmp_path_factory.mktemp(f"metrics-{name}")
            servers.append(start_server(work, env={"PROMETHEUS_MULTIPROC_DIR": str(shared)}))
        yield servers
    finally:
        for server in servers:
            server.stop()


def test_two_servers_one_view(two_servers: list[RwaServer]) -> None:
    a, b = two_servers
    before = requests_of(scrape(a), "/api/v1/markets/<market_id>")
    with a.client() as client:
        for _ in range(3):
            assert client.get("/api/v1/markets/no-such-market").status_code == 404
    with b.client() as client:
        for _ in range(2):
            assert client.get("/api/v1/markets/no-such-market").status_code == 404
        assert client.get("/definitely/not/a/route/123").status_code == 404
    for server in (a, b):
        found = scrape(server)
        assert requests_of(found, "/api/v1/markets/<market_id>") == before + 5
        assert requests_of(found, "/definitely/not/a/route/123") == 0
        assert requests_of(found, "<unmatched>") >= 1
        # sampled at start by each server: every status, the SQLite pool of each process
        statuses = {dict(labels)["status"] for name, labels in found if name == "rwa_markets"}
        assert {"active", "activating", "pending_approval"} <= statuses
        size = found[("rwa_db_pool_connections", frozenset({("state", "size")}))]
        assert size > 0
