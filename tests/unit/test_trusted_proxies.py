"""``RWA_TRUSTED_PROXIES``: whose ``X-Forwarded-For`` keys the HTTP rate limit."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

import bootstrap
from adapters.inbound.http.rate_limit import client_address
from bootstrap import Settings
from tests.unit.conftest import SECRET

PROXIES = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8"))


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.9", [], "203.0.113.9"),
        # an untrusted peer's header is ignored: a client cannot choose its own key
        ("203.0.113.9", ["198.51.100.1"], "203.0.113.9"),
        ("10.0.0.5", ["198.51.100.1"], "198.51.100.1"),
        # a chain of trusted proxies: the rightmost untrusted entry is the client
        ("10.0.0.5", ["1.1.1.1, 198.51.100.1, 10.0.0.7"], "198.51.100.1"),
        ("10.0.0.5", ["1.1.1.1", "198.51.100.1, 10.0.0.7"], "198.51.100.1"),
        # everything trusted: the leftmost hop
        ("10.0.0.5", ["10.1.1.1, 10.0.0.7"], "10.1.1.1"),
        # junk stops the walk at the last trusted hop
        ("10.0.0.5", ["198.51.100.1, not-an-ip"], "10.0.0.5"),
        ("10.0.0.5", ["198.51.100.1:4711"], "198.51.100.1"),
        ("fd00::1", ["[2001:db8::5]:443"], "2001:db8::5"),
        ("10.0.0.5", [], "10.0.0.5"),
        (None, ["198.51.100.1"], "unknown"),
    ],
)
def test_client_address(peer: str | None, forwarded: list[str], client: str) -> None:
    assert client_address(peer, forwarded, PROXIES) == client


def test_without_trusted_proxies_the_header_is_never_read() -> None:
    assert client_address("10.0.0.5", ["198.51.100.1"], ()) == "10.0.0.5"


async def _statuses(settings: Settings, peer: str, forwarded: list[str]) -> list[int]:
    runtime = bootstrap.build(settings)
    async with runtime.http_app().test_app() as app:
        client = app.test_client()
        statuses = []
        for value in forwarded:
            response: Any = await client.get(
                "/api/v1/markets",
                headers={"X-Forwarded-For": value},
                scope_base={"client": (peer, 40000)},
            )
            statuses.append(response.status_code)
        return statuses


async def test_a_trusted_proxy_limits_each_forwarded_client() -> None:
    settings = Settings(
        profile="test", jwt_secret=SECRET, http_rate_limit=2, trusted_proxies=("10.0.0.0/8",)
    )
    forwarded = ["198.51.100.1", "198.51.100.2", "198.51.100.1", "198.51.100.2", "198.51.100.1"]
    assert await _statuses(settings, "10.0.0.5", forwarded) == [200, 200, 200, 200, 429]


async def test_an_untrusted_peer_cannot_spread_its_requests_over_forged_addresses() -> None:
    settings = Settings(
        profile="test", jwt_secret=SECRET, http_rate_limit=2, trusted_proxies=("10.0.0.0/8",)
    )
    forged = ["198.51.100.1", "198.51.100.2", "198.51.100.3"]
    assert await _statuses(settings, "203.0.113.9", forged) == [200, 200, 429]
