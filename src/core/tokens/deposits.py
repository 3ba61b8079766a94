"""Deposits: ``sync-blockchain`` reads ERC-20 ``Transfer`` logs to users' custodial addresses
and credits each once; ``GET /users/:userId/deposits`` lists them.

Per token with a contract, from the block after the token's cursor (``cursors`` key
``deposits:<token id>``) up to ``head - RWA_CHAIN_CONFIRMATIONS`` (at most ``MAX_BLOCKS`` a
run), in ONE unit of work: every log whose receiver is a user's custodial address and that
is not one of the platform's own recorded transactions (its mints, mirrors and withdrawals
are already in the ledger) is stored once per (tx hash, log index) as a ``CREDITED``
deposit, credited to the user's ledger account (posting set
``deposit:<tx hash>:<log index>``, applied at most once, ``deposited`` grows) and audited
(``deposit.credit``); then the cursor moves to the last block read. A crash before the
commit leaves the cursor where it was, and the next run reads those blocks again; a re-read
(a cursor moved back by hand, two scanners at once) finds the (tx hash, log index) stored
and credits nothing: the database refuses a second record and the ledger a second posting
set.

Logs are read only after the confirmation depth, so a deposit is never stored ``PENDING``
here. After each token's pass, every credited stablecoin deposit not swept yet gets a
``sweep-deposit`` job (``core.tokens.sweeps``): it moves the deposit into the omnibus
address; the ledger does not change.
"""

from __future__ import annotations

import logging

import attrs

from core.ledger import operations as postings
from core.ledger.model import AccountRef
from core.markets.queries import decode_cursor, encode_cursor
from core.ports.audit import audit_entry
from core.ports.chain import Chain, TransferLog
from core.ports.clock import Clock
from core.ports.custody import KeyDerivation
from core.ports.storage import Storage, UnitOfWork
from core.shared.errors import ValidationFailed
from core.shared.events import Actor
from core.tokens.jobs import SyncBlockchainJob
from core.tokens.model import Token, TokenType, check_user_id
from core.tokens.operations import Deposit, DepositStatus
from core.tokens.sweeps import DepositSweeper
from core.tokens.use_cases import require_reader

log = logging.getLogger(__name__)

READ = "deposit.read"
READ_ANY = "deposit.read_any"
CREDIT = "deposit.credit"
SYSTEM = Actor(id="sync-blockchain", type="system")
MAX_BLOCKS = 5000  # blocks read per token and run
WALLET_PAGE = 500
MAX_PAGE = 100


def cursor_key(token_id: str) -> str:
    return f"deposits:{token_id}"


@attrs.frozen
class DepositPage:
    items: list[Deposit]
    limit: int
    next_cursor: str | None


@attrs.frozen
class SyncResult:
    token_id: str
    from_block: int
    to_block: int
    credited: int


def deposit_view(deposit: Deposit) -> dict[str, object]:
    return {
        "id": deposit.id,
        "tokenId": deposit.token_id,
        "userId": deposit.user_id,
        "address": deposit.address,
        "amount": str(deposit.amount),  # base units
        "txHash": deposit.tx_hash,
        "logIndex": deposit.log_index,
        "blockNumber": deposit.block_number,
        "status": deposit.status.value,
        "sweepTxHash": deposit.sweep_tx_hash,
    }


class DepositUseCases:
    def __init__(
        self,
        storage: Storage,
        chain: Chain,
        clock: Clock,
        keys: KeyDerivation,
        *,
        confirmations: int,
        sweeper: DepositSweeper | None = None,
    ) -> None:
        if confirmations < 0:
            raise ValueError("confirmations must not be negative")
        self._storage = storage
        self._chain = chain
        self._clock = clock
        self._keys = keys
        self._confirmations = confirmations
        self._sweeper = sweeper

    async def deposits(
        self, actor: Actor, user_id: str, *, limit: int = 20, cursor: str | None = None
    ) -> DepositPage:
        user_id = check_user_id(user_id)
        if not 1 <= limit <= MAX_PAGE:
            raise ValidationFailed("bad limit", fields={"limit": f"must be 1 to {MAX_PAGE}"})
        before = decode_cursor(cursor) if cursor else None
        require_reader(actor, user_id, READ, READ_ANY, "deposits")
        async with self._storage.unit_of_work(read_only=True) as uow:
            rows = await uow.deposits.for_user(user_id, limit=limit + 1, before_id=before)
        items = rows[:limit]
        more = len(rows) > limit and bool(items)
        return DepositPage(
            items=items, limit=limit, next_cursor=encode_cursor(items[-1].id) if more else None
        )

    # -- sync-blockchain -----------------------------------------------------------------------

    async def handle(self, job: SyncBlockchainJob) -> None:
        await self.sync()

    async def sync(self) -> list[SyncResult]:
        """One pass over every token with a contract."""
        async with self._storage.unit_of_work(read_only=True) as uow:
            tokens = await _on_chain_tokens(uow)
            holders = await self._custodial_addresses(uow)
        head = await self._chain.block_number()
        safe = head - self._confirmations
        results = []
        for token in tokens:
            results.append(await self._sync_token(token, holders, safe))
            if self._sweeper is not None:  # this run's stablecoin deposits, and any left over
                await self._sweeper.enqueue_unswept(token)
        return results

    async def _custodial_addresses(self, uow: UnitOfWork) -> dict[str, str]:
        """Custodial address -> user id, for every user with a number."""
        found: dict[str, str] = {}
        after = 0
        while True:
            page = await uow.wallets.numbered(after_number=after, limit=WALLET_PAGE)
            for record in page:
                found[self._keys.address_for(record.user_number)] = record.user_id
            if len(page) < WALLET_PAGE:
                return found
            after = page[-1].user_number

    async def _sync_token(self, token: Token, holders: dict[str, str], safe: int) -> SyncResult:
        assert token.contract_address is not None
        async with self._storage.unit_of_work(read_only=True) as uow:
            stored = await uow.cursors.get(cursor_key(token.id))
        last = -1 if stored is None else int(stored)
        start, end = last + 1, min(safe, last + MAX_BLOCKS)
        if end < start or not holders:
            return SyncResult(token.id, start, last, 0)
        logs = await self._chain.transfer_logs(
            token.contract_address, start, end, frozenset(holders)
        )
        credited = 0
        async with self._storage.unit_of_work() as uow:
            now = self._clock.now()
            for found in logs:
                if await self._credit(uow, token, holders[found.receiver], found):
                    credited += 1
            await uow.cursors.set(cursor_key(token.id), str(end), now)
            await uow.commit()
        if credited:
            log.info(
                "credited %d deposits of %s (blocks %d-%d)", credited, token.symbol, start, end
            )
        return SyncResult(token.id, start, end, credited)

    async def _credit(
        self, uow: UnitOfWork, token: Token, user_id: str, found: TransferLog
    ) -> bool:
        if await uow.deployments.get(found.tx_hash) is not None:
            return False  # the platform's own transaction: already in the ledger
        if await uow.deposits.by_event(found.tx_hash, found.log_index) is not None:
            return False  # read before: credited once
        now = self._clock.now()
        deposit = Deposit(
            token_id=token.id,
            user_id=user_id,
            address=found.receiver,
            tx_hash=found.tx_hash,
            log_index=found.log_index,
            block_number=found.block_number,
            amount=found.amount,
            created_at=now,
            updated_at=now,
            status=DepositStatus.CREDITED,
            credited_at=now,
        )
        await uow.deposits.add(deposit)
        await uow.ledger.apply(
            postings.deposit(
                f"deposit:{found.tx_hash}:{found.log_index}",
                now,
                AccountRef.user(user_id, token.id),
                found.amount,
                reference=deposit.id,
            )
        )
        await uow.audit.append(
            audit_entry(
                SYSTEM,
                CREDIT,
                f"deposit:{deposit.id}",
                before=None,
                after=deposit_view(deposit),
                at=now,
            )
        )
        return True


async def _on_chain_tokens(uow: UnitOfWork) -> list[Token]:
    found: list[Token] = []
    before: str | None = None
    while True:
        page = await uow.tokens.list(None, limit=100, before_id=before)
        found += [
            t for t in page if t.contract_address is not None and t.type is not TokenType.CRYPTO
        ]
        if len(page) < 100:
            return found
        before = page[-1].id
