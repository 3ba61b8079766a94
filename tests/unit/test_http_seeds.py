"""The seeds' Quick Start, replayed verbatim on the test profile: register, approve, events,
details; then issuerId rules and the service's own body shape."""

from __future__ import annotations

from typing import Any

from bootstrap import Runtime
from tests.harness import seeds
from tests.unit.conftest import bearer
from tests.unit.test_http_markets import REGISTER, body

JSON = {"Content-Type": "application/json"}


async def settle(runtime: Runtime) -> None:
    await runtime.container.relay().pump()
    await runtime.container.jobs().join(timeout=10)
    await runtime.container.relay().pump()


async def test_the_quick_start_verbatim(client: Any, runtime: Runtime) -> None:
    issuer = bearer(runtime, seeds.ISSUER_ID, "issuer")
    admin = bearer(runtime, "admin-uuid", "admin")
    # Step 1: register (the seeds' JSON text, sent as is)
    response = await client.post(REGISTER, data=seeds.REGISTER_TEXT, headers={**issuer, **JSON})
    assert response.status_code == 201, await response.get_data()
    raw = (await response.get_data()).decode()
    seeds.check_exact_attributes(raw)
    market, asset = seeds.check_registered(await response.get_json())
    market_id = market["id"]

    # Step 2: approve
    response = await client.post(
        f"/api/v1/markets/{market_id}/approve",
        data=seeds.APPROVE_TEXT,
        headers={**admin, **JSON},
    )
    assert response.status_code == 200, await response.get_data()
    approved = await response.get_json()
    assert approved["message"] == seeds.APPROVED_MESSAGE
    assert approved["data"]["id"] == market_id
    assert approved["data"]["status"] in {"activating", "active"}
    await settle(runtime)

    # Step 3: the history, newest first, in the seeds' event shape
    events = (await (await client.get(f"/api/v1/markets/{market_id}/events")).get_json())["data"]
    types = seeds.check_events(events)
    assert types[0] == "market.activated"
    assert types[-2:] == ["market.approval_requested", "market.registered"]
    assert "market.approved" in types
    approval = events[types.index("market.approved")]
    assert approval["actorId"] == "admin-uuid" and approval["decision"] == "approve"
    assert approval["marketId"] == market_id and approval["actorType"] == "user"
    oldest_first = await client.get(f"/api/v1/markets/{market_id}/events?order=asc")
    assert [e["eventType"] for e in (await oldest_first.get_json())["data"]] == types[::-1]

    # Step 4: details, {market, asset}
    response = await client.get(f"/api/v1/markets/{market_id}/details")
    seeds.check_exact_attributes((await response.get_data()).decode())
    details = (await response.get_json())["data"]
    assert set(details) == {"market", "asset"}
    assert details["market"]["status"] == "active" and details["market"]["contractAddress"]
    assert details["asset"] == asset


async def test_issuer_id_must_be_the_caller_unless_admin(client: Any, runtime: Runtime) -> None:
    someone_else = bearer(runtime, "issuer-other", "issuer")
    refused = await client.post(REGISTER, json=seeds.register_body(), headers=someone_else)
    assert refused.status_code == 403, await refused.get_json()
    assert (await refused.get_json())["error"]["details"]["reasons"]
    admin = bearer(runtime, "admin-1", "admin")
    created = await client.post(REGISTER, json=seeds.register_body(), headers=admin)
    assert created.status_code == 201, await created.get_json()
    market = (await created.get_json())["data"]["market"]
    assert market["issuerId"] == seeds.ISSUER_ID
    listed = await client.get(f"/api/v1/markets?issuerId={seeds.ISSUER_ID}")
    assert [m["id"] for m in (await listed.get_json())["data"]] == [market["id"]]


async def test_optional_trading_and_compliance_fields_are_stored(
    client: Any, runtime: Runtime
) -> None:
    extra = {
        "tickSize": "0.01",
        "lotSize": 10,
        "makerFeeBps": 10,
        "takerFeeBps": 25,
        "accreditedInvestorsOnly": True,
        "allowedCountries": ["US", "CA"],
    }
    issuer = bearer(runtime, seeds.ISSUER_ID, "issuer")
    created = await client.post(REGISTER, json=seeds.register_body(**extra), headers=issuer)
    assert created.status_code == 201, await created.get_json()
    market_id = (await created.get_json())["data"]["market"]["id"]
    market = (await (await client.get(f"/api/v1/markets/{market_id}")).get_json())["data"]
    assert market["tickSize"] == "0.01" and market["lotSize"] == "10"
    assert (market["makerFeeBps"], market["takerFeeBps"]) == (10, 25)
    assert market["accreditedInvestorsOnly"] is True
    assert market["allowedCountries"] == ["US", "CA"]


async def test_compliance_documents_as_objects_and_the_own_shape(
    client: Any, runtime: Runtime
) -> None:
    issuer = bearer(runtime, "iss-1", "issuer")
    documents = [
        {
            "name": "Title deed",
            "url": "https://docs.example/deed.pdf",
            "sha256": "ab" * 32,
            "documentType": "deed",
        },
        "doc-id-9",
    ]
    seeds_shape = seeds.register_body(issuerId="iss-1", tokenSymbol="LUX2")
    seeds_shape["assetDetails"]["complianceDocuments"] = documents
    created = await client.post(REGISTER, json=seeds_shape, headers=issuer)
    assert created.status_code == 201, await created.get_json()
    asset = (await created.get_json())["data"]["asset"]
    assert asset["complianceDocuments"] == documents
    # the service's own shape (asset instead of assetDetails) keeps working
    own = await client.post(REGISTER, json=body(), headers=issuer)
    assert own.status_code == 201, await own.get_json()
    assert (await own.get_json())["data"]["asset"]["currency"] == "USD"
    both = {**body(tokenSymbol="BOTH"), "assetDetails": {"currency": "USD"}}
    refused = await client.post(REGISTER, json=both, headers=issuer)
    assert refused.status_code == 422


async def test_rejection_message(client: Any, runtime: Runtime) -> None:
    issuer = bearer(runtime, seeds.ISSUER_ID, "issuer")
    created = await client.post(REGISTER, json=seeds.register_body(), headers=issuer)
    market_id = (await created.get_json())["data"]["market"]["id"]
    response = await client.post(
        f"/api/v1/markets/{market_id}/approve",
        json={"decision": "reject", "reason": "appraisal outdated"},
        headers=bearer(runtime, "admin-1", "admin"),
    )
    assert response.status_code == 200
    answer = await response.get_json()
    assert answer["message"] == "Market rejected"
    assert answer["data"]["status"] == "rejected"
    events = (await (await client.get(f"/api/v1/markets/{market_id}/events")).get_json())["data"]
    assert events[0]["eventType"] == "market.rejected"
    assert events[0]["reason"] == "appraisal outdated" and events[0]["decision"] == "reject"
