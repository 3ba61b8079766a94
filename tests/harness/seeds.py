"""The seeds' Quick Start (implementation-summary, "Quick Start: RWA Market Lifecycle"),
verbatim: the register and approve bodies, and the shapes of the answers it shows."""

from __future__ import annotations

import json
from typing import Any

# Step 1, as the seeds print it (the JSON text itself: 0.95 must stay the number 0.95).
REGISTER_TEXT = """{
  "name": "Luxury Downtown Apartments",
  "issuerId": "issuer-uuid",
  "assetType": "real_estate",
  "tokenSymbol": "LUXAPT",
  "tokenName": "Luxury Apartment Token",
  "totalSupply": 1000000,
  "entityId": "entity-uuid-from-permissions-core",
  "assetDetails": {
    "valuation": 15000000,
    "currency": "USD",
    "location": "456 Main St, Los Angeles, CA 90014",
    "description": "50-unit luxury residential building",
    "complianceDocuments": ["doc-id-1", "doc-id-2"],
    "regulatoryInfo": {
      "jurisdiction": "US",
      "regulator": "SEC",
      "exemption": "Reg D 506(c)"
    },
    "attributes": {
      "sqft": 75000,
      "units": 50,
      "yearBuilt": 2020,
      "occupancyRate": 0.95
    }
  }
}"""
ISSUER_ID = "issuer-uuid"
ENTITY_ID = "entity-uuid-from-permissions-core"

# Step 2
APPROVE_TEXT = """{
  "decision": "approve",
  "entityId": "entity-uuid-from-permissions-core"
}"""

REGISTERED_MESSAGE = "Market registered successfully, pending approval"
APPROVED_MESSAGE = "Market approved and activation initiated"
EVENT_KEYS = {
    "id",
    "marketId",
    "eventType",
    "actorId",
    "actorType",
    "decision",
    "reason",
    "metadata",
    "createdAt",
}


def register_body(**overrides: Any) -> dict[str, Any]:
    """The register body as a dict (``occupancyRate`` is then a float: send
    ``REGISTER_TEXT`` when the exact number matters)."""
    body: dict[str, Any] = json.loads(REGISTER_TEXT)
    body.update(overrides)
    return body


def check_registered(payload: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The 201 answer of step 1: ``{data: {market, asset}, message}``; the market and asset."""
    assert payload["message"] == REGISTERED_MESSAGE, payload
    market, asset = payload["data"]["market"], payload["data"]["asset"]
    assert market["name"] == "Luxury Downtown Apartments"
    assert market["status"] == "pending_approval"
    assert market["assetType"] == "real_estate"
    assert market["issuerId"] == ISSUER_ID and market["entityId"] == ENTITY_ID
    assert market["tokenSymbol"] == "LUXAPT" and market["totalSupply"] == "1000000"
    assert asset["id"] and asset["marketId"] == market["id"]
    assert asset["valuation"] == "15000000" and asset["currency"] == "USD"
    assert asset["complianceDocuments"] == ["doc-id-1", "doc-id-2"]
    assert asset["regulatoryInfo"] == {
        "jurisdiction": "US",
        "regulator": "SEC",
        "exemption": "Reg D 506(c)",
    }
    assert asset["attributes"] == {
        "sqft": 75000,
        "units": 50,
        "yearBuilt": 2020,
        "occupancyRate": 0.95,
    }
    return market, asset


def check_exact_attributes(raw_answer: str) -> None:
    """``0.95`` comes back as the JSON number 0.95, written exactly so (not "0.95", not a
    float's repr of something else)."""
    assert '"occupancyRate":0.95' in raw_answer.replace(" ", ""), raw_answer


def check_events(events: list[dict[str, Any]]) -> list[str]:
    """Each event in the seeds' shape, newest first; their types."""
    for event in events:
        assert set(event) == EVENT_KEYS, event
    created = [event["createdAt"] for event in events]
    assert created == sorted(created, reverse=True), created
    return [event["eventType"] for event in events]
