"""Token, balance and compliance endpoints over HTTP on the test profile: the quote token at
start, the order of checks, each refusal's status and code, exact whole-token balances, the
audit entry and outbox event of a compliance change, and ``require_compliant``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bootstrap import Runtime
from core.ledger.model import AccountRef
from core.ledger.operations import lock_funds, mint
from core.ports.audit import AuditFilter
from core.tokens.compliance import ComplianceDenied
from core.tokens.compliance_use_cases import require_compliant
from core.tokens.model import Token, TokenType
from tests.unit.conftest import bearer

TOKENS = "/api/v1/tokens"
NOW = datetime.now(UTC)
APPROVED = {
    "kycStatus": "APPROVED",
    "whitelisted": True,
    "accredited": True,
    "jurisdiction": "PT",
    "expiresAt": "2099-12-31T23:59:59Z",
}


def admin(runtime: Runtime) -> dict[str, str]:
    return bearer(runtime, "admin-1", "admin")


async def error(response: Any) -> dict[str, Any]:
    body: dict[str, Any] = (await response.get_json())["error"]
    return body


async def data(response: Any) -> Any:
    return (await response.get_json())["data"]


async def create(client: Any, runtime: Runtime, **body: Any) -> Any:
    payload = {"symbol": "WETH", "name": "Wrapped Ether", "type": "CRYPTO", "decimals": 18}
    payload.update(body)
    return await client.post(TOKENS, json=payload, headers=admin(runtime))


# -- the registry ------------------------------------------------------------------------------


async def test_the_quote_token_exists_from_the_start(client: Any, runtime: Runtime) -> None:
    response = await client.get(f"{TOKENS}/USDC")
    assert response.status_code == 200
    usdc = await data(response)
    assert usdc["type"] == "STABLE" and usdc["decimals"] == 6 and usdc["symbol"] == "USDC"
    assert usdc["marketId"] is None and usdc["paused"] is False
    # the step is idempotent: another run finds the same token
    again = await runtime.container.quote_token_setup().ensure()
    assert again.id == usdc["id"]


async def test_create_get_and_list(client: Any, runtime: Runtime) -> None:
    response = await create(
        client, runtime, contractAddress="0x5fbdb2315678afecb367f032d93f642f64180aa3"
    )
    assert response.status_code == 201
    created = await data(response)
    assert created["symbol"] == "WETH" and created["type"] == "CRYPTO"
    assert created["decimals"] == 18 and created["paused"] is False
    assert created["contractAddress"] == "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    assert created["createdAt"].endswith("Z")
    for reference in (created["id"], "WETH", "weth"):
        got = await client.get(f"{TOKENS}/{reference}")
        assert got.status_code == 200 and await data(got) == created
    await create(client, runtime, symbol="GOLD", name="Gold", type="RWA", decimals=0)
    listed = await client.get(f"{TOKENS}?type=RWA")
    assert [t["symbol"] for t in await data(listed)] == ["GOLD"]
    first = await client.get(f"{TOKENS}?limit=1")
    body = await first.get_json()
    assert [t["symbol"] for t in body["data"]] == ["GOLD"]
    assert body["pagination"]["hasMore"] is True
    rest = await client.get(f"{TOKENS}?limit=100&cursor={body['pagination']['nextCursor']}")
    assert [t["symbol"] for t in await data(rest)] == ["WETH", "USDC"]


async def test_creating_a_token_is_audited(client: Any, runtime: Runtime) -> None:
    created = await data(await create(client, runtime))
    async with runtime.container.storage().unit_of_work(read_only=True) as uow:
        created_by = AuditFilter(action="token.create", actor_id="admin-1")
        (entry,) = await uow.audit.query(created_by, limit=10)
        assert await uow.audit.query(AuditFilter(actor_id="startup"), limit=10) == []
    assert entry.actor_id == "admin-1" and entry.subject == f"token:{created['id']}"
    assert entry.before is None and entry.after["symbol"] == "WETH"


async def test_a_taken_symbol_is_409(client: Any, runtime: Runtime) -> None:
    assert (await create(client, runtime)).status_code == 201
    response = await create(client, runtime, name="Another")
    assert response.status_code == 409
    assert (await error(response))["code"] == "token_symbol_taken"
    usdc = await create(client, runtime, symbol="USDC", type="STABLE", decimals=6)
    assert (await error(usdc))["code"] == "token_symbol_taken"


async def test_order_of_checks_on_create(client: Any, runtime: Runtime) -> None:
    bad = {"symbol": "x"}
    nobody = await client.post(TOKENS, json=bad)
    assert nobody.status_code == 401
    text = await client.post(TOKENS, data="symbol=x", headers={"Content-Type": "text/plain"})
    assert text.status_code == 401  # authentication before the media type
    trader = await client.post(TOKENS, json=bad, headers=bearer(runtime, "t-1", "trader"))
    assert trader.status_code == 403
    as_text = await client.post(
        TOKENS, data="x", headers={**admin(runtime), "Content-Type": "text/plain"}
    )
    assert as_text.status_code == 415
    body = await client.post(TOKENS, json=bad, headers=admin(runtime))
    assert body.status_code == 422


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"symbol": "usd"}, "symbol"),
        ({"symbol": "A"}, "symbol"),
        ({"symbol": "WETH\n"}, "symbol"),
        ({"symbol": 12}, "symbol"),
        ({"decimals": 37}, "decimals"),
        ({"decimals": -1}, "decimals"),
        ({"decimals": "6"}, "decimals"),
        ({"decimals": True}, "decimals"),
        ({"type": "NFT"}, "type"),
        ({"type": "rwa"}, "type"),
        ({"name": "\u202eevil"}, "name"),
        ({"name": "\u200b \u200b"}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "a\x00b"}, "name"),
        ({"contractAddress": "0x123"}, "contractAddress"),
        ({"contractAddress": "0x5FbDB2315678afecb367f032d93F642f64180aA3"}, "contractAddress"),
        ({"unknown": 1}, "unknown"),
    ],
)
async def test_bad_token_fields_are_422_naming_the_field(
    client: Any, runtime: Runtime, change: dict[str, Any], field: str
) -> None:
    response = await create(client, runtime, **change)
    assert response.status_code == 422
    assert field in (await error(response))["details"]["fields"]
    async with runtime.container.storage().unit_of_work(read_only=True) as uow:
        assert await uow.tokens.by_symbol("WETH") is None


async def test_a_fractional_decimals_is_422(client: Any, runtime: Runtime) -> None:
    response = await client.post(
        TOKENS,
        data='{"symbol": "WETH", "name": "W", "type": "CRYPTO", "decimals": 6.5}',
        headers={**admin(runtime), "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert "decimals" in (await error(response))["details"]["fields"]


async def test_unknown_tokens_and_bad_queries(client: Any, runtime: Runtime) -> None:
    missing = await client.get(f"{TOKENS}/NOPE")
    assert missing.status_code == 404
    assert (await error(missing))["code"] == "token_not_found"
    long = await client.get(f"{TOKENS}/{'A' * 101}")
    assert long.status_code == 422
    for query in ("type=NFT", "limit=0", "limit=x", "cursor=%00"):
        response = await client.get(f"{TOKENS}?{query}")
        assert response.status_code == 422, query


# -- balances ----------------------------------------------------------------------------------


async def _fund(runtime: Runtime, user: str, token_id: str, amount: int, locked: int = 0) -> None:
    account = AccountRef.user(user, token_id)
    async with runtime.container.storage().unit_of_work() as uow:
        await uow.ledger.apply(mint(f"test-mint-{user}-{token_id}", NOW, account, amount))
        if locked:
            await uow.ledger.apply(lock_funds(f"test-lock-{user}-{token_id}", NOW, account, locked))
        await uow.commit()


async def test_balances_in_exact_whole_tokens(client: Any, runtime: Runtime) -> None:
    usdc = await data(await client.get(f"{TOKENS}/USDC"))
    weth = await data(await create(client, runtime))
    await _fund(runtime, "t-1", usdc["id"], 1_500_000, locked=250_001)
    await _fund(runtime, "t-1", weth["id"], 10**18 + 1)
    mine = bearer(runtime, "t-1", "trader")
    response = await client.get(f"{TOKENS}/balances/t-1", headers=mine)
    assert response.status_code == 200
    assert await data(response) == [
        {
            "tokenId": usdc["id"],
            "symbol": "USDC",
            "decimals": 6,
            "available": "1.249999",
            "locked": "0.250001",
            "total": "1.5",
        },
        {
            "tokenId": weth["id"],
            "symbol": "WETH",
            "decimals": 18,
            "available": "1.000000000000000001",
            "locked": "0",
            "total": "1.000000000000000001",
        },
    ]
    one = await client.get(f"{TOKENS}/balances/t-1/usdc", headers=mine)
    assert (await data(one))["total"] == "1.5"
    by_admin = await client.get(f"{TOKENS}/balances/t-1/{weth['id']}", headers=admin(runtime))
    assert (await data(by_admin))["available"] == "1.000000000000000001"


async def test_balance_reads_refusals(client: Any, runtime: Runtime) -> None:
    mine = bearer(runtime, "t-1", "trader")
    assert await data(await client.get(f"{TOKENS}/balances/t-1", headers=mine)) == []
    zero = await data(await client.get(f"{TOKENS}/balances/t-1/USDC", headers=mine))
    assert zero["available"] == zero["locked"] == zero["total"] == "0"
    assert (await client.get(f"{TOKENS}/balances/t-1")).status_code == 401
    other = await client.get(f"{TOKENS}/balances/t-2", headers=mine)
    assert other.status_code == 403
    other_one = await client.get(f"{TOKENS}/balances/t-2/NOPE", headers=mine)
    assert other_one.status_code == 403  # permission before existence
    no_role = await client.get(f"{TOKENS}/balances/t-1", headers=bearer(runtime, "t-1", "x"))
    assert no_role.status_code == 403
    unknown_user = await client.get(f"{TOKENS}/balances/ghost", headers=admin(runtime))
    assert unknown_user.status_code == 404
    assert (await error(unknown_user))["code"] == "user_not_found"
    unknown_token = await client.get(f"{TOKENS}/balances/t-1/NOPE", headers=mine)
    assert (await error(unknown_token))["code"] == "token_not_found"
    bad_user = await client.get(f"{TOKENS}/balances/@fee", headers=admin(runtime))
    assert bad_user.status_code == 422
    assert "userId" in (await error(bad_user))["details"]["fields"]


# -- compliance --------------------------------------------------------------------------------


async def set_compliance(
    client: Any, runtime: Runtime, user: str, body: dict[str, Any], headers: Any = None
) -> Any:
    return await client.post(
        f"{TOKENS}/compliance/{user}", json=body, headers=headers or admin(runtime)
    )


async def test_set_and_read_compliance(client: Any, runtime: Runtime) -> None:
    response = await set_compliance(client, runtime, "t-1", APPROVED)
    assert response.status_code == 200
    record = await data(response)
    assert record == {
        "userId": "t-1",
        "tokenId": None,
        "kycStatus": "APPROVED",
        "whitelisted": True,
        "accredited": True,
        "jurisdiction": "PT",
        "expiresAt": "2099-12-31T23:59:59Z",
        "createdAt": record["createdAt"],
        "updatedAt": record["updatedAt"],
        "updatedBy": "admin-1",
        "version": 1,
    }
    gold = await data(await create(client, runtime, symbol="GOLD", type="RWA", decimals=0))
    specific = await data(
        await set_compliance(client, runtime, "t-1", {**APPROVED, "tokenId": "GOLD"})
    )
    assert specific["tokenId"] == gold["id"]
    changed = await data(
        await set_compliance(client, runtime, "t-1", {**APPROVED, "kycStatus": "REJECTED"})
    )
    assert changed["version"] == 2 and changed["createdAt"] == record["createdAt"]
    own = await client.get(f"{TOKENS}/compliance/t-1", headers=bearer(runtime, "t-1", "trader"))
    assert [r["tokenId"] for r in await data(own)] == [None, gold["id"]]
    assert (await data(own))[0]["kycStatus"] == "REJECTED"


async def test_a_compliance_change_is_audited_and_published_in_its_transaction(
    client: Any, runtime: Runtime
) -> None:
    await set_compliance(client, runtime, "t-1", APPROVED)
    await set_compliance(client, runtime, "t-1", {**APPROVED, "whitelisted": False})
    async with runtime.container.storage().unit_of_work(read_only=True) as uow:
        entries = await uow.audit.query(AuditFilter(action="compliance.update"), limit=10)
        history = await uow.events.for_aggregate("user:t-1")
    newest, oldest = entries
    assert oldest.before is None and oldest.after["whitelisted"] is True
    assert newest.before == oldest.after
    assert newest.after["whitelisted"] is False and newest.after["version"] == 2
    assert newest.subject == "user:t-1" and newest.actor_id == "admin-1"
    assert [(e.type, e.stream, e.seq) for e in history] == [
        ("compliance.changed", "user:t-1", 1),
        ("compliance.changed", "user:t-1", 2),
    ]
    assert history[1].metadata["record"]["whitelisted"] is False
    assert history[1].metadata["previous"]["whitelisted"] is True


async def test_order_of_checks_on_set_compliance(client: Any, runtime: Runtime) -> None:
    url = f"{TOKENS}/compliance/t-1"
    assert (await client.post(url, json={})).status_code == 401
    trader = bearer(runtime, "t-1", "trader")
    assert (await client.post(url, json={}, headers=trader)).status_code == 403
    empty = await client.post(url, json={}, headers=admin(runtime))
    assert empty.status_code == 422
    assert set((await error(empty))["details"]["fields"]) >= {"kycStatus", "expiresAt"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kycStatus": "OK"}, "kycStatus"),
        ({"kycStatus": "approved"}, "kycStatus"),
        ({"whitelisted": "yes"}, "whitelisted"),
        ({"accredited": 1}, "accredited"),
        ({"jurisdiction": "XK"}, "jurisdiction"),
        ({"jurisdiction": "UK"}, "jurisdiction"),
        ({"jurisdiction": "pt"}, "jurisdiction"),
        ({"jurisdiction": "PRT"}, "jurisdiction"),
        ({"expiresAt": "2099-02-30T00:00:00Z"}, "expiresAt"),
        ({"expiresAt": "2099-12-31T00:00:00+02:00"}, "expiresAt"),
        ({"expiresAt": "2099-12-31"}, "expiresAt"),
        ({"expiresAt": 4102444800}, "expiresAt"),
        ({"tokenId": "\u202eGOLD"}, "tokenId"),
        ({"tokenId": " "}, "tokenId"),
        ({"extra": True}, "extra"),
    ],
)
async def test_bad_compliance_fields_are_422_naming_the_field(
    client: Any, runtime: Runtime, change: dict[str, Any], field: str
) -> None:
    response = await set_compliance(client, runtime, "t-1", {**APPROVED, **change})
    assert response.status_code == 422
    assert field in (await error(response))["details"]["fields"]
    async with runtime.container.storage().unit_of_work(read_only=True) as uow:
        assert await uow.compliance.for_user("t-1") == []
        assert await uow.audit.query(AuditFilter(action="compliance.update"), limit=1) == []


async def test_compliance_not_found_and_permission(client: Any, runtime: Runtime) -> None:
    unknown_token = await set_compliance(client, runtime, "t-1", {**APPROVED, "tokenId": "NOPE"})
    assert unknown_token.status_code == 404
    assert (await error(unknown_token))["code"] == "token_not_found"
    ghost = await client.get(f"{TOKENS}/compliance/ghost", headers=admin(runtime))
    assert ghost.status_code == 404 and (await error(ghost))["code"] == "user_not_found"
    mine = bearer(runtime, "t-1", "trader")
    assert await data(await client.get(f"{TOKENS}/compliance/t-1", headers=mine)) == []
    other = await client.get(f"{TOKENS}/compliance/t-2", headers=mine)
    assert other.status_code == 403
    bad_user = await set_compliance(client, runtime, "@system", APPROVED)
    assert bad_user.status_code == 422


# -- require_compliant: what mint, transfer, order and withdraw call ---------------------------


async def _market_token(client: Any, runtime: Runtime) -> Token:
    body = {
        "name": "Harbour View Offices",
        "assetType": "real_estate",
        "tokenSymbol": "HVO",
        "tokenName": "Harbour View Offices Token",
        "totalSupply": "1000",
        "accreditedInvestorsOnly": True,
        "allowedCountries": ["PT", "ES"],
        "assetDetails": {"valuation": "1000000", "currency": "EUR"},
    }
    response = await client.post(
        "/api/v1/markets/register", json=body, headers=bearer(runtime, "issuer-1", "issuer")
    )
    assert response.status_code == 201, await response.get_json()
    market_id = (await data(response))["market"]["id"]
    token = Token(
        symbol="HVO",
        name="Harbour View Offices Token",
        type=TokenType.RWA,
        decimals=18,
        market_id=market_id,
        created_at=NOW,
    )
    async with runtime.container.storage().unit_of_work() as uow:
        await uow.tokens.add(token)
        await uow.commit()
    return token


async def _check(runtime: Runtime, user: str, token: Token, now: datetime = NOW) -> str:
    async with runtime.container.storage().unit_of_work(read_only=True) as uow:
        try:
            await require_compliant(uow, user, token, now)
        except ComplianceDenied as denied:
            return denied.code
    return "ok"


async def test_require_compliant_follows_records_and_market_rules(
    client: Any, runtime: Runtime
) -> None:
    token = await _market_token(client, runtime)
    assert await _check(runtime, "t-1", token) == "kyc_not_approved"
    await set_compliance(client, runtime, "t-1", {**APPROVED, "jurisdiction": "US"})
    assert await _check(runtime, "t-1", token) == "country_not_allowed"
    await set_compliance(client, runtime, "t-1", {**APPROVED, "accredited": False})
    assert await _check(runtime, "t-1", token) == "not_accredited"
    await set_compliance(client, runtime, "t-1", {**APPROVED, "tokenId": "HVO"})
    assert await _check(runtime, "t-1", token) == "ok"  # the token's own record wins
    soon = (NOW + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    await set_compliance(client, runtime, "t-1", {**APPROVED, "tokenId": "HVO", "expiresAt": soon})
    assert await _check(runtime, "t-1", token) == "ok"
    assert await _check(runtime, "t-1", token, NOW + timedelta(hours=2)) == "compliance_expired"
    usdc = await runtime.container.quote_token_setup().ensure()
    assert await _check(runtime, "nobody", usdc) == "ok"  # the stablecoin needs no record
