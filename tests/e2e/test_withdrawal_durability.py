"""Never sent twice: a ``process-withdrawal`` run killed with SIGKILL right after its
transfer was broadcast (and mined), before the job recorded anything, is finished by the
restarted real server (``rwa-market serve``) from the recorded transaction: the withdrawal
completes with that hash and the chain holds exactly one transfer to the address."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from adapters.outbound.chain.evm import EvmChain
from tests.e2e.api import bearer
from tests.e2e.server import server_env, start_server
from tests.harness.common import free_port
from tests.harness.crashing_withdrawal import TO

REPO = Path(__file__).resolve().parents[2]
API = "/api/v1"


def _crash(work_dir: Path) -> tuple[str, str]:
    env = server_env(work_dir / "data", free_port())
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO)])
    done = subprocess.run(
        [sys.executable, "-m", "tests.harness.crashing_withdrawal"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == -9, f"{done.returncode}\n{done.stdout}\n{done.stderr[-3000:]}"
    lines = done.stdout.splitlines()
    withdrawal = next(ln.split()[1] for ln in lines if ln.startswith("withdrawal "))
    sent = next(ln.split()[1] for ln in lines if ln.startswith("sent "))
    return withdrawal, sent


async def _chain_view(data_dir: Path, token: str) -> tuple[list[Any], int]:
    chain = EvmChain(data_dir=data_dir)
    try:
        head = await chain.block_number()
        logs = await chain.transfer_logs(token, 0, head, frozenset({TO}))
        return logs, await chain.balance_of(token, TO)
    finally:
        await chain.close()


def test_a_withdrawal_killed_after_its_broadcast_is_sent_once(tmp_path: Path) -> None:
    withdrawal_id, sent = _crash(tmp_path)
    data_dir = tmp_path / "data"
    server = start_server(tmp_path / "restart", data_dir=data_dir)
    try:
        admin = bearer(server.token("admin-1", "admin"))
        with server.client() as http:
            deadline = time.monotonic() + 60
            while True:
                found = http.get(f"{API}/withdrawals/{withdrawal_id}", headers=admin)
                assert found.status_code == 200, found.text
                withdrawal = found.json()["data"]
                if withdrawal["status"] in ("COMPLETED", "FAILED"):
                    break
                assert time.monotonic() < deadline, (withdrawal, server.log_tail())
                time.sleep(0.2)
            assert withdrawal["status"] == "COMPLETED", withdrawal
            assert withdrawal["txHash"] == sent
            balance = http.get(f"{API}/tokens/balances/alice/USDC", headers=admin).json()["data"]
            assert (balance["available"], balance["locked"]) == ("6", "0")
            token = http.get(f"{API}/tokens/USDC").json()["data"]["contractAddress"]
    finally:
        server.stop()
    logs, held = asyncio.run(_chain_view(data_dir, token))
    assert [(log.tx_hash, log.amount) for log in logs] == [(sent, 4_000_000)]
    assert held == 4_000_000

    # the chain and the ledger agree: `rwa-market reconcile` finds no drift
    env = server_env(data_dir, free_port())
    done = subprocess.run(
        [str(Path(sys.executable).parent / "rwa-market"), "reconcile"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr[-3000:]}"
    assert "no drift" in done.stdout
