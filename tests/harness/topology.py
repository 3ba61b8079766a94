"""The production topology on one machine, every service on loopback.

Started here: PostgreSQL, redis-server, a Hardhat node, the stand-in Entity Permissions Core,
then the API (`rwa-market serve --migrate`, production profile), one `rwa-market worker`
(taskiq on Redis streams), optionally `rwa-market engine` processes (the order books) and
`rwa-market poll`, and optionally Prometheus scraping the API's `/metrics`. API, worker and
engines share one `PROMETHEUS_MULTIPROC_DIR` (as processes of one host should), so that scrape
carries the worker's job, deployment and settlement metrics and the engines' matching metrics
too. Every process is stopped by its PID. The e2e tests use `start_topology`; people use
`make production-local`, which runs this module's `main()` until Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.server import RwaServer, rwa_market_command, start_server
from tests.harness.common import free_port
from tests.harness.hardhat import HARDHAT_DEV_KEY, HardhatNode, start_hardhat
from tests.harness.permissions_core import TEST_API_KEY, PermissionsCore
from tests.harness.postgres import PostgresServer, find_bin_dir, start_postgres
from tests.harness.prometheus import PrometheusServer, start_prometheus
from tests.harness.redis import RedisServer, start_redis

WEBHOOK_SECRET = "topology-webhook-secret-NOT-FOR-PRODUCTION"
JWT_SECRET = "topology-jwt-secret-NOT-FOR-PRODUCTION-0123456789"


@dataclass
class Topology:
    work_dir: Path
    postgres: PostgresServer
    redis: RedisServer
    hardhat: HardhatNode
    core: PermissionsCore
    env: dict[str, str]
    api: RwaServer | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    poller: subprocess.Popen[bytes] | None = None
    engines: list[subprocess.Popen[bytes]] = field(default_factory=list)
    more_apis: list[RwaServer] = field(default_factory=list)
    prometheus: PrometheusServer | None = None

    def _spawn(self, args: list[str], name: str) -> subprocess.Popen[bytes]:
        log = (self.work_dir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [*rwa_market_command(), *args],
            cwd=self.work_dir,
            env={**os.environ, **self.env},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return process

    def start_worker(self) -> subprocess.Popen[bytes]:
        worker = self._spawn(["worker"], f"worker-{len(self.workers)}")
        self.workers.append(worker)
        return worker

    def start_engine(self) -> subprocess.Popen[bytes]:
        """One more ``rwa-market engine`` (it takes the pairs whose leases are free)."""
        engine = self._spawn(["engine"], f"engine-{len(self.engines)}")
        self.engines.append(engine)
        return engine

    def start_api(self) -> RwaServer:
        """One more API process on the same database, Redis and chain (its own port)."""
        api = start_server(self.work_dir / f"api-{len(self.more_apis) + 2}", env=self.env)
        self.more_apis.append(api)
        return api

    def start_poller(self) -> subprocess.Popen[bytes]:
        self.poller = self._spawn(["poll"], "poller")
        return self.poller

    def log(self, name: str) -> str:
        path = self.work_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.prometheus is not None:
            self.prometheus.stop()
        for process in [*self.workers, *self.engines, *([self.poller] if self.poller else [])]:
            stop_process(process)
        for api in self.more_apis:
            api.stop()
        if self.api is not None:
            self.api.stop()
        self.core.stop()
        self.hardhat.stop()
        self.redis.stop()
        self.postgres.stop()


def stop_process(process: subprocess.Popen[bytes], timeout: float = 20.0) -> int:
    """SIGTERM to the process group the PID leads (``rwa-market worker`` becomes a taskiq
    supervisor with children), SIGKILL to the group if it lingers; the exit code."""
    if process.poll() is None:
        signal_group(process, signal.SIGTERM)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        signal_group(process, signal.SIGKILL)
        return process.wait()
    finally:
        signal_group(process, signal.SIGKILL)  # children the leader left behind, if any


def signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal every process of the session the PID leads (each is started in its own)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def production_env(
    postgres_url: str, redis_url: str, chain_url: str, core: PermissionsCore
) -> dict[str, str]:
    return {
        "RWA_PROFILE": "production",
        "RWA_DATABASE_URL": postgres_url,
        "RWA_REDIS_URL": redis_url,
        "RWA_CHAIN_RPC_URL": chain_url,
        "RWA_CHAIN_ID": "31337",
        "RWA_CHAIN_PRIVATE_KEY": HARDHAT_DEV_KEY,
        "RWA_PERMISSIONS_BASE_URL": core.base_url,
        "RWA_PERMISSIONS_API_KEY": TEST_API_KEY,
        "RWA_PERMISSIONS_POLL_SECONDS": "0.5",
        "RWA_WEBHOOK_SECRETS": WEBHOOK_SECRET,
        "RWA_JWT_SECRET": JWT_SECRET,
        # a public BIP-39 test vector: production refuses only the DEVELOPMENT-ONLY default
        "RWA_CUSTODY_MNEMONIC": "abandon " * 11 + "about",
        "RWA_DEPLOY_BACKOFF_SECONDS": "0.5",
        "RWA_JOBS_CLAIM_IDLE_SECONDS": "3",
        "RWA_LOG_FORMAT": "json",
        "PYTHONUNBUFFERED": "1",
    }


def start_topology(
    work_dir: Path,
    *,
    workers: int = 1,
    poller: bool = False,
    engines: int = 0,
    api_port: int | None = None,
    extra_env: Mapping[str, str] | None = None,
    prometheus: bool = False,
) -> Topology:
    """Start every service and process; on any failure, stop what was started."""
    work_dir.mkdir(parents=True, exist_ok=True)
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL (initdb, pg_ctl) is not installed")
    started: list[object] = []
    try:
        postgres = start_postgres(bin_dir)
        started.append(postgres)
        database_url = postgres.create_database("rwa")
        redis = start_redis()
        started.append(redis)
        hardhat = start_hardhat(free_port())
        started.append(hardhat)
        core = PermissionsCore(api_key=TEST_API_KEY).start()
        started.append(core)
        env = production_env(database_url, redis.url(), hardhat.url, core)
        # one host: every process writes its metrics here and the API's /metrics merges them
        multiproc = work_dir / "prometheus-multiproc"
        shutil.rmtree(multiproc, ignore_errors=True)
        multiproc.mkdir()
        env["PROMETHEUS_MULTIPROC_DIR"] = str(multiproc)
        env.update(extra_env or {})
        topology = Topology(work_dir, postgres, redis, hardhat, core, env)
        if api_port is not None:
            env["RWA_PORT"] = str(api_port)
        topology.api = start_server(work_dir, env=env, port=api_port)
        for _ in range(workers):
            topology.start_worker()
        for _ in range(engines):
            topology.start_engine()
        if poller:
            topology.start_poller()
        if prometheus:
            target = f"127.0.0.1:{topology.api.port}"
            topology.prometheus = start_prometheus({"rwa-api": target})
            started.append(topology.prometheus)
        return topology
    except BaseException:
        for service in reversed(started):
            service.stop()  # type: ignore[attr-defined]
        raise


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8000, help="the API's port")
    parser.add_argument("--dir", default=None, help="where logs and data go (default: a temp dir)")
    args = parser.parse_args()
    work_dir = Path(args.dir or tempfile.mkdtemp(prefix="rwa-production-local-"))
    topology = start_topology(work_dir, poller=True, api_port=args.port, engines=1, prometheus=True)
    assert topology.api is not None
    base = topology.api.base_url
    prometheus = topology.prometheus.base_url if topology.prometheus else "-"
    print(
        f"""
Production topology on loopback (logs in {work_dir}):
  API + WebSocket   {base}   (profile production; `rwa-market serve`)
  taskiq worker     PID {topology.workers[0].pid}   (`rwa-market worker`)
  matching engine   PID {topology.engines[0].pid}   (`rwa-market engine`: owns the books)
  poller            PID {topology.poller.pid if topology.poller else "-"}   (`rwa-market poll`)
  PostgreSQL        {topology.env["RWA_DATABASE_URL"]}
  Redis             {topology.env["RWA_REDIS_URL"]}
  Hardhat node      {topology.env["RWA_CHAIN_RPC_URL"]}  (chain 31337)
  Permissions Core  {topology.core.base_url}  (stand-in; API key {TEST_API_KEY})
  Prometheus        {prometheus}   (scrapes {base}/metrics every 2 s; ops/prometheus rules)

Tokens: RWA_JWT_SECRET='{JWT_SECRET}' .venv/bin/rwa-market token --sub admin-1 --role admin
Webhook secret (HMAC, header X-Signature: t=<unix>,v1=<hex>): {WEBHOOK_SECRET}
Ctrl-C stops everything.
""",
        flush=True,
    )
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        # a second Ctrl-C must not cut the shutdown short and leave services behind
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("stopping every process of the topology ...", flush=True)
        topology.stop()


if __name__ == "__main__":
    main()
