"""The seeds' Quick Start, verbatim, against a real ``rwa-market serve`` (embedded profile:
SQLite, the in-process chain, a worker in the process): register, approve, events, details.
Then the order of checks and a few hostile inputs over real HTTP."""

from __future__ import annotations

import httpx

from tests.e2e.api import MarketsApi, bearer
from tests.e2e.server import API, RwaServer
from tests.harness import seeds

JSON = {"Content-Type": "application/json"}


def test_the_quick_start_verbatim(embedded_server: RwaServer, http: httpx.Client) -> None:
    issuer = bearer(embedded_server.token(seeds.ISSUER_ID, "issuer"))
    admin = bearer(embedded_server.token("admin-uuid", "admin"))

    # Step 1: register, the seeds' JSON text as is
    response = http.post(f"{API}/register", content=seeds.REGISTER_TEXT, headers={**issuer, **JSON})
    assert response.status_code == 201, response.text
    seeds.check_exact_attributes(response.text)
    market, asset = seeds.check_registered(response.json())
    market_id = market["id"]

    # Step 2: approve
    response = http.post(
        f"{API}/{market_id}/approve", content=seeds.APPROVE_TEXT, headers={**admin, **JSON}
    )
    assert response.status_code == 200, response.text
    assert response.json()["message"] == seeds.APPROVED_MESSAGE
    assert response.json()["data"]["id"] == market_id
    active = MarketsApi(embedded_server, http).wait_until(
        market_id, lambda m: m["status"] == "active", what="the seeds' market to be active"
    )
    assert active["contractAddress"] and active["deploymentTxHash"] and active["activatedAt"]

    # Step 3: the history, newest first, in the seeds' shape
    events = http.get(f"{API}/{market_id}/events").json()["data"]
    types = seeds.check_events(events)
    assert types[0] == "market.activated"
    assert types[-2:] == ["market.approval_requested", "market.registered"]
    approved = events[types.index("market.approved")]
    assert approved["actorId"] == "admin-uuid" and approved["decision"] == "approve"

    # Step 4: details
    response = http.get(f"{API}/{market_id}/details")
    seeds.check_exact_attributes(response.text)
    details = response.json()["data"]
    assert details["market"]["status"] == "active"
    assert details["asset"] == asset  # stored in SQLite and read back exactly


def test_order_and_hostile_input_over_http(embedded_server: RwaServer, http: httpx.Client) -> None:
    issuer = bearer(embedded_server.token("issuer-e2e", "issuer"))
    # no token and a bad body: 401; an issuer with a bad decision: 403
    assert http.post(f"{API}/register", json={"name": 5}).status_code == 401
    assert (
        http.post(f"{API}/x/approve", json={"decision": "maybe"}, headers=issuer).status_code == 403
    )
    before = http.get(API, params={"limit": "100"}).json()["data"]
    for raw in [
        seeds.REGISTER_TEXT.replace('"LUXAPT"', '"LUXAPT\\n"'),
        seeds.REGISTER_TEXT.replace('"Luxury Downtown Apartments"', '"\\ud800"'),
        seeds.REGISTER_TEXT.replace('"Luxury Downtown Apartments"', '"\\u200b\\u200b"'),
        seeds.REGISTER_TEXT.replace('"Luxury Downtown Apartments"', '"a\\u0000b"'),
        seeds.REGISTER_TEXT.replace('"Luxury Downtown Apartments"', '"a\\u202eb"'),
        seeds.REGISTER_TEXT.replace("1000000", '"' + "9" * 4301 + '"'),
        seeds.REGISTER_TEXT.replace("1000000", "9" * 4301),
        seeds.REGISTER_TEXT.replace('"sqft"', '"' + "k" * 10_000 + '"'),
    ]:
        own = raw.replace('"issuer-uuid"', '"issuer-e2e"')
        response = http.post(f"{API}/register", content=own, headers={**issuer, **JSON})
        assert response.status_code == 422, response.text
    assert http.get(f"{API}/abc%00def").status_code == 422
    assert http.get(API, params={"limit": "100"}).json()["data"] == before
