"""Compliance mirrored on chain, end to end: a real ``rwa-market serve`` (embedded: SQLite, the
in-process EVM) with the ``verify-compliance`` sweep every second.

An approved holder is verified by the token's identity registry once the job has run (their
wallet says ``verifiedOnChain``) and receives a transfer from the issuer; when their record
expires, a transfer and a mint to them are refused off chain at once (403
``compliance_expired``) and, after the sweep, the registry no longer verifies them.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.api import bearer, describe, market_body, unique_symbol
from tests.e2e.server import RwaServer, poll, start_server

API = "/api/v1"


def _ok(response: httpx.Response, *statuses: int) -> Any:
    assert response.status_code in statuses, describe(response)
    return response.json()["data"]


def _active_market(server: RwaServer, http: httpx.Client, symbol: str) -> None:
    issuer = bearer(server.token("issuer-kyc", "issuer"))
    admin = bearer(server.token("admin-kyc", "admin"))
    body = market_body(tokenSymbol=symbol, totalSupply=1000)
    market = _ok(http.post(f"{API}/markets/register", json=body, headers=issuer), 201)["market"]
    _ok(
        http.post(
            f"{API}/markets/{market['id']}/approve",
            json={"decision": "approve", "reason": "documents verified"},
            headers=admin,
        ),
        200,
    )
    poll(
        lambda: _ok(http.get(f"{API}/markets/{market['id']}"), 200)["status"],
        lambda status: status == "active",
        timeout=120,
        what=f"market {symbol} active",
        context=server.log_tail,
    )


def test_an_expired_record_stops_the_holder_off_chain_then_on_chain(tmp_path: Path) -> None:
    server = start_server(tmp_path, env={"RWA_COMPLIANCE_SWEEP_SECONDS": "1"})
    try:
        with server.client(timeout=30) as http:
            symbol = unique_symbol("K")
            _active_market(server, http, symbol)
            admin = bearer(server.token("admin-kyc", "admin"))
            issuer = bearer(server.token("issuer-kyc", "issuer"))

            def wallet() -> dict[str, Any]:
                data: dict[str, Any] = _ok(
                    http.get(f"{API}/users/holder/wallet", headers=admin), 200
                )
                return data

            expires = datetime.now(UTC) + timedelta(seconds=25)
            record = {
                "kycStatus": "APPROVED",
                "whitelisted": True,
                "accredited": False,
                "jurisdiction": "PT",
                "expiresAt": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            lasting = {**record, "expiresAt": "2099-12-31T00:00:00Z"}
            _ok(
                http.post(f"{API}/tokens/compliance/issuer-kyc", json=lasting, headers=admin),
                200,
                201,
            )
            url = f"{API}/tokens/compliance/holder"
            _ok(http.post(url, json=record, headers=admin), 200, 201)
            poll(
                wallet,
                lambda w: bool(w["verifiedOnChain"]),
                timeout=60,
                what="the holder verified on chain",
                context=server.log_tail,
            )
            transfer = {"toUserId": "holder", "amount": "10"}
            _ok(
                http.post(f"{API}/tokens/{symbol}/transfer", json=transfer, headers=issuer),
                200,
                201,
            )

            time.sleep(max((expires - datetime.now(UTC)).total_seconds() + 0.5, 0.0))
            refused = http.post(f"{API}/tokens/{symbol}/transfer", json=transfer, headers=issuer)
            assert refused.status_code == 403, describe(refused)
            assert refused.json()["error"]["code"] == "compliance_expired"
            mint = http.post(
                f"{API}/tokens/{symbol}/mint",
                json={"userId": "holder", "amount": "1"},
                headers={**admin, "Idempotency-Key": "kyc-expired-mint"},
            )
            assert mint.status_code == 403, describe(mint)
            assert mint.json()["error"]["code"] == "compliance_expired"

            poll(
                wallet,
                lambda w: not w["verifiedOnChain"],
                timeout=60,
                what="the holder no longer verified on chain",
                context=server.log_tail,
            )
            records = _ok(http.get(url, headers=admin), 200)
            general = [r for r in records if r["tokenId"] is None]
            assert general and general[0]["kycStatus"] == "EXPIRED"
            audit = _ok(http.get(f"{API}/audit", headers=admin), 200)
            actions = {entry["action"] for entry in audit}
            assert {"compliance.expire", "compliance.chain", "wallet.verified_on_chain"} <= actions
    finally:
        server.stop()
