"""A process-withdrawal run that dies with SIGKILL right after its broadcast, on the embedded
profile.

``python -m tests.harness.crashing_withdrawal`` with the service's environment
(``RWA_PROFILE=embedded``, ``RWA_DATA_DIR``): it migrates, starts the service's real runtime
(SQLite storage, the durable in-process chain, the quote stablecoin deployed at start),
mints 10 USDC to ``alice``, requests and approves a withdrawal of 4 to ``TO``. The chain's
``send_raw_transaction`` is wrapped (test code only) so the process kills itself right after
the chain accepted (and mined) the withdrawal's transfer, before the job records anything.

It prints ``withdrawal <id>`` and ``sent <hash>``. A test then starts the real server on the
same directory and checks that the withdrawal completes with that one transfer on chain.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import bootstrap
from core.ports.chain import PreparedTransaction, TokenCall, TokenCallKind
from core.shared.events import Actor
from core.tokens.compliance_use_cases import SetCompliance
from core.tokens.operations import OperationStatus
from settings import Settings

ADMIN = Actor(id="crash-admin", roles=("admin",))
ALICE = Actor(id="alice", roles=("trader",))
# An outside address: not one the development mnemonic derives for a user (index 1 of it is
# 0x7099…79C8, alice's custodial deposit address once she has a user number, and reconcile
# counts deposit addresses in the stablecoin's total).
TO = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"


async def main() -> None:
    settings = Settings.from_env()
    bootstrap.migrate(settings)
    runtime = bootstrap.build(settings)
    c = runtime.container
    chain = c.chain()
    send = chain.send_raw_transaction
    prepare = chain.prepare_token_call
    transfers: list[str] = []

    async def remember_transfer(call: TokenCall) -> PreparedTransaction:
        prepared: PreparedTransaction = await prepare(call)
        if call.kind is TokenCallKind.TRANSFER:
            transfers.append(prepared.transaction.raw_transaction)
        return prepared

    async def send_then_die(raw: str) -> str:
        tx_hash: str = await send(raw)
        if raw in transfers:
            print(f"sent {tx_hash}", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        return tx_hash

    chain.prepare_token_call = remember_transfer
    chain.send_raw_transaction = send_then_die
    await runtime.start()
    await c.compliance_use_cases().set(
        ADMIN,
        "alice",
        SetCompliance(
            kyc_status="APPROVED",
            whitelisted=True,
            accredited=False,
            jurisdiction="PT",
            expires_at="2099-01-01T00:00:00Z",
        ),
    )
    minted = await c.mint_use_cases().request(ADMIN, "USDC", "crash-mint", "alice", "10")
    await c.jobs().join(60)
    status = (await c.mint_use_cases().get(ADMIN, "USDC", minted.id)).status
    if status is not OperationStatus.COMPLETED:
        print(f"the mint did not complete: {status}", flush=True)
        sys.exit(4)
    withdrawals = c.withdrawal_use_cases()
    withdrawal = await withdrawals.request(ALICE, "USDC", "4", TO)
    print(f"withdrawal {withdrawal.id}", flush=True)
    await withdrawals.approve(ADMIN, withdrawal.id)
    await c.jobs().join(60)
    print("the withdrawal finished without the planned crash", flush=True)
    sys.exit(3)


if __name__ == "__main__":
    asyncio.run(main())
