"""Pytest plugin: a throwaway ``redis-server`` on loopback, started once per test session.

The server runs without persistence (``--save "" --appendonly no``) from a temp directory,
on a free port bound to 127.0.0.1, and is killed by its PID at the end of the session.

Fixtures:
- ``redis_server``: the running ``RedisServer`` (``url(db)``, ``flushall()``, ``pid``);
- ``redis_url``: ``redis://127.0.0.1:<port>/0`` for the session (shared state!);
- ``clean_redis_url``: the same database, emptied with FLUSHALL before the test runs.

``start_redis`` is also usable directly by e2e tests that need a server of their own (for
example one they restart).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.common import free_port, missing_service


class RedisServer:
    """A ``redis-server`` child process; ``stop()`` kills it by PID."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, base_dir: Path) -> None:
        self.process = process
        self.port = port
        self.base_dir = base_dir
        self.host = "127.0.0.1"

    @property
    def pid(self) -> int:
        return self.process.pid

    def url(self, db: int = 0) -> str:
        return f"redis://{self.host}:{self.port}/{db}"

    def command(self, *parts: str, timeout: float = 5.0) -> bytes:
        """Send one inline command over a raw socket and return the first reply line."""
        with socket.create_connection((self.host, self.port), timeout=timeout) as sock:
            sock.sendall((" ".join(parts) + "\r\n").encode())
            reply = b""
            while not reply.endswith(b"\r\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
            return reply.strip()

    def ping(self) -> bool:
        try:
            return self.command("PING", timeout=0.5) == b"+PONG"
        except OSError:
            return False

    def flushall(self) -> None:
        reply = self.command("FLUSHALL")
        if reply != b"+OK":
            raise RuntimeError(f"FLUSHALL failed: {reply!r}")

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return (self.base_dir / "redis.log").read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=timeout)
        shutil.rmtree(self.base_dir, ignore_errors=True)


def redis_binary() -> str | None:
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )


def start_redis(
    *, port: int | None = None, attempts: int = 3, startup_timeout: float = 10.0
) -> RedisServer:
    """Start ``redis-server`` on a free loopback port (or ``port``, e.g. to restart a server
    where its clients expect it) and wait until it answers PING."""
    binary = redis_binary()
    if binary is None:
        raise FileNotFoundError("redis-server is not on PATH")
    last_error = ""
    for _ in range(attempts):
        base_dir = Path(tempfile.mkdtemp(prefix="rwa-redis-"))
        port_now = port or free_port()
        argv = [
            binary,
            "--port",
            str(port_now),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(base_dir),
            "--logfile",
            str(base_dir / "redis.log"),
            "--daemonize",
            "no",
        ]
        process = subprocess.Popen(
            argv, cwd=base_dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        server = RedisServer(process, port_now, base_dir)
        deadline = time.monotonic() + startup_timeout
        while time.monotonic() < deadline and process.poll() is None:
            if server.ping():
                return server
            time.sleep(0.05)
        last_error = server.log_tail()
        server.stop()
    raise RuntimeError(f"redis-server did not start after {attempts} attempts:\n{last_error}")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the whole session."""
    if redis_binary() is None:
        missing_service("Redis: redis-server is not on PATH")
    server = start_redis()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    """Database 0 of the session's server. Tests that need it empty use ``clean_redis_url``."""
    return redis_server.url(0)


@pytest.fixture
def clean_redis_url(redis_server: RedisServer) -> str:
    """Database 0, emptied (FLUSHALL) before the test."""
    redis_server.flushall()
    return redis_server.url(0)
