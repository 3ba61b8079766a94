"""The API and a separate ``rwa-market worker`` (taskiq worker) process on Redis deploy T-REX
suites on a Hardhat node; a worker killed in the middle of a deployment does not lose the
job, and the market still gets exactly one suite (the recorded transaction is followed,
never signed again): whether the killed worker's transaction was mined meanwhile, or dropped
by the node and sent again from the record. Every contract the signer created on the node is
a recorded one.

Processes, all on loopback: redis-server, a Hardhat node, ``rwa-market serve`` (embedded
storage: SQLite in WAL, shared by file with the worker; ``RWA_WORKER_IN_PROCESS=false`` so the
API only produces jobs) and one ``rwa-market worker`` at a time.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hexbytes import HexBytes

from tests.e2e.api import MarketsApi, market_body
from tests.e2e.server import RwaServer, start_server
from tests.e2e.test_market_lifecycle import HAPPY_EVENTS, assert_deployed, event_types
from tests.harness.common import free_port, missing_service
from tests.harness.hardhat import (
    HARDHAT_CHAIN_ID,
    HARDHAT_DEV_ADDRESS,
    HARDHAT_DEV_KEY,
    HardhatNode,
    hardhat_unavailable,
    start_hardhat,
)
from tests.harness.taskiq_worker import WorkerProcess, start_worker, worker_env

CLAIM_IDLE_SECONDS = 3.0


@pytest.fixture
def hardhat_node() -> Iterator[HardhatNode]:
    """A node of our own: this test switches automining off and on."""
    reason = hardhat_unavailable()
    if reason is not None:
        missing_service(f"Hardhat node: {reason}")
    node = start_hardhat(free_port())
    try:
        yield node
    finally:
        node.stop()


def test_separate_worker_deploys_and_a_killed_worker_loses_nothing(
    tmp_path: Path, clean_redis_url: str, hardhat_node: HardhatNode
) -> None:
    from web3 import HTTPProvider, Web3

    w3 = Web3(HTTPProvider(hardhat_node.url))
    overrides = {
        "RWA_REDIS_URL": clean_redis_url,
        "RWA_WORKER_IN_PROCESS": "false",
        "RWA_CHAIN_RPC_URL": hardhat_node.url,
        "RWA_CHAIN_ID": str(HARDHAT_CHAIN_ID),
        "RWA_CHAIN_PRIVATE_KEY": HARDHAT_DEV_KEY,
        "RWA_JOBS_CLAIM_IDLE_SECONDS": str(CLAIM_IDLE_SECONDS),
    }
    server: RwaServer = start_server(tmp_path / "api", env=overrides)
    env = worker_env(
        clean_redis_url, server.data_dir, {**overrides, "RWA_JWT_SECRET": server.jwt_secret}
    )
    workers: list[WorkerProcess] = []

    def new_worker(name: str) -> WorkerProcess:
        worker = start_worker(tmp_path, env, modules=(), name=name)
        workers.append(worker)
        worker.wait_listening()
        return worker

    def logs() -> str:
        return "\n".join(f"--- {w.log_path.name}\n{w.log()[-3000:]}" for w in workers)

    try:
        with server.client() as http:
            api = MarketsApi(server, http)

            # 1. The API only produces: without a worker the deployment waits in Redis.
            first = api.register(market_body())["id"]
            assert api.approve(first)["status"] == "activating"
            time.sleep(1.0)
            assert api.get(first)["status"] == "activating"
            worker_a = new_worker("worker-a")
            started = time.monotonic()
            market = api.wait_settled(first, timeout=60)
            print(
                f"worker A deployed the waiting job {time.monotonic() - started:.2f}s after start"
            )
            assert_deployed(market, api)
            assert event_types(api.events(first)) == HAPPY_EVENTS
            assert len(w3.eth.get_code(Web3.to_checksum_address(market["contractAddress"]))) > 0

            # 2. Worker A sends the deployment, then dies before the receipt.
            w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
            second = api.register(market_body())["id"]
            api.approve(second)
            deadline = time.monotonic() + 30
            signer = Web3.to_checksum_address(HARDHAT_DEV_ADDRESS)
            while w3.eth.get_transaction_count(signer, "pending") == w3.eth.get_transaction_count(
                signer, "latest"
            ):
                assert time.monotonic() < deadline, logs()
                time.sleep(0.05)
            worker_a.kill()
            killed_at = time.monotonic()
            w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
            w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
            orphan_block = w3.eth.get_block("latest", full_transactions=True)
            orphan_txs: list[Any] = list(orphan_block["transactions"])
            [orphan_tx] = orphan_txs
            orphan = w3.eth.get_transaction_receipt(orphan_tx["hash"])["contractAddress"]
            assert orphan is not None  # the first creation of the market's suite
            assert api.get(second)["status"] == "activating"

            # 3. Worker B claims the job once A's lease ran out and follows A's recorded
            #    transaction: its receipt, no second deployment.
            worker_b = new_worker("worker-b")
            market = api.wait_settled(second, timeout=60)
            recovered = time.monotonic() - killed_at
            assert_deployed(market, api)
            types = event_types(api.events(second))
            assert types == HAPPY_EVENTS, types  # activated exactly once
            assert market["activationAttempts"] == 1, market
            address = Web3.to_checksum_address(market["contractAddress"])
            assert len(w3.eth.get_code(address)) > 0
            # A's transaction, recorded before it was sent, is the one the suite was built on
            [storage] = _records(server.data_dir, second, "storage")
            assert storage == (HexBytes(orphan_tx["hash"]).to_0x_hex(), "mined", orphan)
            assert "re-delivering job message" in worker_b.log(), logs()
            assert _creations(w3) == _recorded_creations(server.data_dir), logs()
            print(f"deployment recovered {recovered:.2f}s after SIGKILL of worker A")

            # 4. Worker B sends a deployment, is killed, and the node drops the pending
            #    transaction (as a restarted node forgets its mempool). Worker C sends the
            #    recorded bytes again: same nonce, same hash, the predicted address.
            w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
            third = api.register(market_body())["id"]
            api.approve(third)
            deadline = time.monotonic() + 30
            while not w3.eth.get_block("pending")["transactions"]:
                assert time.monotonic() < deadline, logs()
                time.sleep(0.05)
            worker_b.kill()
            [pending] = w3.eth.get_block("pending")["transactions"]
            dropped = HexBytes(pending).to_0x_hex()  # type: ignore[arg-type]
            w3.provider.make_request("hardhat_dropTransaction", [dropped])  # type: ignore[arg-type]
            w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
            assert not w3.eth.get_block("pending")["transactions"]
            new_worker("worker-c")
            market = api.wait_settled(third, timeout=60)
            assert_deployed(market, api)
            [storage] = _records(server.data_dir, third, "storage")
            assert storage[:2] == (dropped, "mined")  # re-sent, not re-signed
            assert event_types(api.events(third)) == HAPPY_EVENTS
            assert _creations(w3) == _recorded_creations(server.data_dir), logs()
    finally:
        for worker in workers:
            worker.stop()
        server.stop()


def _creations(w3: Any) -> list[str]:
    """Contract creations the platform's signer made on the node (every block, every tx)."""
    found = []
    for number in range(w3.eth.block_number + 1):
        for tx in w3.eth.get_block(number, full_transactions=True)["transactions"]:
            if tx["from"] == HARDHAT_DEV_ADDRESS and tx.get("to") is None:
                found.append(HexBytes(tx["hash"]).to_0x_hex())
    return sorted(found)


def _records(data_dir: Path, market_id: str, step: str) -> list[tuple[str, str, str]]:
    with sqlite3.connect(data_dir / "rwa.sqlite3") as db:
        rows = db.execute(
            "SELECT tx_hash, state, contract_address FROM deployment_transactions "
            "WHERE subject = ? AND step = ?",
            (market_id, step),
        ).fetchall()
    return [(str(a), str(b), str(c)) for a, b, c in rows]


def _recorded_creations(data_dir: Path) -> list[str]:
    """Every recorded, mined transaction that created a contract (the platform's too)."""
    with sqlite3.connect(data_dir / "rwa.sqlite3") as db:
        rows = db.execute(
            "SELECT tx_hash FROM deployment_transactions "
            "WHERE state = 'mined' AND contract_address IS NOT NULL"
        ).fetchall()
    return sorted(str(r[0]) for r in rows)


def test_deployment_retries_wait_in_redis_between_worker_attempts(
    tmp_path: Path, clean_redis_url: str
) -> None:
    """The chain is unreachable: the worker's attempts fail, each retry waits its backoff in
    the Redis sorted set, and after the last attempt the market goes back to ``approved``."""
    backoff = 0.3  # waits 0.3 + 0.6 + 1.2 + 2.4 = 4.5 s between the 5 attempts
    overrides = {
        "RWA_REDIS_URL": clean_redis_url,
        "RWA_WORKER_IN_PROCESS": "false",
        "RWA_CHAIN_RPC_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens there
        "RWA_CHAIN_ID": str(HARDHAT_CHAIN_ID),
        "RWA_CHAIN_PRIVATE_KEY": HARDHAT_DEV_KEY,
        "RWA_DEPLOY_BACKOFF_SECONDS": str(backoff),
    }
    server = start_server(tmp_path / "api", env=overrides)
    env = worker_env(
        clean_redis_url, server.data_dir, {**overrides, "RWA_JWT_SECRET": server.jwt_secret}
    )
    worker = start_worker(tmp_path, env, modules=(), name="worker")
    try:
        worker.wait_listening()
        with server.client() as http:
            api = MarketsApi(server, http)
            market_id = api.register(market_body())["id"]
            approved_at = time.monotonic()
            api.approve(market_id)
            market = api.wait_until(
                market_id,
                lambda m: m["status"] == "approved" and m["activationAttempts"] == 5,
                timeout=60,
                what="five failed attempts",
            )
            took = time.monotonic() - approved_at
            assert market["activationError"], market
            assert event_types(api.events(market_id))[-1] == "market.activation_failed"
        waits = sum(backoff * 2**n for n in range(4))
        print(f"5 attempts with {waits:.1f}s of backoff took {took:.2f}s")
        assert took >= waits
        assert worker.log().count("retrying in") == 4, worker.log()[-3000:]
    finally:
        worker.stop()
        server.stop()
