"""Registering an external address re-runs verify-compliance (on the test profile, over
HTTP): the outbox reaction to ``wallet.external_registered`` queues the job, the new address
is registered and verified in the identity registry of the RWA token the user is compliant
for, and an RWA withdrawal to that address succeeds on chain."""

from __future__ import annotations

from typing import Any

from bootstrap import Runtime
from tests.unit.conftest import bearer
from tests.unit.test_activation_pair import activated, settle
from tests.unit.test_http_wallets import KEY, challenge, register, sign, wallet_url

API = "/api/v1"
APPROVED = {
    "kycStatus": "APPROVED",
    "whitelisted": True,
    "accredited": True,
    "jurisdiction": "PT",
    "expiresAt": "2099-12-31T23:59:59Z",
}


async def data(response: Any) -> Any:
    found = await response.get_json()
    assert response.status_code < 300, found
    return found["data"]


async def test_an_external_address_is_verified_on_chain_and_receives_a_withdrawal(
    client: Any, runtime: Runtime
) -> None:
    market = await activated(client, runtime, tokenSymbol="EXTW")
    token = market["contractAddress"]
    chain = runtime.container.chain()
    admin = bearer(runtime, "adm", "admin")
    for user in ("iss-pair", "alice"):  # the issuer holds the supply; alice will receive
        await data(
            await client.post(f"{API}/tokens/compliance/{user}", json=APPROVED, headers=admin)
        )
    await settle(runtime)
    assert not await chain.is_verified(token, KEY.address)

    issued = await challenge(client, runtime, "alice")
    signature = sign(KEY, issued["message"])
    await data(
        await register(client, runtime, "alice", {"address": KEY.address, "signature": signature})
    )
    await settle(runtime)  # the event relayed, verify-compliance run
    assert await chain.is_verified(token, KEY.address)
    wallet = await data(
        await client.get(wallet_url("alice"), headers=bearer(runtime, "alice", "trader"))
    )
    assert (wallet["address"], wallet["custody"], wallet["verifiedOnChain"]) == (
        KEY.address,
        "external",
        True,
    )

    issuer = bearer(runtime, "iss-pair", "issuer")
    requested = await data(
        await client.post(
            f"{API}/withdrawals",
            json={"tokenId": "EXTW", "amount": "25", "toAddress": KEY.address},
            headers=issuer,
        )
    )
    await data(await client.post(f"{API}/withdrawals/{requested['id']}/approve", headers=admin))
    await settle(runtime)
    done = await data(await client.get(f"{API}/withdrawals/{requested['id']}", headers=admin))
    assert done["status"] == "COMPLETED", done
    assert await chain.balance_of(token, KEY.address) == 25 * 10**18
