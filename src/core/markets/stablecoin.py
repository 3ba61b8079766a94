"""The embedded chain's quote stablecoin, deployed once and recorded (DESIGN §3, §9).

On the embedded profile the quote currency (``RWA_QUOTE_SYMBOL``, 6 decimals) is an
OpenZeppelin ERC-20 the platform deploys on its own in-process chain. Its deployment is a
platform transaction like any other: recorded under (``@platform``, ``stablecoin:<SYMBOL>``)
before it is sent, so every later start (after ``kill -9`` too) finds the record and answers
the same address instead of deploying a second stablecoin. ``ensure`` is the address source
of the quote token's startup registration (``core.tokens.quote``).
"""

from __future__ import annotations

import logging

from core.markets.chain_state import ChainStateGuard, ChainStateMismatch
from core.markets.transactions import RecordedTransactions
from core.ports.chain import Chain, PreparedTransaction
from core.ports.clock import Clock
from core.ports.deployments import PLATFORM_SUBJECT
from core.ports.storage import Storage
from core.shared.errors import ChainError

log = logging.getLogger(__name__)


def stablecoin_step(symbol: str) -> str:
    return f"stablecoin:{symbol}"


class EmbeddedStablecoin:
    def __init__(
        self,
        storage: Storage,
        chain: Chain,
        clock: Clock,
        *,
        symbol: str,
        name: str | None = None,
        guard: ChainStateGuard | None = None,
    ) -> None:
        self._chain = chain
        self._guard = guard
        self._transactions = RecordedTransactions(storage, chain, clock)
        self.symbol = symbol
        self.name = name or f"{symbol} stablecoin"

    async def ensure(self) -> str | None:
        """The stablecoin's address: from its recorded deployment, or deployed now. None,
        with a warning, when the chain does not hold what the database recorded (nothing is
        signed on a chain that lost its state; the start goes on, degraded)."""

        async def prepare() -> PreparedTransaction:
            return await self._chain.prepare_stablecoin(self.name, self.symbol)

        try:
            if self._guard is not None:
                await self._guard.ensure()
            receipt = await self._transactions.run(
                PLATFORM_SUBJECT, stablecoin_step(self.symbol), prepare
            )
        except ChainStateMismatch as exc:
            log.warning("the %s stablecoin is not deployed: %s", self.symbol, exc)
            return None
        if receipt.contract_address is None:  # pragma: no cover - check_receipt refuses it
            raise ChainError("the stablecoin deployment created no contract")
        return receipt.contract_address
