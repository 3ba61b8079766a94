"""A clean SIGTERM under load: 50 clients register, approve and read markets on the real
embedded server (SQLite) when it gets SIGTERM. It must finish what is in flight, exit
cleanly, and log no traceback; every answer it gave must hold after a restart."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import attrs
import httpx

from tests.e2e.api import market_body, unique_symbol
from tests.e2e.server import API, RwaServer, start_server

CLIENTS = 50
LOAD_SECONDS = 3.0
ENV = {"RWA_HTTP_RATE_LIMIT": "0", "RWA_DEPLOY_BACKOFF_SECONDS": "0.2"}


@attrs.define
class Seen:
    """What the clients were told."""

    registered: dict[str, str] = attrs.Factory(dict)  # market id -> symbol (201)
    approved: set[str] = attrs.Factory(set)  # market ids (200)
    statuses: list[tuple[str, int]] = attrs.Factory(list)
    unanswered: int = 0  # requests cut off by the shutdown (no response)


def _market_id(data: Any) -> str:
    found = data.get("id") or data["market"]["id"]
    return str(found)


async def _client(
    server: RwaServer,
    issuer: str,
    admin: str,
    stop: asyncio.Event,
    terminating: asyncio.Event,
    seen: Seen,
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        while not stop.is_set():
            try:
                body = market_body(tokenSymbol=unique_symbol("S"))
                response = await http.post(
                    f"{API}/register", json=body, headers={"Authorization": f"Bearer {issuer}"}
                )
                seen.statuses.append(("register", response.status_code))
                if response.status_code != 201:
                    continue
                market_id = _market_id(response.json()["data"])
                seen.registered[market_id] = body["tokenSymbol"]
                read = await http.get(f"{API}/{market_id}")
                seen.statuses.append(("read", read.status_code))
                # an approval starts a token deployment: jobs and the relay run during the stop
                response = await http.post(
                    f"{API}/{market_id}/approve",
                    json={"decision": "approve", "reason": "load test"},
                    headers={"Authorization": f"Bearer {admin}"},
                )
                seen.statuses.append(("approve", response.status_code))
                if response.status_code == 200:
                    seen.approved.add(market_id)
                listed = await http.get(f"{API}?limit=20")
                seen.statuses.append(("list", listed.status_code))
            except httpx.TransportError:
                seen.unanswered += 1
                if terminating.is_set():  # the server stopped listening: this client is done
                    return
                await asyncio.sleep(0.05)


async def _load_then_sigterm(server: RwaServer, seen: Seen) -> float:
    issuer, admin = server.token("issuer-load", "issuer"), server.token("admin-load", "admin")
    stop, terminating = asyncio.Event(), asyncio.Event()
    clients = [
        asyncio.create_task(_client(server, issuer, admin, stop, terminating, seen))
        for _ in range(CLIENTS)
    ]
    # load for a while (at least one answer per client), then SIGTERM with requests in flight
    started = time.monotonic()
    while len(seen.statuses) < CLIENTS or time.monotonic() - started < LOAD_SECONDS:
        assert time.monotonic() - started < 60, "the load did not get going"
        await asyncio.sleep(0.1)
    os.kill(server.pid, signal.SIGTERM)
    terminating.set()
    sent = time.monotonic()
    with contextlib.suppress(subprocess.TimeoutExpired):
        await asyncio.to_thread(server.process.wait, 60)
    took = time.monotonic() - sent
    stop.set()
    for task in clients:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=30)
    return took


def test_sigterm_under_load_finishes_in_flight_requests(tmp_path: Path) -> None:
    server = start_server(tmp_path / "first", data_dir=tmp_path / "data", env=ENV)
    seen = Seen()
    try:
        took = asyncio.run(_load_then_sigterm(server, seen))
    finally:
        server.stop()
    log = server.log_text()
    assert server.process.returncode == 0, log[-3000:]
    assert took < 30, f"the shutdown took {took:.1f}s"
    assert "Traceback" not in log, log[-6000:]
    failures = [(kind, status) for kind, status in seen.statuses if status >= 500]
    assert not failures, failures[:20]
    allowed = {"register": {201}, "approve": {200}, "read": {200}, "list": {200}}
    odd = [(kind, status) for kind, status in seen.statuses if status not in allowed[kind]]
    assert not odd, odd[:20]
    assert len(seen.registered) >= CLIENTS

    # every answer holds after a restart on the same data
    again = start_server(tmp_path / "second", data_dir=tmp_path / "data", env=ENV)
    try:
        with again.client() as http:
            for market_id, symbol in seen.registered.items():
                response = http.get(f"{API}/{market_id}")
                assert response.status_code == 200, (market_id, response.text)
                assert symbol in response.text
                if market_id in seen.approved:
                    assert "pending_approval" not in response.text, response.text
    finally:
        again.stop()
    assert "Traceback" not in again.log_text()
