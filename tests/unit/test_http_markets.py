"""The HTTP adapter on the test profile: envelopes, auth, authorization, and bad input that
changes nothing."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from bootstrap import Runtime
from tests.unit.conftest import SECRET, bearer

REGISTER = "/api/v1/markets/register"


def body(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "Harbour View Offices",
        "assetType": "real_estate",
        "tokenSymbol": "HVO",
        "tokenName": "Harbour View Offices Token",
        "totalSupply": 1000000,
        "description": "Grade A offices",
        "entityId": "entity-7",
        "tickSize": "0.01",
        "lotSize": "1",
        "asset": {
            "valuation": "25000000.00",
            "currency": "USD",
            "location": "Lisbon, PT",
            "description": "12 floors",
            "complianceDocuments": [
                {
                    "name": "Title deed",
                    "url": "https://docs.example/deed.pdf",
                    "documentType": "deed",
                }
            ],
            "regulatoryInfo": {"jurisdiction": "PT", "accreditedInvestorsOnly": True},
            "attributes": {"floors": 12, "leed": "gold"},
        },
    }
    base.update(overrides)
    return base


async def count_markets(client: Any) -> int:
    response = await client.get("/api/v1/markets?limit=100")
    return len((await response.get_json())["data"])


async def test_register_returns_pending_approval_with_every_field(
    client: Any, runtime: Runtime
) -> None:
    response = await client.post(REGISTER, json=body(), headers=bearer(runtime, "iss-1", "issuer"))
    assert response.status_code == 201
    payload = await response.get_json()
    data = payload["data"]["market"]
    assert payload["message"] == "Market registered successfully, pending approval"
    assert payload["data"]["asset"]["marketId"] == data["id"]
    assert data["status"] == "pending_approval"
    assert data["issuerId"] == "iss-1" and data["entityId"] == "entity-7"
    assert data["totalSupply"] == "1000000"
    assert data["totalSupplyBaseUnits"] == str(10**24)
    assert data["tickSize"] == "0.01" and data["lotSize"] == "1"
    details = await (await client.get(f"/api/v1/markets/{data['id']}/details")).get_json()
    asset = details["data"]["asset"]
    assert asset["valuation"] == "25000000.00"
    assert asset["complianceDocuments"][0]["documentType"] == "deed"
    assert asset["regulatoryInfo"]["accreditedInvestorsOnly"] is True
    assert asset["attributes"] == {"floors": 12, "leed": "gold"}
    events = await (await client.get(f"/api/v1/markets/{data['id']}/events?order=asc")).get_json()
    assert [e["eventType"] for e in events["data"]] == [
        "market.registered",
        "market.approval_requested",
    ]
    assert events["data"][0]["actorId"] == "iss-1"


async def test_approval_of_unknown_market_is_404(client: Any, runtime: Runtime) -> None:
    response = await client.post(
        "/api/v1/markets/nope/approve",
        json={"decision": "approve"},
        headers=bearer(runtime, "adm", "admin"),
    )
    assert response.status_code == 404
    assert (await response.get_json())["error"]["code"] == "not_found"


async def test_approval_of_a_market_not_pending_is_409_with_status(
    client: Any, runtime: Runtime
) -> None:
    created = await client.post(REGISTER, json=body(), headers=bearer(runtime, "i", "issuer"))
    market_id = (await created.get_json())["data"]["market"]["id"]
    admin = bearer(runtime, "adm", "admin")
    reject = {"decision": "reject", "reason": "valuation unsupported"}
    first = await client.post(f"/api/v1/markets/{market_id}/approve", json=reject, headers=admin)
    assert first.status_code == 200
    assert (await first.get_json())["data"]["rejectedReason"] == "valuation unsupported"
    again = await client.post(
        f"/api/v1/markets/{market_id}/approve", json={"decision": "approve"}, headers=admin
    )
    assert again.status_code == 409
    error = (await again.get_json())["error"]
    assert error["details"]["currentStatus"] == "rejected"


async def test_refusal_carries_the_permission_reasons(client: Any, runtime: Runtime) -> None:
    response = await client.post(REGISTER, json=body(), headers=bearer(runtime, "t", "trader"))
    assert response.status_code == 403
    error = (await response.get_json())["error"]
    assert error["code"] == "forbidden"
    assert error["details"]["reasons"]
    assert await count_markets(client) == 0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"assetType": "yacht"}, "assetType"),
        ({"tokenSymbol": "abc"}, "tokenSymbol"),
        ({"tokenSymbol": "A"}, "tokenSymbol"),
        ({"tokenSymbol": "ABCDEFGHIJKL"}, "tokenSymbol"),
        ({"totalSupply": 0}, "totalSupply"),
        ({"totalSupply": -5}, "totalSupply"),
        ({"totalSupply": "1.5"}, "totalSupply"),
        ({"totalSupply": 1.5}, "totalSupply"),
        ({"totalSupply": "lots"}, "totalSupply"),
        ({"totalSupply": True}, "totalSupply"),
        ({"totalSupply": 10**80}, "totalSupply"),
        ({"name": "   "}, "name"),
        ({"name": None}, "name"),
        ({"tickSize": 0.01}, "tickSize"),
        ({"tickSize": "-1"}, "tickSize"),
        ({"unknownField": 1}, "unknownField"),
        ({"asset": {"valuation": 1000.5, "currency": "USD"}}, "asset.valuation"),
        ({"asset": {"valuation": "1e6", "currency": "USD"}}, "asset.valuation"),
        ({"asset": {"valuation": "100", "currency": "usd"}}, "asset.currency"),
        ({"asset": {"valuation": "100"}}, "asset.currency"),
    ],
)
async def test_bad_registration_names_the_field_and_writes_nothing(
    client: Any, runtime: Runtime, overrides: dict[str, Any], field: str
) -> None:
    response = await client.post(
        REGISTER, json=body(**overrides), headers=bearer(runtime, "i", "issuer")
    )
    assert response.status_code == 422, await response.get_json()
    error = (await response.get_json())["error"]
    assert error["code"] == "validation_failed"
    assert field in error["details"]["fields"], error
    assert await count_markets(client) == 0


async def test_missing_fields_are_all_named(client: Any, runtime: Runtime) -> None:
    response = await client.post(REGISTER, json={}, headers=bearer(runtime, "i", "issuer"))
    assert response.status_code == 422
    fields = (await response.get_json())["error"]["details"]["fields"]
    assert {"name", "assetType", "tokenSymbol", "tokenName", "totalSupply"} <= set(fields)


async def test_duplicate_live_symbol_is_409(client: Any, runtime: Runtime) -> None:
    issuer = bearer(runtime, "i", "issuer")
    assert (await client.post(REGISTER, json=body(), headers=issuer)).status_code == 201
    again = await client.post(REGISTER, json=body(name="Other"), headers=issuer)
    assert again.status_code == 409
    assert (await again.get_json())["error"]["code"] == "duplicate_symbol"
    assert await count_markets(client) == 1


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "unauthenticated"),
        ({"Authorization": "Bearer not-a-jwt"}, "invalid_token"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "invalid_token"),
        (
            {
                "Authorization": "Bearer "
                + jwt.encode(
                    {"sub": "i", "roles": ["issuer"], "exp": int(time.time()) - 3600},
                    SECRET,
                    algorithm="HS256",
                )
            },
            "token_expired",
        ),
        (
            {
                "Authorization": "Bearer "
                + jwt.encode(
                    {"sub": "i", "roles": ["issuer"], "exp": int(time.time()) + 3600},
                    "another-secret-that-is-long-enough-for-hs256",
                    algorithm="HS256",
                )
            },
            "invalid_token",
        ),
        (
            {
                "Authorization": "Bearer "
                + jwt.encode({"sub": "i", "roles": ["issuer"]}, SECRET, algorithm="HS256")
            },
            "invalid_token",
        ),
    ],
)
async def test_bad_tokens_are_401(client: Any, headers: dict[str, str], code: str) -> None:
    response = await client.post(REGISTER, json=body(), headers=headers)
    assert response.status_code == 401
    assert (await response.get_json())["error"]["code"] == code
    assert await count_markets(client) == 0


async def test_wrong_content_type_malformed_json_and_oversized_bodies(
    client: Any, runtime: Runtime
) -> None:
    issuer = bearer(runtime, "i", "issuer")
    wrong_type = await client.post(
        REGISTER, data="name=x", headers={**issuer, "Content-Type": "text/plain"}
    )
    assert wrong_type.status_code == 415
    malformed = await client.post(
        REGISTER, data="{not json", headers={**issuer, "Content-Type": "application/json"}
    )
    assert malformed.status_code == 400
    assert (await malformed.get_json())["error"]["code"] == "malformed_json"
    not_object = await client.post(REGISTER, json=[1, 2], headers=issuer)
    assert not_object.status_code == 422
    huge = body(description="x" * (70 * 1024))
    too_big = await client.post(REGISTER, json=huge, headers=issuer)
    assert too_big.status_code == 413
    assert (await too_big.get_json())["error"]["code"] == "payload_too_large"
    assert await count_markets(client) == 0


async def test_list_filters_and_cursor_pagination(client: Any, runtime: Runtime) -> None:
    issuer = bearer(runtime, "i", "issuer")
    other = bearer(runtime, "j", "issuer")
    for n in range(5):
        await client.post(REGISTER, json=body(tokenSymbol=f"AA{n}"), headers=issuer)
    await client.post(
        REGISTER, json=body(tokenSymbol="BOND1", assetType="government_bond"), headers=other
    )
    seen: list[str] = []
    cursor = ""
    while True:
        page = await (await client.get(f"/api/v1/markets?limit=2&cursor={cursor}")).get_json()
        seen += [m["tokenSymbol"] for m in page["data"]]
        if not page["pagination"]["hasMore"]:
            break
        cursor = page["pagination"]["nextCursor"]
    assert sorted(seen) == sorted(["AA0", "AA1", "AA2", "AA3", "AA4", "BOND1"])
    assert len(seen) == len(set(seen))
    bonds = await (await client.get("/api/v1/markets?assetType=government_bond")).get_json()
    assert [m["tokenSymbol"] for m in bonds["data"]] == ["BOND1"]
    mine = await (await client.get("/api/v1/markets?issuerId=j")).get_json()
    assert [m["tokenSymbol"] for m in mine["data"]] == ["BOND1"]
    pending = await (await client.get("/api/v1/markets?status=pending_approval")).get_json()
    assert len(pending["data"]) == 6
    for query, field in [
        ("status=flying", "status"),
        ("assetType=yacht", "assetType"),
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("cursor=%%%", "cursor"),
    ]:
        bad = await client.get(f"/api/v1/markets?{query}")
        assert bad.status_code == 422, query
        assert field in (await bad.get_json())["error"]["details"]["fields"]


async def test_lifecycle_over_http(client: Any, runtime: Runtime) -> None:
    issuer = bearer(runtime, "i", "issuer")
    admin = bearer(runtime, "adm", "admin")
    created = await client.post(REGISTER, json=body(), headers=issuer)
    market_id = (await created.get_json())["data"]["market"]["id"]
    approved = await client.post(
        f"/api/v1/markets/{market_id}/approve",
        json={"decision": "approve", "reason": "ok"},
        headers=admin,
    )
    assert (await approved.get_json())["data"]["status"] == "activating"
    await runtime.container.relay().pump()
    await runtime.container.jobs().join(timeout=10)
    market = (await (await client.get(f"/api/v1/markets/{market_id}")).get_json())["data"]
    assert market["status"] == "active" and market["contractAddress"]
    onchain = (await (await client.get(f"/api/v1/markets/{market_id}/onchain")).get_json())["data"]
    assert onchain["totalSupply"] == str(10**24) and onchain["codeSize"] > 0
    reached = await client.get(f"/api/v1/markets/{market_id}/reached/active")
    assert (await reached.get_json())["data"]["reached"] is True
    for action, status in [("pause", "paused"), ("resume", "active"), ("archive", "archived")]:
        response = await client.post(
            f"/api/v1/markets/{market_id}/{action}", json={"reason": "ops"}, headers=admin
        )
        assert response.status_code == 200
        assert (await response.get_json())["data"]["status"] == status
    again = await client.post(f"/api/v1/markets/{market_id}/pause", headers=admin)
    assert again.status_code == 409
    assert (await again.get_json())["error"]["details"]["currentStatus"] == "archived"
    issuer_pause = await client.post(f"/api/v1/markets/{market_id}/resume", headers=issuer)
    assert issuer_pause.status_code == 403


async def test_health_readiness_and_openapi(client: Any) -> None:
    assert (await client.get("/healthz")).status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert set((await ready.get_json())["data"]["checks"]) >= {"storage", "chain", "jobs"}
    spec = await (await client.get("/openapi.json")).get_json()
    assert "/api/v1/markets/register" in spec["paths"]
    assert (await client.get("/docs")).status_code == 200
    unknown = await client.get("/api/v1/nothing-here")
    assert unknown.status_code == 404
    assert (await unknown.get_json())["error"]["code"] == "not_found"
