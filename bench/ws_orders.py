"""Benchmark: order entry over the WebSocket against the durable embedded server.

Run: .venv/bin/python bench/ws_orders.py [--connections 32] [--duration 10] [--warmup 2]
                                         [--runs N] [--compare REF]

Starts ``rwa-market serve --migrate`` (embedded profile: SQLite in WAL, the in-process chain
and job queue) as a subprocess on a temporary data directory, creates the pair WETH-USDC and
funds one user per connection. Each connection authenticates, then sends ``order.submit``
frames one after the other (the gateway answers a connection's frames in order, so one is
in flight per connection): limit orders of 0.001 at prices around 100.00, alternately BUY
and SELL, so some rest and some trade. The ack latency is the time from sending the frame to
receiving its ``ack`` (the order, its locks and fills committed). Orders acked in the
``--warmup`` seconds are not counted. Prints ONE JSON line: orders/s, p50 and p99 ack latency
(ms), errors, and the target (3,000 orders/s, p99 <= 30 ms). With ``--runs N`` every figure is
the median of N rounds (a fresh server each); ``--compare REF`` also measures the tree of git
revision REF (``git archive``), rounds interleaved, and adds ``before`` and ``ratio``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's directory comes first on sys.path, where bench/http.py would
# shadow the standard library's ``http``: drop it and load the shared module by its path.
_HERE = Path(__file__).resolve().parent
if sys.path and Path(sys.path[0] or ".").resolve() == _HERE:
    del sys.path[0]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from websockets.asyncio.client import connect  # noqa: E402

_spec = importlib.util.spec_from_file_location("ws_common", _HERE / "ws_common.py")
assert _spec is not None and _spec.loader is not None
common = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(common)
PAIR, Server, interleaved_rounds, make_pair, percentile, token = (
    common.PAIR,
    common.Server,
    common.interleaved_rounds,
    common.make_pair,
    common.percentile,
    common.token,
)


async def client(
    url: str, user: str, seed: int, start: float, warmup_end: float, end: float
) -> tuple[list[float], int, int]:
    rng = random.Random(seed)
    latencies: list[float] = []
    errors = counted = 0
    async with connect(url, max_queue=None) as ws:
        await ws.send(json.dumps({"op": "auth", "token": token(user, "trader")}))
        json.loads(await ws.recv())
        n = 0
        while time.monotonic() < end:
            n += 1
            side = "BUY" if n % 2 else "SELL"
            price = 100 + rng.randint(-20, 20) / 100
            frame = {
                "op": "order.submit",
                "reqId": n,
                "tradingPairId": PAIR,
                "side": side,
                "type": "LIMIT",
                "price": f"{price:.2f}",
                "quantity": "0.001",
            }
            sent = time.perf_counter()
            await ws.send(json.dumps(frame))
            while True:
                answer = json.loads(await ws.recv())
                if answer.get("reqId") == n:
                    break
            elapsed = time.perf_counter() - sent
            if time.monotonic() < warmup_end:
                continue
            if answer["type"] == "ack":
                latencies.append(elapsed)
                counted += 1
            else:
                errors += 1
    return latencies, counted, errors


async def drive(url: str, connections: int, duration: float, warmup: float) -> dict[str, float]:
    start = time.monotonic()
    warmup_end = start + warmup
    end = warmup_end + duration
    results = await asyncio.gather(
        *(client(url, f"bench-{i}", i, start, warmup_end, end) for i in range(connections))
    )
    latencies = [x for r in results for x in r[0]]
    counted = sum(r[1] for r in results)
    errors = sum(r[2] for r in results)
    return {
        "orders": counted,
        "errors": errors,
        "orders_per_s": round(counted / duration, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 99) * 1000, 2),
    }


def one_round(work: Path, src: Path | None, args: argparse.Namespace) -> dict[str, float]:
    """A fresh server (of ``src``, or the installed tree) on a fresh data directory."""
    with tempfile.TemporaryDirectory(prefix="round-", dir=work) as tmp:
        server = Server(Path(tmp), src=src)
        server.start()
        try:
            make_pair(server, [f"bench-{i}" for i in range(args.connections)])
            figures = asyncio.run(
                drive(server.ws_url, args.connections, args.duration, args.warmup)
            )
            figures["server_rss_mb"] = round(server.rss_mb(), 1)
        finally:
            server.stop()
    return figures


def median_of(rounds: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=1, help="rounds; figures are medians")
    parser.add_argument("--compare", metavar="REF", help="also measure this git revision")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rwa-bench-ws-orders-") as tmp:
        work = Path(tmp)
        rounds = interleaved_rounds(
            work, args.compare, args.runs, lambda src, _name: one_round(work, src, args)
        )
    figures = median_of(rounds["after"])
    result: dict[str, object] = {
        "bench": "ws_orders",
        "profile": "embedded (SQLite WAL, durable)",
        "connections": args.connections,
        "duration_s": args.duration,
        "runs": args.runs,
        **figures,
    }
    if args.compare:
        before = median_of(rounds["before"])
        result["before_ref"] = args.compare
        result["before"] = before
        result["ratio"] = round(figures["orders_per_s"] / max(before["orders_per_s"], 0.1), 2)
    result["target"] = {"orders_per_s": 3000, "p99_ms": 30}
    result["meets_target"] = figures["orders_per_s"] >= 3000 and figures["p99_ms"] <= 30
    print(json.dumps(result))


if __name__ == "__main__":
    main()
