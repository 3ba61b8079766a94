"""Benchmark: the real embedded server over HTTP, driven by ``wrk``.

Run: .venv/bin/python bench/http.py [--connections 32] [--duration 10] [--threads 2]
                                    [--markets 200] [--runs 1] [--keep]

Starts ``rwa-market serve --migrate`` on a temporary RWA_DATA_DIR and a free port on
127.0.0.1 (embedded profile: SQLite in WAL mode, the in-process chain and job queue), seeds
markets over HTTP, then runs ``wrk`` against, in turn:

- ``GET /healthz`` (the floor: the HTTP stack and nothing else),
- ``GET /api/v1/markets/:id`` (one read unit of work; ids drawn from the seeded markets),
- ``GET /api/v1/markets?limit=20`` (a page),
- ``POST /api/v1/markets/register`` (a write: unique symbols from a wrk Lua script, a bearer
  token from ``rwa-market token``).

With ``--runs N`` the four are measured N times, interleaved on the same server, and each
figure is the median of the N runs. The HTTP rate limit is turned off for the run
(``RWA_HTTP_RATE_LIMIT=0``). Prints ONE JSON line: req/s, p50 and p99 (ms), non-2xx answers
and socket errors for each endpoint, its req/s as a fraction of ``/healthz``
(``vs_healthz``), and the server's CPU time per request (``cpu_ms``, from /proc, all its
threads) with ``/healthz``'s CPU time as a fraction of it (``cpu_vs_healthz``): on a machine
shared with other work req/s swing from run to run, CPU time per request much less.
``wrk`` is the Debian package ``wrk`` (``apt-get install wrk``).
"""

from __future__ import annotations

import sys

# Run as a script, this file's directory comes first on sys.path and its name would shadow
# the standard library's ``http`` package (which urllib imports): drop that entry.
if sys.path and sys.path[0] and __file__.startswith(sys.path[0]):
    del sys.path[0]

import argparse
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

BENCH_SECRET = "bench-only-jwt-secret-" + "0123456789abcdefghijklmnop"
API = "/api/v1/markets"

# Printed by wrk's done() hook: one JSON object the bench parses.
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

_GET_IDS_LUA = """
local ids = {}
init = function(args)
  for i = 1, #args do ids[i] = args[i] end
  math.randomseed(os.time() + (tonumber(tostring({}):sub(8)) or 0))
end
request = function()
  return wrk.format("GET", "API_PATH/" .. ids[math.random(#ids)])
end
""".replace("API_PATH", API)

# Unique symbols: "R" + run letter + thread number + counter (at most 11 characters).
_REGISTER_LUA = """
local counter = 0
local threads = 0
local run, token
setup = function(thread)
  threads = threads + 1
  thread:set("thread_no", threads)
end
init = function(args)
  run, token = args[1], args[2]
  thread_no = thread_no or 0  -- a global set by setup() through thread:set
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. token
end
request = function()
  counter = counter + 1
  local symbol = string.format("R%s%d%d", run, thread_no, counter)
  local body = '{"name":"Bench Offices ' .. symbol .. '","assetType":"real_estate",'
    .. '"tokenSymbol":"' .. symbol .. '","tokenName":"Bench Token ' .. symbol .. '",'
    .. '"totalSupply":1000000,"asset":{"valuation":"1000.00","currency":"USD"}}'
  return wrk.format("POST", "API_PATH/register", nil, body)
end
""".replace("API_PATH", API)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rwa_market() -> list[str]:
    script = Path(sys.executable).parent / "rwa-market"
    return [str(script)] if script.exists() else [sys.executable, "-m", "cli"]


def http(method: str, url: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()[:300]


class Server:
    def __init__(self, work: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RWA_")}
        self.env.update(
            {
                "RWA_PROFILE": "embedded",
                "RWA_HOST": "127.0.0.1",
                "RWA_PORT": str(self.port),
                "RWA_DATA_DIR": str(work / "data"),
                "RWA_JWT_SECRET": BENCH_SECRET,
                "RWA_HTTP_RATE_LIMIT": "0",
            }
        )
        self.log_path = work / "server.log"
        self.work = work
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [*rwa_market(), "serve", "--migrate"],
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

    def token(self, sub: str, role: str) -> str:
        done = subprocess.run(
            [*rwa_market(), "token", "--sub", sub, "--role", role],
            env=self.env,
            cwd=self.work,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout.strip().splitlines()[-1]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def seed(server: Server, token: str, count: int) -> list[str]:
    ids = []
    for n in range(count):
        symbol = f"SEED{n}"
        status, body = http(
            "POST",
            server.base + API + "/register",
            {
                "name": f"Seeded Offices {n}",
                "assetType": "real_estate",
                "tokenSymbol": symbol,
                "tokenName": f"Seeded Token {n}",
                "totalSupply": 1_000_000,
                "asset": {"valuation": "1000.00", "currency": "USD"},
            },
            token,
        )
        if status != 201:
            raise SystemExit(f"seeding failed: {status} {body!r}")
        data = body["data"]
        market = data.get("market", data)
        ids.append(str(market["id"]))
    return ids


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, all threads (0 where /proc is missing)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(
    url: str,
    script: str,
    args: list[str],
    *,
    connections: int,
    threads: int,
    duration: int,
    server_pid: int,
) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script + _REPORT_LUA)
        path = handle.name
    cpu_before = cpu_seconds(server_pid)
    try:
        command = [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "10s",
            "-s",
            path,
            url,
        ]
        if args:
            command += ["--", *args]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
    finally:
        os.unlink(path)
    cpu = cpu_seconds(server_pid) - cpu_before
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("WRK_JSON "))
    raw = json.loads(line.removeprefix("WRK_JSON "))
    seconds = raw["duration_us"] / 1e6
    return {
        "rps": round(raw["requests"] / seconds, 1),
        "p50_ms": round(raw["p50_us"] / 1000, 2),
        "p99_ms": round(raw["p99_us"] / 1000, 2),
        "non2xx": raw["non2xx"],
        "errors": raw["errors"],
        "cpu_ms": round(1000 * cpu / raw["requests"], 3) if raw["requests"] else 0.0,
    }


def median_of(samples: list[dict[str, float]]) -> dict[str, float]:
    return {key: round(statistics.median(s[key] for s in samples), 2) for key in samples[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--duration", type=int, default=10, help="seconds per endpoint")
    parser.add_argument("--markets", type=int, default=200, help="markets seeded first")
    parser.add_argument("--runs", type=int, default=1, help="rounds; figures are medians")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (server log)")
    options = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench/http.py needs wrk: apt-get install wrk (Debian package 'wrk')")

    work = Path(tempfile.mkdtemp(prefix="rwa-bench-http-"))
    server = Server(work)
    try:
        server.start()
        issuer = server.token("bench-issuer", "issuer")
        ids = seed(server, issuer, options.markets)
        endpoints: dict[str, tuple[str, str, list[str]]] = {
            "healthz": (server.base + "/healthz", "", []),
            "get_market": (server.base + API, _GET_IDS_LUA, ids),
            "list_markets": (server.base + API + "?limit=20", "", []),
            "register": (server.base + API + "/register", _REGISTER_LUA, []),
        }
        samples: dict[str, list[dict[str, float]]] = {name: [] for name in endpoints}
        for run in range(options.runs):
            for name, (url, script, args) in endpoints.items():
                if name == "register":
                    args = [chr(ord("A") + run % 26), issuer]
                samples[name].append(
                    wrk(
                        url,
                        script,
                        args,
                        connections=options.connections,
                        threads=options.threads,
                        duration=options.duration,
                        server_pid=server.pid,
                    )
                )
        results = {name: median_of(values) for name, values in samples.items()}
        floor, floor_cpu = results["healthz"]["rps"], results["healthz"]["cpu_ms"]
        for figures in results.values():
            figures["vs_healthz"] = round(figures["rps"] / floor, 3) if floor else 0.0
            cpu = figures["cpu_ms"]
            figures["cpu_vs_healthz"] = round(floor_cpu / cpu, 3) if cpu else 0.0
        print(
            json.dumps(
                {
                    "bench": "http",
                    "profile": "embedded",
                    "connections": options.connections,
                    "threads": options.threads,
                    "duration_s": options.duration,
                    "runs": options.runs,
                    "seeded_markets": options.markets,
                    "cpus": os.cpu_count(),
                    **results,
                },
                separators=(",", ":"),
            )
        )
    finally:
        server.stop()
        if options.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
