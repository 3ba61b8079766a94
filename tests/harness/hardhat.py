"""Hardhat node harness: a pytest plugin (``hardhat_url``) and ``start_hardhat`` for e2e tests."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.common import free_port, missing_service

CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "contracts"
HARDHAT_CHAIN_ID = 31337
# Account #0 of the public Hardhat/Foundry test mnemonic ("test test ... junk"). Never fund it
# on a real network: everybody knows this key.
HARDHAT_DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
HARDHAT_DEV_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


class HardhatNode:
    """A ``hardhat node`` process in its own process group; ``stop()`` kills the whole group."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(self.process.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.process.wait(timeout=timeout)
                    break
                except subprocess.TimeoutExpired:
                    continue
        self.log_path.unlink(missing_ok=True)


def hardhat_unavailable() -> str | None:
    """Why a Hardhat node cannot start here, or None when it can."""
    for tool in ("node", "npx"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not on PATH"
    if not (CONTRACTS_DIR / "node_modules" / "hardhat").is_dir():
        return f"hardhat is not installed: run `npm install` in {CONTRACTS_DIR}"
    return None


def _chain_id(url: str) -> int | None:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return int(json.load(response)["result"], 16)
    except (OSError, ValueError, KeyError):
        return None


def start_hardhat(port: int, *, startup_timeout: float = 60.0) -> HardhatNode:
    """Start ``npx hardhat node`` on 127.0.0.1:``port`` and wait until it answers eth_chainId."""
    reason = hardhat_unavailable()
    if reason is not None:
        raise RuntimeError(f"cannot start hardhat: {reason}")
    log = tempfile.NamedTemporaryFile(prefix="hardhat-", suffix=".log", delete=False)  # noqa: SIM115
    env = {**os.environ, "HARDHAT_DISABLE_TELEMETRY_PROMPT": "true"}
    command = ["npx", "hardhat", "node", "--hostname", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(
        command,
        cwd=CONTRACTS_DIR,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    log.close()
    node = HardhatNode(process, port, Path(log.name))
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = node.log_tail()
            node.stop()
            raise RuntimeError(f"hardhat node exited with {process.returncode}:\n{tail}")
        if _chain_id(node.url) == HARDHAT_CHAIN_ID:
            return node
        time.sleep(0.2)
    tail = node.log_tail()
    node.stop()
    raise RuntimeError(f"hardhat node did not answer within {startup_timeout:g}s:\n{tail}")


@pytest.fixture(scope="session")
def hardhat_url() -> Iterator[str]:
    """URL of a Hardhat node shared by the whole session (chain id 31337, automine)."""
    reason = hardhat_unavailable()
    if reason is not None:
        missing_service(f"Hardhat node: {reason}")
    node = start_hardhat(free_port())
    try:
        yield node.url
    finally:
        node.stop()
