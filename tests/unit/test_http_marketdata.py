"""Market data over HTTP on the test profile: two traders funded through the API trade on an
activated market's pair, the aggregate-candles reaction folds the trades, and the stats and
candles routes answer them exactly; bad queries are 422, an unknown pair 404."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from dependency_injector import providers

import bootstrap
from bootstrap import Runtime
from core.markets.stablecoin import EmbeddedStablecoin
from core.ports.clock import Clock
from settings import Settings
from tests.unit.conftest import SECRET, bearer
from tests.unit.test_activation_pair import activated, settle

TRADING = "/api/v1/trading"
SELLER, BUYER = "md-seller", "md-buyer"


class SetClock(Clock):
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


@pytest.fixture
def clock() -> SetClock:
    return SetClock(datetime(2026, 11, 23, 10, 0, 5, tzinfo=UTC))


@pytest.fixture
def runtime(clock: SetClock) -> Runtime:
    """The test profile with the test's clock, and the quote token USDC on the memory chain
    (the embedded stablecoin, deployed once at start) so that it can be minted."""
    settings = Settings(profile="test", jwt_secret=SECRET, deploy_backoff_seconds=0.01)
    built = bootstrap.build(settings)
    c = built.container
    c.clock.override(providers.Object(clock))
    c.embedded_stablecoin.override(
        providers.Singleton(EmbeddedStablecoin, c.storage, c.chain, c.clock, symbol="USDC")
    )
    return built


async def ok(response: Any, *statuses: int) -> Any:
    body = await response.get_json()
    assert response.status_code in (statuses or (200,)), body
    return body["data"]


async def fund(client: Any, runtime: Runtime) -> None:
    """KYC for both traders, 10 tokens from the issuer to the seller (a transfer), 1000 USDC
    minted to the buyer (the mint use case)."""
    admin = bearer(runtime, "adm", "admin")
    record = {
        "kycStatus": "APPROVED",
        "whitelisted": True,
        "accredited": True,
        "jurisdiction": "US",
        "expiresAt": "2099-12-31T00:00:00Z",
    }
    for user in ("iss-pair", SELLER, BUYER):
        await ok(
            await client.post(f"/api/v1/tokens/compliance/{user}", json=record, headers=admin),
            200,
            201,
        )
    await ok(
        await client.post(
            "/api/v1/tokens/MDX/transfer",
            json={"toUserId": SELLER, "amount": "10"},
            headers=bearer(runtime, "iss-pair", "issuer"),
        ),
        200,
        201,
    )
    await ok(
        await client.post(
            "/api/v1/tokens/USDC/mint",
            json={"userId": BUYER, "amount": "1000"},
            headers={**admin, "Idempotency-Key": "md-buyer-usdc"},
        ),
        202,
    )
    await settle(runtime)
    for user, token, amount in ((SELLER, "MDX", "10"), (BUYER, "USDC", "1000")):
        got = await ok(await client.get(f"/api/v1/tokens/balances/{user}/{token}", headers=admin))
        assert got["available"] == amount, got


async def trade(client: Any, runtime: Runtime, price: str, quantity: str) -> None:
    """The seller rests a limit sell, the buyer takes it whole."""
    for user, side in ((SELLER, "SELL"), (BUYER, "BUY")):
        order = await ok(
            await client.post(
                f"{TRADING}/orders",
                json={
                    "tradingPairId": "MDX-USDC",
                    "side": side,
                    "type": "LIMIT",
                    "price": price,
                    "quantity": quantity,
                },
                headers=bearer(runtime, user, "trader"),
            ),
            201,
        )
        assert order["status"] == ("OPEN" if side == "SELL" else "FILLED"), order


async def folded(client: Any, runtime: Runtime, volume: str) -> dict[str, Any]:
    """The pair's stats once the relay has handed every trade to aggregate-candles."""
    for _ in range(100):
        await runtime.container.relay().pump()
        stats: dict[str, Any] = await ok(await client.get(f"{TRADING}/pairs/MDX-USDC/stats"))
        if stats["volume"] == volume:
            return stats
        await asyncio.sleep(0.02)
    raise AssertionError(f"the trades never reached the stats: {stats}")


async def test_two_traders_trade_and_stats_and_candles_show_it_exactly(
    client: Any, runtime: Runtime, clock: SetClock
) -> None:
    await activated(client, runtime, tokenSymbol="MDX", tickSize="0.01", lotSize="1")
    pair = await ok(await client.get(f"{TRADING}/pairs/MDX-USDC"))
    never = await ok(await client.get(f"{TRADING}/pairs/MDX-USDC/stats"))
    assert never == {
        "open": None,
        "high": None,
        "low": None,
        "last": None,
        "volume": "0",
        "quoteVolume": "0.00",
        "changePercent": None,
    }
    await fund(client, runtime)

    clock.at = datetime(2026, 11, 23, 10, 1, 10, tzinfo=UTC)
    await trade(client, runtime, "100.50", "2")
    clock.at = datetime(2026, 11, 23, 10, 3, 20, tzinfo=UTC)
    await trade(client, runtime, "101.25", "1")
    clock.at = datetime(2026, 11, 23, 10, 5, tzinfo=UTC)

    stats = await folded(client, runtime, "3")
    # quote volume 2 x 100.50 + 1 x 101.25; change (101.25 - 100.50) / 100.50 = 0.746...%
    assert stats == {
        "open": "100.50",
        "high": "101.25",
        "low": "100.50",
        "last": "101.25",
        "volume": "3",
        "quoteVolume": "302.25",
        "changePercent": "0.75",
    }
    everything = await ok(await client.get(f"{TRADING}/stats"))
    assert everything == [{"pair": pair["id"], "symbol": "MDX-USDC", **stats}]

    base = f"{TRADING}/pairs/MDX-USDC/candles"
    minutes = await ok(await client.get(f"{base}?interval=1m"))
    assert minutes == [
        {
            "openTime": "2026-11-23T10:01:00.000Z",
            "open": "100.50",
            "high": "100.50",
            "low": "100.50",
            "close": "100.50",
            "volume": "2",
        },
        {
            "openTime": "2026-11-23T10:03:00.000Z",
            "open": "101.25",
            "high": "101.25",
            "low": "101.25",
            "close": "101.25",
            "volume": "1",
        },
    ]
    five = await ok(await client.get(f"{base}?interval=5m"))
    assert five == [
        {
            "openTime": "2026-11-23T10:00:00.000Z",
            "open": "100.50",
            "high": "101.25",
            "low": "100.50",
            "close": "101.25",
            "volume": "3",
        }
    ]
    # from/to bound openTime, inclusive; the symbol in any case and the pair id both work
    later = await ok(
        await client.get(
            f"{TRADING}/pairs/{pair['id']}/candles?interval=1m"
            "&from=2026-11-23T10:02:00Z&to=2026-11-23T11:03:00%2B01:00"
        )
    )
    assert [c["openTime"] for c in later] == ["2026-11-23T10:03:00.000Z"]
    newest = await ok(await client.get(f"{base.lower()}?interval=1m&limit=1"))
    assert newest == minutes[1:]
    assert await ok(await client.get(f"{base}?interval=1h&to=2026-11-23T09:59:59Z")) == []

    # a day later the window is empty: prices are the last one, volumes 0
    clock.at = datetime(2026, 11, 24, 10, 5, tzinfo=UTC)
    quiet = await ok(await client.get(f"{TRADING}/pairs/MDX-USDC/stats"))
    assert quiet == {
        "open": "101.25",
        "high": "101.25",
        "low": "101.25",
        "last": "101.25",
        "volume": "0",
        "quoteVolume": "0.00",
        "changePercent": "0.00",
    }


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("", "interval"),
        ("?interval=2m", "interval"),
        ("?interval=1M", "interval"),
        ("?interval=1m&from=2026-11-23T10:05:00Z&to=2026-11-23T10:00:00Z", "from"),
        ("?interval=1m&from=yesterday", "from"),
        ("?interval=1m&from=2026-11-23T10:00:00", "from"),  # no zone
        ("?interval=1m&to=0001-01-01T00:00:00%2B01:00", "to"),
        ("?interval=1m&from=" + "2" * 41, "from"),
        ("?interval=1m&limit=0", "limit"),
        ("?interval=1m&limit=1001", "limit"),
        ("?interval=1m&interval=5m", "interval"),
    ],
)
async def test_bad_candle_queries_are_422_naming_the_field(
    client: Any, runtime: Runtime, query: str, field: str
) -> None:
    response = await client.get(f"{TRADING}/pairs/NOPE-USDC/candles{query}")
    assert response.status_code == 422, await response.get_json()
    error = (await response.get_json())["error"]
    assert field in error["details"]["fields"], error


async def test_unknown_pairs_are_404(client: Any) -> None:
    for path in ("stats", "candles?interval=1d"):
        response = await client.get(f"{TRADING}/pairs/NOPE-USDC/{path}")
        assert response.status_code == 404, await response.get_json()
        assert (await response.get_json())["error"]["code"] == "pair_not_found"
    assert (await (await client.get(f"{TRADING}/stats")).get_json())["data"] == []
