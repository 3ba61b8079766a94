"""Benchmark: rebuilding a pair's book from storage, with 100,000 resting orders.

Run: .venv/bin/python bench/recovery.py [--orders 100000] [--runs 5] [--stores sqlite,postgres]

Stores, per store, one pair whose book holds ``--orders`` resting GTC limit orders (half
bids, half asks, on 2,000 price levels a side, from 1,000 users, every order OPEN with its
lock, its engine seq and its time priority ``rest_position``, as the pair's writer stores
them), in a durable SQLite file (WAL, the embedded profile's storage) or in a Postgres
database of a cluster the tests' harness starts on loopback with fsync on. Then, ``--runs``
times, opens a fresh ``SqlStorage`` (new connections: nothing cached in the process) and
times ``PairWriter.rebuild()``: the read of the pair and its live orders, and the engine
rebuilt from them. Each rebuilt book is checked: every order in it, levels and time
priority equal to what was stored. ``--compare REF`` measures the tree of the git revision
REF the same way, in a child process, after each store's own figures, and adds ``before``
and the ``ratio`` before/after. Prints ONE JSON line: per store the median, min and max
seconds, and the median split into reading the orders and the rest (the pair, the next
numbers, the engine filled). Target (issue 8): at most 3 s.
"""

from __future__ import annotations

import sys

if sys.path and sys.path[0] and __file__.startswith(sys.path[0]):
    del sys.path[0]  # bench/http.py would shadow the standard library's http package

import argparse
import asyncio
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import tarfile
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# --src TREE/src: measure another tree's code (what --compare runs in a subprocess)
SRC = Path(sys.argv[sys.argv.index("--src") + 1]) if "--src" in sys.argv else ROOT / "src"
sys.path[:0] = [str(ROOT), str(SRC)]

import attrs  # noqa: E402

from adapters.outbound.clock.system import SystemClock  # noqa: E402
from adapters.outbound.storage.sql import SqlStorage  # noqa: E402
from adapters.outbound.storage.sql.migrate import upgrade_async  # noqa: E402
from core.ports.storage import Storage, UnitOfWork  # noqa: E402
from core.tokens.model import Token, TokenType  # noqa: E402
from core.trading.engine import MatchingEngine  # noqa: E402
from core.trading.orders import Order, OrderStatus, OrderType, max_fee  # noqa: E402
from core.trading.pairs import Pair, make_pair  # noqa: E402
from core.trading.writer import PairWriter  # noqa: E402

T0 = datetime(2026, 11, 23, tzinfo=UTC)
LEVELS = 2_000
CHUNK = 5_000


async def seed(storage: Storage, count: int) -> tuple[Pair, list[Order]]:
    base = Token(symbol="BENCH", name="Bench", type=TokenType.CRYPTO, decimals=18, created_at=T0)
    quote = Token(symbol="USDC", name="USD Coin", type=TokenType.STABLE, decimals=6, created_at=T0)
    pair = make_pair(
        base_symbol="BENCH",
        quote_symbol="USDC",
        base_token_id=base.id,
        quote_token_id=quote.id,
        base_decimals=18,
        quote_decimals=6,
        tick=10_000,  # 0.01
        lot=10**15,  # 0.001
        min_quantity=10**15,
        max_quantity=10**22,
        maker_fee_bps=10,
        taker_fee_bps=25,
        at=T0,
    )
    rng = random.Random(20261123)
    mid = 100_000  # ticks: 1,000.00
    orders = []
    for n in range(1, count + 1):
        buy = n % 2 == 0
        ticks = mid - rng.randint(1, LEVELS) if buy else mid + rng.randint(1, LEVELS)
        price, quantity = ticks * pair.tick, rng.randint(1, 1_000) * pair.lot
        cost = pair.cost(price, quantity)
        orders.append(
            Order(
                pair_id=pair.id,
                seq=n,
                user_id=f"user-{rng.randrange(1_000)}",
                side="BUY" if buy else "SELL",
                type=OrderType.LIMIT,
                time_in_force="GTC",
                status=OrderStatus.OPEN,
                created_at=T0,
                updated_at=T0,
                price=price,
                quantity=quantity,
                maker_fee_bps=10,
                taker_fee_bps=25,
                locked=cost + max_fee(cost, 25) if buy else quantity,
                rest_position=n,
            )
        )
    async with storage.unit_of_work() as uow:
        await uow.tokens.add(base)
        await uow.tokens.add(quote)
        await uow.pairs.add(pair)
        await uow.commit()
    for start in range(0, count, CHUNK):
        async with storage.unit_of_work() as uow:
            await uow.orders.add_many(orders[start : start + CHUNK])
            await uow.commit()
    pair = attrs.evolve(pair, book_seq=count, version=pair.version + 1)
    async with storage.unit_of_work() as uow:
        await uow.pairs.save(pair)
        await uow.commit()
    return pair, orders


def expected_book(pair: Pair, orders: list[Order]) -> list[Any]:
    """The resting orders in priority order, as ``MatchingEngine.snapshot`` lists them."""
    fresh = MatchingEngine()
    for order in orders:
        assert order.price is not None and order.quantity is not None
        fresh.restore(
            order.seq,
            order.user_id,
            order.side,
            order.price // pair.tick,
            order.quantity // pair.lot,
        )
    return fresh.snapshot()


class _TimedOrders:
    """``uow.orders`` with its ``book_entries`` read timed."""

    def __init__(self, inner: Any, owner: TimedStorage) -> None:
        self._inner, self._owner = inner, owner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def book_entries(self, pair_id: str) -> Any:
        started = time.perf_counter()
        try:
            return await self._inner.book_entries(pair_id)
        finally:
            self._owner.read_seconds += time.perf_counter() - started


class _TimedUnit(UnitOfWork):
    def __init__(self, owner: TimedStorage, inner: UnitOfWork) -> None:
        self._owner, self._inner = owner, inner

    def __getattr__(self, name: str) -> Any:
        if name == "orders":
            return _TimedOrders(self._inner.orders, self._owner)
        return getattr(self._inner, name)

    async def _begin(self) -> None:
        await self._inner.__aenter__()

    async def _end(self) -> None:
        await self._inner.__aexit__(None, None, None)

    async def commit(self) -> None:
        await self._inner.commit()


class TimedStorage(Storage):
    """A storage that adds up the time its units spend reading the book's orders."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.read_seconds = 0.0

    def unit_of_work(self, *, read_only: bool = False) -> UnitOfWork:
        return _TimedUnit(self, self.inner.unit_of_work(read_only=read_only))

    async def ping(self) -> None:
        await self.inner.ping()

    async def close(self) -> None:
        await self.inner.close()


async def one_rebuild(url: str, pair: Pair) -> tuple[float, float, PairWriter]:
    """Seconds of the whole rebuild on a fresh storage, and of its read of the orders."""
    storage = TimedStorage(SqlStorage(url))
    try:
        async with storage.unit_of_work(read_only=True) as uow:  # connect before timing
            await uow.pairs.get(pair.id)
        writer = PairWriter(pair.id, storage, SystemClock())
        started = time.perf_counter()
        await writer.rebuild()
        return time.perf_counter() - started, storage.read_seconds, writer
    finally:
        await storage.close()


async def measure(url: str, options: argparse.Namespace) -> dict[str, Any]:
    await upgrade_async(url)
    storage = SqlStorage(url)
    try:
        started = time.perf_counter()
        pair, orders = await seed(storage, options.orders)
        seeded = time.perf_counter() - started
    finally:
        await storage.close()
    wanted = expected_book(pair, orders)
    totals, reads = [], []
    for _ in range(options.runs):
        total, read, writer = await one_rebuild(url, pair)
        seq, resting, stops = writer.snapshot()
        if seq != options.orders or resting != wanted or stops:
            raise SystemExit("the rebuilt book differs from the stored orders")
        totals.append(total)
        reads.append(read)
    median = statistics.median(totals)
    read = statistics.median(reads)
    return {
        "seconds": round(median, 3),
        "min_s": round(min(totals), 3),
        "max_s": round(max(totals), 3),
        "read_orders_s": round(read, 3),
        "rest_s": round(median - read, 3),
        "orders_per_s": round(options.orders / median),
        "seed_s": round(seeded, 1),
        "target_met": median <= 3.0,
    }


def compare(options: argparse.Namespace, store: str, work: Path) -> dict[str, Any]:
    """The same measurement with the tree of ``--compare`` (``git archive``), in a child."""
    tree = work / "before"
    if not tree.exists():
        tree.mkdir()
        archive = subprocess.run(
            ["git", "archive", options.compare], cwd=ROOT, capture_output=True, check=True
        )
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(tree, filter="data")
    command = [sys.executable, str(Path(__file__).resolve()), "--src", str(tree / "src")]
    command += ["--stores", store, "--runs", str(options.runs), "--orders", str(options.orders)]
    env = {**os.environ, "RWA_MIGRATIONS_DIR": str(tree / "migrations")}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])[store]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--compare", metavar="REF", help="also measure this git revision")
    parser.add_argument("--src", help=argparse.SUPPRESS)
    options = parser.parse_args()
    stores = [s for s in options.stores.split(",") if s]
    work = Path(tempfile.mkdtemp(prefix="rwa-bench-recovery-"))
    postgres = None
    result: dict[str, Any] = {
        "bench": "recovery",
        "orders": options.orders,
        "runs": options.runs,
        "cpus": os.cpu_count(),
    }
    try:
        for store in stores:
            if store == "sqlite":
                url = f"sqlite+aiosqlite:///{work / 'recovery.sqlite3'}"
            else:
                from tests.harness.postgres import find_bin_dir, start_postgres

                bin_dir = find_bin_dir()
                if bin_dir is None:
                    raise SystemExit("Postgres binaries not found (initdb, pg_ctl)")
                postgres = start_postgres(bin_dir)
                for setting in ("fsync", "synchronous_commit", "full_page_writes"):
                    postgres.psql(f"ALTER SYSTEM SET {setting} = on")
                postgres.psql("SELECT pg_reload_conf()")
                url = postgres.create_database("bench_recovery")
            result[store] = asyncio.run(measure(url, options))
            if options.compare:
                before = compare(options, store, work)
                result[store] = {
                    **result[store],
                    "before": before,
                    "ratio": round(before["seconds"] / result[store]["seconds"], 2),
                }
        if options.compare:
            result["before_ref"] = options.compare
        print(json.dumps(result, separators=(",", ":")))
    finally:
        if postgres is not None:
            postgres.stop()
            shutil.rmtree(postgres.base_dir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
