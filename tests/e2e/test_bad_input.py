"""Bad input over real HTTP: every refusal is a 4xx error envelope, never a 500, never a write.

One embedded server serves the whole module. ``seeded`` writes the only markets this module
creates on purpose (one approved, one pending); every other request here is bad, and the last
test checks that none of them wrote a market.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.api import MarketsApi, bearer, describe, error_of, market_body
from tests.e2e.server import API, RwaServer, make_token

REGISTER = f"{API}/register"
REQUIRED = ["name", "assetType", "tokenSymbol", "tokenName", "totalSupply"]


@pytest.fixture(scope="module")
def api(embedded_server: RwaServer, http: httpx.Client) -> MarketsApi:
    return MarketsApi(embedded_server, http)


@pytest.fixture(scope="module")
def seeded(api: MarketsApi) -> dict[str, Any]:
    """The module's legitimate writes, made before the baseline is taken."""
    approved = api.register()
    api.approve(approved["id"])
    pending = api.register()
    markets = api.list_all()
    return {"approved": approved, "pending": pending, "baseline": markets}


@pytest.fixture
def no_write(api: MarketsApi, seeded: dict[str, Any]) -> Iterator[None]:
    """The test's requests must leave the set of markets as it was."""
    yield
    ids = sorted(m["id"] for m in api.list_all())
    assert ids == sorted(m["id"] for m in seeded["baseline"]), "a bad request wrote a market"


def register(api: MarketsApi, body: Any, token: str | None = None) -> httpx.Response:
    return api.client.post(REGISTER, json=body, headers=bearer(token or api.issuer))


def assert_field_error(response: httpx.Response, field: str) -> dict[str, Any]:
    error = error_of(response, 422)
    fields = (error.get("details") or {}).get("fields") or {}
    assert field in fields, f"{field!r} not named in details.fields: {describe(response)}"
    assert fields[field], describe(response)
    return error


# -- validation: 422 naming the field ---------------------------------------------------------


@pytest.mark.usefixtures("no_write")
def test_empty_body_names_every_required_field(api: MarketsApi) -> None:
    response = register(api, {})
    for field in REQUIRED:
        assert_field_error(response, field)


@pytest.mark.usefixtures("no_write")
@pytest.mark.parametrize("field", REQUIRED)
def test_each_missing_field_is_named(api: MarketsApi, field: str) -> None:
    body = market_body()
    del body[field]
    assert_field_error(register(api, body), field)


@pytest.mark.usefixtures("no_write")
def test_unknown_asset_type(api: MarketsApi) -> None:
    assert_field_error(register(api, market_body(assetType="spaceship")), "assetType")


@pytest.mark.usefixtures("no_write")
@pytest.mark.parametrize("symbol", ["abc", "A", "TOOLONGSYMBOL1", "AB-C", ""])
def test_bad_token_symbol(api: MarketsApi, symbol: str) -> None:
    body = market_body()
    body["tokenSymbol"] = symbol
    assert_field_error(register(api, body), "tokenSymbol")


@pytest.mark.usefixtures("no_write")
@pytest.mark.parametrize("supply", [0, -5, "1.5", 1.5, "abc", "", True, None, 2**256])
def test_bad_total_supply(api: MarketsApi, supply: Any) -> None:
    assert_field_error(register(api, market_body(totalSupply=supply)), "totalSupply")


@pytest.mark.usefixtures("no_write")
def test_valuation_as_json_float_is_refused(api: MarketsApi) -> None:
    body = market_body(asset={"valuation": 1000.5, "currency": "USD"})
    assert_field_error(register(api, body), "asset.valuation")


@pytest.mark.usefixtures("no_write")
@pytest.mark.parametrize("valuation", ["-1", "0", "1e5", "12,5", "abc"])
def test_bad_valuation_strings(api: MarketsApi, valuation: str) -> None:
    body = market_body(asset={"valuation": valuation, "currency": "USD"})
    assert_field_error(register(api, body), "asset.valuation")


@pytest.mark.usefixtures("no_write")
def test_unknown_field_is_refused(api: MarketsApi) -> None:
    assert_field_error(register(api, market_body(colour="blue")), "colour")


@pytest.mark.usefixtures("no_write")
@pytest.mark.parametrize("body", [[], "text", 42, None])
def test_body_that_is_not_an_object(api: MarketsApi, body: Any) -> None:
    response = api.client.post(
        REGISTER,
        content=json.dumps(body),
        headers={**bearer(api.issuer), "Content-Type": "application/json"},
    )
    assert error_of(response, 422)["details"]["fields"], describe(response)


# -- transport: size, media type, syntax -----------------------------------------------------


@pytest.mark.usefixtures("no_write")
def test_body_over_64_kib_is_413(api: MarketsApi) -> None:
    body = market_body(description="x" * (65 * 1024))
    error_of(register(api, body), 413)


@pytest.mark.usefixtures("no_write")
def test_chunked_body_over_64_kib_is_413(api: MarketsApi) -> None:
    """No Content-Length: the limit must hold while the body streams in."""
    payload = json.dumps(market_body(description="y" * (80 * 1024))).encode()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(payload), 8192):
            yield payload[start : start + 8192]

    response = api.client.post(
        REGISTER,
        content=chunks(),
        headers={**bearer(api.issuer), "Content-Type": "application/json"},
    )
    error_of(response, 413)


@pytest.mark.usefixtures("no_write")
def test_text_plain_is_415(api: MarketsApi) -> None:
    content = json.dumps(market_body())
    response = api.client.post(
        REGISTER, content=content, headers={**bearer(api.issuer), "Content-Type": "text/plain"}
    )
    error_of(response, 415)


@pytest.mark.usefixtures("no_write")
@pytest.mark.parametrize(
    "raw",
    [b'{"name": "x",', b"{'name': 'x'}", b"\xff\xfe{}", b"[" * 50_000],
    ids=["truncated", "single-quotes", "not-utf8", "deeply-nested"],
)
def test_malformed_json_is_400(api: MarketsApi, raw: bytes) -> None:
    response = api.client.post(
        REGISTER, content=raw, headers={**bearer(api.issuer), "Content-Type": "application/json"}
    )
    error_of(response, 400)


# -- lifecycle actions: their optional {"reason"} body ---------------------------------------


@pytest.mark.usefixtures("no_write")
@pytest.mark.parametrize(
    ("raw", "status", "field"),
    [
        (b"[]", 422, None),
        (b'"paused"', 422, None),
        (b'{"reason": 5}', 422, "reason"),
        (b'{"why": "x"}', 422, "why"),
        (b'{"reason": "x"', 400, None),
        (b"\xff\xfe{}", 400, None),
    ],
    ids=["array", "string", "reason-not-text", "unknown-field", "truncated", "not-utf8"],
)
def test_bad_pause_body(
    api: MarketsApi, seeded: dict[str, Any], raw: bytes, status: int, field: str | None
) -> None:
    market_id = seeded["approved"]["id"]
    before = api.wait_settled(market_id)["status"]
    response = api.client.post(
        f"{API}/{market_id}/pause",
        content=raw,
        headers={**bearer(api.admin), "Content-Type": "application/json"},
    )
    if field is not None:
        assert_field_error(response, field)
    elif status == 422:
        assert error_of(response, 422)["details"]["fields"], describe(response)
    else:
        error_of(response, status)
    assert api.get(market_id)["status"] == before


# -- authentication: 401 ---------------------------------------------------------------------


@pytest.mark.usefixtures("no_write")
def test_no_token_is_401(api: MarketsApi) -> None:
    response = api.client.post(REGISTER, json=market_body())
    error_of(response, 401)
    assert response.headers.get("www-authenticate", "").lower().startswith("bearer")


@pytest.mark.usefixtures("no_write")
@pytest.mark.parametrize(
    "header",
    [
        "Bearer garbage",
        "Bearer a.b.c",
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Token abc",
    ],
)
def test_garbage_token_is_401(api: MarketsApi, header: str) -> None:
    response = api.client.post(REGISTER, json=market_body(), headers={"Authorization": header})
    error_of(response, 401)


@pytest.mark.usefixtures("no_write")
def test_token_signed_with_another_secret_is_401(api: MarketsApi) -> None:
    forged = make_token("issuer-e2e", "issuer", secret="another-secret-" + "z" * 40)
    error_of(register(api, market_body(), forged), 401, "invalid_token")


@pytest.mark.usefixtures("no_write")
def test_expired_token_is_401_token_expired(api: MarketsApi) -> None:
    expired = api.server.token(
        "issuer-e2e", "issuer", exp=int(time.time()) - 3600, iat=int(time.time()) - 7200
    )
    error_of(register(api, market_body(), expired), 401, "token_expired")


# -- authorization: 403 ----------------------------------------------------------------------


@pytest.mark.usefixtures("no_write")
def test_trader_cannot_register(api: MarketsApi) -> None:
    trader = api.server.token("trader-e2e", "trader")
    response = register(api, market_body(), trader)
    error = error_of(response, 403)
    reasons = error["details"]["reasons"]
    assert isinstance(reasons, list), describe(response)
    assert reasons, describe(response)
    assert all(isinstance(r, str) and r for r in reasons), describe(response)


@pytest.mark.usefixtures("no_write")
def test_issuer_cannot_approve(api: MarketsApi, seeded: dict[str, Any]) -> None:
    market_id = seeded["pending"]["id"]
    response = api.client.post(
        f"{API}/{market_id}/approve", json={"decision": "approve"}, headers=bearer(api.issuer)
    )
    assert error_of(response, 403)["details"]["reasons"], describe(response)
    assert api.get(market_id)["status"] == "pending_approval"


# -- approval: 404, 409, 422 -----------------------------------------------------------------


@pytest.mark.usefixtures("no_write")
def test_approving_an_unknown_market_is_404(api: MarketsApi) -> None:
    response = api.client.post(
        f"{API}/no-such-market-0000/approve",
        json={"decision": "approve"},
        headers=bearer(api.admin),
    )
    error_of(response, 404)


@pytest.mark.usefixtures("no_write")
@pytest.mark.parametrize("path", ["", "/details", "/events", "/onchain"])
def test_reading_an_unknown_market_is_404(api: MarketsApi, path: str) -> None:
    error_of(api.client.get(f"{API}/no-such-market-0000{path}"), 404)


@pytest.mark.usefixtures("no_write")
def test_approving_an_approved_market_is_409(api: MarketsApi, seeded: dict[str, Any]) -> None:
    market_id = seeded["approved"]["id"]
    api.wait_settled(market_id)
    response = api.client.post(
        f"{API}/{market_id}/approve", json={"decision": "approve"}, headers=bearer(api.admin)
    )
    error = error_of(response, 409)
    current = error["details"]["currentStatus"]
    assert current == api.get(market_id)["status"], describe(response)
    assert current != "pending_approval", describe(response)


@pytest.mark.usefixtures("no_write")
@pytest.mark.parametrize("body", [{"decision": "reject"}, {"decision": "reject", "reason": "  "}])
def test_reject_without_reason_is_422(
    api: MarketsApi, seeded: dict[str, Any], body: dict[str, str]
) -> None:
    market_id = seeded["pending"]["id"]
    response = api.client.post(f"{API}/{market_id}/approve", json=body, headers=bearer(api.admin))
    assert_field_error(response, "reason")
    assert api.get(market_id)["status"] == "pending_approval"


@pytest.mark.usefixtures("no_write")
@pytest.mark.parametrize("decision", ["maybe", "", None, 1])
def test_unknown_decision_is_422(api: MarketsApi, seeded: dict[str, Any], decision: Any) -> None:
    market_id = seeded["pending"]["id"]
    response = api.client.post(
        f"{API}/{market_id}/approve", json={"decision": decision}, headers=bearer(api.admin)
    )
    assert_field_error(response, "decision")
    assert api.get(market_id)["status"] == "pending_approval"


@pytest.mark.usefixtures("no_write")
def test_activating_a_pending_market_is_409(api: MarketsApi, seeded: dict[str, Any]) -> None:
    market_id = seeded["pending"]["id"]
    error = error_of(api.action(market_id, "activate"), 409)
    assert error["details"]["currentStatus"] == "pending_approval"


# -- uniqueness: 409 -------------------------------------------------------------------------


@pytest.mark.usefixtures("no_write")
@pytest.mark.parametrize("which", ["approved", "pending"])
def test_duplicate_live_symbol_is_409(api: MarketsApi, seeded: dict[str, Any], which: str) -> None:
    symbol = seeded[which]["tokenSymbol"]
    response = register(api, market_body(tokenSymbol=symbol))
    error = error_of(response, 409, "duplicate_symbol")
    assert "tokenSymbol" in error["details"]["fields"], describe(response)


# -- the sum of it ---------------------------------------------------------------------------


def test_no_bad_request_wrote_a_market(api: MarketsApi, seeded: dict[str, Any]) -> None:
    markets = api.list_all()
    assert len(markets) == len(seeded["baseline"]) == 2, markets
    assert {m["id"] for m in markets} == {seeded["approved"]["id"], seeded["pending"]["id"]}


def test_server_logged_no_unhandled_error(embedded_server: RwaServer) -> None:
    """Every bad request above was refused on purpose: the log holds no 500 and no traceback."""
    lines = embedded_server.log_text().splitlines()
    answered_500 = [line for line in lines if '" 500 ' in line]
    errors = [
        line
        for line in lines
        if " ERROR " in line or line.startswith("Traceback") or "Error: " in line
    ]
    assert not answered_500 and not errors, f"{embedded_server.log_path}:\n" + "\n".join(
        [*answered_500, *errors]
    )
