"""``RWA_TRUSTED_PROXIES`` through the real server: hypercorn's peer address decides whether
``X-Forwarded-For`` is believed for the rate limit."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.e2e.server import API, running_server


def _statuses(http: httpx.Client, forwarded: list[str]) -> list[int]:
    return [
        http.get(f"{API}?limit=1", headers={"X-Forwarded-For": value}).status_code
        for value in forwarded
    ]


def test_a_trusted_peer_forwards_its_clients(tmp_path: Path) -> None:
    env = {"RWA_HTTP_RATE_LIMIT": "2", "RWA_TRUSTED_PROXIES": "127.0.0.0/8"}
    with running_server(tmp_path, env=env) as server, server.client() as http:
        a, b = "198.51.100.1", "198.51.100.2"
        assert _statuses(http, [a, b, a, b, a, b]) == [200, 200, 200, 200, 429, 429]


def test_an_untrusted_peer_is_limited_whatever_it_forwards(tmp_path: Path) -> None:
    env = {"RWA_HTTP_RATE_LIMIT": "2", "RWA_TRUSTED_PROXIES": "10.0.0.0/8"}
    with running_server(tmp_path, env=env) as server, server.client() as http:
        assert _statuses(http, ["198.51.100.1", "198.51.100.2", "198.51.100.3"]) == [
            200,
            200,
            429,
        ]
