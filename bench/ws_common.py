"""Shared parts of the benchmarks: the durable embedded server as a subprocess, a funded pair,
bearer tokens, percentiles, a git revision's tree and interleaved before/after rounds. Not a
benchmark itself."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import jwt

BENCH_SECRET = "bench-only-jwt-secret-" + "0123456789abcdefghijklmnop"  # never a real secret
TRADING = "/api/v1/trading"
PAIR = "WETH-USDC"
T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]
_SERVE = "import sys, cli; sys.exit(cli.main())"  # the `rwa-market` script of PYTHONPATH's tree


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def token(sub: str, role: str) -> str:
    now = int(time.time())
    payload = {"sub": sub, "roles": [role], "iat": now, "exp": now + 3600}
    return jwt.encode(payload, BENCH_SECRET, algorithm="HS256")


def http(method: str, url: str, body: Any = None, bearer: str | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if bearer:
        request.add_header("Authorization", f"Bearer {bearer}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()[:300]


def rwa_market() -> list[str]:
    script = Path(sys.executable).parent / "rwa-market"
    return [str(script)] if script.exists() else [sys.executable, "-m", "cli"]


class Server:
    """``rwa-market serve --migrate``, embedded profile (SQLite in WAL, durable), on a free
    port of 127.0.0.1 and a temporary data directory; rate limits off for the bench. With
    ``src``, the server is that source tree's (``export_tree``), not the installed one."""

    def __init__(
        self, work: Path, extra_env: dict[str, str] | None = None, *, src: Path | None = None
    ) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/api/v1/ws"
        self.work = work
        self.data_dir = work / "data"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RWA_")}
        self.env.update(
            {
                "RWA_PROFILE": "embedded",
                "RWA_HOST": "127.0.0.1",
                "RWA_PORT": str(self.port),
                "RWA_DATA_DIR": str(self.data_dir),
                "RWA_JWT_SECRET": BENCH_SECRET,
                "RWA_HTTP_RATE_LIMIT": "0",
                "RWA_ORDER_RATE_LIMIT": "0",
                "RWA_WS_RATE_PER_SECOND": "100000",
                "RWA_WS_RATE_BURST": "100000",
                "RWA_LOG_LEVEL": "WARNING",
                **(extra_env or {}),
            }
        )
        self.src = src
        if src is not None:
            self.env["PYTHONPATH"] = str(src)
            self.env["RWA_MIGRATIONS_DIR"] = str(src.parent / "migrations")
        self.log_path = work / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90.0) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        command = rwa_market() if self.src is None else [sys.executable, "-c", _SERVE]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [*command, "serve", "--migrate"],
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
                raise SystemExit(f"the server exited early; see {self.log_path}")
            try:
                if http("GET", self.base + "/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise SystemExit(f"the server did not answer /healthz in {timeout:g}s")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def rss_mb(self) -> float:
        """The server's resident memory (VmRSS), in MiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def make_pair(server: Server, users: list[str]) -> dict[str, Any]:
    """WETH (18 decimals) against USDC: tick 0.01, lot 0.001; each user funded with 10^6 WETH
    and 10^9 USDC straight in the ledger (a mint posting set per user and token)."""
    admin = token("bench-admin", "admin")
    weth = {"symbol": "WETH", "name": "Wrapped Ether", "type": "CRYPTO", "decimals": 18}
    status, body = http("POST", server.base + "/api/v1/tokens", weth, admin)
    if status != 201:
        raise SystemExit(f"creating WETH failed: {status} {body!r}")
    status, body = http(
        "POST",
        server.base + TRADING + "/pairs",
        {
            "baseToken": "WETH",
            "quoteToken": "USDC",
            "tickSize": "0.01",
            "lotSize": "0.001",
            "maxQuantity": "1000000",
        },
        admin,
    )
    if status != 201:
        raise SystemExit(f"creating the pair failed: {status} {body!r}")
    pair: dict[str, Any] = body["data"]
    asyncio.run(_fund(server, users, pair["baseTokenId"], pair["quoteTokenId"]))
    return pair


async def _fund(server: Server, users: list[str], base: str, quote: str) -> None:
    from adapters.outbound.storage.sql import SqlStorage
    from core.ledger.model import AccountRef
    from core.ledger.operations import mint
    from core.shared.ids import new_id

    storage = SqlStorage(f"sqlite+aiosqlite:///{(server.data_dir / 'rwa.sqlite3').resolve()}")
    try:
        async with storage.unit_of_work() as uow:
            for user in users:
                for token_id, amount in ((base, 10**6 * 10**18), (quote, 10**9 * 10**6)):
                    await uow.ledger.apply(
                        mint(
                            f"bench:{new_id()}",
                            datetime.now(UTC),
                            AccountRef.user(user, token_id),
                            amount,
                        )
                    )
            await uow.commit()
    finally:
        await storage.close()


def export_tree(ref: str, into: Path) -> Path:
    """The ``src`` of git revision ``ref`` (``git archive`` into ``into``), for a side-by-side
    ``before``."""
    archive = into / "tree.tar"
    with archive.open("wb") as handle:
        subprocess.run(["git", "archive", ref], cwd=ROOT, stdout=handle, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "tree", filter="data")
    return into / "tree" / "src"


def interleaved_rounds(
    work: Path, compare: str | None, runs: int, measure: Callable[[Path | None, str], T]
) -> dict[str, list[T]]:
    """``runs`` rounds of ``measure(src, name)`` on the working tree ("after") and, with
    ``compare``, on that git revision's tree ("before"), alternating which goes first so
    that a drifting machine evens out; each round's figures printed to stderr."""
    trees: dict[str, Path | None] = {"after": None}
    if compare:
        trees = {"before": export_tree(compare, work), "after": None}
    rounds: dict[str, list[T]] = {label: [] for label in trees}
    for run in range(runs):
        order = list(trees.items())
        if run % 2:
            order.reverse()
        for label, src in order:
            name = f"{label}_{run}"
            figures = measure(src, name)
            print(f"{name}: {json.dumps(figures)}", file=sys.stderr)
            rounds[label].append(figures)
    return rounds


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]
