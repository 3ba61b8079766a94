"""``/openapi.json`` documents every operation: parameters, bodies, security, every response."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.inbound.http.openapi import (
    REGISTER_EXAMPLES,
    STATUS_DESCRIPTIONS,
    MarketEnvelope,
    documented,
)
from bootstrap import Runtime

SECURED_PREFIX = "/api/v1/markets"
PUBLIC_READS = {
    ("get", "/api/v1/markets"),
    ("get", "/api/v1/markets/{market_id}"),
    ("get", "/api/v1/markets/{market_id}/details"),
    ("get", "/api/v1/markets/{market_id}/events"),
    ("get", "/api/v1/markets/{market_id}/reached/{status}"),
    ("get", "/api/v1/markets/{market_id}/onchain"),
    ("get", "/api/v1/markets/{market_id}/valuations"),
}


@pytest.fixture
async def spec(client: Any) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = await response.get_json()
    return document


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    ]


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


async def test_every_route_of_the_app_is_an_operation(runtime: Runtime, spec: Any) -> None:
    app = runtime.http_app()
    documented_paths = set(spec["paths"])
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(("/docs", "/openapi.json", "/static", "/app/")):
            continue
        if rule.rule == "/":  # the web app's page (adapters.inbound.web), not an API operation
            continue
        if rule.websocket:  # /api/v1/ws is described in docs/websocket.md; OpenAPI has no verb
            continue
        path = rule.rule.replace("<", "{").replace(">", "}")
        assert path in documented_paths, rule.rule


async def test_every_operation_documents_success_and_each_error(spec: Any) -> None:
    for method, path, operation in _operations(spec):
        where = f"{method.upper()} {path}"
        codes = {int(code) for code in operation["responses"]}
        successes = [code for code in codes if 200 <= code < 300]
        assert len(successes) == 1, where
        assert operation.get("summary"), where
        assert "``" not in operation["summary"], where
        assert operation["tags"] == [
            path.split("/")[3] if path.startswith("/api/v1/") else "health"
        ]
        for code, response in operation["responses"].items():
            assert response["description"], (where, code)
            schema = _resolve(spec, response["content"]["application/json"]["schema"])
            if int(code) >= 400:
                assert schema["required"] == ["error"], (where, code)
                body = _resolve(spec, schema["properties"]["error"])
                assert set(body["required"]) == {"code", "message"}, (where, code)
                assert "details" in body["properties"], (where, code)
            else:
                assert "data" in schema["required"], (where, code)
                assert "message" in schema["properties"], (where, code)
        if path.startswith("/api/"):
            assert {429, 503} <= codes, where
        assert codes - {200, 201, 202} <= set(STATUS_DESCRIPTIONS), where


async def test_secured_operations_declare_the_bearer_scheme(spec: Any) -> None:
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    for method, path, operation in _operations(spec):
        if not path.startswith(SECURED_PREFIX):
            continue
        codes = {int(code) for code in operation["responses"]}
        if (method, path) in PUBLIC_READS:
            assert "security" not in operation, path
            continue
        assert operation["security"] == [{"bearer": []}], (method, path)
        assert {401, 403} <= codes, (method, path)
        assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]


async def test_bodies_carry_their_constraints_and_examples(spec: Any) -> None:
    register = spec["paths"]["/api/v1/markets/register"]["post"]
    media = register["requestBody"]["content"]["application/json"]
    body = _resolve(spec, media["schema"])
    assert {"name", "assetType", "tokenSymbol", "tokenName", "totalSupply"} <= set(body["required"])
    assert body["properties"]["name"]["maxLength"] > 0
    assert "assetDetails" in body["properties"]
    assert {name: example["value"] for name, example in media["examples"].items()} == (
        REGISTER_EXAMPLES
    )
    codes = {int(code) for code in register["responses"]}
    assert {201, 400, 401, 403, 409, 413, 415, 422} <= codes
    approve = spec["paths"]["/api/v1/markets/{market_id}/approve"]["post"]
    decision = _resolve(spec, approve["requestBody"]["content"]["application/json"]["schema"])
    assert set(decision["properties"]["decision"]["enum"]) == {"approve", "reject"}


async def test_parameters_are_documented(spec: Any) -> None:
    listing = spec["paths"]["/api/v1/markets"]["get"]
    params = {p["name"]: p for p in listing["parameters"]}
    assert {"status", "assetType", "issuerId", "limit", "cursor"} <= set(params)
    assert all(p["in"] == "query" for p in params.values())
    page = _resolve(spec, listing["responses"]["200"]["content"]["application/json"]["schema"])
    assert "pagination" in page["required"]
    reached = spec["paths"]["/api/v1/markets/{market_id}/reached/{status}"]["get"]
    status = next(p for p in reached["parameters"] if p["name"] == "status")
    assert status["in"] == "path" and "pending_approval" in status["schema"]["enum"]
    events = spec["paths"]["/api/v1/markets/{market_id}/events"]["get"]
    assert any(p["name"] == "order" for p in events["parameters"])


async def test_the_seeds_example_registers_with_the_documented_answer(
    client: Any, runtime: Runtime
) -> None:
    token = runtime.container.token_issuer().issue("issuer-uuid", ["issuer"])
    response = await client.post(
        "/api/v1/markets/register",
        json=REGISTER_EXAMPLES["seedsQuickStart"],
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, await response.get_data()
    payload = await response.get_json()
    assert set(payload["data"]) == {"market", "asset"}
    assert payload["data"]["market"]["status"] == "pending_approval"


def test_documented_refuses_a_status_without_a_description() -> None:
    with pytest.raises(ValueError, match="418"):
        documented(MarketEnvelope, errors=[418])
