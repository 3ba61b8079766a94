"""The real service in a subprocess: ``rwa-market serve --migrate`` under hypercorn.

``start_server`` launches the console script with an environment of its own (embedded profile,
a temp data directory, a free port on 127.0.0.1, a test JWT secret, plus any overrides), in a
process group of its own, with stdout and stderr going to a log file in the work directory.
It returns once ``/healthz`` answers. Every process is stopped by its PID: ``stop()`` sends
SIGTERM and waits (SIGKILL after a grace period), ``kill()`` sends SIGKILL at once.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

import httpx
import jwt

from tests.harness.common import free_port

T = TypeVar("T")

# 44 ASCII characters: long enough for every profile's secret rule, and marked as a test value.
TEST_JWT_SECRET = "e2e-test-only-jwt-secret-0123456789abcdefgh"
STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
API = "/api/v1/markets"

_BIN = Path(sys.executable).parent / "rwa-market"
_log_numbers = itertools.count(1)


def rwa_market_command() -> list[str]:
    """The console script next to this interpreter, else the module it wraps."""
    if _BIN.exists():
        return [str(_BIN)]
    return [sys.executable, "-m", "cli"]


def make_token(
    sub: str,
    roles: str | list[str],
    *,
    secret: str = TEST_JWT_SECRET,
    ttl_seconds: int = 3600,
    **claims: Any,
) -> str:
    """An HS256 bearer token with the service's claims: ``sub``, ``roles`` (a list), ``exp``."""
    now = int(time.time())
    payload: dict[str, Any] = {
        "sub": sub,
        "roles": [roles] if isinstance(roles, str) else list(roles),
        "iat": now,
        "exp": now + ttl_seconds,
        **claims,
    }
    return jwt.encode(payload, secret, algorithm="HS256")


class ServerError(RuntimeError):
    """The server did not start, or did not stop, as it should."""


class RwaServer:
    """One ``rwa-market serve`` process. Use ``client()`` to talk to it over real HTTP."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        *,
        port: int,
        env: dict[str, str],
        work_dir: Path,
        log_path: Path,
    ) -> None:
        self.process = process
        self.port = port
        self.env = env
        self.work_dir = work_dir
        self.log_path = log_path
        self.base_url = f"http://127.0.0.1:{port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def data_dir(self) -> Path:
        return Path(self.env["RWA_DATA_DIR"])

    @property
    def jwt_secret(self) -> str:
        return self.env["RWA_JWT_SECRET"]

    def alive(self) -> bool:
        return self.process.poll() is None

    def client(self, *, timeout: float = 15.0) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=timeout)

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no server log)"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    # -- tokens ------------------------------------------------------------------------------

    def token(self, sub: str, role: str | list[str], **claims: Any) -> str:
        """A bearer token signed with this server's secret (pyjwt, no subprocess)."""
        return make_token(sub, role, secret=self.jwt_secret, **claims)

    def cli_token(self, sub: str, role: str) -> str:
        """A bearer token minted by ``rwa-market token`` with this server's environment."""
        done = subprocess.run(
            [*rwa_market_command(), "token", "--sub", sub, "--role", role],
            env=self.env,
            cwd=self.work_dir,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise ServerError(f"`rwa-market token` failed ({done.returncode}): {done.stderr}")
        return done.stdout.strip().splitlines()[-1]

    # -- process control ---------------------------------------------------------------------

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM to the PID and wait; SIGKILL if it is still there. The exit code."""
        if self.process.poll() is None:
            with suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return int(self.process.wait())

    def kill(self) -> int:
        """SIGKILL to the PID (a crash); wait for it to be gone. The exit code."""
        if self.process.poll() is None:
            with suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGKILL)
        return int(self.process.wait(timeout=STOP_TIMEOUT))

    def __enter__(self) -> RwaServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def server_env(
    data_dir: Path, port: int, overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The parent's environment without any RWA_ variable, then the test's settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RWA_")}
    env.update(
        {
            "RWA_PROFILE": "embedded",
            "RWA_HOST": "127.0.0.1",
            "RWA_PORT": str(port),
            "RWA_DATA_DIR": str(data_dir),
            "RWA_JWT_SECRET": TEST_JWT_SECRET,
            # the tests read the text lines (a log file is not a terminal: json by default)
            "RWA_LOG_FORMAT": "text",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(overrides or {})
    return env


def _healthy(url: str) -> bool:
    try:
        response = httpx.get(f"{url}/healthz", timeout=2.0)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def start_server(
    work_dir: Path,
    *,
    data_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    startup_timeout: float = STARTUP_TIMEOUT,
    port: int | None = None,
) -> RwaServer:
    """Start ``rwa-market serve --migrate`` (on a free port unless given) and wait until
    /healthz answers."""
    work_dir.mkdir(parents=True, exist_ok=True)
    data_dir = data_dir or work_dir / "data"
    port = port or free_port()
    full_env = server_env(data_dir, port, env)
    log_path = work_dir / f"server-{next(_log_numbers)}-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*rwa_market_command(), "serve", "--migrate"],
            cwd=work_dir,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = RwaServer(process, port=port, env=full_env, work_dir=work_dir, log_path=log_path)
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerError(
                f"rwa-market serve exited with {process.returncode} before it was healthy; "
                f"log {log_path}:\n{server.log_tail()}"
            )
        if _healthy(server.base_url):
            return server
        time.sleep(0.1)
    server.kill()
    raise ServerError(
        f"rwa-market serve did not answer /healthz within {startup_timeout:g}s; "
        f"log {log_path}:\n{server.log_tail()}"
    )


@contextmanager
def running_server(work_dir: Path, **kwargs: Any) -> Iterator[RwaServer]:
    server = start_server(work_dir, **kwargs)
    try:
        yield server
    finally:
        server.stop()


def poll(
    fetch: Callable[[], T],
    done: Callable[[T], bool],
    *,
    timeout: float = 60.0,
    interval: float = 0.1,
    what: str = "condition",
    context: Callable[[], str] | None = None,
) -> T:
    """Call ``fetch`` until ``done(value)``; on timeout fail with the last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value):
            return value
        if time.monotonic() >= deadline:
            extra = f"\n{context()}" if context else ""
            raise AssertionError(
                f"timed out after {timeout:g}s waiting for {what}: {value!r}{extra}"
            )
        time.sleep(interval)
