"""Structured logs of the real server (``RWA_LOG_FORMAT`` unset: its log is a file, not a
terminal, so JSON lines through structlog).

Authenticated HTTP requests and a WebSocket connection that authenticates: every line is one
JSON object; the request's lines (its access line too) carry its ``X-Request-Id``; the mint
job the request enqueued runs with it as ``correlation_id``; the connection's lines carry a
``connection_id``; and neither a bearer token nor the custody mnemonic appears anywhere.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from tests.e2e.api import bearer, data_of, market_body, unique_symbol
from tests.e2e.server import RwaServer, poll, start_server

# a valid BIP-39 mnemonic of the tests (not the development default): the server derives
# its custodial addresses from it and must never write it
PRINTED = "database migrated to head: "
MNEMONIC = "legal winner thank year wave sausage worth useful legal winner thank yellow"


@pytest.fixture(scope="module")
def json_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RwaServer]:
    # auto, as unset: the log file is not a terminal, so JSON lines
    server = start_server(
        tmp_path_factory.mktemp("rwa-logs"),
        env={"RWA_CUSTODY_MNEMONIC": MNEMONIC, "RWA_LOG_FORMAT": "auto"},
    )
    try:
        yield server
    finally:
        server.stop()


def _records(server: RwaServer) -> list[dict[str, Any]]:
    lines = [line for line in server.log_text().splitlines() if line.strip()]
    records = []
    for line in lines:
        if line.startswith(PRINTED):
            continue  # serve --migrate's answer on stdout (the file holds both streams)
        assert line.startswith("{"), f"not a JSON line: {line[:200]}"
        records.append(json.loads(line))
    return records


async def _ws_session(server: RwaServer, token: str) -> None:
    url = server.base_url.replace("http", "ws", 1) + "/api/v1/ws"
    async with connect(url) as ws:
        await ws.send(json.dumps({"op": "auth", "token": token, "reqId": 1}))
        answer = json.loads(await ws.recv())
        assert answer["type"] == "authenticated", answer
        await ws.send(json.dumps({"op": "auth", "token": token + "x", "reqId": 2}))
        refused = json.loads(await ws.recv())
        assert refused["type"] == "error", refused


def test_json_lines_with_request_and_connection_ids_and_no_secret(
    json_server: RwaServer, tmp_path: Path
) -> None:
    admin_token = json_server.token("admin-logs", "admin")
    trader_token = json_server.token("trader-logs", "trader")
    with json_server.client() as http:
        record = {
            "kycStatus": "APPROVED",
            "whitelisted": True,
            "accredited": True,
            "jurisdiction": "US",
            "expiresAt": "2099-12-31T00:00:00Z",
        }
        known = http.post(
            "/api/v1/tokens/compliance/trader-logs", json=record, headers=bearer(admin_token)
        )
        assert known.status_code in (200, 201), known.text
        mint = http.post(
            "/api/v1/tokens/USDC/mint",
            json={"userId": "trader-logs", "amount": "12.5"},
            headers={
                **bearer(admin_token),
                "Idempotency-Key": "logs-1",
                "X-Request-Id": "req-logs-mint",
            },
        )
        assert mint.status_code == 202, mint.text
        assert mint.headers["X-Request-Id"] == "req-logs-mint"
        mint_id = mint.json()["data"]["id"]
        poll(
            lambda: http.get(
                f"/api/v1/tokens/USDC/mints/{mint_id}", headers=bearer(admin_token)
            ).json()["data"]["status"],
            lambda status: status != "PENDING",
            timeout=60,
            what="the mint",
        )
        read = http.get(
            "/api/v1/tokens/balances/trader-logs",
            headers={**bearer(trader_token), "X-Request-Id": "bad id\twith tab"},
        )
        assert read.status_code == 200
        fresh = read.headers["X-Request-Id"]
        assert fresh != "bad id\twith tab" and len(fresh) == 32
        refused = http.get("/api/v1/audit", headers=bearer(trader_token + "tampered"))
        assert refused.status_code == 401
    asyncio.run(_ws_session(json_server, trader_token))

    def done(records: list[dict[str, Any]]) -> bool:
        return any("opened" in r["message"] and r.get("connection_id") for r in records) and any(
            r.get("correlation_id") == "req-logs-mint" and r.get("job") == "mint-token"
            for r in records
        )

    records = poll(
        lambda: _records(json_server),
        done,
        timeout=30,
        what="the job's and the connection's lines",
        context=json_server.log_tail,
    )
    text = json_server.log_text()
    for secret in (admin_token, trader_token, MNEMONIC, json_server.jwt_secret):
        assert secret not in text
    assert "legal winner" not in text

    access = [r for r in records if r["logger"] == "hypercorn.access"]
    mint_lines = [r for r in access if "/tokens/USDC/mint " in r["message"]]
    assert [r["request_id"] for r in mint_lines] == ["req-logs-mint"]
    assert any(r.get("request_id") == fresh for r in access)
    job_lines = [r for r in records if r.get("job") == "mint-token"]
    assert job_lines and all(r["correlation_id"] == "req-logs-mint" for r in job_lines)
    assert any(r["message"].startswith("job mint-token ran in") for r in job_lines)
    ws_lines = [r for r in records if r.get("connection_id")]
    assert {r["logger"] for r in ws_lines} >= {"adapters.inbound.ws.route"}
    assert len({r["connection_id"] for r in ws_lines}) == 1
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    (tmp_path / "server-log.jsonl").write_text(text)


def test_an_approval_request_id_reaches_the_deployment_its_event_enqueues(
    json_server: RwaServer,
) -> None:
    """The approval writes ``market.approved``; the outbox relay's reaction enqueues the token
    deployment later, in its own task: the deployment job still logs with the approval
    request's id (the outbox remembers it with the event)."""
    issuer = json_server.token("issuer-logs", "issuer")
    admin = json_server.token("admin-logs", "admin")
    with json_server.client() as http:
        market = data_of(
            http.post(
                "/api/v1/markets/register",
                json=market_body(tokenSymbol=unique_symbol("LG")),
                headers=bearer(issuer),
            ),
            201,
        )["market"]
        approved = http.post(
            f"/api/v1/markets/{market['id']}/approve",
            json={"decision": "approve"},
            headers={**bearer(admin), "X-Request-Id": "req-logs-approve"},
        )
        assert approved.status_code == 200, approved.text

    def deployed(records: list[dict[str, Any]]) -> bool:
        return any(
            r.get("job") == "deploy-token" and r["message"].startswith("job deploy-token ran")
            for r in records
        )

    records = poll(
        lambda: _records(json_server),
        deployed,
        timeout=60,
        what="the deployment job's lines",
        context=json_server.log_tail,
    )
    job_lines = [r for r in records if r.get("job") == "deploy-token"]
    assert job_lines and all(r["correlation_id"] == "req-logs-approve" for r in job_lines)
