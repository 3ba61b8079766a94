"""Settings and wiring of the Entity Permissions Core integration, and what an outage of the
Core looks like over HTTP: 503 with the error envelope, never 500, never an allowed action."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import bootstrap
import cli
from adapters.outbound.chain.memory import MemoryChain
from adapters.outbound.permissions.feed import HttpPermissionEventFeed, MemoryPermissionEventFeed
from adapters.outbound.permissions.http import HttpPermissions
from adapters.outbound.permissions.local import LocalPolicyPermissions
from adapters.outbound.permissions.memory import MemoryPermissions
from adapters.outbound.sns.http import HttpSnsGateway
from adapters.outbound.sns.memory import MemorySnsGateway
from bootstrap import ConfigurationError, Runtime, Settings
from tests.harness.permissions_core import TEST_API_KEY, PermissionsCore
from tests.unit.conftest import bearer

# -- settings ----------------------------------------------------------------------------------


def test_settings_from_env() -> None:
    settings = Settings.from_env(
        {
            "RWA_PROFILE": "production",
            "RWA_PERMISSIONS_BASE_URL": "https://core.example",
            "RWA_PERMISSIONS_API_KEY": "k-1",
            "RWA_PERMISSIONS_TIMEOUT_SECONDS": "1.5",
            "RWA_PERMISSIONS_POLL_SECONDS": "30",
            "RWA_PERMISSIONS_POLL_IN_PROCESS": "true",
            "RWA_WEBHOOK_SECRETS": " new ,old,, ",
            "RWA_WEBHOOK_TOLERANCE_SECONDS": "120",
            "RWA_SNS_TOPIC_ARNS": "arn:aws:sns:eu-west-1:1:a, arn:aws:sns:eu-west-1:1:b",
        }
    )
    assert settings.permissions_timeout_seconds == 1.5
    assert settings.permissions_poll_seconds == 30
    assert settings.webhook_secrets == ("new", "old")
    assert settings.webhook_tolerance_seconds == 120
    assert settings.sns_topic_arns == ("arn:aws:sns:eu-west-1:1:a", "arn:aws:sns:eu-west-1:1:b")
    assert settings.permissions_kind == "http" and settings.poll_permissions_in_process
    assert "k-1" not in repr(settings) and "new" not in repr(settings)


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.permissions_timeout_seconds == 3.0
    assert settings.permissions_poll_seconds == 10.0
    assert settings.webhook_tolerance_seconds == 300
    assert settings.sns_topic_arns == ()
    assert settings.permissions_kind == "local" and settings.permission_feed_kind == "memory"
    assert not settings.poll_permissions_in_process


@pytest.mark.parametrize(
    ("profile", "url", "permissions", "feed", "polls"),
    [
        ("test", None, "memory", "memory", False),
        ("test", "http://core", "memory", "memory", False),
        ("embedded", None, "local", "memory", False),
        ("embedded", "http://core", "http", "http", True),
        ("production", None, "local", "memory", False),
        ("production", "http://core", "http", "http", False),  # `rwa-market poll` does it
    ],
)
def test_which_adapters(
    profile: str, url: str | None, permissions: str, feed: str, polls: bool
) -> None:
    settings = Settings(profile=profile, permissions_base_url=url)
    assert settings.permissions_kind == permissions
    assert settings.permission_feed_kind == feed
    assert settings.poll_permissions_in_process is polls


def test_polling_can_be_switched_off_or_forced() -> None:
    url = "http://core"
    assert not Settings(
        profile="embedded", permissions_base_url=url, permissions_poll_seconds=0
    ).poll_permissions_in_process
    assert not Settings(
        profile="embedded", permissions_base_url=url, permissions_poll_in_process=False
    ).poll_permissions_in_process
    assert Settings(
        profile="production", permissions_base_url=url, permissions_poll_in_process=True
    ).poll_permissions_in_process


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"permissions_timeout_seconds": 0}, "RWA_PERMISSIONS_TIMEOUT_SECONDS"),
        ({"permissions_poll_seconds": -1}, "RWA_PERMISSIONS_POLL_SECONDS"),
        ({"webhook_tolerance_seconds": 0}, "RWA_WEBHOOK_TOLERANCE_SECONDS"),
        ({"webhook_secrets": ()}, "RWA_WEBHOOK_SECRETS"),
        ({"permissions_base_url": "core.example"}, "RWA_PERMISSIONS_BASE_URL"),
    ],
)
def test_bad_settings_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Settings(profile="test", **overrides).check()


def test_the_container_picks_the_adapters(tmp_path: Path) -> None:
    test = bootstrap.build(Settings(profile="test"))
    assert isinstance(test.container.permissions(), MemoryPermissions)
    assert isinstance(test.container.permission_feed(), MemoryPermissionEventFeed)
    assert isinstance(test.container.sns_gateway(), MemorySnsGateway)
    local = bootstrap.build(Settings(profile="embedded", data_dir=tmp_path))
    assert isinstance(local.container.permissions(), LocalPolicyPermissions)
    remote = bootstrap.build(
        Settings(
            profile="embedded",
            data_dir=tmp_path,
            permissions_base_url="http://127.0.0.1:9",
            permissions_api_key="key",
            permissions_timeout_seconds=0.7,
        )
    )
    permissions = remote.container.permissions()
    assert isinstance(permissions, HttpPermissions)
    assert permissions.client.base_url == "http://127.0.0.1:9"
    assert permissions.client.timeout_seconds == 0.7
    assert isinstance(remote.container.permission_feed(), HttpPermissionEventFeed)
    assert isinstance(remote.container.sns_gateway(), HttpSnsGateway)


def test_cli_poll_needs_the_core(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("RWA_PERMISSIONS_BASE_URL", "RWA_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RWA_DATA_DIR", str(tmp_path))
    assert cli.main(["poll"]) == 2


# -- a Core outage over HTTP -------------------------------------------------------------------


@pytest.fixture
async def remote(
    permissions_core: PermissionsCore, tmp_path: Path
) -> AsyncIterator[tuple[Runtime, Any]]:
    settings = Settings(
        profile="embedded",
        data_dir=tmp_path,
        jwt_secret="y" * 40,
        permissions_base_url=permissions_core.base_url,
        permissions_api_key=TEST_API_KEY,
        permissions_timeout_seconds=0.3,
        permissions_poll_seconds=0,
    )
    await asyncio.to_thread(bootstrap.migrate, settings)
    runtime = bootstrap.build(settings)
    runtime.container.chain.override(MemoryChain())
    app = runtime.http_app()
    async with app.test_app() as test_app:
        yield runtime, test_app.test_client()


REGISTER = {
    "name": "Outage Tower",
    "assetType": "real_estate",
    "tokenSymbol": "OUT",
    "tokenName": "Outage Tower Token",
    "totalSupply": 1000,
}


async def count_markets(client: Any) -> int:
    return len((await (await client.get("/api/v1/markets?limit=100")).get_json())["data"])


@pytest.mark.parametrize("outage", ["down", "500", "503", "slow", "garbage", "bad-key"])
async def test_an_outage_of_the_core_is_503_and_changes_nothing(
    remote: tuple[Runtime, Any], permissions_core: PermissionsCore, outage: str
) -> None:
    runtime, client = remote
    issuer = bearer(runtime, "iss-1", "issuer")
    if outage == "down":
        permissions_core.down()
    elif outage in {"500", "503"}:
        permissions_core.fail_status = int(outage)
    elif outage == "slow":
        permissions_core.delay_seconds = 1.0
    elif outage == "garbage":
        permissions_core.malformed = True
    else:
        permissions_core.api_key = "rotated-on-the-core-side"
    response = await client.post("/api/v1/markets/register", json=REGISTER, headers=issuer)
    assert response.status_code == 503
    body = await response.get_json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == "service_unavailable"
    assert "Entity Permissions Core" in body["error"]["message"]
    assert body["error"]["details"] == {"dependency": "entity_permissions_core"}
    assert await count_markets(client) == 0


async def test_the_core_decides_and_an_outage_never_allows(
    remote: tuple[Runtime, Any], permissions_core: PermissionsCore
) -> None:
    runtime, client = remote
    issuer, admin = bearer(runtime, "iss-1", "issuer"), bearer(runtime, "adm-1", "admin")
    created = await client.post("/api/v1/markets/register", json=REGISTER, headers=issuer)
    assert created.status_code == 201
    market_id = (await created.get_json())["data"]["market"]["id"]
    request = permissions_core.requests_to("/api/v1/authorize")[-1]
    assert request.headers["x-api-key"] == TEST_API_KEY
    assert request.body["principalId"] == "iss-1" and request.body["action"] == "market.register"
    # an issuer's roles cannot approve at all: 403 before the Core is asked
    asked = len(permissions_core.requests_to("/api/v1/authorize"))
    refused = await client.post(
        f"/api/v1/markets/{market_id}/approve", json={"decision": "approve"}, headers=issuer
    )
    assert refused.status_code == 403
    assert len(permissions_core.requests_to("/api/v1/authorize")) == asked
    # the Core refuses an admin it denies: 403 with the Core's reasons
    permissions_core.policy.denials.add(("adm-1", "market.approve"))
    refused = await client.post(
        f"/api/v1/markets/{market_id}/approve", json={"decision": "approve"}, headers=admin
    )
    assert refused.status_code == 403
    assert (await refused.get_json())["error"]["details"]["reasons"]
    assert permissions_core.requests_to("/api/v1/authorize")[-1].body["principalId"] == "adm-1"
    permissions_core.policy.denials.clear()
    # the Core is down: an admin's approval is 503, and the market stays pending
    permissions_core.down()
    response = await client.post(
        f"/api/v1/markets/{market_id}/approve", json={"decision": "approve"}, headers=admin
    )
    assert response.status_code == 503
    assert (await response.get_json())["error"]["code"] == "service_unavailable"
    market = (await (await client.get(f"/api/v1/markets/{market_id}")).get_json())["data"]
    assert market["status"] == "pending_approval"
    ready = await client.get("/readyz")
    assert ready.status_code == 503
    checks = (await ready.get_json())["error"]["details"]["checks"]
    assert checks["permissions"]["ok"] is False
    # back up: it works again
    permissions_core.up()
    response = await client.post(
        f"/api/v1/markets/{market_id}/approve", json={"decision": "approve"}, headers=admin
    )
    assert response.status_code == 200
    assert (await client.get("/readyz")).status_code == 200
