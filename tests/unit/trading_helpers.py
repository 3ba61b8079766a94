"""Helpers of the trading tests: a funded WETH-USDC pair on the test profile."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bootstrap import Runtime
from core.ledger.model import AccountRef, Balance
from core.ledger.operations import mint
from core.shared.ids import new_id
from tests.unit.conftest import bearer

TRADING = "/api/v1/trading"
NOW = datetime.now(UTC)


def admin(runtime: Runtime) -> dict[str, str]:
    return bearer(runtime, "admin-1", "admin")


def trader(runtime: Runtime, user: str) -> dict[str, str]:
    return bearer(runtime, user, "trader")


async def data(response: Any) -> Any:
    body = await response.get_json()
    assert "data" in body, body
    return body["data"]


async def error(response: Any) -> dict[str, Any]:
    body: dict[str, Any] = (await response.get_json())["error"]
    return body


async def make_pair(client: Any, runtime: Runtime, **extra: Any) -> dict[str, Any]:
    """WETH (18 decimals, CRYPTO) against USDC (6): tick 0.01, lot 0.001."""
    created = await client.post(
        "/api/v1/tokens",
        json={"symbol": "WETH", "name": "Wrapped Ether", "type": "CRYPTO", "decimals": 18},
        headers=admin(runtime),
    )
    assert created.status_code == 201, await created.get_json()
    body = {
        "baseToken": "WETH",
        "quoteToken": "USDC",
        "tickSize": "0.01",
        "lotSize": "0.001",
        "minQuantity": "0.001",
        "maxQuantity": "1000",
        "makerFeeBps": 10,
        "takerFeeBps": 20,
    }
    body.update(extra)
    response = await client.post(f"{TRADING}/pairs", json=body, headers=admin(runtime))
    assert response.status_code == 201, await response.get_json()
    pair: dict[str, Any] = await data(response)
    return pair


async def fund(runtime: Runtime, user: str, token_id: str, amount: int) -> None:
    async with runtime.container.storage().unit_of_work() as uow:
        await uow.ledger.apply(
            mint(f"fund:{new_id()}", NOW, AccountRef.user(user, token_id), amount)
        )
        await uow.commit()


async def balance(runtime: Runtime, owner: str, token_id: str) -> Balance:
    async with runtime.container.storage().unit_of_work(read_only=True) as uow:
        return await uow.ledger.balance(AccountRef(token=token_id, owner=owner))


async def totals(runtime: Runtime, token_id: str) -> tuple[int, int]:
    """(sum over accounts, outstanding supply) of a token: equal when conserved."""
    async with runtime.container.storage().unit_of_work(read_only=True) as uow:
        total = await uow.ledger.total(token_id)
        supply = await uow.ledger.supply(token_id)
    return total.available + total.locked, supply.outstanding


async def place(client: Any, runtime: Runtime, user: str, **order: Any) -> Any:
    body = {"tradingPairId": "WETH-USDC", "timeInForce": "GTC", **order}
    return await client.post(f"{TRADING}/orders", json=body, headers=trader(runtime, user))


ETH = 10**18
USD = 10**6


async def assert_no_trace(
    client: Any, runtime: Runtime, pair: dict[str, Any], user: str = "alice"
) -> None:
    """What refused input must leave: nothing of ``user``'s locked, an empty book, no live
    order."""
    for token in (pair["baseTokenId"], pair["quoteTokenId"]):
        assert (await balance(runtime, user, token)).locked == 0
    book = await data(await client.get(f"{TRADING}/pairs/{pair['id']}/orderbook"))
    assert book["bids"] == [] and book["asks"] == []
    mine = await data(
        await client.get(f"{TRADING}/users/{user}/orders", headers=trader(runtime, user))
    )
    assert all(o["status"] in ("REJECTED", "CANCELLED", "EXPIRED") for o in mine), mine
