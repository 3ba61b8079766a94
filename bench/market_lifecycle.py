"""Benchmark: register → approve → deployed, through the use cases on a chosen profile.

Run: .venv/bin/python bench/market_lifecycle.py [--profile embedded|test] [--markets N]
Prints one JSON line: medians and p95 of each step in milliseconds, and markets per second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import bootstrap
from core.markets.model import MarketStatus
from core.markets.registration import RegisterMarket
from core.shared.events import Actor, DomainEvent
from settings import Settings

ISSUER = Actor(id="bench-issuer", roles=("issuer",))
ADMIN = Actor(id="bench-admin", roles=("admin",))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


async def run(profile: str, markets: int, data_dir: Path) -> dict[str, object]:
    settings = Settings(profile=profile, data_dir=data_dir, jwt_secret="bench-" + "x" * 40)
    bootstrap.migrate(settings)
    runtime = bootstrap.build(settings)
    await runtime.start()
    uc = runtime.container.market_use_cases()
    queries = runtime.container.market_queries()
    activated = await runtime.container.event_bus().subscribe("market.activated")
    register_ms: list[float] = []
    approve_ms: list[float] = []
    live_ms: list[float] = []
    started = time.perf_counter()
    try:
        for n in range(markets):
            t0 = time.perf_counter()
            market = await uc.register(
                ISSUER,
                RegisterMarket(
                    name=f"Bench {n}",
                    asset_type="real_estate",
                    token_symbol=f"BN{n}",
                    token_name=f"Bench Token {n}",
                    total_supply=1_000_000,
                    valuation="1000000.00",
                    currency="USD",
                ),
            )
            t1 = time.perf_counter()
            await uc.decide(ADMIN, market.id, "approve")
            t2 = time.perf_counter()
            while True:  # the market.activated event, as a WebSocket client would see it
                event = await activated.get(timeout=60)
                if isinstance(event, DomainEvent) and event.aggregate_id == market.id:
                    break
            t3 = time.perf_counter()
            assert (await queries.get(market.id)).status is MarketStatus.ACTIVE
            register_ms.append((t1 - t0) * 1000)
            approve_ms.append((t2 - t1) * 1000)
            live_ms.append((t3 - t2) * 1000)
    finally:
        await runtime.stop()
    elapsed = time.perf_counter() - started
    return {
        "bench": "market_lifecycle",
        "profile": profile,
        "markets": markets,
        "register_ms_median": round(statistics.median(register_ms), 3),
        "register_ms_p95": pct(register_ms, 0.95),
        "approve_ms_median": round(statistics.median(approve_ms), 3),
        "approve_to_active_ms_median": round(statistics.median(live_ms), 3),
        "approve_to_active_ms_p95": pct(live_ms, 0.95),
        "markets_per_second": round(markets / elapsed, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="embedded", choices=["embedded", "test"])
    parser.add_argument("--markets", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = asyncio.run(run(args.profile, args.markets, Path(tmp)))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
