"""Benchmark of the pure matching core against the PyPI package `matching-engine` 0.1.1.

One command, one JSON line:

    .venv/bin/python bench/matching.py [--commands 1000000] [--runs 5] [--seed 20261123]

A seeded stream of commands (about 70% GTC limit orders around the mid, 20% cancels, 10%
market orders and IOC limit orders) is generated identically in three worker processes:
our core on this interpreter (3.11), our core on pyenv's 3.12, and `matching-engine`
0.1.1 on pyenv's 3.12 (it needs 3.12; the bench makes it a venv of its own under
~/.cache/rwa-market-bench and installs it there with pip). Each worker converts the stream
to its engine's command objects before any timing (neither side pays for building commands),
then the parent asks the three for one run each, in turn, `--runs` times, so that the load
of this shared machine falls on all three alike; medians are reported. Rates are per second
of CPU time of the worker process (`time.process_time`): on a busy machine wall time also
counts the time the process waited for a core. Wall-time rates are reported too.

Then: a latency pass times every 8th command with `perf_counter_ns` (p50 and p99, the
timer's own cost included and reported); a check pass collects every fill and the final
book of each engine and the parent compares them exactly; a memory pass fills a fresh
engine with 1,000,000 resting orders and divides the growth of traced memory
(`tracemalloc`, after a full collection) by the number of resting orders. See
bench/README.md.
"""

from __future__ import annotations

import sys

# Run as a script, this file's directory comes first on sys.path and `bench/http.py` would
# shadow the standard library's `http`: drop that entry.
if sys.path and sys.path[0] and __file__.startswith(sys.path[0]):
    del sys.path[0]

import argparse
import gc
import glob
import hashlib
import json
import marshal
import os
import platform
import random
import statistics
import subprocess
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ME_VERSION = "0.1.1"
CHUNK = 1024  # commands between two clears of the event list (ours) in timed runs
SAMPLE_EVERY = 8  # the latency pass times one command in 8
MID = 100_000

# ---------------------------------------------------------------- the command stream


def make_stream(seed: int, count: int) -> list[tuple[Any, ...]]:
    """Neutral commands: ("L"|"I", id, user, side, price, qty) for GTC and IOC limits,
    ("M", id, user, side, qty) for market orders, ("C", id, owner) for cancels.

    Limit prices fall 1 to 50 ticks on the passive side of the mid, or up to 5 ticks
    through it (about one limit in ten takes liquidity). A cancel targets an order picked
    at random among the limits placed so far that no cancel has targeted yet; some of them
    have filled already, and their cancel is rejected as unknown by both engines.
    """
    rng = random.Random(seed)
    rand, randint = rng.random, rng.randint
    placed: list[tuple[int, int]] = []
    out: list[tuple[Any, ...]] = []
    append = out.append
    for order_id in range(1, count + 1):
        roll = rand()
        if roll < 0.20 and placed:
            i = rng.randrange(len(placed))
            placed[i], placed[-1] = placed[-1], placed[i]
            victim, owner = placed.pop()
            append(("C", victim, owner))
            continue
        side = "B" if rand() < 0.5 else "S"
        user = randint(1, 1000)
        qty = randint(1, 100)
        if roll < 0.25:
            append(("M", order_id, user, side, qty))
            continue
        if roll < 0.30:
            through = randint(0, 5)
            price = MID + through if side == "B" else MID - through
            append(("I", order_id, user, side, price, qty))
            continue
        offset = randint(-5, 50)
        price = MID - offset if side == "B" else MID + offset
        placed.append((order_id, user))
        append(("L", order_id, user, side, price, qty))
    return out


def stream_digest(stream: list[tuple[Any, ...]]) -> str:
    return hashlib.sha256(marshal.dumps(stream)).hexdigest()[:16]


def chunks(items: list[Any]) -> list[list[Any]]:
    return [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]


# ---------------------------------------------------------------- our core


class Ours:
    name = "ours"

    def __init__(self, stream: list[tuple[Any, ...]]) -> None:
        from core.trading.commands import BUY, IOC, SELL, Cancel, Limit, Market
        from core.trading.engine import MatchingEngine

        self.engine_class = MatchingEngine
        sides = {"B": BUY, "S": SELL}
        commands: list[Any] = []
        for c in stream:
            kind = c[0]
            if kind == "L":
                commands.append(Limit(c[1], c[2], sides[c[3]], c[4], c[5]))
            elif kind == "I":
                commands.append(Limit(c[1], c[2], sides[c[3]], c[4], c[5], IOC))
            elif kind == "M":
                commands.append(Market(c[1], c[2], sides[c[3]], c[4]))
            else:
                commands.append(Cancel(c[1]))
        self.commands = commands
        self.chunks = chunks(commands)

    def run(self) -> None:
        engine = self.engine_class()
        apply = engine.apply
        events = engine.events
        for chunk in self.chunks:
            for command in chunk:
                apply(command)
            events.clear()

    def latency(self) -> list[int]:
        engine = self.engine_class()
        apply = engine.apply
        events = engine.events
        clock = time.perf_counter_ns
        samples: list[int] = []
        sample = samples.append
        for i, command in enumerate(self.commands):
            if i % SAMPLE_EVERY:
                apply(command)
            else:
                start = clock()
                apply(command)
                sample(clock() - start)
            if len(events) > 4096:
                events.clear()
        return samples

    def check(self) -> dict[str, Any]:
        from core.trading.commands import BUY, CANCELLED, FILL

        engine = self.engine_class()
        apply = engine.apply
        fills: list[tuple[Any, ...]] = []
        cancelled = 0
        for chunk in self.chunks:
            for command in chunk:
                apply(command)
            for ev in engine.take_events():
                if ev[0] == FILL:
                    _, maker, taker, price, qty, maker_user, taker_user, side = ev
                    side = "B" if side == BUY else "S"
                    fills.append((maker, taker, price, qty, maker_user, taker_user, side))
                elif ev[0] == CANCELLED:
                    cancelled += 1
        book = [
            ("B" if side == BUY else "S", price, order_id, qty, user)
            for side, price, orders in engine.snapshot()
            for order_id, qty, user in orders
        ]
        return {"fills": fills, "book": book, "cancelled": cancelled}

    @staticmethod
    def memory(count: int, seed: int) -> float:
        from core.trading.commands import BUY, SELL, Limit
        from core.trading.engine import MatchingEngine

        rng = random.Random(seed)
        engine = MatchingEngine()
        apply = engine.apply
        events = engine.events
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for order_id in range(1, count + 1):
            offset = rng.randint(1, 500)
            if rng.random() < 0.5:
                apply(Limit(order_id, rng.randint(1, 1000), BUY, MID - offset, rng.randint(1, 100)))
            else:
                apply(
                    Limit(order_id, rng.randint(1, 1000), SELL, MID + offset, rng.randint(1, 100))
                )
            if len(events) > 4096:
                events.clear()
        events.clear()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        assert len(engine) == count
        return (after - before) / count


# ---------------------------------------------------------------- matching-engine 0.1.1


class Theirs:
    name = "matching-engine"

    def __init__(self, stream: list[tuple[Any, ...]]) -> None:
        from matching_engine.domain import (
            CancelOrder,
            NewOrder,
            OrderType,
            SequencedCommand,
            Side,
            TimeInForce,
        )
        from matching_engine.engine import MatchingEngine

        self.engine_class = MatchingEngine
        sides = {"B": Side.BUY, "S": Side.SELL}
        commands: list[Any] = []
        for seq, c in enumerate(stream, 1):
            kind = c[0]
            if kind == "L":
                cmd: Any = NewOrder(c[1], c[2], sides[c[3]], c[4], c[5])
            elif kind == "I":
                cmd = NewOrder(
                    c[1], c[2], sides[c[3]], c[4], c[5], OrderType.LIMIT, TimeInForce.IOC
                )
            elif kind == "M":
                cmd = NewOrder(c[1], c[2], sides[c[3]], 0, c[4], OrderType.MARKET, TimeInForce.IOC)
            else:
                cmd = CancelOrder(c[1], c[2])
            commands.append(SequencedCommand(seq, 0, cmd))
        self.commands = commands
        self.chunks = chunks(commands)

    def run(self) -> None:
        process = self.engine_class().process
        for chunk in self.chunks:
            for command in chunk:
                process(command)

    def latency(self) -> list[int]:
        process = self.engine_class().process
        clock = time.perf_counter_ns
        samples: list[int] = []
        sample = samples.append
        for i, command in enumerate(self.commands):
            if i % SAMPLE_EVERY:
                process(command)
            else:
                start = clock()
                process(command)
                sample(clock() - start)
        return samples

    def check(self) -> dict[str, Any]:
        from matching_engine.domain import Side
        from matching_engine.events import OrderCancelled, Trade

        engine = self.engine_class()
        process = engine.process
        fills: list[tuple[Any, ...]] = []
        cancelled = 0
        for command in self.commands:
            for ev in process(command):
                if type(ev) is Trade:
                    side = "B" if ev.taker_side is Side.BUY else "S"
                    fills.append(
                        (
                            ev.maker_order_id,
                            ev.taker_order_id,
                            ev.price,
                            ev.qty,
                            ev.maker_account,
                            ev.taker_account,
                            side,
                        )
                    )
                elif type(ev) is OrderCancelled and ev.reason == "user":
                    cancelled += 1
        book = [
            ("B" if e.side is Side.BUY else "S", e.price, e.order_id, e.qty, e.account)
            for e in engine.book.entries()
        ]
        return {"fills": fills, "book": book, "cancelled": cancelled}

    @staticmethod
    def memory(count: int, seed: int) -> float:
        from matching_engine.domain import NewOrder, SequencedCommand, Side
        from matching_engine.engine import MatchingEngine

        rng = random.Random(seed)
        engine = MatchingEngine()
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for order_id in range(1, count + 1):
            offset = rng.randint(1, 500)
            if rng.random() < 0.5:
                cmd = NewOrder(
                    order_id, rng.randint(1, 1000), Side.BUY, MID - offset, rng.randint(1, 100)
                )
            else:
                cmd = NewOrder(
                    order_id, rng.randint(1, 1000), Side.SELL, MID + offset, rng.randint(1, 100)
                )
            engine.process(SequencedCommand(order_id, 0, cmd))
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        assert len(engine.book) == count
        return (after - before) / count


# ---------------------------------------------------------------- worker process


def worker(kind: str, seed: int, count: int) -> None:
    """Answer the parent's requests, one JSON line each, on stdin/stdout."""
    stream = make_stream(seed, count)
    subject = Ours(stream) if kind == "ours" else Theirs(stream)
    digest = stream_digest(stream)
    del stream
    gc.collect()
    out = sys.stdout
    out.write(json.dumps({"ready": True, "stream": digest, "python": platform.python_version()}))
    out.write("\n")
    out.flush()
    for line in sys.stdin:
        request = line.split()
        if not request:
            continue
        answer: dict[str, Any]
        if request[0] == "run":
            gc.collect()
            wall, cpu = time.perf_counter(), time.process_time()
            subject.run()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            answer = {"cpu_s": cpu, "wall_s": wall}
        elif request[0] == "latency":
            gc.collect()
            clock = time.perf_counter_ns
            overhead = []
            for _ in range(100_000):
                start = clock()
                overhead.append(clock() - start)
            samples = sorted(subject.latency())
            answer = {
                "samples": len(samples),
                "p50_ns": samples[len(samples) // 2],
                "p99_ns": samples[int(len(samples) * 0.99)],
                "p999_ns": samples[int(len(samples) * 0.999)],
                "timer_ns": sorted(overhead)[len(overhead) // 2],
            }
        elif request[0] == "check":
            result = subject.check()
            data = marshal.dumps((result["fills"], result["book"]))
            Path(request[1]).write_bytes(data)
            answer = {
                "fills": len(result["fills"]),
                "resting": len(result["book"]),
                "cancelled": result["cancelled"],
                "sha256": hashlib.sha256(data).hexdigest()[:16],
            }
        elif request[0] == "memory":
            subject.commands = []
            subject.chunks = []
            gc.collect()
            answer = {"bytes_per_resting_order": subject.memory(int(request[1]), seed)}
        else:
            return
        out.write(json.dumps(answer) + "\n")
        out.flush()


# ---------------------------------------------------------------- parent


def pyenv_312() -> Path:
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    found = glob.glob(str(root / "versions" / "3.12*" / "bin" / "python3.12"))

    def version(path: str) -> tuple[int, ...]:
        name = Path(path).parent.parent.name
        return tuple(int(p) if p.isdigit() else -1 for p in name.split("."))

    if not found:
        raise SystemExit(f"no Python 3.12 under {root / 'versions'} (pyenv install 3.12)")
    return Path(max(found, key=version))


def matching_engine_venv() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    venv = cache / "rwa-market-bench" / f"matching-engine-{ME_VERSION}-py312"
    python = venv / "bin" / "python"
    probe = [
        str(python),
        "-c",
        f"import matching_engine as m; assert m.__version__ == '{ME_VERSION}'",
    ]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    base = pyenv_312()
    subprocess.run([str(base), "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"matching-engine=={ME_VERSION}"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    subprocess.run(probe, check=True)
    return python


class Worker:
    def __init__(self, label: str, python: str, kind: str, seed: int, count: int) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(ROOT / "src")
        self.label = label
        self.proc = subprocess.Popen(
            [
                python,
                str(Path(__file__).resolve()),
                "--worker",
                kind,
                "--seed",
                str(seed),
                "--commands",
                str(count),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.hello = self.read()

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"worker {self.label} ended early")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def ask(self, request: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(request + "\n")
        self.proc.stdin.flush()
        return self.read()

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("quit\n")
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def first_difference(a: list[Any], b: list[Any]) -> Any:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return {"index": i, "ours": x, "theirs": y}
    return None if len(a) == len(b) else {"lengths": [len(a), len(b)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--resting", type=int, default=1_000_000)
    parser.add_argument("--worker", choices=["ours", "me"])
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.seed, args.commands)
        return

    py312 = str(matching_engine_venv())
    workers = {
        "ours": Worker("ours on 3.11", sys.executable, "ours", args.seed, args.commands),
        "ours312": Worker("ours on 3.12", py312, "ours", args.seed, args.commands),
        "me": Worker("matching-engine on 3.12", py312, "me", args.seed, args.commands),
    }
    digests = {w.hello["stream"] for w in workers.values()}
    if len(digests) != 1:
        raise SystemExit(f"the workers generated different streams: {digests}")
    try:
        times: dict[str, list[dict[str, float]]] = {k: [] for k in workers}
        for _ in range(args.runs):
            for key, w in workers.items():
                times[key].append(w.ask("run"))
        latency = {key: w.ask("latency") for key, w in workers.items()}
        with tempfile.TemporaryDirectory() as tmp:
            checks = {}
            dumps = {}
            for key in ("ours", "me"):
                path = os.path.join(tmp, key)
                checks[key] = workers[key].ask(f"check {path}")
                dumps[key] = marshal.loads(Path(path).read_bytes())
        memory = {key: workers[key].ask(f"memory {args.resting}") for key in ("ours", "me")}
    finally:
        for w in workers.values():
            w.close()

    def rate(key: str, field: str) -> float:
        return args.commands / statistics.median(t[field] for t in times[key])

    fills_ours, book_ours = dumps["ours"]
    fills_me, book_me = dumps["me"]
    result = {
        "bench": "matching",
        "commands": args.commands,
        "runs": args.runs,
        "python": workers["ours"].hello["python"],
        "commands_per_second": round(rate("ours", "cpu_s")),
        "commands_per_second_wall": round(rate("ours", "wall_s")),
        "matching_engine_commands_per_second": round(rate("me", "cpu_s")),
        "ratio_vs_matching_engine": round(rate("ours", "cpu_s") / rate("me", "cpu_s"), 2),
        "ratio_vs_matching_engine_wall": round(rate("ours", "wall_s") / rate("me", "wall_s"), 2),
        "commands_per_second_each_run": [round(args.commands / t["cpu_s"]) for t in times["ours"]],
        "matching_engine_each_run": [round(args.commands / t["cpu_s"]) for t in times["me"]],
        "ours_py312_commands_per_second": round(rate("ours312", "cpu_s")),
        "ratio_vs_matching_engine_same_python_3_12": round(
            rate("ours312", "cpu_s") / rate("me", "cpu_s"), 2
        ),
        "p50_us": round(latency["ours"]["p50_ns"] / 1000, 2),
        "p99_us": round(latency["ours"]["p99_ns"] / 1000, 2),
        "p999_us": round(latency["ours"]["p999_ns"] / 1000, 2),
        "timer_overhead_us": round(latency["ours"]["timer_ns"] / 1000, 3),
        "latency_samples": latency["ours"]["samples"],
        "ours_py312_p50_us": round(latency["ours312"]["p50_ns"] / 1000, 2),
        "ours_py312_p99_us": round(latency["ours312"]["p99_ns"] / 1000, 2),
        "matching_engine_p50_us": round(latency["me"]["p50_ns"] / 1000, 2),
        "matching_engine_p99_us": round(latency["me"]["p99_ns"] / 1000, 2),
        "bytes_per_resting_order": round(memory["ours"]["bytes_per_resting_order"], 1),
        "matching_engine_bytes_per_resting_order": round(
            memory["me"]["bytes_per_resting_order"], 1
        ),
        "resting_orders_for_memory": args.resting,
        "fills": checks["ours"]["fills"],
        "fills_match": fills_ours == fills_me,
        "final_book_match": book_ours == book_me,
        "first_fill_difference": first_difference(fills_ours, fills_me),
        "resting_at_end": checks["ours"]["resting"],
        "cancels_that_hit_a_live_order": checks["ours"]["cancelled"],
        "matching_engine_cancels_that_hit": checks["me"]["cancelled"],
        "load_average_1m": round(os.getloadavg()[0], 2),
        "cpu_count": os.cpu_count(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
