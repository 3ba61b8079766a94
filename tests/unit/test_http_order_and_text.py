"""DESIGN 5.1 on the test profile: the order of checks on every endpoint (401, role 403,
400/415/422, then the permissions port's 403), and the text and number rules at every entry
point (HTTP bodies, path and query parameters, the signed webhook, SNS envelopes)."""

# ruff: noqa: F811 - the webhook tests' fixtures are imported and used as parameters

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from adapters.inbound.http.guard import is_guarded
from adapters.outbound.permissions.feed import HttpPermissionEventFeed
from adapters.outbound.permissions.memory import MemoryPermissions
from bootstrap import Runtime
from core.ports.inbox import ProcessStatus
from core.shared.errors import ServiceUnavailable
from tests.harness.permissions_core import approval_event
from tests.harness.sns import TOPIC_ARN, SnsSigner
from tests.unit.conftest import bearer
from tests.unit.test_http_markets import REGISTER, body, count_markets
from tests.unit.test_webhooks import (  # noqa: F401 - fixtures, used as parameters
    client,
    post,
    post_sns,
    record,
    register,
    runtime,
    signer,
    snapshot,
    sns,
)

API = "/api/v1/markets"
BAD_REGISTER = {"name": 5, "tokenSymbol": "x\n"}
BAD_DECISION = {"decision": "maybe"}


async def a_market(client: Any, runtime: Runtime) -> str:
    response = await client.post(REGISTER, json=body(), headers=bearer(runtime, "i", "issuer"))
    assert response.status_code == 201, await response.get_json()
    market_id: str = (await response.get_json())["data"]["market"]["id"]
    return market_id


def permissions(runtime: Runtime) -> MemoryPermissions:
    found = runtime.container.permissions()
    assert isinstance(found, MemoryPermissions)
    return found


# -- the order of checks ------------------------------------------------------------------------

ACTIONS = ["approve", "activate", "pause", "resume", "archive"]


async def test_register_order(client: Any, runtime: Runtime) -> None:
    no_token = await client.post(REGISTER, json=BAD_REGISTER)
    assert no_token.status_code == 401
    not_json = await client.post(REGISTER, data="x", headers={"Content-Type": "text/plain"})
    assert not_json.status_code == 401
    trader = await client.post(REGISTER, json=BAD_REGISTER, headers=bearer(runtime, "t", "trader"))
    assert trader.status_code == 403
    issuer = bearer(runtime, "i", "issuer")
    assert (await client.post(REGISTER, json=BAD_REGISTER, headers=issuer)).status_code == 422
    permissions(runtime).deny("i", "market.register")
    # the body is checked before the permissions port is asked
    assert (await client.post(REGISTER, json=BAD_REGISTER, headers=issuer)).status_code == 422
    denied = await client.post(REGISTER, json=body(), headers=issuer)
    assert denied.status_code == 403
    assert "explicitly denied" in (await denied.get_json())["error"]["details"]["reasons"][0]
    assert await count_markets(client) == 0


async def test_approve_order(client: Any, runtime: Runtime) -> None:
    market_id = await a_market(client, runtime)
    url = f"{API}/{market_id}/approve"
    assert (await client.post(url, json=BAD_DECISION)).status_code == 401
    issuer = await client.post(url, json=BAD_DECISION, headers=bearer(runtime, "i", "issuer"))
    assert issuer.status_code == 403
    admin = bearer(runtime, "adm", "admin")
    bad = await client.post(url, json=BAD_DECISION, headers=admin)
    assert (
        bad.status_code == 422
        and "decision" in (await bad.get_json())["error"]["details"]["fields"]
    )
    malformed = await client.post(
        url, data="{nope", headers={**admin, "Content-Type": "application/json"}
    )
    assert malformed.status_code == 400
    wrong_type = await client.post(url, data="x", headers={**admin, "Content-Type": "text/plain"})
    assert wrong_type.status_code == 415
    permissions(runtime).deny("adm", "market.approve")
    denied = await client.post(url, json={"decision": "approve"}, headers=admin)
    assert denied.status_code == 403
    assert (await denied.get_json())["error"]["details"]["reasons"]
    status = (await (await client.get(f"{API}/{market_id}")).get_json())["data"]["status"]
    assert status == "pending_approval"


@pytest.mark.parametrize("action", ACTIONS[1:])
async def test_lifecycle_action_order(client: Any, runtime: Runtime, action: str) -> None:
    market_id = await a_market(client, runtime)
    url = f"{API}/{market_id}/{action}"
    assert (await client.post(url, json={"reason": 5})).status_code == 401
    trader = await client.post(url, json={"reason": 5}, headers=bearer(runtime, "t", "trader"))
    assert trader.status_code == 403
    admin = bearer(runtime, "adm", "admin")
    if action != "activate":  # activate reads no body
        bad = await client.post(url, json={"reason": 5}, headers=admin)
        assert bad.status_code == 422
        nul = await client.post(url, json={"reason": "a\u0000b"}, headers=admin)
        assert nul.status_code == 422
    permissions(runtime).deny("adm", f"market.{action}")
    assert (await client.post(url, headers=admin)).status_code == 403


async def test_path_parameters_are_checked_after_the_token(client: Any, runtime: Runtime) -> None:
    for action in ACTIONS:
        url = f"{API}/abc%00def/{action}"
        assert (await client.post(url, json={"decision": "approve"})).status_code == 401
        answer = await client.post(
            url, json={"decision": "approve"}, headers=bearer(runtime, "adm", "admin")
        )
        assert answer.status_code == 422, action
        assert "marketId" in (await answer.get_json())["error"]["details"]["fields"]
    for path in ["", "/details", "/events", "/onchain", "/reached/active"]:
        assert (await client.get(f"{API}/abc%00def{path}")).status_code == 422, path
        assert (await client.get(f"{API}/abc%E2%80%AEdef{path}")).status_code == 422, path
        assert (await client.get(f"{API}/{'x' * 101}{path}")).status_code == 422, path


async def test_query_parameters_follow_the_text_rules(client: Any) -> None:
    for query, field in [
        ("issuerId=a%00b", "issuerId"),
        ("issuerId=" + "x" * 201, "issuerId"),
        ("cursor=" + "x" * 501, "cursor"),
        ("limit=" + "9" * 5000, "limit"),
        ("limit=%D9%A3", "limit"),  # an Arabic-Indic digit: isdigit() but not a limit
        ("status=active%0A", "status"),
    ]:
        answer = await client.get(f"{API}?{query}")
        assert answer.status_code == 422, query
        assert field in (await answer.get_json())["error"]["details"]["fields"], query
    events = await client.get(f"{API}/x/events?order=sideways")
    assert events.status_code == 422


# -- text and numbers in registration ------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"tokenSymbol": "HVO\n"}, "tokenSymbol"),
        ({"name": "\ud800"}, "name"),
        ({"tokenName": "Tok\ud800en"}, "tokenName"),
        ({"description": "a\udfffb"}, "description"),
        ({"name": "\u200b\u200b\u2060"}, "name"),
        ({"name": "\u3164"}, "name"),
        ({"name": "Harbour\u0000View"}, "name"),
        ({"name": "Harbour\nView"}, "name"),
        ({"name": "Harbour \u202eweiV"}, "name"),
        ({"tokenName": "Token\u2066"}, "tokenName"),
        ({"name": "x" * 201}, "name"),
        ({"totalSupply": "9" * 4301}, "totalSupply"),
        ({"totalSupply": "9" * 101}, "totalSupply"),
        ({"issuerId": "i\n"}, "issuerId"),
        ({"entityId": "e\u0000"}, "entityId"),
        ({"makerFeeBps": 10_001}, "makerFeeBps"),
        ({"takerFeeBps": 1.5}, "takerFeeBps"),
        ({"allowedCountries": ["US\n"]}, "allowedCountries.0"),
        ({"allowedCountries": ["usa"]}, "allowedCountries.0"),
        ({"allowedCountries": ["us"]}, "allowedCountries[0]"),
        ({"accreditedInvestorsOnly": "yes"}, "accreditedInvestorsOnly"),
        ({"asset": {"currency": "USD\n", "valuation": "1"}}, "asset.currency"),
        ({"asset": {"location": "Lisbon\ud800"}}, "asset.location"),
        ({"asset": {"description": "a\u0007b"}}, "asset.description"),
        ({"asset": {"attributes": {"k" * 101: 1}}}, "asset.attributes"),
        ({"asset": {"attributes": {"a\u0000": 1}}}, "asset.attributes"),
        ({"asset": {"attributes": {"a": "b\ud800"}}}, "asset.attributes"),
        (
            {"asset": {"attributes": {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}}},
            "asset.attributes",
        ),
        ({"asset": {"attributes": {f"k{n}": n for n in range(501)}}}, "asset.attributes"),
        ({"asset": {"regulatoryInfo": {"regulator": "SEC\u202e"}}}, "asset.regulatoryInfo"),
        ({"asset": {"complianceDocuments": ["doc\n"]}}, "asset.complianceDocuments"),
    ],
)
async def test_bad_text_is_422_and_writes_nothing(
    client: Any, runtime: Runtime, overrides: dict[str, Any], field: str
) -> None:
    response = await client.post(
        REGISTER, json=body(**overrides), headers=bearer(runtime, "i", "issuer")
    )
    assert response.status_code == 422, await response.get_data()
    fields = (await response.get_json())["error"]["details"]["fields"]
    assert any(name.startswith(field) for name in fields), fields
    assert await count_markets(client) == 0


async def test_numbers_too_long_as_json_numbers_are_422(client: Any, runtime: Runtime) -> None:
    issuer = {**bearer(runtime, "i", "issuer"), "Content-Type": "application/json"}
    for value in ["9" * 4301, "1." + "5" * 200, "1e" + "9" * 200]:
        raw = json.dumps(body()).replace('"totalSupply": 1000000', f'"totalSupply": {value}')
        answer = await client.post(REGISTER, data=raw, headers=issuer)
        assert answer.status_code == 422, value[:20]
        assert "totalSupply" in (await answer.get_json())["error"]["details"]["fields"]
    deep = '{"a":' * 100_000 + "1" + "}" * 100_000
    assert (await client.post(REGISTER, data=deep, headers=issuer)).status_code in {400, 413}
    nan = json.dumps(body()).replace('"totalSupply": 1000000', '"totalSupply": NaN')
    assert (await client.post(REGISTER, data=nan, headers=issuer)).status_code == 400
    assert await count_markets(client) == 0


async def test_text_is_nfc_normalised(client: Any, runtime: Runtime) -> None:
    decomposed = "Zu\u0308rich Offices"  # u + combining diaeresis
    response = await client.post(
        REGISTER,
        json=body(name=decomposed, asset={"attributes": {"Cafe\u0301": "Cre\u0300me"}}),
        headers=bearer(runtime, "i", "issuer"),
    )
    assert response.status_code == 201
    data = (await response.get_json())["data"]
    assert data["market"]["name"] == "Zürich Offices"
    assert data["asset"]["attributes"] == {"Café": "Crème"}


async def test_a_symbol_with_a_trailing_newline_cannot_shadow_a_live_one(
    client: Any, runtime: Runtime
) -> None:
    issuer = bearer(runtime, "i", "issuer")
    assert (await client.post(REGISTER, json=body(), headers=issuer)).status_code == 201
    shadow = await client.post(REGISTER, json=body(tokenSymbol="HVO\n"), headers=issuer)
    assert shadow.status_code == 422
    assert await count_markets(client) == 1


# -- the webhook and SNS -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "change"),
    [
        ("payload.reason", lambda e: e["payload"].update(reason="ok\ud800")),
        ("context.actor_id", lambda e: e["context"].update(actor_id="\udc00core")),
        ("payload.entity_id", lambda e: e["payload"].update(entity_id="e\n1")),
        ("event_type", lambda e: e.update(event_type="market.approved\ud800")),
        ("payload.market_id", lambda e: e["payload"].update(market_id="m\u202e")),
    ],
)
async def test_a_signed_event_with_bad_text_is_recorded_failed(
    client: Any, runtime: Runtime, where: str, change: Any
) -> None:
    market_id = await register(client, runtime)
    event = approval_event("evt-bad-text", market_id)
    change(event)
    before = await snapshot(runtime)
    for _ in range(2):  # a redelivery answers the same
        response = await post(client, event)
        assert response.status_code == 200, await response.get_data()
        data = (await response.get_json())["data"]
        assert data["status"] == "failed" and where in data["error"], data
    assert await snapshot(runtime) == before
    stored = await record(runtime, "evt-bad-text")
    assert stored is not None and stored.status is ProcessStatus.FAILED
    assert stored.error is not None and where in stored.error
    assert stored.attempts == 2


async def test_a_signed_event_whose_id_is_unusable_is_400(client: Any, runtime: Runtime) -> None:
    market_id = await register(client, runtime)
    before = await snapshot(runtime)
    for event_id in ["evt\ud800", "evt\n1", "evt\u0000", "\u200b"]:
        response = await post(client, approval_event(event_id, market_id))
        assert response.status_code == 400, event_id
    deep = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    assert (await post(client, deep)).status_code in {400, 413}
    assert (
        await client.post(
            "/api/v1/webhooks/entity-permissions",
            data=b"[" * 50_000,
            headers={"Content-Type": "application/json"},
        )
    ).status_code in {400, 401, 413}
    assert await snapshot(runtime) == before


async def test_sns_envelopes_with_bad_text_are_400(
    client: Any, runtime: Runtime, signer: SnsSigner, sns: Any
) -> None:
    market_id = await register(client, runtime)
    before = await snapshot(runtime)
    event = approval_event("evt-sns-text", market_id)
    for field, value in [
        ("TopicArn", TOPIC_ARN + "\nforged log line"),
        ("MessageId", "m\u0000"),
        ("Message", json.dumps(event) + "\ud800"),
        ("Timestamp", "2026-01-01T00:00:00Z\r"),
    ]:
        envelope = signer.envelope(message=event)
        envelope[field] = value
        response = await post_sns(client, envelope)
        assert response.status_code == 400, (field, await response.get_data())
        fields = (await response.get_json())["error"]["details"]["fields"]
        assert field in fields
    # a reason with a lone surrogate inside a genuine message: recorded as failed, 200
    event["payload"]["reason"] = "\ud800"
    response = await post_sns(client, signer.envelope(message=event))
    assert response.status_code == 200, await response.get_data()
    assert (await response.get_json())["data"]["status"] == "failed"
    assert await snapshot(runtime) == before


# -- the polled feed ------------------------------------------------------------------------------


@pytest.mark.parametrize("cursor", ["42\nforged", "\ud800", "c\u202e", "x" * 501])
async def test_a_feed_cursor_that_breaks_the_rules_is_never_stored(cursor: str) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        body = json.dumps({"events": [], "nextCursor": cursor})
        return httpx.Response(
            200, content=body.encode(), headers={"Content-Type": "application/json"}
        )

    feed = HttpPermissionEventFeed(
        "http://core.test", api_key="k", transport=httpx.MockTransport(answer)
    )
    try:
        with pytest.raises(ServiceUnavailable, match="nextCursor"):
            await feed.fetch(None, 10)
    finally:
        await feed.close()


async def test_every_guarded_route_answers_401_first(client: Any, runtime: Runtime) -> None:
    """Whatever the body (not JSON, not sent as JSON, malformed), no token is 401, and a
    token whose roles allow nothing (no roles at all) is 403, on every guarded route."""
    app = runtime.http_app()
    checked = 0
    for rule in app.url_map.iter_rules():
        if not is_guarded(app.view_functions[rule.endpoint]):
            continue
        path = rule.rule
        for argument in rule.arguments:
            path = path.replace(f"<{argument}>", "x\u0000")
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            for headers, data in [
                ({"Content-Type": "text/plain"}, "name=x"),
                ({"Content-Type": "application/json"}, "{not json"),
                ({"Content-Type": "application/json"}, '{"name": "\\ud800"}'),
            ]:
                answer = await client.open(path, method=method, headers=headers, data=data)
                assert answer.status_code == 401, (method, path)
                nobody = {**headers, **bearer(runtime, "nobody")}
                answer = await client.open(path, method=method, headers=nobody, data=data)
                assert answer.status_code == 403, (method, path)
            checked += 1
    assert checked >= 6  # register, approve, activate, pause, resume, archive at least
