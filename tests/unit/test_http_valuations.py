"""Valuation updates of a market's asset over HTTP (``update-token-metadata``): admins and the
market's own issuer append to an exact, audited history that starts with the registration's
valuation; anyone else, bad values and unknown markets are refused and write nothing."""

from __future__ import annotations

from typing import Any

import pytest

from bootstrap import Runtime
from tests.unit.conftest import bearer
from tests.unit.test_http_markets import REGISTER, body


async def register(client: Any, runtime: Runtime, issuer: str = "iss-val") -> str:
    response = await client.post(REGISTER, json=body(), headers=bearer(runtime, issuer, "issuer"))
    assert response.status_code == 201, await response.get_json()
    return str((await response.get_json())["data"]["market"]["id"])


async def history(client: Any, market_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/markets/{market_id}/valuations")
    assert response.status_code == 200
    return list((await response.get_json())["data"])


async def test_issuer_and_admin_append_to_an_exact_history(client: Any, runtime: Runtime) -> None:
    market_id = await register(client, runtime)
    first = await history(client, market_id)
    assert [(v["version"], v["valuation"], v["currency"], v["source"]) for v in first] == [
        (1, "25000000.00", "USD", "registration")
    ]
    response = await client.post(
        f"/api/v1/markets/{market_id}/valuations",
        json={"valuation": "26500000.10", "source": "Q3 appraisal", "note": "line 1\nline 2"},
        headers=bearer(runtime, "iss-val", "issuer"),
    )
    assert response.status_code == 201, await response.get_json()
    created = (await response.get_json())["data"]
    assert created["version"] == 2 and created["valuation"] == "26500000.10"
    assert created["currency"] == "USD" and created["actorId"] == "iss-val"
    response = await client.post(
        f"/api/v1/markets/{market_id}/valuations",
        json={"valuation": 27000000, "currency": "EUR", "effectiveAt": "2026-09-30T00:00:00Z"},
        headers=bearer(runtime, "adm", "admin"),
    )
    assert response.status_code == 201, await response.get_json()
    found = await history(client, market_id)
    assert [(v["version"], v["valuation"], v["currency"]) for v in found] == [
        (1, "25000000.00", "USD"),
        (2, "26500000.10", "USD"),
        (3, "27000000", "EUR"),
    ]
    assert found[2]["effectiveAt"] == "2026-09-30T00:00:00.000Z"
    audit = await client.get(
        f"/api/v1/audit?subject=market:{market_id}", headers=bearer(runtime, "adm", "admin")
    )
    actions = [e["action"] for e in (await audit.get_json())["data"]]
    assert actions.count("asset.valuation_update") == 2


async def test_another_issuer_a_trader_and_no_token_are_refused(
    client: Any, runtime: Runtime
) -> None:
    market_id = await register(client, runtime)
    path = f"/api/v1/markets/{market_id}/valuations"
    payload = {"valuation": "1.00"}
    assert (await client.post(path, json=payload)).status_code == 401
    trader = await client.post(path, json=payload, headers=bearer(runtime, "t", "trader"))
    assert trader.status_code == 403
    other = await client.post(path, json=payload, headers=bearer(runtime, "iss-x", "issuer"))
    assert other.status_code == 403
    assert len(await history(client, market_id)) == 1


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"valuation": "0"}, "valuation"),
        ({"valuation": "-5"}, "valuation"),
        ({"valuation": 1.5}, "valuation"),
        ({"valuation": "1e9"}, "valuation"),
        ({"valuation": "1" * 4000}, "valuation"),
        ({"valuation": int("9" * 4000)}, "valuation"),
        ({"valuation": "1.0000000000000000001"}, "valuation"),
        ({"valuation": "10\n"}, "valuation"),
        ({"valuation": "10", "currency": "usd"}, "currency"),
        ({"valuation": "10", "effectiveAt": "2026-13-01T00:00:00Z"}, "effectiveAt"),
        ({"valuation": "10", "effectiveAt": "2026-01-01T00:00:00"}, "effectiveAt"),
        ({"valuation": "10", "effectiveAt": 1700000000}, "effectiveAt"),
        ({"valuation": "10", "source": "a\ud800b"}, "source"),
        ({"valuation": "10", "source": "x" * 101}, "source"),
        ({"valuation": "10", "extra": 1}, "extra"),
        ({}, "valuation"),
    ],
)
async def test_bad_values_name_the_field_and_write_nothing(
    client: Any, runtime: Runtime, payload: dict[str, Any], field: str
) -> None:
    market_id = await register(client, runtime)
    response = await client.post(
        f"/api/v1/markets/{market_id}/valuations",
        json=payload,
        headers=bearer(runtime, "adm", "admin"),
    )
    answer = await response.get_json()
    assert response.status_code in (400, 422), answer
    assert field in str(answer), answer
    assert len(await history(client, market_id)) == 1


async def test_an_unknown_market_is_404(client: Any, runtime: Runtime) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    response = await client.post(
        f"/api/v1/markets/{unknown}/valuations",
        json={"valuation": "10"},
        headers=bearer(runtime, "adm", "admin"),
    )
    assert response.status_code == 404
    assert (await response.get_json())["error"]["code"] == "not_found"
    assert (await client.get(f"/api/v1/markets/{unknown}/valuations")).status_code == 404
