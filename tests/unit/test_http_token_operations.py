"""Mint, transfer and withdrawal endpoints over HTTP on the test profile (memory storage,
memory chain): statuses and codes, exact whole-token amounts, and that every refused
request leaves no mint, no posting and no lock behind."""

from __future__ import annotations

import os
from typing import Any

import pytest

import cli
from bootstrap import Runtime
from core.ports.audit import AuditFilter
from core.ports.chain import TokenCall, TokenCallKind
from tests.unit.conftest import bearer

API = "/api/v1"
TO = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"  # an outside address
# index 0 and index 1 of the development mnemonic: the platform's own, alice's deposit address
PLATFORM_INDEX_0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
ALICE_DEPOSIT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
APPROVED = {
    "kycStatus": "APPROVED",
    "whitelisted": True,
    "accredited": True,
    "jurisdiction": "PT",
    "expiresAt": "2099-12-31T23:59:59Z",
}


def admin(runtime: Runtime) -> dict[str, str]:
    return bearer(runtime, "admin-1", "admin")


def trader(runtime: Runtime, sub: str = "alice") -> dict[str, str]:
    return bearer(runtime, sub, "trader")


async def body(response: Any) -> Any:
    return await response.get_json()


async def setup(client: Any, runtime: Runtime) -> str:
    """A stablecoin of ours on the memory chain, registered as USDX; alice and bob known."""
    chain = runtime.container.chain()
    async with chain.signing_lock:
        prepared = await chain.prepare_stablecoin("Dollar X", "USDX")
        await chain.execute(prepared)
    created = await client.post(
        f"{API}/tokens",
        json={
            "symbol": "USDX",
            "name": "Dollar X",
            "type": "STABLE",
            "decimals": 6,
            "contractAddress": prepared.contract_address,
        },
        headers=admin(runtime),
    )
    assert created.status_code == 201
    for user in ("alice", "bob"):
        saved = await client.post(
            f"{API}/tokens/compliance/{user}", json=APPROVED, headers=admin(runtime)
        )
        assert saved.status_code == 200
    return str((await body(created))["data"]["id"])


async def mint(client: Any, runtime: Runtime, user: str, amount: Any, key: str) -> Any:
    return await client.post(
        f"{API}/tokens/USDX/mint",
        json={"userId": user, "amount": amount},
        headers={**admin(runtime), "Idempotency-Key": key},
    )


async def balance(client: Any, runtime: Runtime, user: str) -> dict[str, str]:
    response = await client.get(f"{API}/tokens/balances/{user}/USDX", headers=admin(runtime))
    found: dict[str, str] = (await body(response))["data"]
    return {"available": found["available"], "locked": found["locked"]}


async def actions(runtime: Runtime) -> list[str]:
    async with runtime.container.storage().unit_of_work(read_only=True) as uow:
        entries = await uow.audit.query(AuditFilter(), limit=100)
    return [e.action for e in reversed(entries)]


async def settle(runtime: Runtime) -> None:
    await runtime.container.jobs().join(5)


# -- mint --------------------------------------------------------------------------------------


async def test_a_mint_is_accepted_then_completed(client: Any, runtime: Runtime) -> None:
    await setup(client, runtime)
    response = await mint(client, runtime, "alice", "12.5", "key-1")
    assert response.status_code == 202
    accepted = (await body(response))["data"]
    assert accepted["amount"] == "12.5" and accepted["status"] in ("PENDING", "COMPLETED")
    await settle(runtime)
    read = await client.get(f"{API}/tokens/USDX/mints/{accepted['id']}", headers=admin(runtime))
    done = (await body(read))["data"]
    assert done["status"] == "COMPLETED" and done["txHash"].startswith("0x")
    assert done["error"] is None
    assert await balance(client, runtime, "alice") == {"available": "12.5", "locked": "0"}

    again = await mint(client, runtime, "alice", "12.50", "key-1")
    assert again.status_code == 202 and (await body(again))["data"]["id"] == accepted["id"]
    other = await mint(client, runtime, "alice", "13", "key-1")
    assert other.status_code == 409
    assert (await body(other))["error"]["code"] == "idempotency_key_reused"
    await settle(runtime)
    assert await balance(client, runtime, "alice") == {"available": "12.5", "locked": "0"}
    missing = await client.get(f"{API}/tokens/USDX/mints/nope", headers=admin(runtime))
    assert missing.status_code == 404
    assert (await body(missing))["error"]["code"] == "mint_not_found"


@pytest.mark.parametrize(
    ("amount", "field"),
    [
        ("1.0000001", "amount"),
        ("0", "amount"),
        ("-1", "amount"),
        (1.5, "amount"),
        ("1e3", "amount"),
    ],
)
async def test_bad_mint_amounts_are_422(
    client: Any, runtime: Runtime, amount: Any, field: str
) -> None:
    await setup(client, runtime)
    before = await actions(runtime)
    response = await mint(client, runtime, "alice", amount, "k")
    assert response.status_code == 422
    assert field in str((await body(response))["error"]["details"])
    assert await actions(runtime) == before
    assert await balance(client, runtime, "alice") == {"available": "0", "locked": "0"}


async def test_mint_refusals(client: Any, runtime: Runtime) -> None:
    await setup(client, runtime)
    no_key = await client.post(
        f"{API}/tokens/USDX/mint", json={"userId": "alice", "amount": "1"}, headers=admin(runtime)
    )
    assert no_key.status_code == 422
    assert "Idempotency-Key" in str((await body(no_key))["error"]["details"])
    anonymous = await client.post(f"{API}/tokens/USDX/mint", json={"userId": "a", "amount": "1"})
    assert anonymous.status_code == 401
    as_trader = await client.post(
        f"{API}/tokens/USDX/mint",
        json={"userId": "alice", "amount": "1"},
        headers={**trader(runtime), "Idempotency-Key": "k"},
    )
    assert as_trader.status_code == 403
    stranger = await mint(client, runtime, "stranger", "1", "k2")
    assert stranger.status_code == 404
    assert (await body(stranger))["error"]["code"] == "user_not_found"
    unknown = await client.post(
        f"{API}/tokens/NOPE/mint",
        json={"userId": "alice", "amount": "1"},
        headers={**admin(runtime), "Idempotency-Key": "k3"},
    )
    assert unknown.status_code == 404
    assert (await body(unknown))["error"]["code"] == "token_not_found"
    not_on_chain = await client.post(
        f"{API}/tokens/USDC/mint",
        json={"userId": "alice", "amount": "1"},
        headers={**admin(runtime), "Idempotency-Key": "k4"},
    )
    assert not_on_chain.status_code == 409  # the quote token has no contract on this chain
    assert (await body(not_on_chain))["error"]["code"] == "token_not_on_chain"
    assert "token.mint" not in await actions(runtime)


# -- transfer ----------------------------------------------------------------------------------


async def test_transfers_and_their_refusals(client: Any, runtime: Runtime) -> None:
    await setup(client, runtime)
    await mint(client, runtime, "alice", "10", "k")
    await settle(runtime)
    sent = await client.post(
        f"{API}/tokens/USDX/transfer",
        json={"toUserId": "bob", "amount": "2.25"},
        headers=trader(runtime),
    )
    assert sent.status_code == 200
    moved = (await body(sent))["data"]
    assert moved["status"] == "COMPLETED" and moved["fromUserId"] == "alice"
    assert moved["amount"] == "2.25"
    assert await balance(client, runtime, "bob") == {"available": "2.25", "locked": "0"}

    refusals = [
        ({"toUserId": "alice", "amount": "1"}, trader(runtime), 422, "self_transfer"),
        ({"toUserId": "bob", "amount": "100"}, trader(runtime), 409, "insufficient_funds"),
        ({"toUserId": "ghost", "amount": "1"}, trader(runtime), 404, "user_not_found"),
        ({"toUserId": "bob", "amount": 1.5}, trader(runtime), 422, "validation_failed"),
        ({"toUserId": "bob", "amount": "0.0000001"}, trader(runtime), 422, "invalid_amount"),
        (
            {"toUserId": "alice", "amount": "1", "fromUserId": "bob"},
            trader(runtime, "carol"),
            403,
            None,
        ),
    ]
    for payload, headers, status, code in refusals:
        response = await client.post(f"{API}/tokens/USDX/transfer", json=payload, headers=headers)
        assert response.status_code == status, payload
        if code is not None:
            assert (await body(response))["error"]["code"] == code, payload
    assert await balance(client, runtime, "alice") == {"available": "7.75", "locked": "0"}
    assert await balance(client, runtime, "bob") == {"available": "2.25", "locked": "0"}
    by_admin = await client.post(
        f"{API}/tokens/USDX/transfer",
        json={"toUserId": "alice", "amount": "0.25", "fromUserId": "bob"},
        headers=admin(runtime),
    )
    assert by_admin.status_code == 200
    assert await balance(client, runtime, "bob") == {"available": "2", "locked": "0"}


# -- withdrawals -------------------------------------------------------------------------------


async def test_a_withdrawal_from_request_to_completion(client: Any, runtime: Runtime) -> None:
    await setup(client, runtime)
    await mint(client, runtime, "alice", "10", "k")
    await settle(runtime)
    requested = await client.post(
        f"{API}/withdrawals",
        json={"tokenId": "USDX", "amount": "4", "toAddress": TO.lower()},
        headers=trader(runtime),
    )
    assert requested.status_code == 201
    made = (await body(requested))["data"]
    assert made["status"] == "PENDING_APPROVAL" and made["toAddress"] == TO
    assert await balance(client, runtime, "alice") == {"available": "6", "locked": "4"}

    refused = await client.post(f"{API}/withdrawals/{made['id']}/approve", headers=trader(runtime))
    assert refused.status_code == 403
    approved = await client.post(f"{API}/withdrawals/{made['id']}/approve", headers=admin(runtime))
    assert approved.status_code == 200
    assert (await body(approved))["data"]["status"] == "APPROVED"
    await settle(runtime)
    read = await client.get(f"{API}/withdrawals/{made['id']}", headers=trader(runtime))
    done = (await body(read))["data"]
    assert done["status"] == "COMPLETED" and done["txHash"].startswith("0x")
    assert await balance(client, runtime, "alice") == {"available": "6", "locked": "0"}
    chain = runtime.container.chain()
    async with runtime.container.storage().unit_of_work(read_only=True) as uow:
        token = await uow.tokens.by_symbol("USDX")
    assert token is not None and token.contract_address is not None
    assert await chain.balance_of(token.contract_address, TO) == 4_000_000

    listed = await client.get(f"{API}/users/alice/withdrawals?limit=1", headers=trader(runtime))
    page = await body(listed)
    assert [w["id"] for w in page["data"]] == [made["id"]]
    assert page["pagination"]["hasMore"] is False
    other = await client.get(f"{API}/users/alice/withdrawals", headers=trader(runtime, "bob"))
    assert other.status_code == 403
    again = await client.post(f"{API}/withdrawals/{made['id']}/reject", headers=admin(runtime))
    assert again.status_code == 409
    assert (await body(again))["error"]["code"] == "withdrawal_not_pending"
    assert (await actions(runtime))[-3:] == [
        "withdrawal.request",
        "withdrawal.approve",
        "withdrawal.completed",
    ]


async def test_withdrawal_refusals_leave_no_lock(client: Any, runtime: Runtime) -> None:
    await setup(client, runtime)
    await mint(client, runtime, "alice", "1", "k")
    await settle(runtime)
    cases = [
        ({"tokenId": "USDX", "amount": "1", "toAddress": "0x12"}, 422, "invalid_address"),
        (
            {"tokenId": "USDX", "amount": "1", "toAddress": TO.lower()[:-1] + "G"},
            422,
            "invalid_address",
        ),
        ({"tokenId": "USDX", "amount": "2", "toAddress": TO}, 409, "insufficient_funds"),
        ({"tokenId": "USDX", "amount": "0", "toAddress": TO}, 422, "invalid_amount"),
        ({"tokenId": "NOPE", "amount": "1", "toAddress": TO}, 404, "token_not_found"),
    ]
    omnibus = await runtime.container.chain().custody_address()
    for address in (omnibus, PLATFORM_INDEX_0, ALICE_DEPOSIT, ALICE_DEPOSIT.lower()):
        payload = {"tokenId": "USDX", "amount": "1", "toAddress": address}
        cases.append((payload, 422, "withdrawal_to_platform_address"))
    for payload, status, code in cases:
        response = await client.post(f"{API}/withdrawals", json=payload, headers=trader(runtime))
        assert response.status_code == status, payload
        assert (await body(response))["error"]["code"] == code, payload
    assert await balance(client, runtime, "alice") == {"available": "1", "locked": "0"}
    missing = await client.get(f"{API}/withdrawals/nope", headers=admin(runtime))
    assert missing.status_code == 404
    assert (await body(missing))["error"]["code"] == "withdrawal_not_found"

    requested = await client.post(
        f"{API}/withdrawals",
        json={"tokenId": "USDX", "amount": "1", "toAddress": TO},
        headers=trader(runtime),
    )
    made = (await body(requested))["data"]
    rejected = await client.post(f"{API}/withdrawals/{made['id']}/reject", headers=admin(runtime))
    assert (await body(rejected))["data"]["status"] == "REJECTED"
    assert await balance(client, runtime, "alice") == {"available": "1", "locked": "0"}


async def test_the_new_operations_are_documented(client: Any) -> None:
    document = await (await client.get("/openapi.json")).get_json()
    paths = document["paths"]
    mint_op = paths["/api/v1/tokens/{token}/mint"]["post"]
    assert {"202", "401", "403", "404", "409", "422"} <= set(mint_op["responses"])
    assert any(p["name"].lower() == "idempotency-key" for p in mint_op.get("parameters", []))
    assert "/api/v1/withdrawals/{withdrawal_id}/{decision}" in paths
    assert "/api/v1/users/{user_id}/withdrawals" in paths


async def test_deposits_are_listed_after_a_sync(client: Any, runtime: Runtime) -> None:
    await setup(client, runtime)
    await mint(client, runtime, "alice", "5", "k")
    await settle(runtime)
    c = runtime.container
    alice = await c.chain_mirror().user_address("alice")
    chain = c.chain()
    async with c.storage().unit_of_work(read_only=True) as uow:
        token = await uow.tokens.by_symbol("USDX")
    assert token is not None and token.contract_address is not None
    await chain.call_token(
        TokenCall(TokenCallKind.TRANSFER, token.contract_address, alice, None, 1_500_000)
    )
    await c.deposit_use_cases().sync()
    listed = await client.get(f"{API}/users/alice/deposits", headers=trader(runtime))
    assert listed.status_code == 200
    [deposit] = (await body(listed))["data"]
    assert deposit["amount"] == "1.5" and deposit["status"] == "CREDITED"
    assert deposit["address"] == alice and deposit["logIndex"] == 0
    assert await balance(client, runtime, "alice") == {"available": "6.5", "locked": "0"}
    other = await client.get(f"{API}/users/alice/deposits", headers=trader(runtime, "bob"))
    assert other.status_code == 403


def test_the_reconcile_command_prints_no_drift_on_an_empty_service(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in list(os.environ):
        if name.startswith("RWA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("RWA_PROFILE", "test")
    assert cli.main(["reconcile"]) == 0
    assert "no drift" in capsys.readouterr().out


async def test_the_latest_reconciliation_and_its_drift_are_read_by_admins_only(
    client: Any, runtime: Runtime
) -> None:
    path = f"{API}/reconciliation"
    assert (await client.get(path)).status_code == 401
    assert (await client.get(path, headers=trader(runtime))).status_code == 403
    never = await client.get(path, headers=admin(runtime))
    assert never.status_code == 404 and (await body(never))["error"]["code"] == "not_found"

    await setup(client, runtime)
    await mint(client, runtime, "alice", "5", "k")
    await settle(runtime)
    c = runtime.container
    clean = await c.reconciliation().run()
    assert clean.drifts == []
    ran = await body(await client.get(path, headers=admin(runtime)))
    assert ran["data"]["driftCount"] == 0 and ran["data"]["drifts"] == []
    assert ran["data"]["tokens"] == clean.tokens and ran["data"]["accounts"] == clean.accounts

    # 1.5 USDX minted to the omnibus outside the ledger: the next run drifts by it
    async with c.storage().unit_of_work(read_only=True) as uow:
        token = await uow.tokens.by_symbol("USDX")
    assert token is not None and token.contract_address is not None
    omnibus = await c.chain().custody_address()
    await c.chain().call_token(
        TokenCall(TokenCallKind.MINT, token.contract_address, account=omnibus, amount=1_500_000)
    )
    drifted = await c.reconciliation().run()
    latest = await body(await client.get(path, headers=admin(runtime)))
    assert latest["data"]["at"] != ran["data"]["at"]
    assert latest["data"]["driftCount"] == len(drifted.drifts) == 1
    [drift] = latest["data"]["drifts"]
    assert (drift["symbol"], drift["scope"], drift["owner"]) == ("USDX", "total", "*")
    assert drift["difference"] == "1500000"
    assert int(drift["chain"]) - int(drift["ledger"]) == 1_500_000
    assert "reconcile.completed" in await actions(runtime)
    document = await (await client.get("/openapi.json")).get_json()
    assert {"200", "401", "403", "404"} <= set(document["paths"][path]["get"]["responses"])


async def test_admins_see_every_users_withdrawals_waiting_for_approval(
    client: Any, runtime: Runtime
) -> None:
    await setup(client, runtime)
    for user, key in (("alice", "ka"), ("bob", "kb")):
        await mint(client, runtime, user, "10", key)
    await settle(runtime)
    made = []
    for user, amount in (("alice", "1.5"), ("bob", "2"), ("alice", "3")):
        requested = await client.post(
            f"{API}/withdrawals",
            json={"tokenId": "USDX", "amount": amount, "toAddress": TO},
            headers=trader(runtime, user),
        )
        assert requested.status_code == 201
        made.append((await body(requested))["data"])
    path = f"{API}/withdrawals"
    assert (await client.get(path)).status_code == 401
    assert (await client.get(path, headers=trader(runtime))).status_code == 403
    bad = await client.get(path, query_string={"status": "SENT"}, headers=admin(runtime))
    assert bad.status_code == 422

    first = await body(await client.get(path, query_string={"limit": "2"}, headers=admin(runtime)))
    assert [(w["userId"], w["amount"]) for w in first["data"]] == [("alice", "1.5"), ("bob", "2")]
    assert first["pagination"]["hasMore"] is True
    rest = await body(
        await client.get(
            path,
            query_string={"limit": "2", "cursor": first["pagination"]["nextCursor"]},
            headers=admin(runtime),
        )
    )
    assert [w["id"] for w in rest["data"]] == [made[2]["id"]]
    assert rest["pagination"]["hasMore"] is False

    decided = await client.post(f"{API}/withdrawals/{made[1]['id']}/reject", headers=admin(runtime))
    assert decided.status_code == 200
    left = await body(await client.get(path, headers=admin(runtime)))
    assert [w["id"] for w in left["data"]] == [made[0]["id"], made[2]["id"]]
