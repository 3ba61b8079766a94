"""Real ``rwa-market worker`` processes (``taskiq worker worker:broker``) for tests.

Each worker runs in a session of its own (``start_new_session``): taskiq's worker is a
parent process supervising child processes, so stopping it means signalling the process
group led by the PID we started, never anything found by name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TEST_JWT_SECRET = "worker-test-only-jwt-secret-0123456789abcdef"


def worker_command() -> list[str]:
    script = Path(sys.executable).parent / "rwa-market"
    return [str(script)] if script.exists() else [sys.executable, "-m", "cli"]


def worker_env(
    redis_url: str, data_dir: Path, overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RWA_")}
    env.update(
        {
            "RWA_PROFILE": "embedded",
            "RWA_DATA_DIR": str(data_dir),
            "RWA_REDIS_URL": redis_url,
            "RWA_JWT_SECRET": TEST_JWT_SECRET,
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p),
        }
    )
    env.update(overrides or {})
    return env


class WorkerProcess:
    def __init__(self, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait_listening(self, timeout: float = 60.0) -> float:
        """Block until taskiq's receiver is listening; the seconds it took."""
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            if "Listening started" in self.log():
                return time.monotonic() - started
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited ({self.process.returncode}):\n{self.log()}")
            time.sleep(0.05)
        raise TimeoutError(f"worker not listening after {timeout}s:\n{self.log()[-4000:]}")

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)

    def kill(self) -> None:
        """SIGKILL the worker's process group (parent and children): a crash."""
        self._signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> float | None:
        """SIGTERM, then SIGKILL after ``timeout``. Seconds to exit on SIGTERM, or None."""
        if self.process.poll() is not None:
            self._signal_group(signal.SIGKILL)  # children left behind, if any
            return 0.0
        started = time.monotonic()
        self._signal_group(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
            took: float | None = time.monotonic() - started
        except subprocess.TimeoutExpired:
            took = None
        self._signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        return took


def start_worker(
    work_dir: Path,
    env: Mapping[str, str],
    *,
    modules: tuple[str, ...] = ("tests.harness.worker_tasks",),
    args: tuple[str, ...] = (),
    name: str = "worker",
) -> WorkerProcess:
    log_path = work_dir / f"{name}.log"
    log_file = log_path.open("wb")
    try:
        process = subprocess.Popen(
            [*worker_command(), "worker", *args, *modules],
            cwd=REPO,
            env=dict(env),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        log_file.close()
    return WorkerProcess(process, log_path)
