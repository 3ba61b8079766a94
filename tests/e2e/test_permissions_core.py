"""The Entity Permissions Core end to end: real ``rwa-market`` processes, the stand-in Core on
loopback, authorization over HTTP, a signed webhook, the in-process poller, and
``rwa-market poll`` as a process of its own."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.server import API, RwaServer, poll, rwa_market_command, start_server
from tests.harness.permissions_core import TEST_API_KEY, PermissionsCore, approval_event, deliver

SECRET = "e2e-webhook-secret-0123456789"


@pytest.fixture
def core() -> Iterator[PermissionsCore]:
    with PermissionsCore(api_key=TEST_API_KEY) as stand_in:
        yield stand_in


def core_env(core: PermissionsCore, poll_seconds: str) -> dict[str, str]:
    return {
        "RWA_PERMISSIONS_BASE_URL": core.base_url,
        "RWA_PERMISSIONS_API_KEY": TEST_API_KEY,
        "RWA_PERMISSIONS_POLL_SECONDS": poll_seconds,
        "RWA_WEBHOOK_SECRETS": f"{SECRET},previous-secret",
        "RWA_DEPLOY_BACKOFF_SECONDS": "0.2",
    }


def register(server: RwaServer, http: httpx.Client, symbol: str) -> str:
    response = http.post(
        f"{API}/register",
        json={
            "name": f"{symbol} Tower",
            "assetType": "real_estate",
            "tokenSymbol": symbol,
            "tokenName": f"{symbol} Tower Token",
            "totalSupply": 1000,
        },
        headers={"Authorization": f"Bearer {server.token('iss-e2e', 'issuer')}"},
    )
    assert response.status_code == 201, response.text
    market_id: str = response.json()["data"]["market"]["id"]
    return market_id


def wait_active(server: RwaServer, http: httpx.Client, market_id: str) -> dict[str, Any]:
    market: dict[str, Any] = poll(
        lambda: http.get(f"{API}/{market_id}").json()["data"],
        lambda m: m["status"] == "active",
        timeout=90,
        what=f"market {market_id} active",
        context=server.log_tail,
    )
    return market


def test_webhook_and_in_process_poller(core: PermissionsCore, tmp_path: Path) -> None:
    server = start_server(tmp_path, env=core_env(core, "0.2"))
    try:
        with server.client() as http:
            by_webhook = register(server, http, "EWH")
            authorize = core.requests_to("/api/v1/authorize")
            assert authorize and authorize[-1].headers["x-api-key"] == TEST_API_KEY
            assert http.get("/api/v1/webhooks/health").json()["data"]["status"] == "ok"
            url = f"{server.base_url}/api/v1/webhooks/entity-permissions"
            event = approval_event("evt-e2e-webhook", by_webhook, actor_id="core-e2e")
            status, body = deliver(url, event, SECRET)
            assert (status, body["data"]["status"]) == (200, "success"), body
            market = wait_active(server, http, by_webhook)
            assert market["approvedBy"] == "core-e2e" and market["contractAddress"]
            status, body = deliver(url, event, "previous-secret")  # rotation, and a duplicate
            assert (status, body["data"]["status"]) == (200, "duplicate")
            status, body = deliver(url, event, "not-a-secret")
            assert status == 401 and body["error"]["code"] == "invalid_signature"

            by_poll = register(server, http, "EPL")
            core.publish(event)  # the webhook's event shows up in the feed too: a duplicate
            core.publish(approval_event("evt-e2e-poll", by_poll))
            wait_active(server, http, by_poll)
            events = http.get(f"{API}/{by_webhook}/events").json()["data"]
            assert [e["eventType"] for e in events].count("market.approved") == 1
    finally:
        assert server.stop() == 0


def test_poll_as_its_own_process(core: PermissionsCore, tmp_path: Path) -> None:
    # The API does not poll (as in production); `rwa-market poll` does, on the same database.
    server = start_server(tmp_path, env=core_env(core, "0"))
    log_path = tmp_path / "poller.log"
    env = {**server.env, **core_env(core, "0.2")}
    try:
        with server.client() as http:
            market_id = register(server, http, "EPP")
            poller = start_poller(tmp_path, env, log_path)
            try:
                core.publish(approval_event("evt-e2e-process", market_id))
                market = wait_active(server, http, market_id)
                assert market["approvedBy"] == "core-admin-1"
                first = core.requests_to("/api/v1/events")[0]
                assert first.headers["x-api-key"] == TEST_API_KEY
                assert poller.poll() is None
            finally:
                code = stop_poller(poller)
            assert code == 0, log_path.read_text(errors="replace")
            # a new poller process goes on from the stored cursor, after the applied event
            asked_before = len(core.requests_to("/api/v1/events"))
            again = start_poller(tmp_path, env, tmp_path / "poller-2.log")
            try:
                # only requests made after the second poller started count (the first one
                # may already have asked after "c1" before it stopped)
                poll(
                    lambda: [
                        r.query.get("after")
                        for r in core.requests_to("/api/v1/events")[asked_before:]
                    ],
                    lambda asked: "c1" in asked,
                    timeout=60,
                    what="the second poller to ask after the stored cursor",
                )
            finally:
                assert stop_poller(again) == 0
            events = http.get(f"{API}/{market_id}/events").json()["data"]
            assert [e["eventType"] for e in events].count("market.approved") == 1
    finally:
        assert server.stop() == 0


def start_poller(work_dir: Path, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [*rwa_market_command(), "poll"],
            cwd=work_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_poller(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM by PID, then SIGKILL if it lingers; the exit code."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
    try:
        return process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        return process.wait()


def test_poll_refuses_to_start_without_the_core(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RWA_")}
    env.update({"RWA_DATA_DIR": str(tmp_path), "RWA_PROFILE": "embedded"})
    done = subprocess.run(
        [*rwa_market_command(), "poll"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "RWA_PERMISSIONS_BASE_URL" in done.stderr
