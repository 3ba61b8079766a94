"""What the token operations share on the chain side: where a user's tokens live on chain,
and sending one recorded transaction per operation.

Where tokens live (DESIGN §9): an RWA token per user address (the token is the register of
holders); the stablecoin (and any other token the platform holds for its users) in the
platform's omnibus address, the chain's custody address.

``send_once`` sends the operation's one transaction through ``RecordedTransactions``
(recorded before it is broadcast, followed on a retry, never signed twice) under the subject
of the operation's id. Its outcome:

- the successful receipt;
- ``Refused``: nothing can be in flight any more (the chain refused it before it was
  recorded, or the recorded transaction reverted or can never be mined): the operation may
  be failed and its funds given back;
- ``ChainError`` otherwise (a transaction is recorded and may still be mined): the job is
  retried and follows that transaction.
"""

from __future__ import annotations

from datetime import datetime

from core.markets.transactions import Prepare, RecordedTransactions
from core.ports.chain import Chain, TransactionReceipt
from core.ports.clock import Clock
from core.ports.custody import KeyDerivation
from core.ports.metrics import NO_METRICS, Metrics
from core.ports.storage import Storage
from core.shared.errors import ChainError, ConcurrentModification
from core.tokens.custodial_addresses import CustodialAddressBook
from core.tokens.model import Token, TokenType

OPERATION_STEP = "send"


class Refused(Exception):
    """The operation's transaction was refused or reverted; nothing is in flight."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ChainMirror:
    def __init__(
        self,
        storage: Storage,
        chain: Chain,
        clock: Clock,
        keys: KeyDerivation,
        *,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self._storage = storage
        self._chain = chain
        self._clock = clock
        self._metrics = metrics
        self._keys = keys
        self._recorded = RecordedTransactions(storage, chain, clock)
        self.addresses = CustodialAddressBook(storage, keys, chain)

    @property
    def chain(self) -> Chain:
        return self._chain

    def settled(self, kind: str, since: datetime) -> None:
        """An operation's transaction is confirmed: its settlement lag, from ``since`` (when
        the ledger committed it) to now."""
        self._metrics.settlement_lag(kind, (self._clock.now() - since).total_seconds())

    async def user_address(self, user_id: str) -> str:
        """The user's address: their external one if registered, else their custodial one
        (the first use gives them their user number)."""
        async with self._storage.unit_of_work(read_only=True) as uow:
            record = await uow.wallets.get(user_id)
        for attempt in range(3):
            if record is not None:
                break
            try:
                async with self._storage.unit_of_work() as uow:
                    record = await uow.wallets.get_or_create(user_id, now=self._clock.now())
                    await uow.commit()
            except ConcurrentModification:
                if attempt == 2:
                    raise
        assert record is not None
        return record.external_address or self._keys.address_for(record.user_number)

    async def holder_address(self, token: Token, user_id: str) -> str:
        """Where ``user_id``'s ``token`` is held on chain."""
        if token.type is TokenType.RWA:
            return await self.user_address(user_id)
        return await self._chain.custody_address()

    async def send_once(self, operation_id: str, prepare: Prepare) -> TransactionReceipt:
        try:
            return await self._recorded.run(operation_id, OPERATION_STEP, prepare, for_market=False)
        except ChainError as exc:
            async with self._storage.unit_of_work(read_only=True) as uow:
                open_record = await uow.deployments.open_for(operation_id, OPERATION_STEP)
            if open_record is None:
                raise Refused(exc.message) from exc
            raise

    async def in_flight(self, operation_id: str) -> str | None:
        """The hash of the operation's recorded, still open transaction, if any."""
        async with self._storage.unit_of_work(read_only=True) as uow:
            record = await uow.deployments.open_for(operation_id, OPERATION_STEP)
        return None if record is None else record.tx_hash
