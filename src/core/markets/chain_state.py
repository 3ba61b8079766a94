"""Does the chain still hold what the database says was deployed on it?

The database remembers mined deployments (``deployment_transactions``) and every market's
contract address; the chain must still have them. It may not: the embedded chain's file was
removed or replaced by an older copy, or a development node was restarted empty. Serving
chain reads then would show wrong data (no token, or another market's token at a reused
address), and deploying would reuse old addresses. ``ChainStateGuard`` compares the two at
start (and again later if the chain could not be reached) and, on a mismatch, makes every
chain read of a market and every deployment fail with ``ChainStateMismatch`` (503,
``chain_state_mismatch``) until an operator restores the chain and restarts.

What is compared (a few reads, whatever the number of markets):

- the chain's head is not below the highest block a mined deployment was recorded in;
- the newest recorded mined deployments have contract code at their addresses;
- the newest active and paused markets have code at their contract addresses, and the
  token there answers the market's symbol.
"""

from __future__ import annotations

import logging

from core.markets.model import Market, MarketStatus
from core.ports.chain import Chain
from core.ports.storage import MarketFilter, Storage
from core.shared.errors import ChainError, ServiceUnavailable

log = logging.getLogger(__name__)

SAMPLE = 5  # newest records and markets per status that are compared


class ChainStateMismatch(ServiceUnavailable):
    code = "chain_state_mismatch"


class ChainStateGuard:
    def __init__(self, storage: Storage, chain: Chain, *, where: str = "the chain") -> None:
        self._storage = storage
        self._chain = chain
        self._where = where  # named in messages: the chain file, or the node's endpoint
        self._verified = False
        self.problem: str | None = None

    async def verify(self) -> str | None:
        """Compare and remember the outcome; the mismatch, or None. Logs one line on a
        mismatch. If the chain cannot be reached the check is left for the next call."""
        try:
            problem = await self._compare()
        except ChainError as exc:
            log.warning("chain state not verified yet (the chain did not answer): %s", exc)
            return None
        except Exception as exc:  # e.g. a database not migrated yet: try again on next use
            log.warning("chain state not verified yet (storage): %s: %s", type(exc).__name__, exc)
            return None
        self._verified = True
        self.problem = problem
        if problem is not None:
            log.error(
                "CHAIN STATE MISMATCH: %s; chain reads of markets and deployments are refused "
                "until %s is restored (see docs/operations.md)",
                problem,
                self._where,
            )
        return problem

    async def ensure(self) -> None:
        """Raise ``ChainStateMismatch`` if the chain does not hold what the database says."""
        if not self._verified:
            await self.verify()
        if self.problem is not None:
            raise ChainStateMismatch(
                f"the chain does not match the database: {self.problem}",
                details={"problem": self.problem},
            )

    async def ping(self) -> None:
        """Readiness: the chain answers and matches the database."""
        await self.ensure()
        await self._chain.block_number()

    async def _compare(self) -> str | None:
        async with self._storage.unit_of_work() as uow:
            mined = await uow.deployments.latest_mined(limit=SAMPLE)
            markets: list[Market] = []
            for status in (MarketStatus.ACTIVE, MarketStatus.PAUSED):
                markets += await uow.markets.list(MarketFilter(status=status), limit=SAMPLE)
        if not mined and not markets:
            return None
        head = await self._chain.block_number()
        top = max((r.block_number or 0 for r in mined), default=0)
        if head < top:
            return (
                f"the chain's head is block {head}, but deployments were recorded up to block {top}"
            )
        for record in mined:
            if record.contract_address is None:
                continue  # a call: the head check above covers it
            if not await self._chain.code_at(record.contract_address):
                return (
                    f"{record.subject}'s contract {record.contract_address} ({record.step}, "
                    f"block {record.block_number}) has no code on the chain"
                )
        for market in markets:
            if market.contract_address is None:
                continue
            if not await self._chain.code_at(market.contract_address):
                return (
                    f"market {market.id}'s token {market.contract_address} has no code on the chain"
                )
            symbol = (await self._chain.token_metadata(market.contract_address)).symbol
            if symbol != market.token_symbol:
                return (
                    f"the contract at {market.contract_address} is token {symbol!r}, not "
                    f"market {market.id}'s {market.token_symbol!r}"
                )
        return None
