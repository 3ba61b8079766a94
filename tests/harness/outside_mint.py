"""Mint stablecoin to the platform's omnibus address straight on the chain, outside the
ledger (``python -m tests.harness.outside_mint <base units>`` with the server's RWA_
environment, the server stopped): the drift that reconciliation must report."""

from __future__ import annotations

import asyncio
import sys

import bootstrap
from core.ports.chain import TokenCall, TokenCallKind
from settings import Settings


async def outside_mint(amount: int) -> str:
    settings = Settings.from_env()
    runtime = bootstrap.build(settings)
    c = runtime.container
    try:
        async with c.storage().unit_of_work(read_only=True) as uow:
            token = await uow.tokens.by_symbol(settings.quote_symbol)
        assert token is not None and token.contract_address is not None, "no quote token yet"
        chain = c.chain()
        omnibus = await chain.custody_address()
        await chain.call_token(  # holds the chain's signing lock itself
            TokenCall(TokenCallKind.MINT, token.contract_address, account=omnibus, amount=amount)
        )
        return token.symbol
    finally:
        await c.chain().close()
        await c.storage().close()


if __name__ == "__main__":
    print(asyncio.run(outside_mint(int(sys.argv[1]))))
