"""A deploy-token run that dies with SIGKILL around the send, on the embedded profile.

``python -m tests.harness.crashing_deployer {after-send|before-send}`` with the service's
environment (``RWA_PROFILE=embedded``, ``RWA_DATA_DIR``): it migrates, builds the service's
real container (SQLite storage, the durable in-process chain), registers and approves a
market, and runs the market's ``deploy-token`` job itself. The chain's
``send_raw_transaction`` is wrapped (test code only) so the process kills itself at the
transaction of the suite step that creates the token contract:

- ``after-send``: right after the chain accepted (and mined) the transaction, before the job
  records the outcome: the market stays ``activating`` with its token on chain;
- ``before-send``: after the transaction was recorded, before it reaches the chain.

It prints ``market <id>`` first. A test then starts the real server on the same directory and
checks that the market ends up with exactly one contract.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Mapping

import bootstrap
from core.markets.registration import RegisterMarket
from core.ports.chain import TOKEN_STEP, PreparedTransaction, SuiteSpec
from core.ports.jobs import DeployTokenJob
from core.shared.events import Actor
from settings import Settings

ADMIN = Actor(id="crash-admin", roles=("admin",))
ISSUER = Actor(id="crash-issuer", roles=("issuer",))


async def main(mode: str, symbol: str) -> None:
    settings = Settings.from_env()
    bootstrap.migrate(settings)
    runtime = bootstrap.build(settings)
    c = runtime.container
    chain = c.chain()
    send = chain.send_raw_transaction
    prepare = chain.prepare_suite_step
    token_raw: list[str] = []

    async def remember_token(
        spec: SuiteSpec, step: str, created: Mapping[str, str]
    ) -> PreparedTransaction:
        prepared: PreparedTransaction = await prepare(spec, step, created)
        if step == TOKEN_STEP:
            token_raw.append(prepared.transaction.raw_transaction)
        return prepared

    async def send_then_die(raw: str) -> str:
        if raw not in token_raw:
            sent: str = await send(raw)
            return sent
        if mode == "before-send":
            os.kill(os.getpid(), signal.SIGKILL)
        tx_hash: str = await send(raw)
        print(f"sent {tx_hash}", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        return tx_hash  # pragma: no cover - never reached

    chain.prepare_suite_step = remember_token
    chain.send_raw_transaction = send_then_die
    uc = c.market_use_cases()
    market = await uc.register(
        ISSUER,
        RegisterMarket(
            name=f"Crash {symbol}",
            asset_type="real_estate",
            token_symbol=symbol,
            token_name=f"Crash {symbol} Token",
            total_supply=1000,
        ),
    )
    print(f"market {market.id}", flush=True)
    await uc.decide(ADMIN, market.id, "approve")
    await c.deployment().handle(DeployTokenJob(market_id=market.id, attempt=1))
    print("the deployment finished without the planned crash", flush=True)
    sys.exit(3)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
