"""The embedded chain's quote stablecoin, deployed once and recorded (DESIGN §3, §9).

On the embedded profile the quote currency (``RWA_QUOTE_SYMBOL``, 6 decimals) is an
OpenZeppelin ERC-20 the platform deploys on its own in-process chain. Its deployment is a
platform transaction like any other: recorded under (``@platform``, ``stablecoin:<SYMBOL>``)
before it is sent, so every later start (after ``kill -9`` too) finds the record and answers
the same address instead of deploying a second stablecoin. ``ensure`` is the address source
of the quote token's startup registration (``core.tokens.quote``).
"""

from __future__ import annotations

from core.markets.transactions import RecordedTransactions
from core.ports.chain import Chain, PreparedTransaction
from core.ports.clock import Clock
from core.ports.deployments import PLATFORM_SUBJECT
from core.ports.storage import Storage
from core.shared.errors import ChainError


def stablecoin_step(symbol: str) -> str:
    return f"stablecoin:{symbol}"


class EmbeddedStablecoin:
    def __init__(
        self, storage: Storage, chain: Chain, clock: Clock, *, symbol: str, name: str | None = None
    ) -> None:
        self._chain = chain
        self._transactions = RecordedTransactions(storage, chain, clock)
        self.symbol = symbol
        self.name = name or f"{symbol} stablecoin"

    async def ensure(self) -> str:
        """The stablecoin's address: from its recorded deployment, or deployed now."""

        async def prepare() -> PreparedTransaction:
            return await self._chain.prepare_stablecoin(self.name, self.symbol)

        receipt = await self._transactions.run(
            PLATFORM_SUBJECT, stablecoin_step(self.symbol), prepare
        )
        if receipt.contract_address is None:  # pragma: no cover - check_receipt refuses it
            raise ChainError("the stablecoin deployment created no contract")
        return receipt.contract_address
