"""A throwaway Prometheus (Debian's ``prometheus`` binary) on loopback, scraping given targets.

Its configuration is written to its own temp directory: a scrape job per target (every 2 s)
and the alert rules of ``ops/prometheus/alerts.yml``. ``stop()`` ends it by its PID.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tests.harness.common import free_port

RULES = Path(__file__).resolve().parents[2] / "ops" / "prometheus" / "alerts.yml"
SCRAPE_SECONDS = 2


def prometheus_binary() -> str | None:
    return shutil.which("prometheus") or (
        "/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None
    )


def config_text(targets: dict[str, str], rules: Path = RULES) -> str:
    """The configuration (YAML is a superset of JSON: written as JSON, no YAML library)."""
    config = {
        "global": {
            "scrape_interval": f"{SCRAPE_SECONDS}s",
            "evaluation_interval": f"{SCRAPE_SECONDS}s",
        },
        "rule_files": [str(rules)],
        "scrape_configs": [
            {"job_name": job, "metrics_path": "/metrics", "static_configs": [{"targets": [hp]}]}
            for job, hp in targets.items()
        ],
    }
    return json.dumps(config, indent=2)


class PrometheusServer:
    def __init__(self, process: subprocess.Popen[bytes], port: int, base_dir: Path) -> None:
        self.process = process
        self.port = port
        self.base_dir = base_dir
        self.base_url = f"http://127.0.0.1:{port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def api(self, path: str, **params: str) -> Any:
        response = httpx.get(f"{self.base_url}/api/v1/{path}", params=params, timeout=5)
        response.raise_for_status()
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]

    def targets(self) -> list[dict[str, Any]]:
        return list(self.api("targets")["activeTargets"])

    def query(self, expr: str) -> list[dict[str, Any]]:
        return list(self.api("query", query=expr)["result"])

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return (self.base_dir / "prometheus.log").read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=timeout)
        shutil.rmtree(self.base_dir, ignore_errors=True)


def start_prometheus(
    targets: dict[str, str], *, port: int | None = None, startup_timeout: float = 30.0
) -> PrometheusServer:
    """Prometheus scraping ``targets`` (job name -> ``host:port``), its UI and API on a
    loopback port; waits until it is ready."""
    binary = prometheus_binary()
    if binary is None:
        raise FileNotFoundError("prometheus is not on PATH (apt-get install prometheus)")
    base_dir = Path(tempfile.mkdtemp(prefix="rwa-prometheus-"))
    (base_dir / "prometheus.yml").write_text(config_text(targets))
    port = port or free_port()
    with (base_dir / "prometheus.log").open("wb") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={base_dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={base_dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=1d",
            ],
            cwd=base_dir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = PrometheusServer(process, port, base_dir)
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline and process.poll() is None:
        if server.ready():
            return server
        time.sleep(0.1)
    tail = server.log_tail()
    server.stop()
    raise RuntimeError(f"prometheus did not become ready:\n{tail}")
