"""Never sent twice: a ``sweep-deposit`` run killed with SIGKILL right after its transfer
(signed by the deposit address's own key) was broadcast and mined, before the job recorded
anything more, is finished by the restarted real server (``rwa-market serve``) from the
recorded transaction: the deposit is marked swept with that hash, and the chain holds exactly
one transfer from the deposit address to the omnibus address."""

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
from tests.harness.crashing_sweep import AMOUNT

REPO = Path(__file__).resolve().parents[2]
API = "/api/v1"


def _crash(work_dir: Path) -> dict[str, str]:
    env = server_env(work_dir / "data", free_port())
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO)])
    done = subprocess.run(
        [sys.executable, "-m", "tests.harness.crashing_sweep"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == -9, f"{done.returncode}\n{done.stdout}\n{done.stderr[-3000:]}"
    return dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)


async def _chain_view(data_dir: Path, token: str, deposit_address: str) -> tuple[Any, ...]:
    chain = EvmChain(data_dir=data_dir)
    try:
        head = await chain.block_number()
        omnibus = await chain.custody_address()
        logs = await chain.transfer_logs(token, 0, head, frozenset({omnibus}))
        swept = [log for log in logs if log.sender == deposit_address]
        return (
            swept,
            await chain.balance_of(token, deposit_address),
            await chain.confirmed_nonce(deposit_address),
        )
    finally:
        await chain.close()


def test_a_sweep_killed_after_its_broadcast_is_sent_once(tmp_path: Path) -> None:
    printed = _crash(tmp_path)
    deposit_id, sent, address = printed["deposit"], printed["sent"], printed["address"]
    data_dir = tmp_path / "data"
    server = start_server(tmp_path / "restart", data_dir=data_dir)
    try:
        admin = bearer(server.token("admin-1", "admin"))
        with server.client() as http:
            deadline = time.monotonic() + 60
            while True:
                found = http.get(f"{API}/users/alice/deposits", headers=admin)
                assert found.status_code == 200, found.text
                [deposit] = found.json()["data"]
                if deposit["sweepTxHash"] is not None:
                    break
                assert time.monotonic() < deadline, (deposit, server.log_tail())
                time.sleep(0.2)
            assert deposit["id"] == deposit_id and deposit["sweepTxHash"] == sent
            balance = http.get(f"{API}/tokens/balances/alice/USDC", headers=admin).json()["data"]
            assert (balance["available"], balance["locked"]) == ("5", "0")  # credited once
            token = http.get(f"{API}/tokens/USDC").json()["data"]["contractAddress"]
            audit = http.get(f"{API}/audit?action=deposit.sweep", headers=admin).json()["data"]
            assert [entry["subject"] for entry in audit] == [f"deposit:{deposit_id}"]
    finally:
        server.stop()
    swept, left, nonce = asyncio.run(_chain_view(data_dir, token, address))
    assert [(log.tx_hash, log.amount) for log in swept] == [(sent, AMOUNT)]
    assert (left, nonce) == (0, 1)

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
