"""Per-user limit on order submission: 429 with Retry-After and the error envelope, per user
(not per address), on the memory and the Redis limiter; documented in OpenAPI; 0 turns it off."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

import bootstrap
from adapters.outbound.ratelimit.redis import RedisRateLimiter
from bootstrap import Runtime
from settings import Settings
from tests.unit.conftest import SECRET
from tests.unit.trading_helpers import (
    ETH,
    TRADING,
    USD,
    data,
    error,
    fund,
    make_pair,
    place,
    trader,
)

BUY = {"side": "BUY", "type": "LIMIT", "price": "1000.00", "quantity": "0.010"}


def build(limit: int) -> Runtime:
    return bootstrap.build(
        Settings(
            profile="test",
            jwt_secret=SECRET,
            order_rate_limit=limit,
            order_rate_window_seconds=60,
            http_rate_limit=0,
        )
    )


@pytest.fixture(params=["memory", "redis"])
async def limited(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Runtime, Any]]:
    runtime = build(3)
    if request.param == "redis":
        url: str = request.getfixturevalue("clean_redis_url")
        runtime.container.rate_limiter.override(RedisRateLimiter(url))
    async with runtime.http_app().test_app() as app:
        yield runtime, app.test_client()


async def funded_pair(client: Any, runtime: Runtime) -> dict[str, Any]:
    pair = await make_pair(client, runtime)
    for user in ("alice", "bob"):
        await fund(runtime, user, pair["quoteTokenId"], 1_000_000 * USD)
        await fund(runtime, user, pair["baseTokenId"], 10 * ETH)
    return pair


async def test_the_fourth_order_in_a_window_is_429_for_that_user_only(
    limited: tuple[Runtime, Any],
) -> None:
    runtime, client = limited
    await funded_pair(client, runtime)
    for _ in range(3):
        assert (await place(client, runtime, "alice", **BUY)).status_code == 201
    refused = await place(client, runtime, "alice", **BUY)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 20  # one slot frees every 60/3 s
    body = await error(refused)
    assert body["code"] == "rate_limited"
    assert body["details"]["limit"] == 3 and body["details"]["scope"] == "user"
    assert body["details"]["retryAfterSeconds"] == int(refused.headers["Retry-After"])
    # the refused order was never stored
    orders = await data(
        await client.get(f"{TRADING}/users/alice/orders", headers=trader(runtime, "alice"))
    )
    assert len(orders) == 3
    # another user has a budget of their own; reads are not counted
    assert (await place(client, runtime, "bob", **BUY)).status_code == 201
    books = await client.get(f"{TRADING}/pairs/WETH-USDC/orderbook")
    assert books.status_code == 200
    assert (await place(client, runtime, "alice", **BUY)).status_code == 429


async def test_zero_turns_the_order_limit_off() -> None:
    runtime = build(0)
    async with runtime.http_app().test_app() as app:
        client = app.test_client()
        await funded_pair(client, runtime)
        statuses = [(await place(client, runtime, "alice", **BUY)).status_code for _ in range(6)]
    assert statuses == [201] * 6


async def test_openapi_documents_429_with_retry_after_on_order_submission() -> None:
    runtime = build(3)
    async with runtime.http_app().test_app() as app:
        document = await (await app.test_client().get("/openapi.json")).get_json()
    responses = document["paths"][f"{TRADING}/orders"]["post"]["responses"]
    assert "Retry-After" in responses["429"]["headers"]
    assert "orders from this user" in responses["429"]["description"]
    schema = responses["429"]["content"]["application/json"]["schema"]
    assert "Error" in str(schema)
