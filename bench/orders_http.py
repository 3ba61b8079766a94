"""Benchmark: orders over HTTP on the real embedded server, SQLite and Postgres.

Run: .venv/bin/python bench/orders_http.py [--stores sqlite,postgres] [--runs 3]
         [--duration 10] [--connections 50] [--users 20] [--cross 0.3]
         [--compare REF] [--keep]

For each store, a fresh ``rwa-market serve --migrate`` (embedded profile: the in-process
chain and job queue; durable SQLite in WAL in a temporary ``RWA_DATA_DIR``, or the same
server with ``RWA_DATABASE_URL`` on a Postgres cluster the tests' harness starts on
loopback) is set up through its API only: an issuer registers an RWA market, an admin
approves it (the T-REX suite is deployed on the in-process chain and the pair
``BENCH-USDC`` opens), the admin approves every trader's compliance and mints each 1,000,000
USDC, the issuer transfers each 100,000 BENCH. Once the server is idle, ``wrk`` drives
``POST /api/v1/trading/orders`` from ``--connections`` connections for ``--duration``
seconds: each request is a LIMIT GTC order of a random trader, a random side, 1 to 5
tokens; with probability ``--cross`` it crosses (up to 3 ticks through a mid of 10.00),
otherwise it rests 1 to 20 ticks away from it. The per-user order rate limit and the HTTP
rate limit are off.

Figures per store: accepted orders/s (201 answers), p50 and p99 ack latency of all
answers (ms), other answers, socket errors, trades/s (the pair's trades counted in the
database after the run), and the server's CPU time per accepted order (all threads, from
``/proc``). With ``--runs N`` each figure is the median of N rounds, each on a fresh server.

``--compare REF`` measures the tree of the git revision REF (``git archive`` into a
temporary directory; its server runs with ``PYTHONPATH`` on that tree's ``src``) beside the
working tree, interleaved round by round on the same machine, and adds ``before`` and the
``ratio`` after/before per store. Prints ONE JSON line. ``wrk`` is the Debian package
``wrk``.
"""

from __future__ import annotations

import sys

# Run as a script, this file's directory comes first on sys.path and `bench/http.py` would
# shadow the standard library's ``http`` package: drop it, and put the repository on it.
if sys.path and sys.path[0] and __file__.startswith(sys.path[0]):
    del sys.path[0]

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from adapters.inbound.http.auth import TokenIssuer  # noqa: E402
from adapters.outbound.storage.sql import SqlStorage  # noqa: E402

BENCH_SECRET = "bench-only-jwt-secret-" + "0123456789abcdefghijklmnop"  # development only
SYMBOL = "BENCH"
PAIR = f"{SYMBOL}-USDC"
ORDERS = "/api/v1/trading/orders"
_SERVE = "import sys, cli; sys.exit(cli.main())"  # the `rwa-market` script of PYTHONPATH's tree

_spec = importlib.util.spec_from_file_location("ws_common", ROOT / "bench" / "ws_common.py")
assert _spec is not None and _spec.loader is not None
_common = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_common)
export_tree = _common.export_tree  # the tree of a git revision, for a side-by-side ``before``

# wrk: one request = one random order of a random trader; tokens come as arguments.
_ORDERS_LUA = """
local tokens = {}
local cross = 0.3
init = function(args)
  cross = tonumber(args[1])
  for i = 2, #args do tokens[#tokens + 1] = args[i] end
  math.randomseed(os.time() + (tonumber(tostring({}):sub(8)) or 0))
end
request = function()
  local buy = math.random() < 0.5
  local ticks
  if math.random() < cross then ticks = -math.random(0, 3) else ticks = math.random(1, 20) end
  local cents = buy and (1000 - ticks) or (1000 + ticks)
  local body = string.format(
    '{"tradingPairId":"PAIR","side":"%s","type":"LIMIT","price":"%d.%02d","quantity":"%d"}',
    buy and "BUY" or "SELL", math.floor(cents / 100), cents % 100, math.random(1, 5))
  local headers = {["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. tokens[math.random(#tokens)]}
  return wrk.format("POST", "ORDERS", headers, body)
end
""".replace("PAIR", PAIR).replace("ORDERS", ORDERS)

_REPORT_LUA = """
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"non2xx":%d,"errors":%d,'
    .. '"p50_us":%d,"p99_us":%d}\\n',
    summary.requests, summary.duration, summary.errors.status, errors,
    latency:percentile(50), latency:percentile(99)))
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(
    method: str, url: str, body: Any = None, token: str | None = None, key: str | None = None
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if key:
        request.add_header("Idempotency-Key", key)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()[:500]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, all threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    """``rwa-market serve --migrate`` of a source tree, on a free port."""

    def __init__(self, work: Path, src: Path | None, database_url: str | None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.work = work
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RWA_")}
        self.env.update(
            {
                "RWA_PROFILE": "embedded",
                "RWA_HOST": "127.0.0.1",
                "RWA_PORT": str(self.port),
                "RWA_DATA_DIR": str(work / "data"),
                "RWA_JWT_SECRET": BENCH_SECRET,
                "RWA_HTTP_RATE_LIMIT": "0",
                "RWA_ORDER_RATE_LIMIT": "0",
                "RWA_ACCESS_LOG": "false",
            }
        )
        if database_url:
            self.env["RWA_DATABASE_URL"] = database_url
        if src is not None:
            self.env["PYTHONPATH"] = str(src)
            self.env["RWA_MIGRATIONS_DIR"] = str(src.parent / "migrations")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120.0) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        with (self.work / "server.log").open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _SERVE, "serve", "--migrate"],
                cwd=self.work,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"the server exited early; see {self.work / 'server.log'}")
            with contextlib.suppress(OSError):
                if call("GET", self.base + "/healthz")[0] == 200:
                    return
            time.sleep(0.2)
        raise SystemExit(f"the server did not answer /healthz in {timeout:g}s")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def wait_idle(self, timeout: float = 180.0) -> None:
        """Until the server used under 3% of a core for two seconds (its jobs are done)."""
        deadline = time.monotonic() + timeout
        quiet = 0
        while time.monotonic() < deadline and quiet < 4:
            before = cpu_seconds(self.pid)
            time.sleep(0.5)
            quiet = quiet + 1 if cpu_seconds(self.pid) - before < 0.015 else 0

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def ok(answer: tuple[int, Any], *expected: int) -> Any:
    status, body = answer
    if status not in (expected or (200,)):
        raise SystemExit(f"setup failed: {status} {body!r}")
    return body["data"]


def set_up(server: Server, issuer: TokenIssuer, users: list[str]) -> None:
    """Market, activation, compliance, USDC and BENCH for every trader, all by the API."""
    base = server.base + "/api/v1"
    admin = issuer.issue("bench-admin", ["admin"])
    owner = "bench-issuer"
    seller = issuer.issue(owner, ["issuer", "trader"])
    market = ok(
        call(
            "POST",
            base + "/markets/register",
            {
                "name": "Bench Tower",
                "assetType": "real_estate",
                "tokenSymbol": SYMBOL,
                "tokenName": "Bench Tower Token",
                "totalSupply": 100_000 * (len(users) + 1),
                "asset": {"valuation": "1000000.00", "currency": "USD"},
            },
            seller,
        ),
        201,
    )["market"]
    ok(call("POST", f"{base}/markets/{market['id']}/approve", {"decision": "approve"}, admin))
    deadline = time.monotonic() + 300
    while ok(call("GET", f"{base}/markets/{market['id']}"))["status"] != "active":
        if time.monotonic() > deadline:
            raise SystemExit("the bench market did not become active")
        time.sleep(0.3)
    compliance = {
        "kycStatus": "APPROVED",
        "whitelisted": True,
        "accredited": True,
        "jurisdiction": "PT",
        "expiresAt": "2099-12-31T00:00:00Z",
    }
    for user in [owner, *users]:
        ok(call("POST", f"{base}/tokens/compliance/{user}", compliance, admin), 200, 201)
    mints = []
    for user in users:
        body = {"userId": user, "amount": "1000000"}
        mint = ok(call("POST", f"{base}/tokens/USDC/mint", body, admin, f"bench-{user}"), 202)
        mints.append(mint["id"])
        body = {"toUserId": user, "amount": "100000"}
        ok(call("POST", f"{base}/tokens/{SYMBOL}/transfer", body, seller), 200, 201)
    for mint_id in mints:
        while (status := ok(call("GET", f"{base}/tokens/USDC/mints/{mint_id}", None, admin)))[
            "status"
        ] == "PENDING":
            time.sleep(0.2)
        if status["status"] != "COMPLETED":
            raise SystemExit(f"a USDC mint failed: {status}")
    probe = {"tradingPairId": PAIR, "side": "BUY", "type": "LIMIT", "price": "1.00"}
    trader = issuer.issue(users[0], ["trader"])
    placed = ok(call("POST", server.base + ORDERS, {**probe, "quantity": "1"}, trader), 201)
    ok(call("DELETE", f"{server.base}{ORDERS}/{placed['id']}", None, trader))
    server.wait_idle()


def count_trades(database_url: str) -> int:
    async def go() -> int:
        storage = SqlStorage(database_url)
        try:
            async with storage.unit_of_work(read_only=True) as uow:
                pair = await uow.pairs.by_symbol(PAIR)
                assert pair is not None
                return await uow.trades.max_seq(pair.id)  # trades are numbered from 1
        finally:
            await storage.close()

    return asyncio.run(go())


def drive(server: Server, tokens: list[str], options: argparse.Namespace) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(_ORDERS_LUA + _REPORT_LUA)
        script = handle.name
    cpu_before = cpu_seconds(server.pid)
    try:
        done = subprocess.run(
            [
                "wrk",
                f"-t{options.threads}",
                f"-c{options.connections}",
                f"-d{options.duration}s",
                "--timeout",
                "10s",
                "-s",
                script,
                server.base + ORDERS,
                "--",
                str(options.cross),
                *tokens,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.unlink(script)
    cpu = cpu_seconds(server.pid) - cpu_before
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("WRK_JSON ")]
    if not lines:
        raise SystemExit(f"wrk printed no report:\n{done.stdout}\n{done.stderr}")
    raw = json.loads(lines[0].removeprefix("WRK_JSON "))
    seconds = raw["duration_us"] / 1e6
    accepted = raw["requests"] - raw["non2xx"]
    return {
        "accepted": accepted,
        "orders_per_s": round(accepted / seconds, 1),
        "p50_ms": round(raw["p50_us"] / 1000, 2),
        "p99_ms": round(raw["p99_us"] / 1000, 2),
        "refused": raw["non2xx"],
        "errors": raw["errors"],
        "seconds": seconds,
        "cpu_ms_per_order": round(1000 * cpu / accepted, 3) if accepted else 0.0,
    }


def one_round(
    work: Path,
    src: Path | None,
    store: str,
    postgres: Any,
    options: argparse.Namespace,
    name: str,
) -> dict[str, float]:
    database_url = None
    database = None
    if store == "postgres":
        database = f"bench_orders_{name}_{os.getpid()}"
        database_url = postgres.create_database(database)
    server = Server(work / name, src, database_url)
    try:
        server.start()
        issuer = TokenIssuer(BENCH_SECRET)
        users = [f"bench-trader-{i}" for i in range(options.users)]
        set_up(server, issuer, users)
        url = database_url or f"sqlite+aiosqlite:///{work / name / 'data' / 'rwa.sqlite3'}"
        trades_before = count_trades(url)
        figures = drive(server, [issuer.issue(u, ["trader"]) for u in users], options)
        server.wait_idle(timeout=60)
        figures["trades_per_s"] = round((count_trades(url) - trades_before) / figures["seconds"], 1)
        del figures["seconds"]
        return figures
    finally:
        server.stop()
        if not options.keep:
            shutil.rmtree(work / name, ignore_errors=True)
        if database is not None:
            postgres.drop_database(database)


def median_of(samples: list[dict[str, float]]) -> dict[str, float]:
    return {key: round(statistics.median(s[key] for s in samples), 2) for key in samples[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--stores", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument("--runs", type=int, default=1, help="rounds; figures are medians")
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per round")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--users", type=int, default=20, help="traders the orders come from")
    parser.add_argument("--cross", type=float, default=0.3, help="share of crossing orders")
    parser.add_argument("--compare", metavar="REF", help="also measure this git revision")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (server logs)")
    options = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench/orders_http.py needs wrk: apt-get install wrk")
    stores = [s for s in options.stores.split(",") if s]
    work = Path(tempfile.mkdtemp(prefix="rwa-bench-orders-"))
    postgres = None
    try:
        if "postgres" in stores:
            from tests.harness.postgres import find_bin_dir, start_postgres

            bin_dir = find_bin_dir()
            if bin_dir is None:
                raise SystemExit("Postgres binaries not found (initdb, pg_ctl)")
            postgres = start_postgres(bin_dir)
            # the harness trades durability for test speed; a bench of acks must not
            for setting in ("fsync", "synchronous_commit", "full_page_writes"):
                postgres.psql(f"ALTER SYSTEM SET {setting} = on")
            postgres.psql("SELECT pg_reload_conf()")
        trees: dict[str, Path | None] = {"after": None}
        if options.compare:
            trees = {"before": export_tree(options.compare, work), "after": None}
        samples: dict[tuple[str, str], list[dict[str, float]]] = {}
        for run in range(options.runs):
            for store in stores:
                for label, src in trees.items():
                    name = f"{label}_{store}_{run}"
                    figures = one_round(work, src, store, postgres, options, name)
                    print(f"{name}: {json.dumps(figures)}", file=sys.stderr)
                    samples.setdefault((label, store), []).append(figures)
        result: dict[str, Any] = {
            "bench": "orders_http",
            "profile": "embedded",
            "connections": options.connections,
            "users": options.users,
            "duration_s": options.duration,
            "runs": options.runs,
            "cross": options.cross,
            "cpus": os.cpu_count(),
        }
        if options.compare:
            result["before_ref"] = options.compare
        for store in stores:
            after = median_of(samples[("after", store)])
            result[store] = after
            if options.compare:
                before = median_of(samples[("before", store)])
                result[store] = {
                    **after,
                    "before": before,
                    "ratio": round(after["orders_per_s"] / before["orders_per_s"], 2)
                    if before["orders_per_s"]
                    else None,
                }
        print(json.dumps(result, separators=(",", ":")))
    finally:
        if postgres is not None:
            postgres.stop()
            shutil.rmtree(postgres.base_dir, ignore_errors=True)
        if options.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
