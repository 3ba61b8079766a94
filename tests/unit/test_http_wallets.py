"""Wallet endpoints over HTTP on the test profile: the order of checks, each refusal's status
and code, and a registration end to end with a real EIP-191 signature."""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct

from bootstrap import Runtime
from tests.unit.conftest import bearer

KEY = Account.from_key("0x" + "33" * 32)
OTHER = Account.from_key("0x" + "44" * 32)
ACCOUNT_1 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"  # m/44'/60'/0'/0/1, dev mnemonic


def wallet_url(user: str, tail: str = "") -> str:
    return f"/api/v1/users/{user}/wallet{tail}"


def sign(key: Any, message: str) -> str:
    return "0x" + bytes(key.sign_message(encode_defunct(text=message)).signature).hex()


async def challenge(client: Any, runtime: Runtime, user: str) -> dict[str, Any]:
    response = await client.get(
        wallet_url(user, "/challenge"), headers=bearer(runtime, user, "trader")
    )
    assert response.status_code == 200
    data: dict[str, Any] = (await response.get_json())["data"]
    return data


async def register(
    client: Any, runtime: Runtime, user: str, body: dict[str, Any], *, caller: str | None = None
) -> Any:
    return await client.post(
        wallet_url(user), json=body, headers=bearer(runtime, caller or user, "trader")
    )


async def error_code(response: Any) -> str:
    code: str = (await response.get_json())["error"]["code"]
    return code


async def test_a_trader_reads_their_custodial_wallet(client: Any, runtime: Runtime) -> None:
    response = await client.get(wallet_url("t-1"), headers=bearer(runtime, "t-1", "trader"))
    assert response.status_code == 200
    assert (await response.get_json())["data"] == {
        "userId": "t-1",
        "address": ACCOUNT_1,
        "custody": "platform",
        "verifiedOnChain": False,
    }


async def test_auth_then_roles_then_body_then_ownership(client: Any, runtime: Runtime) -> None:
    assert (await client.get(wallet_url("t-1"))).status_code == 401
    assert (await client.post(wallet_url("t-1"), json={})).status_code == 401
    no_role = bearer(runtime, "t-1", "nobody")
    assert (await client.get(wallet_url("t-1"), headers=no_role)).status_code == 403
    assert (await client.post(wallet_url("t-1"), json={}, headers=no_role)).status_code == 403
    # another user's wallet: the body is checked first (422), then ownership (403)
    bad = await register(client, runtime, "t-2", {"address": "nope"}, caller="t-1")
    assert bad.status_code == 422
    bad = await register(
        client, runtime, "t-2", {"address": "0x" + "ab" * 20, "signature": "x"}, caller="t-1"
    )
    assert (bad.status_code, await error_code(bad)) == (422, "invalid_signature")
    good_shape = {"address": KEY.address, "signature": "0x" + "00" * 65}
    forbidden = await register(client, runtime, "t-2", good_shape, caller="t-1")
    assert forbidden.status_code == 403
    read = await client.get(wallet_url("t-2"), headers=bearer(runtime, "t-1", "trader"))
    assert read.status_code == 403
    admin = await client.get(wallet_url("t-2"), headers=bearer(runtime, "adm", "admin"))
    assert admin.status_code == 200


async def test_register_an_external_address(client: Any, runtime: Runtime) -> None:
    data = await challenge(client, runtime, "t-1")
    assert set(data) == {"challengeId", "userId", "message", "expiresAt"}
    assert data["expiresAt"].endswith("Z")
    response = await register(
        client,
        runtime,
        "t-1",
        {"address": KEY.address.lower(), "signature": sign(KEY, data["message"])},
    )
    assert response.status_code == 200
    payload = await response.get_json()
    assert payload["message"] == "External wallet registered"
    assert payload["data"] == {
        "userId": "t-1",
        "address": KEY.address,
        "custody": "external",
        "verifiedOnChain": False,
    }
    read = await client.get(wallet_url("t-1"), headers=bearer(runtime, "t-1", "trader"))
    assert (await read.get_json())["data"]["address"] == KEY.address
    audit = await client.get(
        "/api/v1/audit?action=wallet.register_external", headers=bearer(runtime, "a", "admin")
    )
    (entry,) = (await audit.get_json())["data"]
    assert entry["actorId"] == "t-1" and entry["subject"] == "user:t-1"
    assert entry["before"]["custody"] == "platform"
    assert entry["after"]["address"] == KEY.address


async def test_each_refusal_has_its_code(client: Any, runtime: Runtime) -> None:
    body = {"address": KEY.address, "signature": "0x" + "11" * 65}
    none_yet = await register(client, runtime, "t-1", body)
    assert (none_yet.status_code, await error_code(none_yet)) == (404, "challenge_not_found")
    data = await challenge(client, runtime, "t-1")
    cases = [
        ({"address": "0x123", "signature": body["signature"]}, 422, "invalid_address"),
        (  # a mixed-case address with a wrong EIP-55 checksum
            {"address": KEY.address[:2] + KEY.address[2:].swapcase(), "signature": "0x1"},
            422,
            "invalid_address",
        ),
        ({"address": KEY.address, "signature": "0x" + "zz" * 65}, 422, "invalid_signature"),
        ({"address": KEY.address, "signature": "0x" + "00" * 65}, 422, "invalid_signature"),
        (
            {"address": KEY.address, "signature": sign(OTHER, data["message"])},
            422,
            "signature_mismatch",
        ),
        ({"address": KEY.address}, 422, "validation_failed"),
        ({**body, "extra": 1}, 422, "validation_failed"),
        ({"address": 12, "signature": body["signature"]}, 422, "validation_failed"),
    ]
    for sent, status, code in cases:
        response = await register(client, runtime, "t-1", sent)
        assert (response.status_code, await error_code(response)) == (status, code), sent
    signature = sign(KEY, data["message"])
    first = await register(client, runtime, "t-1", {"address": KEY.address, "signature": signature})
    assert first.status_code == 200
    again = await register(client, runtime, "t-1", {"address": KEY.address, "signature": signature})
    assert (again.status_code, await error_code(again)) == (409, "challenge_used")
    taken_challenge = await challenge(client, runtime, "t-2")
    taken = await register(
        client,
        runtime,
        "t-2",
        {"address": KEY.address, "signature": sign(KEY, taken_challenge["message"])},
    )
    assert (taken.status_code, await error_code(taken)) == (409, "wallet_address_taken")


async def test_routes_are_in_the_openapi_document(client: Any) -> None:
    document = await (await client.get("/openapi.json")).get_json()
    paths = document["paths"]
    wallet = paths["/api/v1/users/{user_id}/wallet"]
    assert {"get", "post"} <= set(wallet)
    assert {"200", "401", "403", "404", "409", "422"} <= set(wallet["post"]["responses"])
    assert "get" in paths["/api/v1/users/{user_id}/wallet/challenge"]
    assert {"200", "401", "403", "422"} <= set(paths["/api/v1/audit"]["get"]["responses"])
