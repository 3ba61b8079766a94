"""Benchmark: orders through an ``rwa-market engine`` (Redis Streams) against the same orders
handled by an in-process writer, both on Postgres.

One command, one JSON line:

    .venv/bin/python bench/engine_routing.py [--orders 1500] [--clients 16] [--runs 3]

Starts PostgreSQL and redis-server on loopback (the test harness), two databases migrated to
head, each with a WETH-USDC pair and funded traders. Then, in turn, ``--runs`` times:

- **in process**: ``TradingService`` runs the pair's writer in this process (the embedded
  profile's shape, on Postgres);
- **routed**: ``TradingService`` with a ``RedisOrderRouter`` (the production API's shape),
  the pair owned by an ``rwa-market engine`` subprocess (production profile) on the other
  database.

``--clients`` concurrent clients submit ``--orders`` limit orders in all (random sides and
prices around the mid, so about half cross) through ``TradingService.submit``, each waiting
for its answer (after the batch's commit). Reported per mode, medians over the runs:
accepted orders per second, p50 and p99 latency of an answer (ms); and the ratio routed / in
process of each. Both modes share this machine's cores with the engine subprocess; HTTP is
not involved (``bench/http.py`` measures that layer).
"""

from __future__ import annotations

import sys

if sys.path and sys.path[0] and __file__.startswith(sys.path[0]):
    del sys.path[0]  # bench/http.py would shadow the standard library's http

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from tests.harness.postgres import find_bin_dir, start_postgres  # noqa: E402
from tests.harness.redis import start_redis  # noqa: E402

from adapters.outbound.clock.system import SystemClock  # noqa: E402
from adapters.outbound.permissions.memory import MemoryPermissions  # noqa: E402
from adapters.outbound.routing.redis_streams import RedisOrderRouter  # noqa: E402
from adapters.outbound.storage.sql import SqlStorage  # noqa: E402
from adapters.outbound.storage.sql.migrate import upgrade_async  # noqa: E402
from core.ledger.model import AccountRef  # noqa: E402
from core.ledger.operations import mint  # noqa: E402
from core.shared.authorization import Authorizer  # noqa: E402
from core.shared.errors import DomainError  # noqa: E402
from core.shared.events import Actor  # noqa: E402
from core.shared.ids import new_id  # noqa: E402
from core.tokens.model import Token, TokenType  # noqa: E402
from core.trading.pairs import Pair, make_pair  # noqa: E402
from core.trading.service import SubmitOrder, TradingService  # noqa: E402

BENCH_SECRET = "bench-only-jwt-secret-NOT-FOR-PRODUCTION-0123456789"
USERS = [f"bench-{i}" for i in range(32)]


async def make_market(url: str) -> Pair:
    await upgrade_async(url)
    now = datetime.now(UTC)
    base = Token(
        symbol="WETH", name="Wrapped Ether", type=TokenType.CRYPTO, decimals=18, created_at=now
    )
    quote = Token(symbol="USDC", name="USD Coin", type=TokenType.STABLE, decimals=6, created_at=now)
    pair = make_pair(
        base_symbol="WETH",
        quote_symbol="USDC",
        base_token_id=base.id,
        quote_token_id=quote.id,
        base_decimals=18,
        quote_decimals=6,
        tick=10_000,
        lot=10**15,
        min_quantity=10**15,
        max_quantity=10**21,
        maker_fee_bps=10,
        taker_fee_bps=20,
        at=now,
    )
    storage = SqlStorage(url)
    try:
        async with storage.unit_of_work() as uow:
            await uow.tokens.add(base)
            await uow.tokens.add(quote)
            await uow.pairs.add(pair)
            for user in USERS:
                for token, amount in ((base.id, 10**6 * 10**18), (quote.id, 10**12 * 10**6)):
                    account = AccountRef.user(user, token)
                    await uow.ledger.apply(mint(f"bench:{new_id()}", now, account, amount))
            await uow.commit()
    finally:
        await storage.close()
    return pair


def order(rng: random.Random) -> SubmitOrder:
    side = rng.choice(["BUY", "SELL"])
    price = f"{rng.randint(1990, 2010)}.00"
    quantity = f"{rng.randint(1, 100) / 1000:.3f}"
    return SubmitOrder(pair="WETH-USDC", side=side, type="LIMIT", price=price, quantity=quantity)


async def drive(service: TradingService, orders: int, clients: int, seed: int) -> dict[str, Any]:
    latencies: list[float] = []
    refused = 0
    per_client = orders // clients

    async def client(index: int) -> None:
        nonlocal refused
        rng = random.Random(seed * 1000 + index)
        actor = Actor(id=USERS[index % len(USERS)], roles=("trader",))
        for _ in range(per_client):
            started = time.perf_counter()
            try:
                await service.submit(actor, order(rng))
            except DomainError:
                refused += 1
                continue
            latencies.append(time.perf_counter() - started)

    began = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "orders_per_second": len(latencies) / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "refused": refused,
    }


def engine_env(database_url: str, redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RWA_")}
    env.update(
        {
            "RWA_PROFILE": "production",
            "RWA_DATABASE_URL": database_url,
            "RWA_REDIS_URL": redis_url,
            "RWA_JWT_SECRET": BENCH_SECRET,
            "RWA_WEBHOOK_SECRETS": BENCH_SECRET,
            "RWA_CUSTODY_MNEMONIC": "abandon " * 11 + "about",  # a public test vector
            "RWA_LOG_LEVEL": "WARNING",
        }
    )
    return env


def start_engine(work: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``rwa-market engine`` in its own session, its output in ``work/engine.log``."""
    with (work / "engine.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "cli", "engine"],
            cwd=ROOT / "src",
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def wait_owned(url: str, pair: Pair, timeout: float = 60.0) -> None:
    storage = SqlStorage(url)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            async with storage.unit_of_work() as uow:
                if not await uow.leases.acquire(
                    f"engine:pair:{pair.id}",
                    "bench-probe",
                    now=datetime.now(UTC),
                    until=datetime.now(UTC),
                ):
                    return  # someone (the engine) holds it
            await asyncio.sleep(0.2)
        raise RuntimeError("the engine did not take the pair")
    finally:
        await storage.close()


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise SystemExit("PostgreSQL (initdb, pg_ctl) is not installed")
    postgres = start_postgres(bin_dir)
    redis = start_redis()
    engine: subprocess.Popen[bytes] | None = None
    work = Path(tempfile.mkdtemp(prefix="rwa-bench-engine-"))
    try:
        local_url = postgres.create_database("bench_local")
        routed_url = postgres.create_database("bench_routed")
        await make_market(local_url)
        routed_pair = await make_market(routed_url)
        engine = start_engine(work, engine_env(routed_url, redis.url()))
        await wait_owned(routed_url, routed_pair)
        clock, authorizer = SystemClock(), Authorizer(MemoryPermissions())
        local_storage, routed_storage = SqlStorage(local_url), SqlStorage(routed_url)
        router = RedisOrderRouter(redis.url())
        local = TradingService(local_storage, authorizer, clock)
        routed = TradingService(routed_storage, authorizer, clock, router=router, reply_timeout=30)
        await local.start()
        await routed.start()
        results: dict[str, list[dict[str, Any]]] = {"in_process": [], "routed": []}
        for run in range(args.runs):
            for name, service in (("in_process", local), ("routed", routed)):
                results[name].append(await drive(service, args.orders, args.clients, seed=run))
        await local.stop()
        await router.close()
        await local_storage.close()
        await routed_storage.close()
    finally:
        if engine is not None:
            engine.terminate()
            try:
                engine.wait(timeout=20)
            except subprocess.TimeoutExpired:
                engine.kill()
                engine.wait()
        redis.stop()
        postgres.stop()

    def median(name: str, key: str) -> float:
        return round(statistics.median(r[key] for r in results[name]), 2)

    out: dict[str, Any] = {
        "bench": "engine_routing",
        "orders": args.orders,
        "clients": args.clients,
        "runs": args.runs,
    }
    for name in results:
        out[name] = {
            key: median(name, key) for key in ("orders_per_second", "p50_ms", "p99_ms", "refused")
        }
    out["ratio_orders_per_second"] = round(
        out["routed"]["orders_per_second"] / out["in_process"]["orders_per_second"], 2
    )
    out["ratio_p50"] = round(out["routed"]["p50_ms"] / out["in_process"]["p50_ms"], 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=1500)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main_async(args))))


if __name__ == "__main__":
    main()
