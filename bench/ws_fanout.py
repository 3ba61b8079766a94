"""Benchmark: WebSocket fan-out of one pair to many subscribers while orders flow.

Run: .venv/bin/python bench/ws_fanout.py [--subscribers 1000] [--rate 200] [--duration 10]
                                         [--processes 2] [--drivers 8] [--compare REF]
                                         [--runs N] [--profile DIR]

Starts ``rwa-market serve --migrate`` (embedded profile, durable SQLite) as a subprocess,
creates WETH-USDC and funds a maker and a taker. ``--subscribers`` connections (spread over
``--processes`` client processes) each subscribe to the pair's ``book`` (depth 10),
``trades`` and ``ticker``. Then orders flow at ``--rate`` a second for ``--duration``
seconds over ``--drivers`` WebSocket connections: a maker's SELL limit at 100.00 and a
taker's BUY limit that crosses it, in turn (one trade every two orders; every order changes
the book). Each driver waits for its ``ack`` before its next order, so a driver's own rate is
at most one order per ack latency: with four drivers (the first version of this bench) 200
orders/s needed acks in under 20 ms; eight leave room for 40 ms. A server that cannot keep
up still slows the flow down, and the target then counts as missed (``orders_per_s`` below
95% of ``--rate``).

Measured by every subscriber: messages received (all types), the lag from a trade's match
(its ``executedAt``, the writer's time when the batch matched) to its receipt, gaps (a book
update whose ``fromSeq``/``seq`` does not follow the last ``seq``, a ``gap`` notice, or a
``slow_consumer`` close: each must be 0), and the server's resident memory before the
subscribers connect and at the end; the server's CPU time (all threads, ``/proc``) from the
go to the end, per delivered message. Prints ONE JSON line; target p99 lag <= 100 ms.

``--compare REF`` also measures the tree of git revision REF (``git archive``; its server
runs with ``PYTHONPATH`` on that tree's ``src``), alternating with the working tree round by
round (``--runs``), and adds its figures as ``before``. ``--profile DIR`` records each
round's server with py-spy (``--py-spy``) for ``--profile-seconds`` from the go, as raw
stacks (``DIR/<round>.raw``).
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
if sys.path and Path(sys.path[0] or ".").resolve() == _HERE:
    del sys.path[0]  # bench/http.py would shadow the standard library's ``http``

import argparse  # noqa: E402
import asyncio  # noqa: E402
import base64  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import datetime  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

from websockets.asyncio.client import connect  # noqa: E402

_spec = importlib.util.spec_from_file_location("ws_common", _HERE / "ws_common.py")
assert _spec is not None and _spec.loader is not None
common = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(common)

CHANNELS = (
    {"channel": "book", "pair": common.PAIR, "depth": 10},
    {"channel": "trades", "pair": common.PAIR},
    {"channel": "ticker", "pair": common.PAIR},
)


class Stats:
    def __init__(self) -> None:
        self.messages = 0
        self.gaps = 0
        self.closed = 0
        self.lags: list[float] = []
        self.subscribed = 0
        self.counting = False  # set at the go: messages before it are not counted


class FrameSubscriber(asyncio.Protocol):
    """A cheap subscriber: a plain socket, a hand-made handshake (no extension offered), and
    frame headers scanned in ``data_received``. It reads everything the server sends (never a
    slow consumer). Until the go, and always when ``sample``, every frame is parsed as JSON
    (book ``seq`` gaps, trade lags); the others only count frames after the go and look at
    the first bytes of each for a ``gap`` notice or an ``error`` (``slow_consumer``)."""

    def __init__(self, stats: Stats, sample: bool, host: str, path: str) -> None:
        self.stats = stats
        self.sample = sample
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n\r\n"
        ).encode()
        self.buffer = bytearray()
        self.upgraded = False
        self.snapshots = 0
        self.book_seq: int | None = None
        self.transport: asyncio.Transport | None = None
        self.handshake_done = asyncio.get_running_loop().create_future()
        self.finished = False  # the bench stopped reading: a close is not a gap

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def send_text(self, text: str) -> None:
        """One masked client text frame (payloads under 126 bytes here)."""
        payload = text.encode()
        assert self.transport is not None and len(payload) < 126
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.transport.write(bytes((0x81, 0x80 | len(payload))) + mask + masked)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                self.handshake_done.set_exception(RuntimeError(bytes(buffer[:40]).decode()))
                return
            del buffer[: end + 4]
            self.upgraded = True
            self.handshake_done.set_result(None)
        stats, at, size = self.stats, 0, len(buffer)
        parse = self.sample or not stats.counting
        while size - at >= 2:
            opcode, length, head = buffer[at] & 0x0F, buffer[at + 1] & 0x7F, 2
            if length == 126:
                if size - at < 4:
                    break
                length, head = int.from_bytes(buffer[at + 2 : at + 4]), 4
            elif length == 127:
                if size - at < 10:
                    break
                length, head = int.from_bytes(buffer[at + 2 : at + 10]), 10
            if size - at < head + length:
                break
            start = at + head
            at = start + length
            if opcode == 8:  # the server closed it (slow_consumer: 1008)
                self.closed()
                continue
            if stats.counting:
                stats.messages += 1
            if parse:
                self.on_message(json.loads(buffer[start:at]))
            elif buffer[start + 8 : start + 12] in (b'"gap', b'"err') and (  # {"type":"gap"...
                buffer[start + 9] == 0x67 or buffer.find(b"slow_consumer", start, at) >= 0
            ):  # a gap notice, or the slow_consumer error (no other error: no op is sent)
                stats.gaps += 1
        del buffer[:at]

    def on_message(self, msg: dict[str, Any]) -> None:
        stats = self.stats
        kind, channel = msg.get("type"), msg.get("channel")
        if kind == "gap" or (kind == "error" and msg.get("code") == "slow_consumer"):
            stats.gaps += 1
        elif kind == "snapshot":
            if not stats.counting:
                self.snapshots += 1
            if channel == "book":
                self.book_seq = msg["seq"]
        elif channel == "book" and kind == "update":
            if self.book_seq is not None and msg.get("fromSeq", msg["seq"]) != self.book_seq + 1:
                stats.gaps += 1
            self.book_seq = msg["seq"]
        elif channel == "trades" and kind == "update" and self.sample and stats.counting:
            at = datetime.fromisoformat(msg["trade"]["executedAt"]).timestamp()
            stats.lags.append(time.time() - at)

    def closed(self) -> None:
        if not self.finished:
            self.finished = True
            self.stats.closed += 1
            self.stats.gaps += 1

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.handshake_done.done():
            self.handshake_done.set_exception(ConnectionError("closed in the handshake"))
        self.closed()


async def frame_subscriber(
    url: str, stats: Stats, stop: asyncio.Event, sample: bool, channels: list[str]
) -> None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    loop = asyncio.get_running_loop()
    try:
        _, sub = await loop.create_connection(
            lambda: FrameSubscriber(stats, sample, f"{host}:{port}", parts.path), host, port
        )
        await asyncio.wait_for(sub.handshake_done, 60)
        wanted = [frame for frame in CHANNELS if frame["channel"] in channels]
        for frame in wanted:
            sub.send_text(json.dumps({"op": "subscribe", **frame}))
        async with asyncio.timeout(120):
            while sub.snapshots < len(wanted) and not sub.finished:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    except Exception:
        stats.closed += 1
        stats.gaps += 1
        return
    if sub.finished:
        return
    stats.subscribed += 1
    await stop.wait()
    sub.finished = True
    assert sub.transport is not None
    sub.transport.abort()


async def subscriber(
    url: str,
    stats: Stats,
    ready: asyncio.Event,
    stop: asyncio.Event,
    sample: bool,
    channels: list[str],
) -> None:
    book_seq: int | None = None
    try:
        async with connect(url, max_queue=None, open_timeout=60) as ws:
            wanted = [frame for frame in CHANNELS if frame["channel"] in channels]
            for frame in wanted:
                await ws.send(json.dumps({"op": "subscribe", **frame}))
            snapshots = 0
            while snapshots < len(wanted):
                msg = json.loads(await ws.recv())
                if msg["type"] == "snapshot":
                    snapshots += 1
                    if msg["channel"] == "book":
                        book_seq = msg["seq"]
            stats.subscribed += 1
            await ready.wait()
            while not stop.is_set():
                try:
                    raw = await asyncio.wait_for(ws.recv(), 0.5)
                except TimeoutError:
                    continue
                received = time.time()
                stats.messages += 1
                msg = json.loads(raw)
                kind, channel = msg.get("type"), msg.get("channel")
                if kind == "gap" or (kind == "error" and msg.get("code") == "slow_consumer"):
                    stats.gaps += 1
                elif channel == "book" and kind == "snapshot":
                    book_seq = msg["seq"]
                elif channel == "book" and kind == "update":
                    if book_seq is not None and msg.get("fromSeq", msg["seq"]) != book_seq + 1:
                        stats.gaps += 1
                    book_seq = msg["seq"]
                elif channel == "trades" and kind == "update" and sample:
                    at = datetime.fromisoformat(msg["trade"]["executedAt"]).timestamp()
                    stats.lags.append(received - at)
    except Exception:
        stats.closed += 1
        stats.gaps += 1


def client_process(
    url: str,
    count: int,
    index: int,
    conn: Any,
    channels: list[str],
    client: str = "frames",
    sample_every: int = 20,
) -> None:
    """Runs ``count`` subscribers; tells the parent when all subscribed, waits for 'go' and
    'stop', then sends back its figures."""

    async def run() -> dict[str, Any]:
        stats = Stats()
        ready, stop = asyncio.Event(), asyncio.Event()
        if client == "frames":
            tasks = [
                asyncio.create_task(
                    frame_subscriber(url, stats, stop, (i % sample_every == 0), channels)
                )
                for i in range(count)
            ]
        else:
            tasks = [
                asyncio.create_task(
                    subscriber(url, stats, ready, stop, (i % sample_every == 0), channels)
                )
                for i in range(count)
            ]
        while stats.subscribed + stats.closed < count:  # noqa: ASYNC110 - counters, no event
            await asyncio.sleep(0.1)
        conn.send(("subscribed", stats.subscribed))
        loop = asyncio.get_running_loop()
        assert await loop.run_in_executor(None, conn.recv) == "go"
        stats.messages = 0
        stats.counting = True
        ready.set()
        assert await loop.run_in_executor(None, conn.recv) == "stop"
        stop.set()
        await asyncio.gather(*tasks)
        return {
            "messages": stats.messages,
            "gaps": stats.gaps,
            "closed": stats.closed,
            "lags": stats.lags,
        }

    conn.send(("done", asyncio.run(run())))


async def flow(url: str, rate: float, duration: float, drivers: int) -> int:
    """Orders at ``rate`` a second over ``drivers`` connections, makers and takers in turn,
    their schedules evenly spread over one order's period."""
    per_connection = rate / drivers
    sent = 0

    async def driver(user: str, side: str, offset: float) -> None:
        nonlocal sent
        async with connect(url) as ws:
            await ws.send(json.dumps({"op": "auth", "token": common.token(user, "trader")}))
            json.loads(await ws.recv())
            start = time.monotonic() + offset
            n = 0
            while True:
                due = start + n / per_connection
                if due - start > duration:
                    return
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                n += 1
                frame = {
                    "op": "order.submit",
                    "reqId": n,
                    "tradingPairId": common.PAIR,
                    "side": side,
                    "type": "LIMIT",
                    "price": "100.00",
                    "quantity": "0.001",
                }
                await ws.send(json.dumps(frame))
                while json.loads(await ws.recv()).get("reqId") != n:
                    pass
                sent += 1

    await asyncio.gather(
        *(
            driver(
                "bench-maker" if i % 2 == 0 else "bench-taker",
                "SELL" if i % 2 == 0 else "BUY",
                i / drivers / per_connection,
            )
            for i in range(drivers)
        )
    )
    return sent


def cpu_seconds(pid: int) -> float:
    """The process's CPU time so far (user + system, all threads), from ``/proc``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_profile(pid: int, options: argparse.Namespace, name: str) -> subprocess.Popen[bytes]:
    """py-spy on the server for ``--profile-seconds``, raw stacks into ``--profile``."""
    out = Path(options.profile) / f"{name}.raw"
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [options.py_spy, "record", "-p", str(pid), "-d", str(options.profile_seconds)]
    command += ["-r", "150", "-f", "raw", "-o", str(out), "--threads", "--nonblocking"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def one_round(
    work: Path, src: Path | None, options: argparse.Namespace, name: str
) -> dict[str, Any]:
    """One server (of ``src``, else the installed tree), its subscribers and the flow."""
    server = common.Server(work / name, src=src)
    server.start()
    children: list[tuple[Any, Any]] = []
    channels = options.channels.split(",")
    try:
        common.make_pair(server, ["bench-maker", "bench-taker"])
        rss_before = server.rss_mb()
        ctx = multiprocessing.get_context("spawn")
        shares = [options.subscribers // options.processes] * options.processes
        shares[0] += options.subscribers - sum(shares)
        for index, share in enumerate(shares):
            parent, child = ctx.Pipe()
            process = ctx.Process(
                target=client_process,
                args=(
                    server.ws_url,
                    share,
                    index,
                    child,
                    channels,
                    options.client,
                    options.sample_every,
                ),
            )
            process.start()
            children.append((process, parent))
        subscribed = sum(parent.recv()[1] for _, parent in children)
        rss_subscribed = server.rss_mb()
        for _, parent in children:
            parent.send("go")
        cpu_before = cpu_seconds(server.pid)
        profiler = None
        if options.profile:
            profiler = start_profile(server.pid, options, name)
        started = time.monotonic()
        orders = asyncio.run(flow(server.ws_url, options.rate, options.duration, options.drivers))
        elapsed = time.monotonic() - started
        time.sleep(1.0)  # what is still in flight
        cpu = cpu_seconds(server.pid) - cpu_before
        rss_end = server.rss_mb()
        for _, parent in children:
            parent.send("stop")
        results = [parent.recv()[1] for _, parent in children]
        for process, _ in children:
            process.join(timeout=30)
        if profiler is not None:
            profiler.wait(timeout=options.profile_seconds + 30)
    finally:
        for process, _ in children:
            if process.is_alive():
                process.terminate()
        server.stop()
    lags = [x for r in results for x in r["lags"]]
    messages = sum(r["messages"] for r in results)
    gaps = sum(r["gaps"] for r in results)
    return {
        "subscribed": subscribed,
        "orders": orders,
        "orders_per_s": round(orders / elapsed, 1),
        "delivered_messages": messages,
        "delivered_per_s": round(messages / (elapsed + 1.0), 1),
        "server_cpu_us_per_message": round(cpu / messages * 1e6, 1) if messages else None,
        "trade_lag_samples": len(lags),
        "lag_p50_ms": round(common.percentile(lags, 50) * 1000, 1),
        "lag_p99_ms": round(common.percentile(lags, 99) * 1000, 1),
        "gaps": gaps,
        "closed": sum(r["closed"] for r in results),
        "server_rss_mb": {
            "before": round(rss_before, 1),
            "subscribed": round(rss_subscribed, 1),
            "end": round(rss_end, 1),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument(
        "--drivers", type=int, default=8, help="order connections (even: makers and takers)"
    )
    parser.add_argument("--channels", default="book,trades,ticker", help="comma-separated")
    parser.add_argument(
        "--client",
        choices=("frames", "websockets"),
        default="frames",
        help="frames: plain sockets scanning frame headers (a sample parses JSON); "
        "websockets: every subscriber a websockets client parsing every message (the old way)",
    )
    parser.add_argument(
        "--sample-every",
        type=int,
        default=20,
        help="one subscriber in N parses every message (lags, seq gaps)",
    )
    parser.add_argument("--compare", metavar="REF", help="also measure this git revision")
    parser.add_argument("--runs", type=int, default=1, help="rounds (alternating with --compare)")
    parser.add_argument("--profile", metavar="DIR", help="py-spy raw stacks of each round here")
    parser.add_argument("--profile-seconds", type=int, default=8)
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or "py-spy")
    options = parser.parse_args()
    if options.drivers < 2 or options.drivers % 2:
        parser.error("--drivers must be even (makers and takers in turn)")
    work = Path(tempfile.mkdtemp(prefix="rwa-bench-ws-fanout-"))
    try:
        rounds: dict[str, list[dict[str, Any]]] = common.interleaved_rounds(
            work,
            options.compare,
            options.runs,
            lambda src, name: one_round(work, src, options, name),
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result: dict[str, Any] = {
        "bench": "ws_fanout",
        "profile": "embedded (SQLite WAL, durable)",
        "subscribers": options.subscribers,
        "rate": options.rate,
        "drivers": options.drivers,
        "duration_s": options.duration,
        "channels": options.channels.split(","),
        "client": options.client,
        "sample_every": options.sample_every,
        "runs": options.runs,
    }
    after = rounds["after"]
    result.update(after[0] if options.runs == 1 else {"rounds": after})
    if options.compare:
        result["before_ref"] = options.compare
        before = rounds["before"]
        result["before"] = before[0] if options.runs == 1 else before
    p99 = max(r["lag_p99_ms"] for r in after)
    gaps = sum(r["gaps"] for r in after)
    reached = min(r["orders_per_s"] for r in after)
    # the lag counts only at the asked flow: drivers wait for their acks, so a server that
    # cannot keep up slows the flow down instead of lagging
    result["target"] = {"lag_p99_ms": 100, "gaps": 0, "orders_per_s": 0.95 * options.rate}
    result["meets_target"] = p99 <= 100 and gaps == 0 and reached >= 0.95 * options.rate
    print(json.dumps(result))


if __name__ == "__main__":
    main()
