"""A sweep-deposit run that dies with SIGKILL right after its broadcast, on the embedded
profile.

``python -m tests.harness.crashing_sweep`` with the service's environment
(``RWA_PROFILE=embedded``, ``RWA_DATA_DIR``): it migrates, starts the service's real runtime
(SQLite storage, the durable in-process chain, the quote stablecoin deployed at start), gives
``alice`` her custodial deposit address, and sends 5 USDC there from outside (the chain's own
tool calls, recorded nowhere). ``sync-blockchain`` credits the deposit and queues its sweep;
the chain's ``send_raw_transaction`` is wrapped (test code only) so the process kills itself
right after the chain accepted (and mined) the sweep's transfer, signed by alice's deposit
key, before the job recorded anything more.

It prints ``deposit <id>``, ``address <alice's deposit address>`` and ``sent <hash>``. A test
then starts the real server on the same directory and checks that the deposit is marked swept
with that one transfer on chain.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import bootstrap
from core.ports.chain import PreparedTransaction, TokenCall, TokenCallKind
from core.ports.custody import TransactionSigner
from settings import Settings

AMOUNT = 5_000_000  # 5 USDC


async def main() -> None:
    settings = Settings.from_env()
    bootstrap.migrate(settings)
    runtime = bootstrap.build(settings)
    c = runtime.container
    chain = c.chain()
    send = chain.send_raw_transaction
    prepare = chain.prepare_custodial_transfer
    sweeps: list[str] = []

    async def remember_sweep(
        signer: TransactionSigner, token: str, receiver: str, amount: int
    ) -> PreparedTransaction:
        prepared: PreparedTransaction = await prepare(signer, token, receiver, amount)
        sweeps.append(prepared.transaction.raw_transaction)
        return prepared

    async def send_then_die(raw: str) -> str:
        tx_hash: str = await send(raw)
        if raw in sweeps:
            print(f"sent {tx_hash}", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        return tx_hash

    chain.prepare_custodial_transfer = remember_sweep
    chain.send_raw_transaction = send_then_die
    await runtime.start()
    quote = await c.quote_token_setup().ensure()
    coin = quote.contract_address or ""
    alice = await c.chain_mirror().user_address("alice")
    print(f"address {alice}", flush=True)
    omnibus = await chain.custody_address()
    await chain.call_token(TokenCall(TokenCallKind.MINT, coin, omnibus, None, AMOUNT))
    await chain.call_token(TokenCall(TokenCallKind.TRANSFER, coin, alice, None, AMOUNT))
    credited = await c.deposit_use_cases().sync()
    if sum(r.credited for r in credited) != 1:
        print(f"the deposit was not credited once: {credited}", flush=True)
        sys.exit(4)
    async with c.storage().unit_of_work(read_only=True) as uow:
        [deposit] = await uow.deposits.for_user("alice", limit=10)
    print(f"deposit {deposit.id}", flush=True)
    await c.jobs().join(60)
    print("the sweep finished without the planned crash", flush=True)
    sys.exit(3)


if __name__ == "__main__":
    asyncio.run(main())
