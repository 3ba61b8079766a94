"""Chain transactions recorded before they are sent, and followed from the record afterwards.

``RecordedTransactions.run(subject, step, prepare)`` is the one way the service sends a
transaction (DESIGN §4 "one market, one contract", §9 "never sent twice"):

1. if (subject, step) has an open record, follow it: its receipt if it was mined, the same
   signed bytes sent again if not;
2. otherwise, holding the chain's signing lock: send again any recorded transaction of the
   signer that is not mined yet (a crash between record and send must not leave a nonce
   gap), sign the new one (``prepare``), record it in its own committed unit of work, and
   only then send it;
3. wait for its receipt and record it mined (or failed: a revert is a ``ChainError``).

A new transaction is signed for a (subject, step) only when the recorded one can never be
mined (another transaction used its nonce: ``superseded``) or reverted (``failed``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import attrs

from core.markets.chain_state import ChainStateMismatch
from core.ports.chain import (
    Chain,
    PreparedTransaction,
    SignedTransaction,
    TransactionReceipt,
    check_receipt,
)
from core.ports.clock import Clock
from core.ports.deployments import PLATFORM_SUBJECT, DeploymentRecord, DeploymentState
from core.ports.storage import Storage
from core.shared.errors import ChainError, Conflict

log = logging.getLogger(__name__)

RESEND_LIMIT = 20  # unmined recorded transactions sent again before signing a new one
FINAL_STATES = frozenset(
    {DeploymentState.MINED, DeploymentState.FAILED, DeploymentState.SUPERSEDED}
)

Prepare = Callable[[], Awaitable[PreparedTransaction]]


class RecordedTransactions:
    """Sends the platform's transactions, each recorded before it leaves the process."""

    def __init__(self, storage: Storage, chain: Chain, clock: Clock) -> None:
        self._storage = storage
        self._chain = chain
        self._clock = clock

    async def run(
        self,
        subject: str,
        step: str,
        prepare: Prepare,
        *,
        holder: str | None = None,
        for_market: bool = True,
        signer: str | None = None,
    ) -> TransactionReceipt:
        """The successful receipt of (subject, step)'s transaction: the recorded one, or a new
        one recorded before it is sent. ``ChainError`` when it reverted or cannot be sent.
        ``for_market=False``: the subject is not a market (a mint's or a withdrawal's id), so
        the record names no market. ``signer``: the address ``prepare`` signs with when it is
        not the platform's (a custodial key's sweep): its own unmined records are sent again
        first, as the platform's are."""
        for _ in range(3):
            record = await self._open_record(subject, step)
            if record is not None:
                record, receipt = await self._follow(record)
                if receipt is not None:
                    return await self._settle(record, receipt)
            async with self._chain.signing_lock:
                if await self._open_record(subject, step) is not None:
                    continue  # a concurrent job recorded one meanwhile: follow it
                await self._resend_unmined(signer or await self._chain.custody_address())
                prepared = await prepare()
                record = self._new_record(subject, step, prepared, holder, for_market)
                async with self._storage.unit_of_work() as uow:
                    await uow.deployments.add(record)
                    await uow.commit()
                await self._chain.send_raw_transaction(record.raw_transaction)
                record = await self._move(record, DeploymentState.SENT)
            receipt = await self._chain.wait_for_receipt(record.tx_hash)
            return await self._settle(record, receipt)
        raise ChainError(f"{subject} {step}: its record kept changing; retry later")

    async def mined(self, subject: str) -> dict[str, DeploymentRecord]:
        """The subject's mined records by step."""
        async with self._storage.unit_of_work() as uow:
            records = await uow.deployments.for_subject(subject)
        return {r.step: r for r in records if r.state is DeploymentState.MINED}

    async def _open_record(self, subject: str, step: str) -> DeploymentRecord | None:
        async with self._storage.unit_of_work() as uow:
            return await uow.deployments.open_for(subject, step)

    async def _follow(
        self, record: DeploymentRecord
    ) -> tuple[DeploymentRecord, TransactionReceipt | None]:
        """The receipt of a recorded transaction, sending its exact bytes again while it is
        not mined. None when it can never be mined (its nonce went to another transaction):
        then, and only then, a new one may be signed."""
        # read the nonce first: a receipt that appears in between must not look replaced
        confirmed = await self._chain.confirmed_nonce(record.signer)
        receipt = await self._chain.transaction_receipt(record.tx_hash)
        if receipt is not None:
            return record, receipt
        if record.state is DeploymentState.MINED:
            raise ChainStateMismatch(
                f"transaction {record.tx_hash} was recorded as mined in block "
                f"{record.block_number}, but the chain has no receipt for it"
            )
        if record.nonce < confirmed:
            await self._move(
                record,
                DeploymentState.SUPERSEDED,
                error=f"nonce {record.nonce} was used by another transaction",
            )
            log.warning(
                "transaction %s (%s %s) can never be mined (nonce %d used by another "
                "transaction); signing a new one",
                record.tx_hash,
                record.subject,
                record.step,
                record.nonce,
            )
            return record, None
        log.info(
            "%s %s: sending recorded transaction %s (nonce %d) again",
            record.subject,
            record.step,
            record.tx_hash,
            record.nonce,
        )
        async with self._chain.signing_lock:
            await self._chain.send_raw_transaction(record.raw_transaction)
        if record.state is DeploymentState.SIGNED:
            record = await self._move(record, DeploymentState.SENT)
        return record, await self._chain.wait_for_receipt(record.tx_hash)

    async def _resend_unmined(self, signer: str) -> None:
        """Send again the recorded, unmined transactions of ``signer`` (lowest nonce first)
        before signing a new one: a transaction recorded but never sent (a crash between
        the two) keeps its nonce, and a new one must not leave a gap behind it or take it."""
        async with self._storage.unit_of_work() as uow:
            waiting = await uow.deployments.unmined(signer, limit=RESEND_LIMIT)
        for record in waiting:
            confirmed = await self._chain.confirmed_nonce(record.signer)
            receipt = await self._chain.transaction_receipt(record.tx_hash)
            if receipt is not None:
                continue  # its own job settles it
            if record.nonce < confirmed:
                await self._move(
                    record,
                    DeploymentState.SUPERSEDED,
                    error=f"nonce {record.nonce} was used by another transaction",
                )
                continue
            try:
                await self._chain.send_raw_transaction(record.raw_transaction)
            except ChainError as exc:
                log.warning("could not resend %s: %s", record.tx_hash, exc)

    async def _settle(
        self, record: DeploymentRecord, receipt: TransactionReceipt
    ) -> TransactionReceipt:
        """Mark the record mined (or failed, when it reverted)."""
        if not receipt.succeeded:
            await self._move(record, DeploymentState.FAILED, error="reverted (status 0)")
        prepared = PreparedTransaction(
            transaction=SignedTransaction(
                signer=record.signer,
                nonce=record.nonce,
                tx_hash=record.tx_hash,
                raw_transaction=record.raw_transaction,
                chain_id=record.chain_id,
            ),
            contract_address=record.contract_address,
        )
        check_receipt(prepared, receipt)  # ChainError if it reverted
        if record.state is not DeploymentState.MINED:
            await self._move(record, DeploymentState.MINED, block_number=receipt.block_number)
        return receipt

    def _new_record(
        self,
        subject: str,
        step: str,
        prepared: PreparedTransaction,
        holder: str | None,
        for_market: bool = True,
    ) -> DeploymentRecord:
        now = self._clock.now()
        tx = prepared.transaction
        return DeploymentRecord(
            tx_hash=tx.tx_hash,
            market_id=None if subject == PLATFORM_SUBJECT or not for_market else subject,
            subject=subject,
            step=step,
            chain_id=tx.chain_id,
            signer=tx.signer,
            nonce=tx.nonce,
            raw_transaction=tx.raw_transaction,
            contract_address=prepared.contract_address,
            holder=holder,
            state=DeploymentState.SIGNED,
            created_at=now,
            updated_at=now,
        )

    async def _move(
        self,
        record: DeploymentRecord,
        state: DeploymentState,
        *,
        block_number: int | None = None,
        error: str | None = None,
    ) -> DeploymentRecord:
        """Record a new state. If someone else moved the record meanwhile (a concurrent job
        of the same subject), move it on from where they left it, unless it is already final
        or in the wanted state."""
        for _ in range(3):
            moved = attrs.evolve(
                record,
                state=state,
                block_number=block_number if block_number is not None else record.block_number,
                error=error,
                updated_at=self._clock.now(),
            )
            try:
                async with self._storage.unit_of_work() as uow:
                    await uow.deployments.update(moved, expected_state=record.state)
                    await uow.commit()
                return moved
            except Conflict:
                async with self._storage.unit_of_work() as uow:
                    current = await uow.deployments.get(record.tx_hash)
                if current is None or current.state is state or current.state in FINAL_STATES:
                    return current or moved
                record = current
        return record
